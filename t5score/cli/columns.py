"""An input file's columns, read without reading the whole file (for :mod:`t5score.cli.precheck`).

:func:`check_file` refuses what :func:`t5score.data.io.read_records` refuses before it reads a byte, in
its words; :func:`file_columns` reads a CSV/TSV header, a Parquet schema, or JSONL lines until the wanted
columns are seen. Whatever does not parse is left to the reader (None), which says what is wrong.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from t5score.data.io import FIELD_SIZE_LIMIT, InputError, file_format


def check_file(path: str | Path) -> str:
    """The format of ``path`` (``jsonl``, ``csv``, ``tsv``, ``parquet``); an InputError when it is
    missing, a folder, unreadable or of an unknown type."""
    path = Path(path)
    fmt = file_format(path)
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return fmt


def _header(path: Path, sep: str) -> list[str] | None:
    limit = csv.field_size_limit(FIELD_SIZE_LIMIT)
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            return next((cells for cells in csv.reader(file, delimiter=sep, strict=True) if cells), None)
    except (UnicodeDecodeError, csv.Error, OSError):
        return None
    finally:
        csv.field_size_limit(limit)


def _jsonl_keys(path: Path, wanted: list[str]) -> list[str] | None:
    seen: dict[str, None] = {}
    try:  # lines end at "\n" only, as the reader splits them
        with path.open(encoding="utf-8-sig", newline="\n") as file:
            for line in file:
                if not line.strip():
                    continue
                value = json.loads(line)
                if not isinstance(value, dict):
                    return None
                seen.update(dict.fromkeys(map(str, value)))
                if all(column in seen for column in wanted):
                    break
    except (UnicodeDecodeError, ValueError, OSError):
        return None
    return list(seen) or None


def _parquet_names(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # pyarrow raises several types for a damaged file: the reader names it
        return None


def file_columns(path: str | Path, fmt: str, wanted: list[str]) -> list[str] | None:
    """The columns of ``path`` as far as needed to tell whether ``wanted`` are there; None when the file
    does not parse that far (the reader reports it)."""
    path = Path(path)
    if fmt == "parquet":
        return _parquet_names(path)
    if fmt == "jsonl":
        return _jsonl_keys(path, wanted)
    return _header(path, "," if fmt == "csv" else "\t")
