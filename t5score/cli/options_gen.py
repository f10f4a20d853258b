"""Builds :mod:`t5score.cli.options_table` from the real LightningCLI parsers (imports Lightning).

The table lets ``t5score SUBCOMMAND --help`` and the checks of :mod:`t5score.cli.precheck` answer without
importing torch or Lightning; ``tests/cli/test_options_table.py`` checks it equals :func:`real_table`, so an
option added, renamed or given another default shows up as a failing test. Regenerate it with::

    python -m t5score.cli.options_gen
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1]
TABLE = Path(__file__).with_name("options_table.py")
GROUPS = ("model", "data")


def command_classes() -> dict[str, tuple[type, type]]:
    """Subcommand -> (LightningModule, LightningDataModule), as :mod:`t5score.cli.commands` runs them."""
    from t5score.data.modules import TextDataModule
    from t5score.runs.predict import Seq2SeqPredictor
    from t5score.runs.rerank import CandidateReranker, CandidatesDataModule
    from t5score.runs.score import ScoreDataModule, Seq2SeqScorer

    return {
        "predict": (Seq2SeqPredictor, TextDataModule),
        "score": (Seq2SeqScorer, ScoreDataModule),
        "rerank": (CandidateReranker, CandidatesDataModule),
    }


def choices() -> dict[str, dict[str, tuple[str, ...]]]:
    """The fixed choices of string options (their classes check them once torch is loaded)."""
    from t5score.engine.forced import SCORE_FIELDS
    from t5score.engine.logits_store import DTYPES
    from t5score.engine.options import BATCHING, CAPTURE_MODES, ENGINES
    from t5score.engine.quantize import QUANTIZE_MODES
    from t5score.scoring.options import AGGREGATES, DIRECTIONS

    scoring = {"model.score": SCORE_FIELDS, "model.aggregate": AGGREGATES}
    return {
        "predict": {
            "model.capture": CAPTURE_MODES,
            "model.logits_dtype": tuple(DTYPES),
            "model.engine": ENGINES,
            "model.quantize": QUANTIZE_MODES,
            "model.batching": BATCHING,
        },
        "score": {**scoring, "model.engine": ENGINES},
        "rerank": {**scoring, "model.rank_by": DIRECTIONS},
    }


def real_parser(command: str) -> Any:
    """The parser ``t5score COMMAND`` parses with (built as :func:`~t5score.cli.lightning_cli.build_cli`
    builds it; nothing is parsed or instantiated)."""
    from t5score.cli.lightning_cli import T5ScoreCLI, cli_settings

    class _Built(Exception):
        pass

    class _ParserOnly(T5ScoreCLI):
        default_output_dir = f"reports/{command}"

        def parse_arguments(self, parser, args):
            raise _Built(parser)

    try:
        _ParserOnly(*command_classes()[command], args=[], **cli_settings(command))
    except _Built as built:
        return built.args[0]
    raise AssertionError("LightningCLI did not parse")  # pragma: no cover


def type_name(hint: Any) -> str:
    """A short name of a type hint: ``int``, ``int | null``, ``list[str] | null``, ``Literal[...]``..."""
    if hint is None or hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(hint))
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in typing.get_args(hint))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(hint, "__name__", str(hint))


def _doc_classes(cls: type) -> tuple[tuple[str, str], ...]:
    """(module file relative to the package, class name) for ``cls`` and its t5score bases, MRO order."""
    found = []
    for klass in cls.__mro__:
        module = sys.modules[klass.__module__]
        path = Path(getattr(module, "__file__", "") or "").resolve()
        if path.is_relative_to(PACKAGE):
            found.append((path.relative_to(PACKAGE).as_posix(), klass.__name__))
    return tuple(found)


def real_table() -> dict[str, Any]:
    """What :mod:`t5score.cli.options_table` holds, read off the real parsers."""
    options, flags, docs, run, trainer, plus = {}, {}, {}, {}, {}, set()
    for command, classes in command_classes().items():
        parser = real_parser(command)
        docs[command] = {group: _doc_classes(cls) for group, cls in zip(GROUPS, classes, strict=True)}
        rows, strings = [], set()
        for action in parser._actions:
            strings |= set(action.option_strings)
            dest, hint = action.dest, getattr(action, "_typehint", None)
            kind = "flag" if action.nargs == 0 else type_name(hint) if hint is not None else None
            if kind is None or dest == "help" or dest.endswith(".help"):
                continue  # -h, -c, --print_config, group config loads, class help
            row = (dest, kind, action.default)
            if dest.split(".")[0] in GROUPS:
                rows.append(row)
            elif dest.startswith("trainer."):
                trainer[dest] = row
            else:
                run[dest] = (*row, action.help.replace(f"reports/{command}", "reports/{command}"))
        options[command] = tuple(rows)
        typed = {row[0] for row in rows} | set(trainer) | set(run)
        flags[command] = tuple(sorted(s for s in strings if s.lstrip("-").rstrip("+") not in typed))
        plus |= {s[2:-1] for s in strings if s.endswith("+")}
    return {
        "RUN": tuple(run.values()),
        "TRAINER": tuple(trainer.values()),
        "OPTIONS": options,
        "DOCS": docs,
        "CHOICES": choices(),
        "SPECIAL": flags,
        "PLUS": tuple(sorted(plus)),
    }


def _lines(name: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        inner = [f"    {k!r}: {v!r}," for k, v in value.items()]
        if all(isinstance(v, tuple) for v in value.values()):
            inner = [
                f"    {k!r}: (\n" + "".join(f"        {r!r},\n" for r in v) + "    ),"
                for k, v in value.items()
            ]
        return [f"{name} = {{", *inner, "}"]
    return [f"{name} = (", *[f"    {row!r}," for row in value], ")"]


def write_table(path: Path = TABLE) -> None:
    """Rewrite the table module from :func:`real_table`."""
    table = real_table()
    head = (
        '"""The options of ``t5score predict|score|rerank``, read off the real parsers without importing them.\n\n'
        "Generated by ``python -m t5score.cli.options_gen`` (do not edit by hand; "
        "tests/cli/test_options_table.py\nchecks it against the parsers). RUN: (dest, type, default, help); "
        "TRAINER and OPTIONS: (dest, type,\ndefault); DOCS: where the help texts are (module, class: its "
        "docstring's Args); CHOICES: fixed values of\nstring options; SPECIAL: the other option strings; "
        'PLUS: options that also take ``--NAME+`` (append).\n"""\n\n# fmt: off\n'
    )
    body = "\n\n".join("\n".join(_lines(name, value)) for name, value in table.items())
    path.write_text(head + body + "\n# fmt: on\n")
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(path)], check=False)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    write_table()
    print(f"wrote {TABLE}")
