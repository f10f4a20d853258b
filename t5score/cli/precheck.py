"""What ``t5score predict|score|rerank`` can check before torch, Lightning and transformers load (seconds).

:func:`check` reads the arguments as the real parser will (``-c`` files with ``yaml.safe_load``, in order,
later options overriding earlier ones), then refuses in one line (:class:`~t5score.data.io.InputError`):
an unknown option or config key (with the closest valid one), a value of the wrong type or outside the
option's fixed choices, a missing value, a batch size or source length below 1, ``score`` without a target
column, an input file that is missing, a folder or of an unknown type, a named column the file lacks (with
did-you-mean; CSV/TSV headers and Parquet schemas are read alone, JSONL until the columns are seen) and a
local model folder without ``config.json``. The messages are those of the real checks, which still run.

It only refuses what the real path refuses: whatever it cannot judge (a value of a complex type, a file
that does not parse, ``--data`` given as a JSON string it cannot read...) is left to the real parser.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t5score.cli import option_errors as errors
from t5score.cli.columns import check_file, file_columns
from t5score.data.io import InputError, RawRow, require_column

GROUPS = ("model", "data", "trainer")
NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # argparse reads these as values, not options
NULLS = {"null", "Null", "NULL", "~"}


@dataclass
class Arguments:
    """The options in force, as far as they can be told without the real parser."""

    values: dict[str, Any] = field(default_factory=dict)  # dest -> value (text from argv, typed from YAML)
    opaque: set[str] = field(default_factory=set)  # groups given in a form not read here (--data JSON...)
    exits_early: bool = False  # --print_config, --X.help: the real parser prints and exits


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = _yaml(text)
    except Exception:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(text: str) -> float | None:
    number = _int(text)
    if number is not None:
        return float(number)
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _bool(text: str) -> bool | None:
    try:
        value = _yaml(text)
    except Exception:
        return None
    return value if isinstance(value, bool) else None


PARSERS = {"int": _int, "float": _float, "bool": _bool}


def parse_value(command: str, option: str, dest: str, kind: str, text: str) -> Any:
    """``text`` read as ``--dest`` of type ``kind``; an InputError when the real parser would refuse it.

    Types other than int, float, bool and text (with or without null) pass through as text.
    """
    base = kind.removesuffix(" | null")
    if kind.endswith(" | null") and text.strip() in NULLS:
        return None
    parse = PARSERS.get(base)
    value = text if parse is None else parse(text)
    if parse is not None and value is None:
        raise InputError(errors.bad_value(command, option, dest, text))
    choices = errors.table.CHOICES.get(command, {}).get(dest)
    if choices and value not in choices:
        raise InputError(errors.bad_value(command, option, dest, text))
    return value


def _read_config(command: str, where: str, text: str, is_file: bool) -> Any:
    if is_file:
        path = Path(text)
        if not path.is_file():
            raise InputError(f"{text}: no such config file (-c)")
        text = path.read_text(encoding="utf-8")
    try:
        return _yaml(text)
    except Exception as err:
        if not is_file:
            return None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{where}: not valid YAML ({first})") from None


def _merge(command: str, args: Arguments, where: str, config: Any, prefix: str = "") -> None:
    """Put a config's keys into ``args`` (nested sections and dotted keys alike)."""
    types = errors.option_types(command)
    if not isinstance(config, dict):
        if config is not None:
            raise InputError(f"{where}: expected a mapping of options (model:, data:, ...)")
        return
    for key, value in config.items():
        dest = f"{prefix}{key}"
        if dest in GROUPS:
            if isinstance(value, dict) and not {"class_path", "init_args"} & set(value):
                _merge(command, args, where, value, f"{dest}.")
            elif value is not None:
                args.opaque.add(dest)
        elif dest in types:
            args.values[dest] = value
        elif not any(dest.startswith(f"{known}.") for known in types):
            raise InputError(errors.unknown_key(command, where, dest))


def scan(command: str, argv: list[str]) -> Arguments:
    """Read ``argv`` as the real parser will; raises InputError for what it is sure the parser refuses."""
    types, special = errors.option_types(command), set(errors.table.SPECIAL[command])
    args = Arguments()
    position = 0

    def value_after(option: str, inline: str | None) -> str | None:
        nonlocal position
        if inline is not None:
            return inline
        if position < len(argv) and (
            not argv[position].startswith("-") or NEGATIVE_NUMBER.match(argv[position])
        ):
            position += 1
            return argv[position - 1]
        return None

    while position < len(argv):
        token = argv[position]
        position += 1
        if token == "--":
            return args  # what follows is positional: the real parser says what it thinks of it
        if not token.startswith("-") or NEGATIVE_NUMBER.match(token):
            raise InputError(
                f"unexpected argument {token!r} (options start with --); {errors.see_help(command)}"
            )
        if token.startswith("-c") and not token.startswith("--"):  # -c FILE, -cFILE
            name, inline = "-c", token[2:] or None
        else:
            name, eq, rest = token.partition("=")
            inline = rest if eq else None
        if name in ("-c", "--config"):
            path = value_after(name, inline)
            if path is None:
                return args
            _merge(command, args, path, _read_config(command, path, path, True))
        elif name == "--print_config" or name.endswith(".help") and name in special:
            args.exits_early = True
            if name.endswith(".help"):
                value_after(name, inline)
        elif name[2:] in GROUPS:  # --data CONFIG: a file or a JSON/YAML mapping
            text = value_after(name, inline)
            is_file = text is not None and Path(text).is_file()
            config = None if text is None else _read_config(command, text, text, is_file)
            if isinstance(config, dict):
                _merge(command, args, text if is_file else name, config, f"{name[2:]}.")
            else:
                args.opaque.add(name[2:])
        elif (dest := name[2:].removesuffix("+")) in types:
            kind = types[dest]
            if kind == "flag":
                args.values[dest] = True
                continue
            text = value_after(name, inline)
            if text is None:
                raise InputError(
                    f"{name}: needs a value ({errors.expected(command, dest)}); {errors.see_help(command)}"
                )
            args.values[dest] = text if name.endswith("+") else parse_value(command, name, dest, kind, text)
        elif name in special:
            continue
        elif any(name[2:].startswith(f"{known}.") for known in types):
            value_after(name, inline)  # --trainer.logger.init_args.x: the real parser reads it
        else:
            raise InputError(errors.unknown_option(command, name))
    return args


def _given(args: Arguments, command: str, dest: str) -> Any:
    for row in errors.table.OPTIONS[command]:
        if row[0] == dest:
            return args.values.get(dest, row[2])
    return args.values.get(dest)


def _check_values(command: str, args: Arguments) -> None:
    """The checks the data modules make when built (same messages)."""
    batch, length = _given(args, command, "data.batch_size"), _given(args, command, "data.max_source_length")
    if isinstance(batch, int) and not isinstance(batch, bool) and batch < 1:
        raise InputError(f"batch_size must be >= 1, got {batch} (--data.batch_size)")
    if isinstance(length, int) and not isinstance(length, bool) and length < 1:
        raise InputError(f"max_source_length must be >= 1, got {length}")
    path, target = _given(args, command, "data.path"), _given(args, command, "data.target_column")
    if command == "score" and path is not None and target is None:
        raise InputError("t5score score needs --data.target_column: the column of texts to score")


def required_columns(command: str, args: Arguments) -> list[tuple[str, str]]:
    """(column, option) the reader requires, in the order it checks them (build_rows, read_candidates)."""

    def get(name: str) -> Any:
        return _given(args, command, f"data.{name}")

    if command == "rerank":
        long = get("group_column") is not None
        names = ["source", "reference", "human", "group", "candidate" if long else "candidates"]
        found = [(get(f"{name}_column"), f"{name}_column") for name in names]
        found += [] if long else [(get("id_column"), "id_column")]
    else:
        names = ["source", "target", "id"] + (["reference"] if command == "score" else [])
        found = [(get(f"{name}_column"), f"{name}_column") for name in names]
    return [(column, option) for column, option in found if isinstance(column, str) and column]


def _check_data(command: str, args: Arguments) -> None:
    path = _given(args, command, "data.path")
    if "data" in args.opaque or not isinstance(path, str):
        return  # the shipped data, or a value the real parser will judge
    fmt = check_file(path)
    wanted = required_columns(command, args)
    present = file_columns(path, fmt, [column for column, _ in wanted])
    if present is None:
        return  # the reader will say what is wrong with the file
    for column, option in wanted:
        require_column(path, [RawRow(0, dict.fromkeys(present))], column, option)


def _check_model(command: str, args: Arguments) -> None:
    name = _given(args, command, "model.name_or_path")
    if "model" in args.opaque or not isinstance(name, str) or name in ("", "default"):
        return
    local = Path(name)
    if (local.exists() or name.startswith((".", "/"))) and not (local / "config.json").is_file():
        raise InputError(f"model folder {name!r} has no config.json (expected a Hugging Face model folder)")


def check(command: str, argv: list[str]) -> None:
    """Refuse, in one line, what can be told wrong about ``t5score COMMAND argv`` before the heavy imports."""
    args = scan(command, argv)
    if args.exits_early:
        return
    _check_values(command, args)
    _check_data(command, args)
    _check_model(command, args)
