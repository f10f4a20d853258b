"""``t5score score``: teacher-forced scores of given texts, one row per input row, BARTScore directions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightning as L
import pandas as pd
import torch

from t5score.data.modules import TextDataModule
from t5score.engine.forced import SCORE_FIELDS
from t5score.engine.modeling import DEFAULT_MODEL, load_model_and_tokenizer
from t5score.records import SourceBatch, SourceRow
from t5score.runs.runner import RunSpec
from t5score.scoring.directions import AGGREGATES, DIRECTIONS, score_directions


def direction_column(direction: str) -> str:
    """``src->hyp`` -> ``score_src_hyp``; ``F`` -> ``score_f``."""
    return "score_" + direction.lower().replace("->", "_")


@dataclass
class ScoreRecord:
    """One row of ``scores.parquet``: the target scored given the source (``src->hyp``), plus directions."""

    position: int
    id: str
    source: str
    target: str | None = None
    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    token_entropies: list[float] = field(default_factory=list)
    top1_probs: list[float] = field(default_factory=list)
    num_tokens: int = 0
    sum_logprob: float | None = None
    mean_logprob: float | None = None
    penalised_logprob: float | None = None
    mean_entropy: float | None = None
    truncated: bool = False
    error: str | None = None
    score_src_hyp: float | None = None
    score_ref_hyp: float | None = None
    score_hyp_ref: float | None = None
    score_f: float | None = None


def _references(value: Any) -> str | list[str] | None:
    """A reference cell: a text, a list of texts (JSON list in CSV), or null."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    if value is None or isinstance(value, str):
        return value
    return [str(v) for v in value if v is not None] or None


class ScoreDataModule(TextDataModule):
    """Rows with a source and a text to score (``target_column``), optionally references.

    Args:
        reference_column: Optional column of references (a text or a list of texts) for the directions
            ``ref->hyp``, ``hyp->ref`` and ``F``.
    """

    def __init__(self, *args, reference_column: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.reference_column = reference_column
        if self.target_column is None:
            from t5score.data.io import InputError

            raise InputError("t5score score needs --data.target_column: the column of texts to score")

    def load_rows(self) -> list[SourceRow]:
        if self.rows is None:
            from t5score.data.io import read_records, require_column
            from t5score.data.modules import build_rows

            records = read_records(self.path)
            self.rows = build_rows(
                records, self.path, self.source_column, self.target_column, self.id_column, self.prefix
            )
            if self.reference_column:
                require_column(self.path, records, self.reference_column, "reference_column")
                for row, rec in zip(self.rows, records, strict=True):
                    row.references = _references(rec.get(self.reference_column))
        return self.rows


class Seq2SeqScorer(L.LightningModule):
    """Score given texts teacher-forced: log p(target | source) per token and per sequence.

    Args:
        name_or_path: Hugging Face model id or local folder; "default" is the model shipped with t5score.
        directions: BARTScore directions to add: "src->hyp" (faithfulness, always computed), "ref->hyp"
            (precision), "hyp->ref" (recall), "F" (mean of precision and recall; needs references).
        score: Pair statistic the direction columns hold: "mean_logprob", "sum_logprob" or "penalised_logprob".
        aggregate: How several references per row combine: "mean" or "max".
        include_eos: Score the final EOS token, as the model's own loss does.
        alpha: Length penalty exponent of ``penalised_logprob = sum / num_tokens ** alpha``.
        max_target_length: Truncate targets to this many tokens (None: no limit).
        max_tokens_per_batch: Padded-token budget per forward pass.
        engine: "auto" (the fast teacher-forced T5 decoder for T5-family models, the model's own forward
            otherwise), "hf" (always the model's forward) or "t5" (require the fast one).
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_MODEL,
        directions: list[str] | None = None,
        score: str = "mean_logprob",
        aggregate: str = "mean",
        include_eos: bool = True,
        alpha: float = 1.0,
        max_target_length: int | None = None,
        max_tokens_per_batch: int = 8192,
        engine: str = "auto",
    ):
        super().__init__()
        from t5score.engine.forced_decoders import ENGINES

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.engine = engine
        directions = list(directions or ["src->hyp"])
        bad = [d for d in directions if d not in DIRECTIONS]
        if bad or score not in SCORE_FIELDS or aggregate not in AGGREGATES:
            raise ValueError(
                f"directions must be among {DIRECTIONS}, score one of {SCORE_FIELDS}, aggregate one of "
                f"{AGGREGATES}; got {directions}, {score!r}, {aggregate!r}"
            )
        self.name_or_path, self.directions = name_or_path, list(dict.fromkeys(["src->hyp", *directions]))
        self.score_name, self.aggregate, self.include_eos, self.alpha = score, aggregate, include_eos, alpha
        self.max_target_length, self.max_tokens_per_batch = max_target_length, max_tokens_per_batch
        self.model, self.tokenizer, self.output_dir = None, None, None

    def configure_model(self) -> None:
        if self.model is None:
            self.model, self.tokenizer = load_model_and_tokenizer(self.name_or_path)

    @torch.inference_mode()
    def predict_step(self, batch: SourceBatch, batch_idx: int = 0) -> list[ScoreRecord]:
        self.configure_model()
        records = [ScoreRecord(r.position, r.id, r.source, r.target, error=r.error) for r in batch.rows]
        for rec in records:
            if rec.error is None and (rec.target is None or not rec.target.strip()):
                rec.error = "field 'target' is empty"
        todo = [i for i, rec in enumerate(records) if rec.error is None]
        needs_refs = any(d != "src->hyp" for d in self.directions)
        if not todo:
            return records
        result = score_directions(
            self.model,
            self.tokenizer,
            [records[i].target for i in todo],
            sources=[records[i].source for i in todo],
            references=[batch.rows[i].references for i in todo] if needs_refs else None,
            directions=tuple(self.directions),
            score=self.score_name,
            aggregate=self.aggregate,
            include_eos=self.include_eos,
            alpha=self.alpha,
            max_source_length=batch.max_source_length,
            max_target_length=self.max_target_length,
            max_tokens_per_batch=self.max_tokens_per_batch,
            engine=self.engine,
        )
        for k, i in enumerate(todo):
            rec, pair = records[i], result["src->hyp"].pairs[k][0]
            rec.token_ids, rec.token_logprobs = pair.token_ids, pair.token_logprobs
            rec.token_entropies, rec.top1_probs, rec.num_tokens = (
                pair.token_entropies,
                pair.top1_probs,
                pair.num_tokens,
            )
            rec.sum_logprob, rec.mean_logprob, rec.penalised_logprob = (
                pair.sum_logprob,
                pair.mean_logprob,
                pair.penalised_logprob,
            )
            rec.mean_entropy = sum(pair.token_entropies) / pair.num_tokens if pair.num_tokens else None
            rec.truncated = pair.source_truncated or pair.target_truncated
            if pair.nonfinite:
                rec.error = "non-finite logits (NaN or inf) while scoring; try float32 precision"
            for d in self.directions:
                setattr(rec, direction_column(d), result[d].scores[k])
        return records


class ScoreFinisher:
    """Score runs add nothing per row; the summary is computed from the scalar columns."""

    def chunk(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def summary(self, frame: pd.DataFrame) -> dict[str, Any]:
        ok = frame["error"].isna()
        summary: dict[str, Any] = {
            "rows": len(frame),
            "rows_with_error": int((~ok).sum()),
            "rows_truncated": int(frame["truncated"].sum()),
        }
        tokens = int(frame.loc[ok, "num_tokens"].sum())
        total = float(frame.loc[ok, "sum_logprob"].sum())
        summary |= {
            "num_tokens": tokens,
            "sum_logprob": total,
            "mean_token_logprob": total / tokens if tokens else None,
            "mean_sequence_logprob": float(frame.loc[ok, "mean_logprob"].mean()) if ok.any() else None,
        }
        for col in [c for c in frame.columns if c.startswith("score_")]:
            values = frame.loc[ok, col].dropna()
            summary[f"mean_{col}"] = float(values.mean()) if len(values) else None
        return summary


def score_spec(rows: list[SourceRow]) -> RunSpec:
    expected = [(r.position,) for r in rows]
    return RunSpec(
        "score", "scores.parquet", ScoreRecord, expected, ["position"], ScoreFinisher(), ("score_",)
    )
