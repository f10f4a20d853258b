"""``t5score predict|score|rerank --help``: t5score's options first, the Trainer's inference options only,
texts from the classes' docstrings, answered without importing torch or Lightning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from t5score.cli import help as cli_help
from t5score.cli import options_table

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("predict", "score", "rerank")


def _help(command: str, columns: int) -> tuple[str, str]:
    code = (
        "import sys; from t5score.cli.main import main; rc = main(sys.argv[1:]); "
        "print('IMPORTED', 'torch' in sys.modules, 'lightning' in sys.modules); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    text, imported = proc.stdout.rsplit("IMPORTED", 1)
    return text, imported.strip()


@pytest.mark.parametrize("command", COMMANDS)
def test_the_help_is_short_and_starts_without_lightning(command):
    """Before: ~610 lines (predict), ~400 of them Trainer training options, after importing Lightning."""
    text, imported = _help(command, 120)
    assert imported == "False False"
    assert len(text.splitlines()) < 120
    assert len(_help(command, 100)[0].splitlines()) < 140  # the docstrings' whole texts, narrower
    assert max(map(len, text.splitlines())) <= 120


@pytest.mark.parametrize("command", COMMANDS)
def test_t5score_options_come_first_and_training_options_are_not_listed(command):
    text = cli_help.render(command)
    options = re.findall(r"^  (--[\w.]+)", text, flags=re.M)
    first_trainer = next(i for i, o in enumerate(options) if o.startswith("--trainer."))
    assert all(not o.startswith("--trainer.") for o in options[:first_trainer])
    assert (
        options.index("--output_dir") < options.index("--model.name_or_path") < options.index("--data.path")
    )
    assert options.index("--data.path") < first_trainer
    listed = {o[2:] for o in options if o.startswith("--trainer.")}
    assert listed == set(cli_help.TRAINER_SHOWN)
    for name in ("accelerator", "devices", "strategy", "precision", "num_nodes", "logger", "callbacks"):
        assert f"trainer.{name}" in listed
    for training in (
        "max_epochs",
        "gradient_clip_val",
        "accumulate_grad_batches",
        "Lightning Trainer command",
    ):
        assert training not in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_t5score_option_is_listed_with_its_docstring_text(command):
    text = " ".join(cli_help.render(command).split())
    for dest, *_ in options_table.OPTIONS[command]:
        assert f"--{dest} " in text, dest
        assert " ".join(cli_help.option_help(command, dest).replace("``", "").split()) in text, dest
    for dest, *_ in options_table.RUN:
        assert dest == "seed_everything" or f"--{dest}" in text


@pytest.mark.parametrize(
    "command,says",
    [
        ("predict", "Decode with a seq2seq model"),
        ("score", "Score given texts teacher-forced"),
        ("rerank", "rank candidates within their group"),
    ],
)
def test_the_description_says_what_the_subcommand_does(command, says):
    lines = cli_help.render(command).splitlines()
    description = " ".join(lines[lines.index("") + 1 : lines.index("", lines.index("") + 1)])
    assert says in description and "Writes" in description
    assert description.startswith(cli_help.summary(command).split(".")[0])


def test_help_anywhere_in_the_arguments(capsys):
    from t5score.cli import main

    assert main(["score", "--data.path", "missing.jsonl", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: t5score score")
