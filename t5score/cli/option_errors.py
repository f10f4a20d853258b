"""One-line messages for option mistakes of ``t5score predict|score|rerank``, without importing Lightning.

:mod:`t5score.cli.precheck` raises them before the heavy imports; :func:`parse_error_line` turns what the
real (jsonargparse) parser still refuses, a usage screen and a multi-line ``Parser key ... does not
validate`` in Lightning's own words, into the same kind of line.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from t5score.cli import options_table as table

#: what a value of each type is, in words
EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a text",
    "dict": "a JSON/YAML mapping",
}


def option_types(command: str) -> dict[str, str]:
    """dest -> type name of every typed option of ``t5score COMMAND`` (run, model, data, trainer)."""
    rows = [*table.RUN, *table.TRAINER, *table.OPTIONS[command]]
    return {row[0]: row[1] for row in rows}


def option_strings(command: str) -> list[str]:
    """Every option string ``t5score COMMAND`` accepts (``--data.path``, ``-c``, ``--trainer.devices+``...)."""
    types = option_types(command)
    plus = [f"--{dest}+" for dest in table.PLUS if dest in types]
    return [*(f"--{dest}" for dest in types), *plus, *table.SPECIAL[command]]


def expected(command: str, dest: str) -> str:
    """What ``--dest`` takes, in words: ``an integer or null``, ``one of stats, full``..."""
    choices = table.CHOICES.get(command, {}).get(dest)
    if choices:
        return f"one of {', '.join(choices)}"
    kind = option_types(command).get(dest, "")
    parts = [part for part in kind.split(" | ") if part != "null"]
    values = [part.strip("'") for part in parts if part[:1] in "'0123456789"]  # Literal values
    words = [EXPECTED.get(part, part) for part in parts if part.strip("'") not in values]
    if values:
        words.append(f"one of {', '.join(dict.fromkeys(values))}")
    text = " or ".join(dict.fromkeys(words)) or "a value"
    return f"{text} or null" if kind.endswith("| null") else text


def closest(name: str, choices: list[str]) -> str | None:
    """The choice ``name`` was most likely meant to be: one it abbreviates, else the closest spelling."""
    same = [c for c in choices if c.lower() == name.lower()]
    if same:
        return same[0]
    starting = [c for c in choices if c.startswith(name) and len(name) > 2]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def see_help(command: str) -> str:
    return f"see 't5score {command} --help'"


def unknown_option(command: str, option: str) -> str:
    """``unknown option --data.sourc_column (did you mean --data.source_column?); see ...``."""
    names = [s for s in option_strings(command) if s.startswith("--") and not s.endswith(("+", ".help"))]
    best = closest(option, names)
    hint = f" (did you mean {best}?)" if best else ""
    return f"unknown option {option}{hint}; {see_help(command)}"


def unknown_key(command: str, where: str, key: str) -> str:
    """A config file's key that is no option: ``FILE: unknown key data.x (did you mean data.y?); ...``."""
    best = closest(f"--{key}", [f"--{dest}" for dest in option_types(command)])
    hint = f" (did you mean {best[2:]}?)" if best else ""
    return f"{where}: unknown key {key}{hint}; {see_help(command)}"


def bad_value(command: str, option: str, dest: str, value: Any) -> str:
    """``--data.batch_size 'abc': expected an integer`` (with the closest choice, if there are choices)."""
    choices = list(table.CHOICES.get(command, {}).get(dest, ()))
    if choices:  # in the words of the option's own check, which runs once torch is loaded
        best = closest(str(value), choices)
        hint = f" (did you mean {best}?)" if best else ""
        name = dest.split(".")[-1]
        return f"{option} {value!r}: {name} must be one of {', '.join(choices)}{hint}; {see_help(command)}"
    return f"{option} {value!r}: expected {expected(command, dest)}; {see_help(command)}"


def parse_error_line(command: str, message: str) -> str:
    """One line for an error of the real parser (``ArgumentError`` text, several lines from jsonargparse)."""
    first = message.strip().splitlines()[0] if message.strip() else "invalid arguments"
    if first.startswith("unrecognized arguments:"):
        tokens = first.split(":", 1)[1].split()
        option = next((t for t in tokens if t.startswith("-")), None)
        if option is not None:
            return unknown_option(command, option.split("=", 1)[0])
        return f"unexpected argument {tokens[0]!r} (options start with --); {see_help(command)}"
    group = re.match(r"Group '([\w.]+)' does not accept option '([\w.]+)'", first)
    if group:
        return unknown_key(command, "config", f"{group.group(1)}.{group.group(2)}")
    key = re.match(r'Parser key "([\w.]+)":\s*(.*)', first)
    if key and key.group(1) == "config":
        return f"-c: {key.group(2) or 'not a readable config file'}"
    if key:
        dest = key.group(1)
        given = re.findall(r"(?:Given value|Got value): (.*)", message)
        value = given[-1].strip() if given else ""
        nested = re.fullmatch(r"NestedArg\(key='([\w.]+)', val=(.*)\)", value)  # --trainer.logger.x v
        if nested:
            option = f"--{dest}.{nested.group(1)} {nested.group(2)}"
            return f"{option}: --{dest} takes {expected(command, dest)}; {see_help(command)}"
        return f"--{dest} {value!r}: expected {expected(command, dest)}; {see_help(command)}"
    missing = re.match(r"argument ([-\w.]+)(?:/[-\w.]+)*: expected one argument", first)
    if missing:
        dest = missing.group(1).lstrip("-")
        return f"{missing.group(1)}: needs a value ({expected(command, dest)}); {see_help(command)}"
    return f"{first.rstrip('.:')}; {see_help(command)}"
