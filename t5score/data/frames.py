"""DataFrames in and out: a user's DataFrame as rows (:func:`frame_rows`), records as a DataFrame with
pandas' nullable dtypes (:func:`records_frame`, what the Python API returns)."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

import pandas as pd

from t5score.data.io import RawRow, check_unique_columns

_NULLABLE = {int: "Int64", float: "Float64", bool: "boolean"}


def _nullable_dtype(hint: Any) -> str | None:
    """``Int64`` for ``int | None`` and the like; None for every other hint (pandas infers those)."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return _NULLABLE.get(args[0]) if len(args) == 1 else None


def frame_rows(frame: pd.DataFrame, path: str = "<DataFrame>", first_line: int = 1) -> list[RawRow]:
    """A user's DataFrame as rows (numbered from ``first_line``); a repeated column name raises, since
    ``to_dict`` would keep only the last of those columns."""
    check_unique_columns(path, list(frame.columns))
    return [RawRow(first_line + i, rec) for i, rec in enumerate(frame.to_dict("records"))]


def records_frame(records: Sequence[Any], record_type: type) -> pd.DataFrame:
    """One row per record, the record type's fields as columns (in order); optional numbers and flags get
    pandas' nullable dtypes (``Int64``, ``Float64``, ``boolean``: NaN becomes ``<NA>``), texts stay objects
    with None for missing values."""
    names = [f.name for f in fields(record_type)]
    frame = pd.DataFrame([asdict(r) for r in records], columns=names)
    hints = typing.get_type_hints(record_type)
    for name in names:
        dtype = _nullable_dtype(hints[name])
        if dtype is not None:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None).astype(dtype)
        elif not pd.api.types.is_numeric_dtype(frame[name]):  # texts and lists (also pandas' "str")
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame
