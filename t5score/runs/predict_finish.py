"""What a ``predict`` run adds after decoding: ROUGE against references, corpus metrics, the logits index."""

from __future__ import annotations

from typing import Any

import pandas as pd

from t5score.records import PredictionRecord, SourceRow
from t5score.runs.runner import RunSpec

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


def add_rouge(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-row ROUGE F1 of ``prediction`` vs ``target`` (rows without either get null); corpus means."""
    from t5score.scoring.rouge import rouge_scores

    has = frame["target"].notna() & frame["prediction"].notna() & frame["error"].isna()
    for key in ROUGE_KEYS:
        frame[key] = pd.Series([None] * len(frame), dtype="Float64")
    if not has.any():
        return {}
    scores = rouge_scores(frame.loc[has, "prediction"].tolist(), frame.loc[has, "target"].tolist())
    for key in ROUGE_KEYS:
        frame.loc[has, key] = [s[key] for s in scores]
    return {key: float(frame.loc[has, key].astype(float).mean()) for key in ROUGE_KEYS} | {
        "rouge_rows": int(has.sum())
    }


REF_LISTS = ["ref_top1_probs", "ref_top1_correct", "ref_logprob", "ref_num_tokens"]


def row_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """Row counts of a predictions table (errors, non-finite logits, truncated inputs, finished rows)."""
    ok = frame["error"].isna()
    return {
        "rows": len(frame),
        "rows_with_error": int((~ok).sum()),
        "rows_nonfinite": int(frame["error"].fillna("").str.startswith("non-finite").sum()),
        "rows_truncated": int(frame["truncated"].sum()),
        "rows_finished": int(frame["finished"].sum()),
    }


class PredictFinisher:
    """ROUGE per chunk and streaming corpus metrics (:class:`~t5score.runs.corpus_summary.RecordSummary`)."""

    def __init__(self, rows: list[SourceRow], module, n_bins: int = 15):
        from t5score.runs.corpus_summary import RecordSummary

        self.module = module
        self.targets = any(r.target is not None for r in rows)
        sampled = bool(module.options.num_samples)
        self.references = self.targets and getattr(module, "do_score_references", False) and not sampled
        self.metrics = RecordSummary(n_bins)

    def chunk(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.targets:
            add_rouge(frame)
        clean = frame[frame["error"].isna()]
        self.metrics.update(clean if self.references else clean.drop(columns=REF_LISTS))
        return frame if self.module.options.num_samples else frame.drop(columns=["sample_index"])

    def summary(self, rows: pd.DataFrame) -> dict[str, Any]:
        summary = row_counts(rows) | self.metrics.compute()
        has = (
            rows["target"].notna() & rows["prediction"].notna() & rows["error"].isna() if self.targets else []
        )
        if self.targets and has.any():
            means = {key: float(rows.loc[has, key].astype(float).mean()) for key in ROUGE_KEYS}
            summary["rouge"] = means | {"rouge_rows": int(has.sum())}
        if self.module.options.capture == "full" and self.module.output_dir is not None:
            from t5score.engine.logits_store import merge_index

            merge_index(self.module.output_dir / "logits")
        return summary


def predict_spec(rows: list[SourceRow], module) -> RunSpec:
    samples = max(module.options.num_samples, 1)
    expected = [(r.position, s if module.options.num_samples else None) for r in rows for s in range(samples)]
    finisher = PredictFinisher(rows, module)
    return RunSpec(
        "predict", "predictions.parquet", PredictionRecord, expected, ["position", "sample_index"], finisher
    )
