"""How well does an uncertainty score rank a run's outputs by quality? PRR and risk-coverage (AURC).

Conventions (the ones LM-Polygraph reports, written out so the numbers can be checked by hand):

* An **uncertainty** score ``u`` is *higher when the model is less sure*; a **quality** score ``q``
  (e.g. ROUGE-L against the reference) is *higher when the output is better*.
* **Rejection curve.** Sort the ``n`` rows from least to most uncertain and keep the ``k`` most confident
  ones, ``k = 1..n`` (coverage ``k / n``). ``Q(k)`` is the mean quality of the kept rows. Its area is the
  discrete mean ``PRA = (1/n) * sum_k Q(k)`` (each coverage step has width ``1/n``).
* **Risk-coverage curve.** Same ordering with the loss ``1 - q`` (a risk when ``q`` is in ``[0, 1]``):
  ``R(k) = 1 - Q(k)`` and ``AURC = (1/n) * sum_k R(k) = 1 - PRA``. Lower AURC is better.
* **Oracle** ranks by the quality itself (``u = -q``); **random** is the expectation over random
  orderings, for which every ``Q(k)`` equals ``mean(q)``, so ``PRA_random = mean(q)`` exactly.
* **PRR** ``= (PRA_unc - PRA_random) / (PRA_oracle - PRA_random)``
  ``= (AURC_random - AURC_unc) / (AURC_random - AURC_oracle)``: the same number on either curve.
  The oracle gives exactly 1, a random score about 0, a constant score exactly 0. A reversed score
  (``u = q``) gives ``-1`` exactly when the qualities are symmetric about their mean (e.g. evenly
  spaced, or half 0 and half 1); otherwise some other negative value, e.g. ``-0.8`` for
  ``q = [0, 0, 1]`` and ``-1.25`` for ``q = [0, 1, 1]``. PRR is ``nan`` when every row has the same
  quality (oracle = random).
* **Ties** in ``u`` are resolved by the expectation over random tie-breaking (within a group of tied
  rows every row counts with the group's mean quality), so the result never depends on row order.

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

#: name -> (column, sign): the uncertainty is ``sign * df[column]``; see the module docstring.
UNCERTAINTY_SCORES: dict[str, tuple[str, float]] = {
    "msp": ("sum_logprob", -1.0),
    "mean_token_entropy": ("mean_entropy", 1.0),
    "perplexity": ("mean_logprob", -1.0),
}

UNCERTAINTY_MEANING: dict[str, str] = {
    "msp": "maximum sequence probability: -sum of token log-probabilities",
    "mean_token_entropy": "mean entropy (nats) of the next-token distribution over the output",
    "perplexity": "exp(-mean token log-probability)",
}


def _validate(uncertainty: Any, quality: Any) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if u.shape != q.shape:
        raise ValueError(f"uncertainty has {u.size} values but quality has {q.size}")
    if u.size == 0:
        raise ValueError("uncertainty and quality are empty")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(q))):
        raise ValueError("uncertainty and quality must be finite (drop rows with missing values first)")
    return u, q


def rejection_curve(uncertainty: Any, quality: Any) -> tuple[np.ndarray, np.ndarray]:
    """Coverage ``k/n`` and mean quality ``Q(k)`` of the ``k`` least uncertain rows, ``k = 1..n``.

    Tied uncertainties count with their group's mean quality (expectation over tie-breaking).

    >>> cov, q = rejection_curve([0.1, 0.9, 0.5], [1.0, 0.0, 0.5])
    >>> cov.tolist(), q.tolist()
    ([0.3333333333333333, 0.6666666666666666, 1.0], [1.0, 0.75, 0.5])
    """
    u, q = _validate(uncertainty, quality)
    order = np.argsort(u, kind="stable")
    u_sorted, q_sorted = u[order], q[order]
    # Replace each tied group's qualities by the group mean: the expected cumulative sum under random ties.
    _, group, counts = np.unique(u_sorted, return_inverse=True, return_counts=True)
    group_mean = np.bincount(group, weights=q_sorted) / counts
    kept = np.cumsum(group_mean[group])
    k = np.arange(1, u.size + 1, dtype=np.float64)
    return k / u.size, kept / k


def risk_coverage_curve(uncertainty: Any, quality: Any) -> tuple[np.ndarray, np.ndarray]:
    """Coverage ``k/n`` and risk ``R(k) = 1 - Q(k)`` (mean loss ``1 - q`` of the kept rows)."""
    coverage, kept_quality = rejection_curve(uncertainty, quality)
    return coverage, 1.0 - kept_quality


def aurc(uncertainty: Any, quality: Any) -> float:
    """Area under the risk-coverage curve, ``(1/n) * sum_k R(k)``; lower is better.

    >>> round(aurc([0.1, 0.9, 0.5], [1.0, 0.0, 0.5]), 6)  # risks 0, 0.25, 0.5
    0.25
    """
    return float(np.mean(risk_coverage_curve(uncertainty, quality)[1]))


def prr(uncertainty: Any, quality: Any) -> float:
    """Prediction-rejection ratio: 1 for the oracle, about 0 for random, ``nan`` if quality is constant.

    >>> q = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> prr([-x for x in q], q), prr(q, q), prr([0.0] * 6, q)
    (1.0, -1.0, 0.0)
    """
    u, q = _validate(uncertainty, quality)
    random_area = float(np.mean(q))
    oracle_area = float(np.mean(rejection_curve(-q, q)[1]))
    if np.isclose(oracle_area, random_area, rtol=0.0, atol=1e-12 * max(1.0, abs(random_area))):
        return float("nan")
    unc_area = float(np.mean(rejection_curve(u, q)[1]))
    return (unc_area - random_area) / (oracle_area - random_area)


def uncertainty_columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The uncertainty scores of :data:`UNCERTAINTY_SCORES` whose column exists in ``df`` (float, NaN kept)."""
    out: dict[str, np.ndarray] = {}
    for name, (column, sign) in UNCERTAINTY_SCORES.items():
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out[name] = sign * values
    return out


def uncertainty_summary(df: pd.DataFrame, quality_column: str) -> dict[str, Any]:
    """PRR and AURC of every available uncertainty score against ``df[quality_column]``.

    Rows where the quality or that score is missing/non-finite (e.g. rows with ``error`` set) are left
    out of that score's numbers and counted in ``n_excluded``. Returns a JSON-ready dict::

        {"quality_column": "rougeL", "n_rows": 100, "mean_quality": 0.31,
         "scores": {"msp": {"column": "sum_logprob", "n": 98, "n_excluded": 2, "prr": 0.42,
                            "aurc": 0.55, "aurc_oracle": 0.41, "aurc_random": 0.69}, ...}}
    """
    if quality_column not in df.columns:
        raise ValueError(
            f"quality column {quality_column!r} not found; columns are: {', '.join(map(str, df.columns))}"
        )
    quality = pd.to_numeric(df[quality_column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
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
