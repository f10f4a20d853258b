"""Uncertainty quality of a run's table: per-row uncertainty scores ranked against a quality column.

The numbers (PRR, AURC and their conventions) are :mod:`t5score.functional.uncertainty`; this module picks
the columns of a predictions (or scores, reranked) table and writes ``summary["uncertainty"]``.

Uncertainty scores computed from a predictions DataFrame (all "higher = less sure"):

========================  ===============================  ===========================================
name                      column(s)                        value
========================  ===============================  ===========================================
``msp``                   ``sum_logprob``                  ``-sum log p``: negative log of the maximum
                                                           (greedy) sequence probability
``mean_token_entropy``    ``mean_entropy``                 mean softmax entropy over generated tokens
``perplexity``            ``mean_logprob``                 ``exp(-mean log p)`` (ranked via
                                                           ``-mean_logprob``, which orders the same)
========================  ===============================  ===========================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t5score.functional.uncertainty import aurc, prr

#: name -> (column, sign): the uncertainty is ``sign * df[column]``; see the module docstring.
UNCERTAINTY_SCORES: dict[str, tuple[str, float]] = {
    "msp": ("sum_logprob", -1.0),
    "mean_token_entropy": ("mean_entropy", 1.0),
    "perplexity": ("mean_logprob", -1.0),
}
#: Per-row quality columns, in order of preference, that enable the risk-coverage curve and PRR.
QUALITY_COLUMNS = ("rougeL", "rougeLsum", "rouge1", "rouge2", "bleu", "exact_match", "accuracy")


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def pick_quality_column(df: pd.DataFrame) -> str | None:
    """The first of :data:`QUALITY_COLUMNS` present in ``df`` with at least one finite value.

    >>> pick_quality_column(pd.DataFrame({"rouge1": [0.5], "rougeL": [None]}))
    'rouge1'
    """
    for column in QUALITY_COLUMNS:
        if column in df.columns and np.isfinite(_numeric(df, column)).any():
            return column
    return None


def uncertainty_columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The uncertainty scores of :data:`UNCERTAINTY_SCORES` whose column exists in ``df`` (float, NaN kept).

    >>> uncertainty_columns(pd.DataFrame({"sum_logprob": [-1.5, None]}))
    {'msp': array([1.5, nan])}
    """
    out: dict[str, np.ndarray] = {}
    for name, (column, sign) in UNCERTAINTY_SCORES.items():
        if column in df.columns:
            out[name] = sign * _numeric(df, column)
    return out


def uncertainty_summary(df: pd.DataFrame, quality_column: str) -> dict[str, Any]:
    """PRR and AURC of every available uncertainty score against ``df[quality_column]``.

    Rows where the quality or that score is missing/non-finite (e.g. rows with ``error`` set) are left
    out of that score's numbers and counted in ``n_excluded``. Returns a JSON-ready dict::

        {"quality_column": "rougeL", "n_rows": 100, "mean_quality": 0.31,
         "scores": {"msp": {"column": "sum_logprob", "n": 98, "n_excluded": 2, "prr": 0.42,
                            "aurc": 0.55, "aurc_oracle": 0.41, "aurc_random": 0.69}, ...}}

    >>> df = pd.DataFrame({"mean_entropy": [0.1, 0.9, 0.5], "rougeL": [1.0, 0.0, 0.5]})
    >>> uncertainty_summary(df, "rougeL")["scores"]["mean_token_entropy"]["aurc"]
    0.25
    """
    if quality_column not in df.columns:
        raise ValueError(
            f"quality column {quality_column!r} not found; columns are: {', '.join(map(str, df.columns))}"
        )
    quality = _numeric(df, quality_column)
    scores: dict[str, dict[str, Any]] = {}
    for name, u in uncertainty_columns(df).items():
        ok = np.isfinite(u) & np.isfinite(quality)
        entry: dict[str, Any] = {"column": UNCERTAINTY_SCORES[name][0], "n": int(ok.sum())}
        entry["n_excluded"] = int(len(df) - entry["n"])
        if entry["n"] == 0:
            entry.update(prr=None, aurc=None, aurc_oracle=None, aurc_random=None)
        else:
            qk = quality[ok]
            value = prr(u[ok], qk)
            entry.update(
                prr=None if np.isnan(value) else value,
                aurc=aurc(u[ok], qk),
                aurc_oracle=aurc(-qk, qk),
                aurc_random=float(1.0 - np.mean(qk)),
            )
        scores[name] = entry
    finite = quality[np.isfinite(quality)]
    return {
        "quality_column": quality_column,
        "n_rows": int(len(df)),
        "mean_quality": float(np.mean(finite)) if finite.size else None,
        "scores": scores,
    }


def add_uncertainty(summary: dict[str, Any], df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Set ``summary["uncertainty"]`` (:func:`uncertainty_summary` against :func:`pick_quality_column`)
    when ``df`` has a quality column; return the per-row scores (:func:`uncertainty_columns`) for the
    report's risk-coverage curve.

    >>> summary = {}
    >>> sorted(add_uncertainty(summary, pd.DataFrame({"mean_entropy": [0.2], "rougeL": [0.5]})))
    ['mean_token_entropy']
    >>> summary["uncertainty"]["quality_column"]
    'rougeL'
    """
    quality = pick_quality_column(df)
    if quality is not None:
        summary["uncertainty"] = uncertainty_summary(df, quality)
    return uncertainty_columns(df)
