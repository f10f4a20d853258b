"""The README stays true: every ``bash`` and ``python`` block runs as written, in order, as a new user runs
them from the repository root; every option its commands use exists; its column lists are the outputs'.

Blocks are fenced ``bash`` (run), ``python`` (run) or ``console`` (shown only: they need a model hub, a
GPU or the user's own files; their options are still checked). In a ``bash`` block, ``t5score ...`` runs
in-process (``t5score.cli.main``: the same code as the console script, without paying the imports again
for every command), ``pip install`` and ``python -m pytest`` are checked against ``.ci/run`` (the
environment is installed; the test suite does not run itself), and any other line (``head``, a here-doc
writing an input file) runs in ``bash``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from t5score.cli import main
from t5score.cli.lightning_cli import config_parser
from t5score.data.modules import TextDataModule
from t5score.records import PredictionRecord, RerankRecord, ScoreRecord
from t5score.runs.predict import Seq2SeqPredictor
from t5score.runs.rerank import CandidateReranker, CandidatesDataModule
from t5score.runs.score import ScoreDataModule, Seq2SeqScorer
from t5score.scoring.rouge import ROUGE_KEYS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
LANGUAGES = ("bash", "python", "console")
PARSERS = {
    "predict": (Seq2SeqPredictor, TextDataModule),
    "score": (Seq2SeqScorer, ScoreDataModule),
    "rerank": (CandidateReranker, CandidatesDataModule),
}
#: what a checkout has beside the package that the README's commands read (``reports/`` is made afresh)
CHECKOUT = ("configs", "t5score", "tools", "benchmarks", "pyproject.toml", ".ci")


def _blocks(*languages: str) -> list[tuple[str, str]]:
    """``(language, text)`` of the fenced blocks in README order (all of them without ``languages``)."""
    found = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)
    return [(lang, text) for lang, text in found if not languages or lang in languages]


def _parts(block: str) -> list[str]:
    """The block's commands: continuation lines joined, ``&&`` chains split, a here-doc kept whole."""
    lines = block.replace("\\\n", " ").splitlines()
    parts, i = [], 0
    while i < len(lines):
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", lines[i])
        if heredoc:
            end = lines.index(heredoc.group(1), i + 1)
            parts.append("\n".join(lines[i : end + 1]))
            i = end + 1
            continue
        parts += [p.strip() for p in re.split(r"\s&&\s", lines[i]) if p.strip()]
        i += 1
    return parts


def _words(part: str) -> list[str]:
    return [] if "\n" in part else shlex.split(part, comments=True)


def _commands(*languages: str) -> list[tuple[str, list[str]]]:
    """``(subcommand, options)`` of every ``t5score predict|score|rerank`` command in those blocks."""
    found = []
    for _, block in _blocks(*languages):
        for words in map(_words, _parts(block)):
            if len(words) > 1 and words[0] == "t5score" and words[1] in PARSERS:
                found.append((words[1], [w.split("=")[0] for w in words[2:] if w.startswith("--")]))
    return found


def _ci_commands() -> list[str]:
    """The commands of ``.ci/run``'s install-and-test line, without ``-q``."""
    line = next(x for x in (REPO / ".ci" / "run").read_text().splitlines() if x.startswith("pip install"))
    return [" ".join(w for w in shlex.split(part) if w != "-q") for part in re.split(r"\s&&\s", line)]


def test_the_readme_has_the_blocks_this_test_reads():
    languages = [lang for lang, _ in _blocks()]
    assert set(languages) <= set(LANGUAGES), languages
    assert languages.count("python") >= 2 and languages.count("bash") >= 5
    subcommands = {name for name, _ in _commands("bash")}
    assert subcommands == set(PARSERS), subcommands


def test_the_install_and_test_commands_are_those_of_ci():
    ci = _ci_commands()
    readme = [" ".join(_words(p)) for _, b in _blocks("bash") for p in _parts(b)]
    assert " && ".join(ci) in " && ".join(readme), (ci, readme)  # the test block: .ci/run's line
    for _, block in _blocks("bash"):
        for words in map(_words, _parts(block)):
            if words[:2] == ["pip", "install"]:  # the quick start installs the package without [test]
                assert " ".join(words) in {*ci, *(c.replace(".[test]", ".") for c in ci)}, words
            if words[:3] == ["python", "-m", "pytest"]:
                assert " ".join(words) in ci, words


def test_every_option_of_the_readme_commands_exists():
    known: dict[str, set[str]] = {}
    for name, classes in PARSERS.items():
        parser = config_parser(*classes)
        known[name] = {s for action in parser._actions for s in action.option_strings}
    for name, options in _commands("bash", "console"):
        for option in options:
            if option in ("--help", "-h", "--model.help", "--data.help"):
                continue
            # nested keys of a class-typed option (e.g. --trainer.logger.save_dir) belong to that option
            nested = any(
                option.startswith(k + ".") for k in known[name] if "." in k
            )  # not the --data group itself
            assert option in known[name] or nested, f"t5score {name}: README uses unknown option {option}"


def _listed(output: str) -> list[str]:
    """The columns the README lists for ``output``, in its order: the names before (scores) or after
    (reranked) "its columns, in this order", or the first cells of its table (predictions)."""
    marks = [f"`<output_dir>/{output}`", f"`{output}`:"]
    begin = min(README.index(mark) for mark in marks if mark in README)
    passage = README[begin : README.index("\n\n", begin)]
    before = re.search(r"in input\s+order: (.*?) \(its\s+columns, in this order", passage, flags=re.S)
    after = re.search(r"its columns, in\s+this order: (.*?`\)?)\.\s", passage, flags=re.S)
    if before or after:
        return re.findall(r"`([^`]+)`", (before or after).group(1))
    table = re.search(r"\n\n((?:\|[^\n]*\n)+)", README[begin:]).group(1)
    rows = table.splitlines()[2:]  # below the header and its rule
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


@pytest.mark.parametrize(
    "output,columns",
    [
        ("predictions.parquet", [*PredictionRecord.column_names(), *ROUGE_KEYS]),
        ("scores.parquet", ScoreRecord.column_names()),
        ("reranked.parquet", [*RerankRecord.column_names(), *ROUGE_KEYS]),
    ],
)
def test_the_readme_lists_the_columns_of_each_output(output, columns):
    assert _listed(output) == [c for c in columns if c != "position"]


def _in_order_within(columns: list[str], listed: list[str]) -> bool:
    positions = [listed.index(c) if c in listed else -1 for c in columns]
    return -1 not in positions and positions == sorted(positions)


#: files the README's commands write, and the README's column list each one's columns are drawn from
WRITTEN = {
    "reports/predict/run_001/predictions.parquet": "predictions.parquet",  # the quick start's folder
    "reports/my-rows/predictions.parquet": "predictions.parquet",
    "reports/score/run_001/scores.parquet": "scores.parquet",
    "reports/score/run_002/scores.parquet": "scores.parquet",
    "reports/rerank/run_001/reranked.parquet": "reranked.parquet",
    "reports/rerank/run_003/reranked.parquet": "reranked.parquet",
    "reports/candidates/predictions.parquet": "predictions.parquet",
    "reports/beam-candidates/predictions.parquet": "predictions.parquet",
    "reports/beam-rerank/reranked.parquet": "reranked.parquet",
}


def _checkout(root: Path) -> None:
    """A repository root as a new user has it: the tracked folders (linked), an empty ``reports/``."""
    for name in CHECKOUT:
        (root / name).symlink_to(REPO / name, target_is_directory=(REPO / name).is_dir())
    (root / "reports").mkdir()
    for kept in ("README.md", "benchmarks.md"):
        shutil.copy(REPO / "reports" / kept, root / "reports" / kept)


def _run_bash_block(block: str, root: Path, capsys) -> None:
    for part in _parts(block):
        words = _words(part)
        if not words and "\n" not in part:
            continue  # a comment line
        if words[:2] == ["pip", "install"] or words[:3] == ["python", "-m", "pytest"]:
            continue  # installed already; the text is .ci/run's (test above)
        if words and words[0] == "t5score":
            capsys.readouterr()
            try:
                code = main(words[1:])
            except SystemExit as stop:  # --help
                code = stop.code
            err = capsys.readouterr().err
            assert "Traceback" not in err, f"{part}\n{err}"
            assert "not empty" not in err, f"{part}\n{err}"
            assert code in (0, None), f"{part}: exit {code}\n{err[-3000:]}"
            continue
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", part], cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{part}\n{done.stderr}"


def test_every_block_runs_in_order_as_written(tmp_path, monkeypatch, capsys):
    """Quick start to the Python API on the shipped model, in one fresh checkout: no command refused, no
    traceback, every Python block prints its results; the files written have the README's columns."""
    _checkout(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("T5SCORE_RUN_DIR", raising=False)  # restored (removed) after the test
    threads = torch.get_num_threads()
    try:
        for index, (language, block) in enumerate(_blocks("bash", "python")):
            if language == "bash":
                _run_bash_block(block, tmp_path, capsys)
            else:
                capsys.readouterr()
                exec(compile(block, f"README.md python block {index}", "exec"), {"__name__": "__main__"})
                assert capsys.readouterr().out.strip(), f"python block {index} prints nothing"
    finally:
        torch.set_num_threads(threads)
    for path, output in WRITTEN.items():
        columns = pd.read_parquet(tmp_path / path).columns.tolist()
        assert _in_order_within(columns, _listed(output)), (path, columns)
    _the_card_figures_hold(tmp_path / "reports/predict/run_001")


def _the_card_figures_hold(run: Path) -> None:
    """The README's figures of the shipped model (its card's) are what the quick start's run reports."""
    claim = re.search(
        r"greedy ROUGE-L ([0-9.]+) on the test split, (\d+) of (\d+)\s+outputs distinct", README
    )
    rouge_l, distinct, rows = float(claim.group(1)), int(claim.group(2)), int(claim.group(3))
    rounding = 0.5 * 10 ** -len(claim.group(1).split(".")[1])
    summary = json.loads((run / "summary.json").read_text())
    predictions = pd.read_parquet(run / "predictions.parquet")
    assert summary["rouge"]["rougeL"] == pytest.approx(rouge_l, abs=rounding)  # as rounded in the README
    assert (predictions["prediction"].nunique(), len(predictions)) == (distinct, rows)
