"""The LightningDataModules of every t5score run, on one base: a fixed batch plan, resumable.

:class:`PlannedDataModule` reads its rows once (:meth:`~PlannedDataModule.load_rows`; file-level problems
raise :class:`~t5score.data.io.InputError` before any model loads) and cuts them into a deterministic
*batch plan* whose batches carry their global index, so a resumed run skips exactly the batches already on
disk (``skip_batches``) and the writer names each part by its batch. :class:`TextDataModule` (``predict``),
:class:`ScoreDataModule` (``score``) and :class:`CandidatesDataModule` (``rerank``) differ only in what a
row is and how rows form batches.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from t5score.data.candidates import read_candidates
from t5score.data.io import InputError, read_records
from t5score.data.rows import build_rows, id_column_in_force, plan_batches
from t5score.records import CandidateBatch, CandidateRow, SourceBatch, SourceRow


class BatchDataset(Dataset):
    """A dataset whose items are whole batches (so samplers split batches, not rows)."""

    def __init__(self, batches: list[Any]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Any:
        return self.batches[index]


def _identity(item):
    return item


def check_batch_size(batch_size: int) -> None:
    """Checked when the data module is built, so the mistake surfaces before an output folder or a model."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size} (--data.batch_size)")


class PlannedDataModule(L.LightningDataModule):
    """Base of the data modules: rows read once, a fixed batch plan, batches already written skipped.

    Subclasses implement :meth:`load_rows` and :meth:`batch_plan` (batches with a ``batch_index``).
    """

    num_workers: int = 0  # DataLoader worker processes

    def __init__(self) -> None:
        super().__init__()
        self.skip_batches: set[int] = set()  # batch indices already written (resume)

    def load_rows(self) -> list[Any]:
        """Read and validate the input once; raises InputError for file-level problems."""
        raise NotImplementedError

    def batch_plan(self) -> list[Any]:
        """Every batch of the run, in plan order; the same on every call and every rank."""
        raise NotImplementedError

    def pending_batches(self) -> list[Any]:
        """The batches of the plan not yet written."""
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


class TextDataModule(PlannedDataModule):
    """Rows to decode or score, read from a JSONL, CSV, TSV or Parquet file.

    Args:
        path: Input file (.jsonl, .csv, .tsv or .parquet). Default: the test split shipped with t5score.
        source_column: Column holding the model input text.
        target_column: Optional column with reference texts; enables reference scores, calibration and ROUGE.
        id_column: Column of unique row ids; default: the column named "id" when there is one, else the
            0-based row number ("" always numbers the rows).
        prefix: Text put before every source, e.g. "summarize: " for T5.
        max_source_length: Sources longer than this many tokens are truncated and flagged ``truncated``;
            default: the tokenizer's model_max_length when that is a real limit (the length the model was
            trained on), else 512.
        batch_size: Rows per batch (written and resumed as one piece; rows of similar length).
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
        max_source_length: int | None = None,
        batch_size: int = 128,
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
        check_batch_size(batch_size)
        self.path, self.source_column, self.target_column = str(path), source_column, target_column
        self.id_column, self.prefix, self.max_source_length = id_column, prefix, max_source_length
        self.batch_size, self.sort_by_length, self.num_workers = batch_size, sort_by_length, num_workers
        self.rows: list[SourceRow] | None = None

    reference_column: str | None = None  # ScoreDataModule: references (a text or a list of texts per row)

    def load_rows(self) -> list[SourceRow]:
        """Read and validate the file once; raises InputError for file-level problems. A row's problem
        (e.g. references that are not texts) flags it."""
        if self.rows is None:
            records = read_records(self.path)
            requested, self.id_column = self.id_column, id_column_in_force(records, self.id_column)
            self.rows = build_rows(  # the column asked for: build_rows names the default in its errors
                records,
                self.path,
                self.source_column,
                self.target_column,
                requested,
                self.prefix,
                reference_column=self.reference_column,
            )
        return self.rows

    def batch_plan(self) -> list[SourceBatch]:
        """Rows of similar source length together (:func:`~t5score.data.rows.plan_batches`)."""
        rows = self.load_rows()
        plan = plan_batches(rows, self.batch_size, self.sort_by_length)
        return [
            SourceBatch(index, [rows[p] for p in positions], self.max_source_length)
            for index, positions in enumerate(plan)
        ]


class ScoreDataModule(TextDataModule):
    """Rows with a source and a text to score (``target_column``), optionally references.

    Args:
        reference_column: Optional column of references (a text or a list of texts) for the directions
            ``ref->hyp``, ``hyp->ref`` and ``F``.
    """

    def __init__(self, *args, reference_column: str | None = None, batch_size: int = 16, **kwargs):
        super().__init__(*args, batch_size=batch_size, **kwargs)
        self.reference_column = reference_column
        if self.target_column is None:
            raise InputError("t5score score needs --data.target_column: the column of texts to score")


class CandidatesDataModule(PlannedDataModule):
    """Candidates to rerank: one row per source with a list column, or one row per candidate.

    Args:
        path: Input file (.jsonl, .csv, .tsv, .parquet). Default: the candidates shipped with t5score.
        source_column: Column with the source text.
        candidates_column: Wide layout: column holding the list of candidates (a JSON list string in CSV).
        group_column: Long layout: column of group ids (one row per candidate); e.g. "id" for the output of
            ``t5score predict --model.num_samples N``.
        candidate_column: Long layout: column with the candidate text ("prediction" for predict output).
        reference_column: Optional reference column: enables ROUGE and the oracle.
        human_column: Optional human score per candidate (a list in the wide layout).
        id_column: Wide layout: unique group ids; default: the column named "id" when there is one, else
            the row number ("" always numbers the groups).
        prefix: Text put before every source.
        max_source_length: Sources longer than this many tokens are truncated; default: the tokenizer's
            model_max_length when that is a real limit, else 512.
        batch_size: Groups (sources) per batch.
    """

    def __init__(
        self,
        path: str | None = None,
        source_column: str = "source",
        candidates_column: str = "candidates",
        group_column: str | None = None,
        candidate_column: str = "candidate",
        reference_column: str | None = None,
        human_column: str | None = None,
        id_column: str | None = None,
        prefix: str = "",
        max_source_length: int | None = None,
        batch_size: int = 8,
    ):
        super().__init__()
        if path is None:
            from t5score.assets import default_candidates_path

            path, reference_column, id_column = (
                default_candidates_path(),
                reference_column or "reference",
                "id",
            )
        if max_source_length is not None and max_source_length < 1:
            raise InputError(f"max_source_length must be >= 1, got {max_source_length}")
        check_batch_size(batch_size)
        self.path, self.batch_size, self.max_source_length = str(path), batch_size, max_source_length
        self.options = dict(
            source_column=source_column,
            candidates_column=candidates_column,
            group_column=group_column,
            candidate_column=candidate_column,
            reference_column=reference_column,
            human_column=human_column,
            id_column=id_column,
            prefix=prefix,
        )
        self.rows: list[CandidateRow] | None = None

    def load_rows(self) -> list[CandidateRow]:
        """Read and validate the candidates once (:func:`~t5score.data.candidates.read_candidates`)."""
        if self.rows is None:
            records = read_records(self.path)
            if self.options["group_column"] is None:  # wide layout: the id column in force
                self.options["id_column"] = id_column_in_force(records, self.options["id_column"])
            self.rows = read_candidates(records, self.path, **self.options)
        return self.rows

    def batch_plan(self) -> list[CandidateBatch]:
        """Whole groups, ``batch_size`` groups per batch in group order; rows in input order within a batch,
        so each source is encoded once for all of its candidates."""
        rows = self.load_rows()
        groups = sorted({r.group_position for r in rows})
        batch_of = {group: i // self.batch_size for i, group in enumerate(groups)}
        batches = [
            CandidateBatch(index, [], self.max_source_length) for index in range(len(set(batch_of.values())))
        ]
        for row in rows:
            batches[batch_of[row.group_position]].rows.append(row)
        return batches
