"""Input rows and their batches: the LightningDataModule of every t5score run.

Rows are read once, validated (file-level problems raise :class:`~t5score.data.io.InputError`; a row that
cannot be decoded keeps its place with ``error`` set), then grouped into a fixed *batch plan*: batches of
rows of similar length, longest first. The plan is deterministic, so a resumed run skips exactly the
batches already on disk, and each batch carries its global index for the writer.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader, Dataset

from t5score.data.io import ROW_ERROR, InputError, read_records, require_column
from t5score.records import SourceBatch, SourceRow


def _is_null(value) -> bool:
    """None, NaN (pandas' missing value in float and string columns) or ``pd.NA``/``pd.NaT``."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, numbers.Real) and value != value


def build_rows(
    records: list[dict],
    path: str | Path,
    source_column: str = "source",
    target_column: str | None = None,
    id_column: str | None = None,
    prefix: str = "",
) -> list[SourceRow]:
    """Turn raw records into :class:`SourceRow`; ids default to the row number (0-based)."""
    require_column(path, records, source_column, "source_column")
    if target_column:
        require_column(path, records, target_column, "target_column")
    if id_column:
        require_column(path, records, id_column, "id_column")
    rows, seen = [], {}
    for position, rec in enumerate(records):
        line = rec.get("__line__", position + 1)
        if id_column:
            raw_id = rec.get(id_column)
            if _is_null(raw_id) or (isinstance(raw_id, str) and not raw_id.strip()):
                raise InputError(f"{path}: line {line}: field {id_column!r} (id) is empty")
            row_id = str(raw_id)
            if row_id in seen:
                raise InputError(
                    f"{path}: line {line}: duplicate id {row_id!r} in field {id_column!r} (first at line {seen[row_id]})"
                )
            seen[row_id] = line
        else:
            row_id = str(position)
        raw_source = rec.get(source_column)
        source = (
            "" if _is_null(raw_source) else raw_source if isinstance(raw_source, str) else str(raw_source)
        )
        error = rec.get(ROW_ERROR)
        if error is None and not isinstance(raw_source, str) and not _is_null(raw_source):
            error = f"field {source_column!r} is not text ({type(raw_source).__name__})"
        elif error is None and not source.strip():
            error = f"field {source_column!r} is empty"
        target = rec.get(target_column) if target_column else None
        if _is_null(target):
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


class BatchDataset(Dataset):
    """A dataset whose items are whole :class:`SourceBatch` es (so samplers split batches, not rows)."""

    def __init__(self, batches: list[SourceBatch]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> SourceBatch:
        return self.batches[index]


def _identity(item):
    return item


class TextDataModule(L.LightningDataModule):
    """Rows to decode or score, read from a JSONL, CSV, TSV or Parquet file.

    Args:
        path: Input file (.jsonl, .csv, .tsv or .parquet). Default: the test split shipped with t5score.
        source_column: Column holding the model input text.
        target_column: Optional column with reference texts; enables reference scores, calibration and ROUGE.
        id_column: Optional column of unique row ids; by default the 0-based row number.
        prefix: Text put before every source, e.g. "summarize: " for T5.
        max_source_length: Sources longer than this many tokens are truncated and flagged ``truncated``.
        batch_size: Rows per batch; batches hold rows of similar length.
        sort_by_length: Form batches from length-sorted rows (faster; output order is unchanged).
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        path: str | None = None,
        source_column: str = "source",
        target_column: str | None = None,
        id_column: str | None = None,
        prefix: str = "",
        max_source_length: int | None = 512,
        batch_size: int = 16,
        sort_by_length: bool = True,
        num_workers: int = 0,
    ):
        super().__init__()
        if path is None:
            from t5score.assets import default_data_path

            path = default_data_path("test")
            target_column = target_column or "target"
            id_column = id_column or "id"
        if max_source_length is not None and max_source_length < 1:
            raise InputError(f"max_source_length must be >= 1, got {max_source_length}")
        if batch_size < 1:  # here, so the mistake surfaces before an output folder or a model exists
            raise InputError(f"batch_size must be >= 1, got {batch_size} (--data.batch_size)")
        self.path, self.source_column, self.target_column = str(path), source_column, target_column
        self.id_column, self.prefix, self.max_source_length = id_column, prefix, max_source_length
        self.batch_size, self.sort_by_length, self.num_workers = batch_size, sort_by_length, num_workers
        self.rows: list[SourceRow] | None = None
        self.skip_batches: set[int] = set()  # batch indices already written (resume)

    def load_rows(self) -> list[SourceRow]:
        """Read and validate the file once; raises InputError for file-level problems."""
        if self.rows is None:
            records = read_records(self.path)
            self.rows = build_rows(
                records, self.path, self.source_column, self.target_column, self.id_column, self.prefix
            )
        return self.rows

    def batch_plan(self) -> list[SourceBatch]:
        rows = self.load_rows()
        plan = plan_batches(rows, self.batch_size, self.sort_by_length)
        return [
            SourceBatch(index, [rows[p] for p in positions], self.max_source_length)
            for index, positions in enumerate(plan)
        ]

    def pending_batches(self) -> list[SourceBatch]:
        return [b for b in self.batch_plan() if b.batch_index not in self.skip_batches]

    def setup(self, stage: str | None = None) -> None:
        self.load_rows()

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            BatchDataset(self.pending_batches()),
            batch_size=None,
            collate_fn=_identity,
            num_workers=self.num_workers,
        )


def rows_from_texts(sources: Iterable[str], targets: Iterable[str | None] | None = None, prefix: str = ""):
    """Rows for the Python API: ids are the 0-based positions."""
    records = [{"source": s} for s in sources]
    if targets is not None:
        for rec, tgt in zip(records, targets, strict=True):
            rec["target"] = tgt
    if not records:
        return []
    return build_rows(records, "<texts>", "source", "target" if targets is not None else None, None, prefix)
