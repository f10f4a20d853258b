"""``t5score score``: teacher-forced scores of given texts, one row per input row, BARTScore directions."""

from __future__ import annotations

from typing import Any

import lightning as L
import pandas as pd
import torch

from t5score.data.modules import ScoreDataModule
from t5score.engine.engines import uses_t5_kernels
from t5score.engine.modeling import DEFAULT_MODEL, load_model_and_tokenizer
from t5score.records import ScoreRecord, SourceBatch, SourceRow, fill_from_pair
from t5score.runs.runner import RunSpec
from t5score.scoring.directions import direction_column, score_directions
from t5score.scoring.options import SOURCE_DIRECTIONS, ScoreOptions

__all__ = ["ScoreDataModule", "ScoreFinisher", "ScoreRecord", "Seq2SeqScorer", "score_rows", "score_spec"]


class Seq2SeqScorer(L.LightningModule):
    """Score given texts teacher-forced: log p(target | source) per token and per sequence.

    Args:
        name_or_path: Hugging Face model id or local folder; "default" is the model shipped with t5score.
        directions: BARTScore directions to add: "src->hyp" (faithfulness, always computed), "hyp->src" (the
            source given the target), "ref->hyp" (precision), "hyp->ref" (recall), "F" (mean of precision
            and recall), "harm_F" (BARTScore's harm_f, P*R/(P+R)); the last four need references.
        score: Pair statistic the direction columns hold: "mean_logprob", "sum_logprob" or "penalised_logprob".
        aggregate: How several references per row combine: "mean" (F and harm_F of the averaged precision
            and recall) or "max" (F and harm_F of the best reference).
        include_eos: Score the final EOS token, as the model's own loss does.
        include_bos: Score the <s> token BART-style tokenizers put first in the target (it stays in the
            decoder input either way), as the model's own loss and BARTScore do.
        strip_bos: Remove that <s> from the target altogether, as lm-evaluation-harness does for seq2seq
            models (with include_eos false: its loglikelihood).
        encoder_prompt: BARTScore's encoder-side prompt: every source read as "<source> <prompt>,".
        decoder_prompt: BARTScore's decoder-side prompt: every target read as "<prompt>, <target>".
        score_decoder_prompt: Count the decoder prompt's tokens in the scores, as BARTScore does; false
            scores the target's own tokens only (the prompt is still fed to the decoder).
        alpha: Length penalty exponent of ``penalised_logprob = sum / num_tokens ** alpha``.
        max_target_length: Truncate targets to this many tokens (None: no limit).
        max_tokens_per_batch: Padded-token budget per forward pass.
        engine: "auto" (the fast teacher-forced T5 decoder for T5-family models, the model's own forward
            otherwise), "hf" (always the model's forward) or "t5" (require the fast one).
        trust_remote_code: Run the Python code a model folder names in its config (``auto_map``) to load
            it; false (the default) refuses such a model in one line, without running its code or asking.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_MODEL,
        directions: list[str] | None = None,
        score: str = ScoreOptions.score,
        aggregate: str = ScoreOptions.aggregate,
        include_eos: bool = ScoreOptions.include_eos,
        include_bos: bool = ScoreOptions.include_bos,
        strip_bos: bool = ScoreOptions.strip_bos,
        encoder_prompt: str | None = ScoreOptions.encoder_prompt,
        decoder_prompt: str | None = ScoreOptions.decoder_prompt,
        score_decoder_prompt: bool = ScoreOptions.score_decoder_prompt,
        alpha: float = ScoreOptions.alpha,
        max_target_length: int | None = ScoreOptions.max_target_length,
        max_tokens_per_batch: int = ScoreOptions.max_tokens_per_batch,
        engine: str = ScoreOptions.engine,
        trust_remote_code: bool = False,
    ):
        super().__init__()
        self.options = ScoreOptions(
            directions=("src->hyp", *(directions or [])),
            score=score,
            aggregate=aggregate,
            include_eos=include_eos,
            include_bos=include_bos,
            strip_bos=strip_bos,
            encoder_prompt=encoder_prompt,
            decoder_prompt=decoder_prompt,
            score_decoder_prompt=score_decoder_prompt,
            alpha=alpha,
            max_target_length=max_target_length,
            max_tokens_per_batch=max_tokens_per_batch,
            engine=engine,
        )
        self.name_or_path, self.trust_remote_code = name_or_path, trust_remote_code
        self.model, self.tokenizer, self.output_dir = None, None, None

    def configure_model(self) -> None:
        if self.model is None:
            self.model, self.tokenizer = load_model_and_tokenizer(
                self.name_or_path, trust_remote_code=self.trust_remote_code
            )
            uses_t5_kernels(self.model, self.options.engine)  # engine "t5" on another model: refused now

    @torch.inference_mode()
    def predict_step(self, batch: SourceBatch, batch_idx: int = 0) -> list[ScoreRecord]:
        self.configure_model()
        return score_rows(self.model, self.tokenizer, batch.rows, self.options, batch.max_source_length)


@torch.inference_mode()
def score_rows(
    model: torch.nn.Module,
    tokenizer,
    rows: list[SourceRow],
    options: ScoreOptions,
    max_source_length: int | None = None,
) -> list[ScoreRecord]:
    """One :class:`ScoreRecord` per row, in row order: the run's directions scored, flagged rows kept (the
    rows of one batch of ``t5score score``; the Python API's ``Predictor.score`` calls it too)."""
    records = [ScoreRecord(r.position, r.id, r.source, r.target, error=r.error) for r in rows]
    for rec in records:
        if rec.error is None and (rec.target is None or not rec.target.strip()):
            rec.error = "field 'target' is empty"
    todo = [i for i, rec in enumerate(records) if rec.error is None]
    if not todo:
        return records
    directions = options.run_directions
    needs_refs = any(d not in SOURCE_DIRECTIONS for d in directions)
    result = score_directions(
        model,
        tokenizer,
        [records[i].target for i in todo],
        sources=[records[i].source for i in todo],
        references=[rows[i].references for i in todo] if needs_refs else None,
        options=options,
        max_source_length=max_source_length,
    )
    for k, i in enumerate(todo):
        rec, pair = records[i], result["src->hyp"].pairs[k][0]
        fill_from_pair(rec, pair)
        if pair.nonfinite:
            rec.error = "non-finite logits (NaN or inf) while scoring; try float32 precision"
        for d in directions:
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
    """What the runner needs for a score run: one row per input row."""
    expected = [(r.position,) for r in rows]
    return RunSpec(
        "score", "scores.parquet", ScoreRecord, expected, ["position"], ScoreFinisher(), ("score_",)
    )
