"""``t5score rerank``: score every candidate of every source, rank them, meta-evaluate the ranking.

Batches hold whole groups (a source with all its candidates, :class:`~t5score.records.CandidateBatch`),
so each source is encoded once and its encoder states serve all of its candidates; each batch gives one
:class:`~t5score.records.RerankRecord` per row. Distributed runs and ``--resume`` work as for ``predict``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pandas as pd
import torch

from t5score.data.modules import CandidatesDataModule
from t5score.engine.modeling import DEFAULT_MODEL, load_model_and_tokenizer
from t5score.records import CandidateBatch, CandidateRow, RerankRecord
from t5score.runs.runner import RunSpec
from t5score.scoring.meta_evaluation import meta_evaluate
from t5score.scoring.options import ScoreOptions
from t5score.scoring.rerank import score_candidates
from t5score.scoring.rouge import add_rouge_columns

__all__ = ["CandidateReranker", "CandidatesDataModule", "RerankFinisher", "RerankRecord", "rerank_spec"]


class CandidateReranker(L.LightningModule):
    """Score each candidate given its source and rank candidates within their group (rank 1 = best).

    Args:
        name_or_path: Hugging Face model id or local folder; "default" is the model shipped with t5score.
        rank_by: Direction ranked by: "src->hyp" (default), "hyp->src", "ref->hyp", "hyp->ref", "F" or
            "harm_F" (BARTScore's harm_f, P*R/(P+R)).
        score: Pair statistic: "mean_logprob" (default), "sum_logprob" or "penalised_logprob".
        directions: Further directions to compute as columns (need references except "src->hyp" and
            "hyp->src").
        aggregate: How several references combine: "mean" or "max".
        include_eos: Score the final EOS token.
        include_bos: Score the <s> token BART-style tokenizers put first in the target (it stays in the
            decoder input either way), as the model's own loss and BARTScore do.
        strip_bos: Remove that <s> from the target altogether, as lm-evaluation-harness does for seq2seq
            models.
        encoder_prompt: BARTScore's encoder-side prompt: every source read as "<source> <prompt>,".
        decoder_prompt: BARTScore's decoder-side prompt: every candidate read as "<prompt>, <candidate>".
        score_decoder_prompt: Count the decoder prompt's tokens in the scores, as BARTScore does; false
            scores the candidate's own tokens only (the prompt is still fed to the decoder).
        alpha: Length penalty exponent of ``penalised_logprob``.
        max_tokens_per_batch: Padded-token budget per forward pass.
        trust_remote_code: Run the Python code a model folder names in its config (``auto_map``) to load
            it; false (the default) refuses such a model in one line, without running its code or asking.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_MODEL,
        rank_by: str = ScoreOptions.rank_by,
        score: str = ScoreOptions.score,
        directions: list[str] | None = None,
        aggregate: str = ScoreOptions.aggregate,
        include_eos: bool = ScoreOptions.include_eos,
        include_bos: bool = ScoreOptions.include_bos,
        strip_bos: bool = ScoreOptions.strip_bos,
        encoder_prompt: str | None = ScoreOptions.encoder_prompt,
        decoder_prompt: str | None = ScoreOptions.decoder_prompt,
        score_decoder_prompt: bool = ScoreOptions.score_decoder_prompt,
        alpha: float = ScoreOptions.alpha,
        max_tokens_per_batch: int = ScoreOptions.max_tokens_per_batch,
        trust_remote_code: bool = False,
    ):
        super().__init__()
        self.options = ScoreOptions(
            directions=tuple(directions or ()),
            score=score,
            aggregate=aggregate,
            include_eos=include_eos,
            include_bos=include_bos,
            strip_bos=strip_bos,
            encoder_prompt=encoder_prompt,
            decoder_prompt=decoder_prompt,
            score_decoder_prompt=score_decoder_prompt,
            alpha=alpha,
            max_tokens_per_batch=max_tokens_per_batch,
            rank_by=rank_by,
        )
        self.name_or_path, self.output_dir = name_or_path, None
        self.trust_remote_code = trust_remote_code
        self.model, self.tokenizer = None, None

    def configure_model(self) -> None:
        if self.model is None:
            self.model, self.tokenizer = load_model_and_tokenizer(
                self.name_or_path, trust_remote_code=self.trust_remote_code
            )

    @torch.inference_mode()
    def predict_step(self, batch: CandidateBatch, batch_idx: int = 0) -> list[RerankRecord]:
        self.configure_model()
        return score_candidates(batch.rows, self.model, self.tokenizer, self.options, batch.max_source_length)


class RerankFinisher:
    """ROUGE of each candidate against its reference per chunk; meta-evaluation over all rows."""

    def __init__(self, rows: list[CandidateRow], module: CandidateReranker):
        self.options = module.options
        self.references = any(r.reference is not None for r in rows)

    def chunk(self, merged: pd.DataFrame) -> pd.DataFrame:
        merged = merged.copy()
        merged["candidate_index"] = merged["candidate_index"].astype("Int64")
        merged["rank"] = merged["rank"].astype("Int64")
        return add_rouge_columns(merged, "candidate", "reference") if self.references else merged

    def summary(self, rows: pd.DataFrame) -> dict[str, Any]:
        summary = meta_evaluate(rows)
        summary["rank_by"], summary["score"] = self.options.rank_by, self.options.score
        return summary


def rerank_spec(rows: list[CandidateRow], module: CandidateReranker) -> RunSpec:
    """What the runner needs for a rerank run: one row per candidate (or flagged input row)."""
    expected = [(r.position,) for r in rows]
    finisher = RerankFinisher(rows, module)
    return RunSpec("rerank", "reranked.parquet", RerankRecord, expected, ["position"], finisher, ("score_",))
