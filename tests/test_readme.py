"""The README stays true: its Python blocks run as written, and every option its commands use exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from t5score.cli.lightning_cli import config_parser
from t5score.data.modules import TextDataModule
from t5score.runs.predict import Seq2SeqPredictor
from t5score.runs.rerank import CandidateReranker, CandidatesDataModule
from t5score.runs.score import ScoreDataModule, Seq2SeqScorer

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PARSERS = {
    "predict": (Seq2SeqPredictor, TextDataModule),
    "score": (Seq2SeqScorer, ScoreDataModule),
    "rerank": (CandidateReranker, CandidatesDataModule),
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands() -> list[tuple[str, list[str]]]:
    """``(subcommand, options)`` of every ``t5score predict|score|rerank`` command in the bash blocks."""
    found = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;", line.split("  #")[0]):
                words = shlex.split(part.strip())
                if len(words) > 1 and words[0] == "t5score" and words[1] in PARSERS:
                    options = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
                    found.append((words[1], options))
    return found


def test_the_readme_has_the_blocks_this_test_reads():
    assert len(_blocks("python")) >= 1
    subcommands = {name for name, _ in _commands()}
    assert subcommands == set(PARSERS), subcommands


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_blocks_run_as_written(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks("python")[index], f"README.md python block {index}", "exec"), {})
    assert capsys.readouterr().out.strip(), "the block prints its results"


def test_every_option_of_the_readme_commands_exists():
    known: dict[str, set[str]] = {}
    for name, classes in PARSERS.items():
        parser = config_parser(*classes)
        known[name] = {s for action in parser._actions for s in action.option_strings}
    for name, options in _commands():
        for option in options:
            if option in ("--help", "-h", "--model.help", "--data.help"):
                continue
            # nested keys of a class-typed option (e.g. --trainer.logger.save_dir) belong to that option
            nested = any(
                option.startswith(k + ".") for k in known[name] if "." in k
            )  # not the --data group itself
            assert option in known[name] or nested, f"t5score {name}: README uses unknown option {option}"
