"""Reading the candidates to rerank into :class:`~t5score.records.CandidateRow` s, one per candidate.

Input (rows as :func:`t5score.data.io.read_records` gives them, plain dicts of cells, or a DataFrame), in
one of two layouts:

* **wide** -- one row per source; ``candidates_column`` holds the list of candidate texts: a real list
  (JSONL, Parquet) or a JSON string such as ``["a", "b"]`` (CSV). An optional ``human_column`` holds a
  parallel list of human scores. Group ids come from ``id_column`` or are the row number (0-based).
* **long** -- one row per candidate; ``group_column`` names its source group, ``candidate_column`` its text,
  ``human_column`` its human score. Candidates keep their input order within a group; every row of a group
  must carry the same source (and reference).

A problem with one row (missing or empty source, candidates that are not a list, an empty list, a null or
non-text candidate, a reference that is not text -- one reference per source --, human scores that do
not match, a CSV row short of cells) is flagged: the row keeps its place with ``error`` set
and the message names the file, line and field. ``on_error="raise"`` raises that message instead. A
missing column always raises. Nothing is dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t5score.data.frames import frame_rows, records_frame
from t5score.data.io import InputError, RawRow, raw_rows, require_column
from t5score.data.values import is_missing
from t5score.records import CandidateRow


def _number(value: Any) -> float | None:
    """A human score as float; None for a missing value; ValueError for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.number)):
        raise ValueError(f"is not a number ({type(value).__name__})")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"is not a number ({value!r})") from None
    return None if math.isnan(number) else number


def _as_list(value: Any) -> list:
    """A candidates/human cell as a Python list; ValueError with the reason otherwise."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"is not a JSON list ({err.msg} at column {err.colno})") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if is_missing(value):
        raise ValueError("is missing")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"is not a list ({type(value).__name__})")
    if not value:
        raise ValueError("is an empty list")
    return list(value)


class _RowReader:
    """Turns one input record into candidate rows; flags (or raises) row problems with file, line, field."""

    def __init__(self, path, on_error: str, columns: dict[str, str | None], prefix: str) -> None:
        self.path, self.on_error, self.col, self.prefix = path, on_error, columns, prefix
        self.groups: dict[str, dict[str, Any]] = {}  # long layout: group key -> first row's fields
        self.seen_ids: dict[str, int] = {}  # wide layout: id -> line

    def flag(self, line: int, field: str, reason: str) -> str:
        return self.fail(f"{self.path}: line {line}: field {field!r} {reason}")

    def fail(self, message: str) -> str:
        """``message`` as the row's error (``on_error="flag"``), or raised (``"raise"``)."""
        if self.on_error == "raise":
            raise InputError(message)
        return message

    def common(self, rec: RawRow) -> tuple[dict[str, Any], str | None]:
        line, values = rec.line, rec.values
        source, error = values.get(self.col["source"]), None
        if rec.error is not None:  # damaged while reading (a short CSV row): flagged, whatever else holds
            error = self.fail(f"{self.path}: {rec.error}")
        if not isinstance(source, str) or not source.strip():
            reason = "is empty" if source is None or isinstance(source, str) else "is not text"
            error, source = error or self.flag(line, self.col["source"], reason), None
        else:
            source = self.prefix + source
        reference = values.get(self.col["reference"]) if self.col["reference"] else None
        if is_missing(reference):
            reference = None
        elif not isinstance(reference, str):  # one reference per source: never a stringified list or number
            error = error or self.text_error(line, self.col["reference"], reference)
            reference = None
        return {"line": line, "source": source, "reference": reference}, error

    def text_error(self, line: int, field: str, value: Any) -> str | None:
        if isinstance(value, str):
            return None
        return self.flag(
            line, field, "is null" if is_missing(value) else f"is not text ({type(value).__name__})"
        )

    def human(self, line: int, field: str, value: Any) -> tuple[float | None, str | None]:
        try:
            return _number(value), None
        except ValueError as err:
            return None, self.flag(line, field, str(err))

    def long_row(self, rec: RawRow, position: int) -> list[dict[str, Any]]:
        base, error = self.common(rec)
        line, gid = base["line"], rec.values.get(self.col["group"])
        if is_missing(gid) or str(gid).strip() == "":
            key, gid = f"__line{line}", None
            error = error or self.flag(line, self.col["group"], "(group id) is empty")
        else:
            gid = key = str(gid)
        group = self.groups.setdefault(key, {"position": len(self.groups), "count": 0, **base})
        for field in ("source", "reference"):
            if error is None and base[field] != group[field]:
                reason = f"differs from the first row of group {gid!r} (line {group['line']})"
                error = self.flag(line, self.col[field], reason)
        cand = rec.values.get(self.col["candidate"])
        error = error or self.text_error(line, self.col["candidate"], cand)
        human, human_error = (
            self.human(line, self.col["human"], rec.values.get(self.col["human"]))
            if self.col["human"]
            else (None, None)
        )
        group["count"] += 1
        return [
            {
                **base,
                "group_id": gid,
                "group_position": group["position"],
                "candidate_index": group["count"] - 1,
                "candidate": cand if isinstance(cand, str) else None,
                "human_score": human,
                "error": error or human_error,
            }
        ]

    def group_id(self, rec: RawRow, line: int) -> str:
        """The row's id from ``id_column``; an empty or repeated id is a file-level error (raised)."""
        raw, column = rec.values.get(self.col["id"]), self.col["id"]
        if is_missing(raw) or str(raw).strip() == "":
            raise InputError(f"{self.path}: line {line}: field {column!r} (id) is empty")
        if str(raw) in self.seen_ids:
            first = self.seen_ids[str(raw)]
            raise InputError(
                f"{self.path}: line {line}: duplicate id {str(raw)!r} in field {column!r} (first at line {first})"
            )
        self.seen_ids[str(raw)] = line
        return str(raw)

    def wide_row(self, rec: RawRow, position: int) -> list[dict[str, Any]]:
        base, error = self.common(rec)
        line, field = base["line"], self.col["candidates"]
        gid = self.group_id(rec, line) if self.col["id"] else str(position)
        row = {**base, "group_id": gid, "group_position": position}
        try:
            cands = _as_list(rec.values.get(field))
        except ValueError as err:
            error = error or self.flag(line, field, str(err))
            return [{**row, "candidate_index": None, "candidate": None, "human_score": None, "error": error}]
        humans: list[Any] = [None] * len(cands)
        if self.col["human"]:
            try:
                humans = _as_list(rec.values.get(self.col["human"]))
                if len(humans) != len(cands):
                    raise ValueError(f"has {len(humans)} scores for {len(cands)} candidates")
            except ValueError as err:
                error, humans = error or self.flag(line, self.col["human"], str(err)), [None] * len(cands)
        out = []
        for index, (cand, value) in enumerate(zip(cands, humans, strict=True)):
            item_error = error or self.text_error(line, f"{field}[{index}]", cand)
            human, human_error = self.human(line, f"{self.col['human']}[{index}]", value)
            out.append(
                {
                    **row,
                    "candidate_index": index,
                    "candidate": cand if isinstance(cand, str) else None,
                    "human_score": human,
                    "error": item_error or human_error,
                }
            )
        return out


def read_candidates(
    records: Sequence[RawRow | Mapping[str, Any]] | pd.DataFrame,
    path: str | Path = "<input>",
    *,
    source_column: str = "source",
    candidates_column: str = "candidates",
    group_column: str | None = None,
    candidate_column: str = "candidate",
    reference_column: str | None = None,
    human_column: str | None = None,
    id_column: str | None = None,
    prefix: str = "",
    on_error: str = "flag",
) -> list[CandidateRow]:
    """Validate candidate rows into one :class:`CandidateRow` per candidate (one per flagged input row),
    ``position`` numbering them in order. ``group_column`` given means the long layout, else the wide
    one; ``prefix`` is prepended to each source (e.g. ``"summarize: "``); ``on_error`` is ``"flag"`` or
    ``"raise"``."""
    if on_error not in ("flag", "raise"):
        raise ValueError(f"on_error must be 'flag' or 'raise', got {on_error!r}")
    if isinstance(records, pd.DataFrame):
        records = frame_rows(records, path if path != "<input>" else "<DataFrame>")
    records = raw_rows(records)
    long = group_column is not None
    columns = {
        "source": source_column,
        "reference": reference_column,
        "human": human_column,
        "group": group_column,
        "candidate": candidate_column if long else None,
        "candidates": None if long else candidates_column,
        "id": None if long else id_column,
    }
    for name, column in columns.items():
        if column:
            require_column(path, records, column, f"{name}_column")
    reader = _RowReader(path, on_error, columns, prefix)
    read = reader.long_row if long else reader.wide_row
    found = [row for position, rec in enumerate(records) for row in read(rec, position)]
    return [CandidateRow(position=position, **row) for position, row in enumerate(found)]


def candidates_frame(rows: list[CandidateRow]) -> pd.DataFrame:
    """The candidate rows as a DataFrame (``candidate_index`` ``Int64``, ``human_score`` ``Float64``)."""
    return records_frame(rows, CandidateRow)
