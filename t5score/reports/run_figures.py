"""The figures of a run's report, drawn once: PNG files under ``figures/`` for ``report.md``, inline SVG for
``report.html``. Each answers one question; a figure whose inputs the run lacks is listed as not drawn."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from t5score.reports import figures, row_figures
from t5score.reports.blocks import Figure
from t5score.reports.examples import confidence_column, error_mask, numeric
from t5score.reports.markdown import flatten_dict, is_missing

#: summary key of reliability bins -> (title, summary key prefix of its ECE / MCE)
RELIABILITY = {
    "calibration": ("Reliability diagram", "calibration."),
    "reliability": ("Reliability diagram (generated tokens)", ""),
    "ref_reliability": ("Reliability diagram (reference tokens, teacher-forced)", "ref_"),
}


def _number(flat: Mapping[str, Any], key: str) -> float | None:
    value = flat.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_figures(
    df: pd.DataFrame,
    summary: Mapping[str, Any],
    run_info: Mapping[str, Any],
    out: Path,
    uncertainties: Mapping[str, Any] | None,
) -> tuple[list[Figure], list[str]]:
    """Draw every figure the run has the inputs for; return them and the reasons for those not drawn."""
    drawn: list[Figure] = []
    skipped: list[str] = []
    flat = flatten_dict(summary)
    ok = df[~error_mask(df)]

    def add(key: str, title: str, caption: str, fig: Any) -> None:
        png = figures.save_png(fig, out / "figures" / f"{key}.png")
        drawn.append(Figure(key, title, caption, png.relative_to(out).as_posix(), figures.to_svg(fig)))

    for key, (title, prefix) in RELIABILITY.items():
        bins = figures.reliability_bins(summary.get(key))
        if bins:
            ece, mce = _number(flat, prefix + "ece"), _number(flat, prefix + "mce")
            caption = "Is the model as often right as it is sure? Bars on the diagonal are calibrated."
            add(key, title, caption, figures.reliability_figure(bins, title, ece=ece, mce=mce))
    if not any(f.key in RELIABILITY for f in drawn):
        skipped.append("reliability diagram: the summary has no calibration bins")
    quality = (summary.get("uncertainty") or {}).get("quality_column")
    conf = confidence_column(df)
    if quality is not None and conf is not None and quality in df.columns:
        fig = row_figures.confidence_quality_chart(numeric(ok, conf), numeric(ok, quality), conf, quality)
        add(
            "confidence_quality",
            f"Confidence vs {quality}",
            "Are the rows the model is sure of the good ones?",
            fig,
        )
    else:
        skipped.append("confidence vs quality: no per-row quality column")
    entropies = df["token_entropies"] if "token_entropies" in df.columns else None
    if entropies is not None and entropies.map(lambda v: not is_missing(v) and len(v) > 0).any():
        caption = "Where in the output is the model unsure? The count of rows shrinks as outputs end."
        add(
            "entropy_by_position",
            "Entropy by output position",
            caption,
            row_figures.entropy_by_position_chart(entropies),
        )
        add(
            "token_entropy",
            "Token entropies",
            "How spread is each next-token distribution?",
            figures.token_entropy_chart(entropies),
        )
    else:
        skipped.append("entropy figures: no `token_entropies` values")
    if "finished" in df.columns and "num_tokens" in df.columns and "prediction" in df.columns:
        limit = (run_info.get("generation") or {}).get("max_new_tokens")
        fig = row_figures.length_chart(
            numeric(ok, "num_tokens"), ok["finished"].fillna(False).astype(bool), limit
        )
        add("output_length", "Output length", "How long are the outputs, and how many hit the limit?", fig)
    if "mean_logprob" in df.columns and numeric(df, "mean_logprob").notna().any():
        fig = figures.mean_logprob_chart(numeric(df, "mean_logprob"))
        add(
            "mean_logprob",
            "Mean log-probability per sequence",
            "How sure is the model of whole outputs?",
            fig,
        )
    if quality is not None and uncertainties is not None:
        fig = figures.risk_coverage_chart(uncertainties, numeric(df, quality), quality)
        caption = "Keeping only the rows the model is surest of, how bad are the kept rows? Lower is better."
        add("risk_coverage", "Risk-coverage curve", caption, fig)
    elif quality is not None:
        skipped.append("risk-coverage curve: no per-row uncertainty scores were given")
    else:
        skipped.append("risk-coverage curve: no per-row quality column")
    return drawn, skipped
