"""Input rows: raw records validated into :class:`~t5score.records.SourceRow` s, and their batch plan.

Rows are read once, validated (file-level problems raise :class:`~t5score.data.io.InputError`; a row that
cannot be decoded keeps its place with ``error`` set), then grouped into a fixed *batch plan*: batches of
rows of similar length, longest first. The plan is deterministic, so a resumed run skips exactly the
batches already on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from t5score.data.io import InputError, RawRow, raw_rows, require_column
from t5score.data.values import is_missing
from t5score.records import SourceRow


def _not_text(column: str, value: Any) -> str:
    return f"field {column!r} is not text ({type(value).__name__})"


def references_of(value: Any, column: str) -> tuple[str | list[str] | None, str | None]:
    """A reference cell as (references, error): a text, a list of texts (a JSON list in a CSV cell; missing
    items left out), or None when missing or empty; anything else is the row's error, never stringified."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value, None  # a text that happens to start with "["
    if is_missing(value) or isinstance(value, str):
        return (None if is_missing(value) else value), None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # a NumPy array (DataFrame cell)
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return None, f"field {column!r} is not text or a list of texts ({type(value).__name__})"
    for index, item in enumerate(value):
        if not is_missing(item) and not isinstance(item, str):
            return None, _not_text(f"{column}[{index}]", item)
    return [item for item in value if not is_missing(item)] or None, None


DEFAULT_ID_COLUMN = "id"  # used as the row id when present and no id_column is named
IMPLICIT_ID_HINT = " (a column named 'id' is the row id by default; --data.id_column '' numbers the rows)"


def id_column_in_force(records: Sequence[RawRow], id_column: str | None) -> str | None:
    """The id column a run uses: ``id_column`` when named, ``"id"`` when the rows have such a column and
    none is named, no column (row numbers) when neither or when ``id_column`` is ``""``."""
    if id_column == "":
        return None
    if id_column is None and any(DEFAULT_ID_COLUMN in rec.values for rec in records):
        return DEFAULT_ID_COLUMN
    return id_column


def build_rows(
    records: Sequence[RawRow | Mapping[str, Any]],
    path: str | Path,
    source_column: str = "source",
    target_column: str | None = None,
    id_column: str | None = None,
    prefix: str = "",
    reference_column: str | None = None,
) -> list[SourceRow]:
    """Turn raw records (:func:`~t5score.data.io.read_records`; plain dicts are all cells) into
    :class:`SourceRow`; ids come from ``id_column``, else from a column named ``id`` when there is one
    (:func:`id_column_in_force`), else they are the row number (0-based).

    A row keeps its place whatever is wrong with it; ``error`` names the first problem: the reader's, then
    a source that is empty or not text, a target that is not text (a list, a number, a dict: never
    stringified), references (``reference_column``, see :func:`references_of`) that are not texts.
    """
    records = raw_rows(records)
    implicit = id_column is None
    id_column = id_column_in_force(records, id_column)
    implicit = implicit and id_column is not None
    for column, option in (
        (source_column, "source_column"),
        (target_column, "target_column"),
        (id_column, "id_column"),
        (reference_column, "reference_column"),
    ):
        if column:
            require_column(path, records, column, option)
    rows, seen = [], {}
    for position, rec in enumerate(records):
        line, values = rec.line, rec.values
        if id_column:
            raw_id = values.get(id_column)
            if is_missing(raw_id) or (isinstance(raw_id, str) and not raw_id.strip()):
                raise InputError(
                    f"{path}: line {line}: field {id_column!r} (id) is empty{IMPLICIT_ID_HINT if implicit else ''}"
                )
            row_id = str(raw_id)
            if row_id in seen:
                raise InputError(
                    f"{path}: line {line}: duplicate id {row_id!r} in field {id_column!r} "
                    f"(first at line {seen[row_id]}){IMPLICIT_ID_HINT if implicit else ''}"
                )
            seen[row_id] = line
        else:
            row_id = str(position)
        raw_source = values.get(source_column)
        source = (
            "" if is_missing(raw_source) else raw_source if isinstance(raw_source, str) else str(raw_source)
        )
        errors = [rec.error]
        if not isinstance(raw_source, str) and not is_missing(raw_source):
            errors.append(_not_text(source_column, raw_source))
        elif not source.strip():
            errors.append(f"field {source_column!r} is empty")
        target = values.get(target_column) if target_column else None
        if is_missing(target):
            target = None
        elif not isinstance(target, str):
            errors.append(_not_text(target_column, target))
            target = None
        references, reference_error = (
            references_of(values.get(reference_column), reference_column)
            if reference_column
            else (None, None)
        )
        error = next((e for e in [*errors, reference_error] if e is not None), None)
        row = SourceRow(position, row_id, prefix + source if error is None else source, target, error)
        row.references = references if reference_error is None else None
        rows.append(row)
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
