"""Writing records to Parquet: one part file per batch as the run goes, one merged file at the end.

Parts (``<output_dir>/parts/batch-NNNNNN.parquet``) are written atomically as each batch finishes, so
memory stays flat and a crash keeps every batch already written; ``--resume`` skips those batches. The
merge drops the duplicates that a distributed sampler adds to even out ranks, refuses to finish when a
row is missing, and restores input order.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from lightning.pytorch.callbacks import BasePredictionWriter

_SCALARS = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}
PARTS = "parts"


def _arrow_type(hint) -> pa.DataType:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _arrow_type(args[0])
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if hint in _SCALARS:
        return _SCALARS[hint]
    raise TypeError(f"no Arrow type for {hint!r}")


def arrow_schema(record_type: type) -> pa.Schema:
    """The Arrow schema of a record dataclass, from its type hints (every column nullable)."""
    hints = typing.get_type_hints(record_type)
    return pa.schema([(f.name, _arrow_type(hints[f.name])) for f in dataclasses.fields(record_type)])


def write_part(output_dir: Path, batch_index: int, records: list, record_type: type) -> Path:
    """Write one batch's records to its part file, atomically (write to a temp name, then rename)."""
    folder = Path(output_dir) / PARTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"batch-{batch_index:06d}.parquet"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = pa.Table.from_pylist([dataclasses.asdict(r) for r in records], schema=arrow_schema(record_type))
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def done_batches(output_dir: Path) -> set[int]:
    """Indices of the batches whose part file is complete on disk."""
    folder = Path(output_dir) / PARTS
    return {int(p.stem.split("-")[1]) for p in folder.glob("batch-*.parquet")} if folder.exists() else set()


def merge_parts(
    output_dir: Path, name: str, expected: list[tuple[Any, ...]], key: list[str], record_type: type
):
    """Merge the parts into ``<output_dir>/<name>``, in ``key`` order; return the merged DataFrame.

    ``expected`` lists every key tuple the run must produce (e.g. ``(position,)`` per input row);
    duplicates are dropped, and a missing key raises instead of silently losing a row.
    """
    folder = Path(output_dir) / PARTS
    parts = sorted(folder.glob("batch-*.parquet"))
    schema = arrow_schema(record_type)
    table = (
        pa.concat_tables([pq.read_table(p, schema=schema) for p in parts]) if parts else schema.empty_table()
    )
    frame = table.to_pandas()
    frame = frame.drop_duplicates(subset=key, keep="first")
    keys = frame[key].astype(object).where(frame[key].notna(), None)  # NaN (null int) -> None
    have = set(keys.itertuples(index=False, name=None))
    missing = [k for k in expected if k not in have]
    if missing:
        raise RuntimeError(
            f"{len(missing)} expected rows have no result (first: {missing[:3]}); parts kept in {folder}"
        )
    extra = len(frame) - len(expected)
    if extra:
        raise RuntimeError(f"{extra} unexpected rows in the parts of {folder}; refusing to merge")
    frame = frame.sort_values(key, kind="stable").reset_index(drop=True)
    out = Path(output_dir) / name
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out)
    return frame


class PredictionWriter(BasePredictionWriter):
    """Lightning callback: writes each predicted batch's records to a part file as soon as it is done."""

    def __init__(self, output_dir: str | Path, record_type: type):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.record_type = record_type

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        write_part(self.output_dir, batch.batch_index, prediction, self.record_type)
