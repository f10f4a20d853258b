"""The static option table (what ``--help`` and the checks before the heavy imports read) is the real
parsers' options: every option string, type and default, the fixed choices, and the help texts."""

from __future__ import annotations

import pytest

from t5score.cli import help as cli_help
from t5score.cli import options_gen, options_table

STALE = "t5score/cli/options_table.py is stale: run `python -m t5score.cli.options_gen`"


@pytest.fixture(scope="module")
def real():
    return options_gen.real_table()


@pytest.mark.parametrize("name", ["RUN", "TRAINER", "OPTIONS", "DOCS", "CHOICES", "SPECIAL", "PLUS"])
def test_the_table_is_the_real_parsers(real, name):
    assert getattr(options_table, name) == real[name], STALE


@pytest.mark.parametrize("command", ["predict", "score", "rerank"])
def test_every_option_string_of_the_parser_is_known(command):
    from t5score.cli.option_errors import option_strings

    parser = options_gen.real_parser(command)
    strings = {s for action in parser._actions for s in action.option_strings}
    assert set(option_strings(command)) == strings


@pytest.mark.parametrize("command", ["predict", "score", "rerank"])
def test_the_help_texts_are_the_docstrings_args(command):
    """Each --model.* / --data.* text, read from its class's docstring without importing it, is the text
    Lightning's parser takes from the same docstring (jsonargparse's docstring parser: an independent
    reading)."""
    parser = options_gen.real_parser(command)
    helps = {a.dest: a.help for a in parser._actions}
    for dest, *_ in options_table.OPTIONS[command]:
        ours = cli_help.option_help(command, dest)
        assert ours, f"{dest} has no Args line in its class's docstring"
        assert " ".join(ours.split()) == " ".join(helps[dest].split()), dest


def test_the_docstring_reader_follows_the_class_bases():
    """ScoreDataModule documents reference_column only; its other options come from TextDataModule."""
    assert "Column holding the model input text" in cli_help.option_help("score", "data.source_column")
    assert "references" in cli_help.option_help("score", "data.reference_column")
