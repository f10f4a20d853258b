"""Input rows: raw records validated into :class:`~t5score.records.SourceRow` s, and their batch plan.

Rows are read once, validated (file-level problems raise :class:`~t5score.data.io.InputError`; a row that
cannot be decoded keeps its place with ``error`` set), then grouped into a fixed *batch plan*: batches of
rows of similar length, longest first. The plan is deterministic, so a resumed run skips exactly the
batches already on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from t5score.data.io import InputError, RawRow, raw_rows, require_column
from t5score.data.values import is_missing
from t5score.records import SourceRow


def build_rows(
    records: Sequence[RawRow | Mapping[str, Any]],
    path: str | Path,
    source_column: str = "source",
    target_column: str | None = None,
    id_column: str | None = None,
    prefix: str = "",
) -> list[SourceRow]:
    """Turn raw records (:func:`~t5score.data.io.read_records`; plain dicts are all cells) into
    :class:`SourceRow`; ids default to the row number (0-based)."""
    records = raw_rows(records)
    require_column(path, records, source_column, "source_column")
    if target_column:
        require_column(path, records, target_column, "target_column")
    if id_column:
        require_column(path, records, id_column, "id_column")
    rows, seen = [], {}
    for position, rec in enumerate(records):
        line, values = rec.line, rec.values
        if id_column:
            raw_id = values.get(id_column)
            if is_missing(raw_id) or (isinstance(raw_id, str) and not raw_id.strip()):
                raise InputError(f"{path}: line {line}: field {id_column!r} (id) is empty")
            row_id = str(raw_id)
            if row_id in seen:
                raise InputError(
                    f"{path}: line {line}: duplicate id {row_id!r} in field {id_column!r} (first at line {seen[row_id]})"
                )
            seen[row_id] = line
        else:
            row_id = str(position)
        raw_source = values.get(source_column)
        source = (
            "" if is_missing(raw_source) else raw_source if isinstance(raw_source, str) else str(raw_source)
        )
        error = rec.error
        if error is None and not isinstance(raw_source, str) and not is_missing(raw_source):
            error = f"field {source_column!r} is not text ({type(raw_source).__name__})"
        elif error is None and not source.strip():
            error = f"field {source_column!r} is empty"
        target = values.get(target_column) if target_column else None
        if is_missing(target):
            target = None
        elif target is not None and not isinstance(target, str):
            target = str(target)
        rows.append(SourceRow(position, row_id, prefix + source if error is None else source, target, error))
    return rows


def plan_batches(rows: list[SourceRow], batch_size: int, sort_by_length: bool = True) -> list[list[int]]:
    """Positions of each batch: rows sorted by source length (longest first, ties by position)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    order = [r.position for r in rows]
    if sort_by_length:
        order.sort(key=lambda p: (-len(rows[p].source), p))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def rows_from_texts(
    sources: Iterable[str], targets: Iterable[str | None] | None = None, prefix: str = ""
) -> list[SourceRow]:
    """Rows for the Python API: ids are the 0-based positions."""
    records = [{"source": s} for s in sources]
    if targets is not None:
        for rec, tgt in zip(records, targets, strict=True):
            rec["target"] = tgt
    if not records:
        return []
    return build_rows(records, "<texts>", "source", "target" if targets is not None else None, None, prefix)
