"""``t5score rerank``: score every candidate of every source, rank them, meta-evaluate the ranking.

Batches hold whole groups (a source with all its candidates), so each source is encoded once and its
encoder states serve all of its candidates; distributed runs and ``--resume`` work as for ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader

from t5score.data.io import InputError, read_records
from t5score.data.modules import BatchDataset, _identity
from t5score.engine.forced import SCORE_FIELDS
from t5score.engine.modeling import DEFAULT_MODEL, load_model_and_tokenizer
from t5score.runs.runner import RunSpec
from t5score.scoring.directions import AGGREGATES, DIRECTIONS


@dataclass
class RerankRecord:
    """One candidate (or one flagged input row) of ``reranked.parquet``."""

    position: int  # row of the candidate table, the output order
    group_id: str
    group_position: int
    line: int
    candidate_index: int | None = None
    source: str | None = None
    candidate: str | None = None
    reference: str | None = None
    human_score: float | None = None
    error: str | None = None
    num_tokens: int | None = None
    sum_logprob: float | None = None
    mean_logprob: float | None = None
    penalised_logprob: float | None = None
    token_logprobs: list[float] = field(default_factory=list)
    nonfinite: bool | None = None
    score_src_hyp: float | None = None
    score_ref_hyp: float | None = None
    score_hyp_ref: float | None = None
    score_f: float | None = None
    score: float | None = None
    rank: int | None = None


@dataclass
class GroupBatch:
    batch_index: int
    frame: pd.DataFrame  # candidate rows of whole groups

    def __len__(self) -> int:
        return len(self.frame)


def _value(v: Any) -> Any:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v


def frame_to_records(frame: pd.DataFrame) -> list[RerankRecord]:
    names = [f.name for f in fields(RerankRecord)]
    out = []
    for row in frame.to_dict("records"):
        values = {k: _value(row.get(k)) for k in names}
        values["token_logprobs"] = list(values["token_logprobs"] or [])
        out.append(RerankRecord(**values))
    return out


class CandidatesDataModule(L.LightningDataModule):
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
        id_column: Wide layout: unique group ids (default: the row number).
        prefix: Text put before every source.
        max_source_length: Sources longer than this many tokens are truncated.
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
        max_source_length: int | None = 512,
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
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
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
        self.frame: pd.DataFrame | None = None
        self.skip_batches: set[int] = set()

    def load_frame(self) -> pd.DataFrame:
        if self.frame is None:
            from t5score.scoring.rerank import read_candidates

            frame = read_candidates(read_records(self.path), self.path, **self.options)
            frame.insert(0, "position", range(len(frame)))
            self.frame = frame
        return self.frame

    def batch_plan(self) -> list[GroupBatch]:
        frame = self.load_frame()
        groups = sorted(frame["group_position"].unique())
        plan = [groups[i : i + self.batch_size] for i in range(0, len(groups), self.batch_size)]
        return [GroupBatch(i, frame[frame["group_position"].isin(g)]) for i, g in enumerate(plan)]

    def predict_dataloader(self) -> DataLoader:
        pending = [b for b in self.batch_plan() if b.batch_index not in self.skip_batches]
        return DataLoader(BatchDataset(pending), batch_size=None, collate_fn=_identity)


class CandidateReranker(L.LightningModule):
    """Score each candidate given its source and rank candidates within their group (rank 1 = best).

    Args:
        name_or_path: Hugging Face model id or local folder; "default" is the model shipped with t5score.
        rank_by: Direction ranked by: "src->hyp" (default), "ref->hyp", "hyp->ref" or "F".
        score: Pair statistic: "mean_logprob" (default), "sum_logprob" or "penalised_logprob".
        directions: Further directions to compute as columns (need references except "src->hyp").
        aggregate: How several references combine: "mean" or "max".
        include_eos: Score the final EOS token.
        alpha: Length penalty exponent of ``penalised_logprob``.
        max_tokens_per_batch: Padded-token budget per forward pass.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_MODEL,
        rank_by: str = "src->hyp",
        score: str = "mean_logprob",
        directions: list[str] | None = None,
        aggregate: str = "mean",
        include_eos: bool = True,
        alpha: float = 1.0,
        max_tokens_per_batch: int = 8192,
    ):
        super().__init__()
        directions = list(directions or [])
        if rank_by not in DIRECTIONS or any(d not in DIRECTIONS for d in directions):
            raise ValueError(
                f"rank_by and directions must be among {DIRECTIONS}; got {rank_by!r}, {directions}"
            )
        if score not in SCORE_FIELDS or aggregate not in AGGREGATES:
            raise ValueError(
                f"score one of {SCORE_FIELDS}, aggregate one of {AGGREGATES}; got {score!r}, {aggregate!r}"
            )
        self.name_or_path, self.output_dir = name_or_path, None
        self.options = dict(
            rank_by=rank_by,
            score=score,
            directions=directions,
            aggregate=aggregate,
            include_eos=include_eos,
            alpha=alpha,
            max_tokens_per_batch=max_tokens_per_batch,
        )
        self.model, self.tokenizer = None, None

    def configure_model(self) -> None:
        if self.model is None:
            self.model, self.tokenizer = load_model_and_tokenizer(self.name_or_path)

    @torch.inference_mode()
    def predict_step(self, batch: GroupBatch, batch_idx: int = 0) -> list[RerankRecord]:
        from t5score.scoring.rerank import score_candidates

        self.configure_model()
        frame = batch.frame
        if (frame["error"].isna() & frame["candidate_index"].notna()).any():
            max_len = self.trainer.datamodule.max_source_length if self._trainer is not None else None
            frame = score_candidates(
                frame, self.model, self.tokenizer, max_source_length=max_len, **self.options
            )
        return frame_to_records(frame)


class RerankFinisher:
    """ROUGE of each candidate against its reference per chunk; meta-evaluation over all rows."""

    def __init__(self, frame: pd.DataFrame, module: CandidateReranker):
        self.options = module.options
        self.references = bool(frame["reference"].notna().any())

    def chunk(self, merged: pd.DataFrame) -> pd.DataFrame:
        from t5score.scoring.meta_evaluation import add_rouge

        merged = merged.copy()
        merged["candidate_index"] = merged["candidate_index"].astype("Int64")
        merged["rank"] = merged["rank"].astype("Int64")
        return add_rouge(merged) if self.references else merged

    def summary(self, rows: pd.DataFrame) -> dict[str, Any]:
        from t5score.scoring.meta_evaluation import meta_evaluate

        summary = meta_evaluate(rows)
        summary["rank_by"], summary["score"] = self.options["rank_by"], self.options["score"]
        return summary


def rerank_spec(frame: pd.DataFrame, module: CandidateReranker) -> RunSpec:
    expected = [(p,) for p in frame["position"]]
    finisher = RerankFinisher(frame, module)
    return RunSpec("rerank", "reranked.parquet", RerankRecord, expected, ["position"], finisher, ("score_",))
