"""What a ``predict`` run adds after decoding: ROUGE against references, corpus metrics, the logits index."""

from __future__ import annotations

from typing import Any

import pandas as pd

from t5score.records import PredictionRecord, SourceRow
from t5score.runner import RunSpec

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


def add_rouge(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-row ROUGE F1 of ``prediction`` vs ``target`` (rows without either get null); corpus means."""
    from t5score.rouge import rouge_scores

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


def summarize_predictions(frame: pd.DataFrame, n_bins: int = 15) -> dict[str, Any]:
    """Corpus metrics of a predictions table; rows with an error are counted, not averaged."""
    from t5score.metrics.summary import summarize_records

    ok = frame["error"].isna()
    summary: dict[str, Any] = {
        "rows": len(frame),
        "rows_with_error": int((~ok).sum()),
        "rows_nonfinite": int(frame["error"].fillna("").str.startswith("non-finite").sum()),
        "rows_truncated": int(frame["truncated"].sum()),
        "rows_finished": int(frame["finished"].sum()),
    }
    clean = frame[ok]
    if "ref_top1_probs" in clean and clean["ref_top1_probs"].isna().all():
        clean = clean.drop(columns=["ref_top1_probs", "ref_top1_correct", "ref_logprob", "ref_num_tokens"])
    summary.update(summarize_records(clean.reset_index(drop=True), n_bins=n_bins))
    return summary


def predict_spec(rows: list[SourceRow], module) -> RunSpec:
    samples = max(module.options.num_samples, 1)
    expected = [(r.position, s if module.options.num_samples else None) for r in rows for s in range(samples)]
    key = ["position", "sample_index"]

    def finish(frame: pd.DataFrame):
        frame = frame.copy()
        rouge = add_rouge(frame) if frame["target"].notna().any() else {}
        summary = summarize_predictions(frame)
        if rouge:
            summary["rouge"] = rouge
        if module.options.capture == "full" and module.output_dir is not None:
            from t5score.logits_store import merge_index

            merge_index(module.output_dir / "logits")
        if not module.options.num_samples:
            frame = frame.drop(columns=["sample_index"])
        return frame, summary

    return RunSpec("predict", "predictions.parquet", PredictionRecord, expected, key, finish)
