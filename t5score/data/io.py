"""Reading user files (JSONL, CSV/TSV, Parquet) into :class:`RawRow` s, with errors a person can act on.

Every problem with the file as a whole raises :class:`InputError`, a one-line message naming the file
and, where it applies, the line and field. Problems with a single row are not raised here: the row
carries them (:attr:`RawRow.error`) and the caller flags it, so no row is ever dropped. A row's cells are
the user's alone: t5score's bookkeeping (line number, row error) lives beside them, so a column may be
called anything, ``__line__`` and ``__error__`` included.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}


FIELD_SIZE_LIMIT = 2**31 - 1  # the largest CSV/TSV field read: the most a C long holds on every platform


@dataclass
class RawRow:
    """One row of a user's file: its cells by column name, and t5score's bookkeeping beside them."""

    line: int  # where the row starts: the file's line (JSONL, CSV/TSV) or the 1-based row (Parquet)
    values: dict[str, Any]  # the user's cells, exactly as read
    error: str | None = None  # a problem of this row found while reading (the row is flagged, not dropped)


def raw_rows(records: Sequence[RawRow | Mapping[str, Any]], first_line: int = 1) -> list[RawRow]:
    """``records`` as :class:`RawRow` s: rows pass through; a plain mapping is all cells, numbered
    ``first_line + position`` (any key, ``__line__`` included, is a cell).
    """
    rows = []
    for position, rec in enumerate(records):
        if isinstance(rec, RawRow):
            rows.append(rec)
        else:
            rows.append(RawRow(first_line + position, dict(rec)))
    return rows


class InputError(ValueError):
    """A user-facing problem with an input file or option; the CLI prints it as one line and exits 2."""


def suggest(name: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def repeated_names(names: Sequence[Any]) -> str | None:
    """``"'a' (columns 1 and 3), 'b' (columns 2, 4 and 5)"`` for the names given more than once, else None."""
    columns: dict[Any, list[int]] = {}
    for number, name in enumerate(names, start=1):
        columns.setdefault(name, []).append(number)
    repeated = [
        f"{name!r} (columns {', '.join(map(str, where[:-1]))} and {where[-1]})"
        for name, where in columns.items()
        if len(where) > 1
    ]
    return ", ".join(repeated) or None


def check_unique_columns(path: str | Path, names: Sequence[Any], where: str = "") -> None:
    """Raise when a column name repeats: a row would keep only one of those cells, silently."""
    repeated = repeated_names(names)
    if repeated:
        raise InputError(f"{path}: {where}repeated column names: {repeated}; give every column its own name")


class _RepeatedKey(ValueError):
    """A JSON object with a key given twice (json keeps the last one, silently)."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        keys = list(dict.fromkeys(k for k, _ in pairs if k in seen or seen.add(k)))
        raise _RepeatedKey(", ".join(map(repr, keys)))
    return value


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}: line {line}: bytes that are not UTF-8 ({data[err.start : err.start + 4]!r}); "
            "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def _read_jsonl(path: Path, text: str) -> list[RawRow]:
    rows = []
    # split on "\n" only: str.splitlines() also breaks at U+2028, U+0085, form feeds..., which JSON
    # allows unescaped inside strings (ensure_ascii=False writers emit them)
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue  # blank lines separate nothing in JSONL; they are not rows
        try:
            value = json.loads(line, object_pairs_hook=_unique_object)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}: line {number}: not valid JSON ({err.msg} at column {err.colno})"
            ) from None
        except _RepeatedKey as err:
            raise InputError(
                f"{path}: line {number}: key {err} repeated in one JSON object (JSON would keep the last)"
            ) from None
        if not isinstance(value, dict):
            raise InputError(f"{path}: line {number}: expected a JSON object, got {type(value).__name__}")
        rows.append(RawRow(number, value))
    return rows


def _delimited_row(path: Path, header: list[str], cells: list[str], line: int) -> RawRow:
    """One CSV/TSV record; more cells than the header raises, fewer flags the row."""
    if len(cells) > len(header):
        raise InputError(f"{path}: line {line}: more fields than the header has")
    row = RawRow(line, dict(zip(header, cells, strict=False)))
    if len(cells) < len(header):  # keep the row, flagged, rather than guess which cells are missing
        missing = header[len(cells) :]
        row.values.update(dict.fromkeys(missing))
        row.error = (
            f"line {line}: {len(cells)} of the header's {len(header)} fields "
            f"(missing: {', '.join(map(repr, missing))})"
        )
    return row


def _read_delimited(path: Path, text: str, sep: str) -> list[RawRow]:
    import csv
    import io

    # strict: a quote that is never closed raises instead of swallowing the rest of the file into one cell
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    header: list[str] | None = None
    rows = []
    start = 1  # first line of the record being read: a quoted cell may span several lines
    # csv refuses fields over 131,072 characters by default; a valid file may hold longer ones. The limit
    # is a C long (32 bits on Windows) and process-wide: raised for this read, then put back.
    limit = csv.field_size_limit(FIELD_SIZE_LIMIT)
    try:
        for cells in reader:
            if cells and header is None:
                check_unique_columns(path, cells, f"line {start}: ")
                header = cells
            elif cells:  # blank lines are skipped, as csv.DictReader skips them
                rows.append(_delimited_row(path, header, cells, start))
            start = reader.line_num + 1
    except csv.Error as err:
        hint = " (a quoted field is never closed)" if "end of data" in str(err) else ""
        raise InputError(
            f"{path}: line {start}: malformed {'CSV' if sep == ',' else 'TSV'}: {err}{hint}"
        ) from None
    finally:
        csv.field_size_limit(limit)
    if header is None:
        raise InputError(f"{path}: the file is empty (no header, no rows)")
    return rows


def _read_parquet(path: Path) -> list[RawRow]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        names = file.schema_arrow.names
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
    check_unique_columns(path, names)  # pyarrow writes such files; reading them back fails or loses cells
    try:
        table = file.read()
    except Exception as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
    return [RawRow(number, row) for number, row in enumerate(table.to_pylist(), start=1)]


def file_format(path: Path) -> str:
    """The format of ``path`` (``jsonl``, ``csv``, ``tsv``, ``parquet``); an InputError when it is
    missing, a folder or of an unknown type."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a .jsonl, .csv, .tsv or .parquet file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def read_records(path: str | Path) -> list[RawRow]:
    """Read ``path`` into one :class:`RawRow` per row, in file order.

    A row that is damaged on its own (a CSV row with fewer cells than the header) has its
    :attr:`RawRow.error` set: the caller keeps it, flagged, instead of dropping or guessing it.
    """
    path = Path(path)
    fmt = file_format(path)
    if fmt == "parquet":
        rows = _read_parquet(path)
    else:
        text = _decode(path, path.read_bytes())
        rows = (
            _read_jsonl(path, text)
            if fmt == "jsonl"
            else _read_delimited(path, text, "," if fmt == "csv" else "\t")
        )
    if not rows:
        raise InputError(f"{path}: the file has no rows")
    return rows


def require_column(
    path: str | Path, rows: Sequence[RawRow | Mapping[str, Any]], column: str, option: str
) -> None:
    """Raise when no row has ``column``; the message lists the columns that exist."""
    present = sorted({str(key) for row in raw_rows(rows) for key in row.values})
    if column not in present:
        raise InputError(
            f"{path}: no column {column!r} (from {option}){suggest(column, present)}; columns: {', '.join(present)}"
        )
