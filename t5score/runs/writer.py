"""Writing records to Parquet: one part file per batch as the run goes, one merged file at the end.

Parts (``<output_dir>/parts/batch-NNNNNN.parquet``) are written atomically as each batch finishes, so
memory stays flat and a crash keeps every batch already written; ``--resume`` skips those batches. The
merge drops the duplicates that a distributed sampler adds to even out ranks, refuses to finish when a
row is missing, and restores input order, chunk by chunk, so that memory stays flat there too.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from lightning.pytorch.callbacks import BasePredictionWriter

_SCALARS = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}
PARTS = "parts"
MERGE_CHUNK_ROWS = 512  # rows per merged chunk: what the finishing steps hold at once
MAX_SPOOL_FILES = 256  # chunks of a merge (larger chunks for very large runs)


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


def _key_frame(parts: list[Path], key: list[str]) -> pd.DataFrame:
    """The key columns of every part, with the part number and the row within the part."""
    frames = []
    for number, path in enumerate(parts):
        keys = pq.read_table(path, columns=key).to_pandas()
        keys["_part"], keys["_row"] = number, np.arange(len(keys))
        frames.append(keys)
    if not frames:
        return pd.DataFrame({**{k: [] for k in key}, "_part": [], "_row": []})
    return pd.concat(frames, ignore_index=True)


def merge_parts(
    output_dir: Path,
    expected: list[tuple[Any, ...]],
    key: list[str],
    record_type: type,
    chunk_rows: int | None = None,
) -> Iterator[pa.Table]:
    """The rows of the parts in ``key`` order, as tables of at most ``chunk_rows`` rows (default
    :data:`MERGE_CHUNK_ROWS`; an external sort).

    ``expected`` lists every key tuple the run must produce (e.g. ``(position,)`` per input row);
    duplicates are dropped, and a missing or unexpected key raises before any row is yielded instead of
    silently losing or adding a row. Memory holds the key columns of all rows, one part and one chunk,
    never the whole table: each part's rows are first spooled to the file of their output chunk
    (``<output_dir>/merge/``), then each chunk is read back, ordered, and yielded.
    """
    folder = Path(output_dir) / PARTS
    parts = sorted(folder.glob("batch-*.parquet"))
    schema = arrow_schema(record_type)
    keys = _key_frame(parts, key).drop_duplicates(subset=key, keep="first")
    have = set(keys[key].astype(object).where(keys[key].notna(), None).itertuples(index=False, name=None))
    missing = [k for k in expected if k not in have]
    if missing:
        raise RuntimeError(
            f"{len(missing)} expected rows have no result (first: {missing[:3]}); parts kept in {folder}"
        )
    if len(keys) != len(expected):
        raise RuntimeError(
            f"{len(keys) - len(expected)} unexpected rows in the parts of {folder}; refusing to merge"
        )
    keys = keys.sort_values(key, kind="stable").reset_index(drop=True)
    chunk_rows = max(
        chunk_rows or MERGE_CHUNK_ROWS, -(-len(keys) // MAX_SPOOL_FILES)
    )  # bound the open spool files
    keys["_chunk"] = keys.index // chunk_rows
    spool = Path(output_dir) / "merge"
    shutil.rmtree(spool, ignore_errors=True)
    spool.mkdir(parents=True)
    spooled = schema.append(pa.field("_rank", pa.int64()))
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    try:
        for number, rows in keys.groupby("_part", sort=True):
            table = pq.read_table(parts[int(number)], schema=schema).take(rows["_row"].to_numpy())
            table = table.append_column("_rank", pa.array(rows.index.to_numpy(), pa.int64()))
            chunks = rows["_chunk"].to_numpy()
            for chunk in np.unique(chunks):
                if chunk not in writers:
                    writers[chunk] = pa.ipc.new_stream(spool / f"chunk-{chunk:06d}.arrow", spooled)
                writers[chunk].write_table(table.filter(pa.array(chunks == chunk)))
            del table
    finally:
        for writer in writers.values():
            writer.close()
    if not len(keys):
        yield schema.empty_table()
    for chunk in range(int(keys["_chunk"].max()) + 1 if len(keys) else 0):
        path = spool / f"chunk-{chunk:06d}.arrow"
        with pa.ipc.open_stream(path) as reader:
            table = reader.read_all()
        path.unlink()
        yield table.sort_by("_rank").drop_columns(["_rank"])
    shutil.rmtree(spool, ignore_errors=True)


class TableWriter:
    """Write DataFrame chunks to one Parquet file, atomically: ``<path>`` appears complete at ``close()``.

    The schema is fixed by the first chunk: the Arrow types of ``base`` for its columns (so that a chunk
    where a column happens to be all null keeps its type) and pandas' own inference for added columns.
    """

    def __init__(self, path: Path, base: pa.Schema):
        self.path, self.base = Path(path), base
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.schema: pa.Schema | None = None
        self.writer: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.schema is None:
            inferred = pa.Schema.from_pandas(frame, preserve_index=False)
            fields = [self.base.field(f.name) if f.name in self.base.names else f for f in inferred]
            self.schema = pa.schema(fields, metadata=inferred.metadata)
            self.writer = pq.ParquetWriter(self.tmp, self.schema)
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


def drop_columns(path: Path, columns: list[str]) -> None:
    """Rewrite the Parquet file ``path`` without ``columns``, one row group at a time (atomically)."""
    source = pq.ParquetFile(path)
    keep = [name for name in source.schema_arrow.names if name not in columns]
    schema = pa.schema([source.schema_arrow.field(n) for n in keep], metadata=source.schema_arrow.metadata)
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for group in range(source.num_row_groups):
            writer.write_table(source.read_row_group(group, columns=keep))
    os.replace(tmp, path)


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
