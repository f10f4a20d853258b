"""``t5score predict|score|rerank --help`` without importing torch or Lightning.

The options and their defaults come from :mod:`t5score.cli.options_table` (checked against the real
parsers by the tests), each option's text from the ``Args:`` section of its class's docstring, read from
the source with :mod:`ast` (the text Lightning's parser shows, too). t5score's options come first; of the
Lightning Trainer's, only those that matter for inference are listed (:data:`TRAINER_SHOWN`). The others
(``max_epochs``, ``gradient_clip_val``...) are still accepted, on the command line and in a ``-c`` file.
"""

from __future__ import annotations

import ast
import re
import shutil
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

from t5score.cli import options_table as table

PACKAGE = Path(__file__).resolve().parents[1]
WIDTHS = (80, 100, 120)  # narrowest, when the terminal's is unknown, widest
NAME_COLUMN = 32
#: the Trainer options listed by ``--help`` (those a prediction run uses), with their help here
TRAINER_SHOWN = {
    "trainer.accelerator": "cpu, gpu (cuda), mps or auto: where the model runs.",
    "trainer.devices": "How many devices (or which, e.g. [0, 1]); several split the rows between them.",
    "trainer.strategy": "How several devices share the run (auto, ddp, ...).",
    "trainer.num_nodes": "Machines of a multi-node run.",
    "trainer.precision": "32-true, or e.g. bf16-mixed / 16-mixed on a GPU, bf16-true, 64-true.",
    "trainer.logger": "A Lightning logger; false: none (t5score writes its own report).",
    "trainer.callbacks": "Lightning callbacks to run during prediction (class paths).",
    "trainer.enable_progress_bar": "false hides the progress bar (e.g. in logs).",
}
#: what each subcommand writes, after its class's one-line summary
WRITES = {
    "predict": "Writes predictions.parquet, summary.json, run.json, report.html, report.md and figures.",
    "score": "Writes scores.parquet, summary.json, run.json and report.md.",
    "rerank": "Writes reranked.parquet, summary.json, run.json and report.md.",
}
METAVARS = {"data.path": "FILE", "model.name_or_path": "NAME_OR_PATH", "output_dir": "DIR"}


def _width() -> int:
    """The terminal's width (``COLUMNS`` first), within :data:`WIDTHS`."""
    low, unknown, high = WIDTHS
    return min(max(shutil.get_terminal_size((unknown, 24)).columns - 2, low), high)


@cache
def _class_doc(module: str, name: str) -> str:
    """The docstring of class ``name`` in ``t5score/<module>``, read from the source (nothing imported)."""
    tree = ast.parse((PACKAGE / module).read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)
    return ast.get_docstring(node) or ""


def docstring_args(doc: str) -> dict[str, str]:
    """The entries of the ``Args:`` section of a Google-style docstring, each joined into one line.

    >>> docstring_args("Summary.\\n\\nArgs:\\n    a: One\\n        two.\\n    b: Three.\\n")
    {'a': 'One two.', 'b': 'Three.'}
    """
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return {}
    found: dict[str, list[str]] = {}
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        entry = re.match(r"(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)", line.strip())
        if depth == indent and entry:
            found[entry.group(1)] = [entry.group(2)]
        elif found:
            found[list(found)[-1]].append(line.strip())
    return {name: " ".join(part for part in parts if part) for name, parts in found.items()}


def option_help(command: str, dest: str) -> str:
    """The help of ``--model.X`` / ``--data.X``: the first docstring along its class's bases naming it."""
    group, name = dest.split(".", 1)
    for module, cls in table.DOCS[command][group]:
        text = docstring_args(_class_doc(module, cls)).get(name)
        if text is not None:
            return text
    return ""


def summary(command: str) -> str:
    """What the subcommand does: its LightningModule's one-line summary and what it writes."""
    module, cls = table.DOCS[command]["model"][0]
    first = _class_doc(module, cls).split("\n\n")[0]
    return " ".join(first.split()) + " " + WRITES[command]


def _metavar(command: str, dest: str, kind: str) -> str:
    if kind == "flag":
        return ""
    choices = table.CHOICES.get(command, {}).get(dest)
    if choices:
        return "{" + ",".join(choices) + "}"
    base = kind.removesuffix(" | null")
    named = {"int": "N", "float": "X", "bool": "BOOL", "str": "TEXT", "dict": "JSON"}
    return METAVARS.get(dest) or named.get(base, "LIST" if base.startswith("list[") else "VALUE")


def _show_default(value: Any) -> str:
    if value is None or value == "":
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f" (default: {text})"


def _entry(name: str, text: str) -> list[str]:
    """One option: its name column, then its text wrapped beside it (below it when the name is long)."""
    column = NAME_COLUMN if _width() >= 96 else NAME_COLUMN - 6
    wrapped = textwrap.wrap(text.replace("``", ""), _width() - column, break_on_hyphens=False) or [""]
    head = f"  {name}"
    if len(head) + 2 > column:
        return [head, *(" " * column + part for part in wrapped)]
    return [head.ljust(column) + wrapped[0], *(" " * column + part for part in wrapped[1:])]


def _option(command: str, dest: str, kind: str, default: Any, text: str) -> list[str]:
    metavar = _metavar(command, dest, kind)
    said = re.search(r"\bdefault\b", text, re.IGNORECASE)  # the text says what the default is
    shown = "" if kind == "flag" or said else _show_default(default)
    return _entry(f"--{dest} {metavar}".rstrip(), text + shown)


def render(command: str) -> str:
    """The help of ``t5score COMMAND``."""
    usage = (
        f"usage: t5score {command} [-c CONFIG] [--output_dir DIR] [--resume] [--overwrite] [--threads N] "
        "[--model.NAME VALUE ...] [--data.NAME VALUE ...] [--trainer.NAME VALUE ...]"
    )
    indent = " " * len(f"usage: t5score {command} ")
    out = [
        *textwrap.wrap(usage, _width(), subsequent_indent=indent, break_on_hyphens=False),
        "",
        *textwrap.wrap(summary(command), _width()),
        "",
        "run options:",
        *_entry(
            "-c, --config FILE",
            "A YAML file of options (model:, data:, trainer:, output_dir: ...); "
            "options after it override it.",
        ),
        *_entry("--print_config", "Print the options in force (after all others) as YAML and exit."),
    ]
    for dest, kind, default, text in table.RUN:
        if dest != "seed_everything":
            out += _option(command, dest, kind, default, text.format(command=command))
    module, cls = table.DOCS[command]["model"][0]
    for group, title in (("model", f"model options ({cls})"), ("data", "data options")):
        out += ["", f"{title}:"]
        for dest, kind, default in table.OPTIONS[command]:
            if dest.startswith(group + "."):
                out += _option(command, dest, kind, default, option_help(command, dest))
    out += ["", "trainer options (Lightning; those that matter for inference):"]
    for dest, kind, default in table.TRAINER:
        if dest in TRAINER_SHOWN:
            out += _option(command, dest, kind, default, TRAINER_SHOWN[dest])
    hidden = [dest for dest, *_ in table.TRAINER if dest not in TRAINER_SHOWN]
    out += [
        "",
        *textwrap.wrap(
            f"Not listed, still accepted (here or in a -c file): Lightning's {len(hidden)} other Trainer "
            "options, for training, and --seed_everything. A mistake prints one line; T5SCORE_DEBUG=1 "
            "shows the traceback.",
            _width(),
        ),
    ]
    return "\n".join(out)
