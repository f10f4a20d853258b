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

The per-row uncertainty scores of a run's table (``msp``, ``mean_token_entropy``, ``perplexity``) and
their summary are computed in :mod:`t5score.runs.uncertainty`; this module is numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
    """Coverage ``k/n`` and risk ``R(k) = 1 - Q(k)`` (mean loss ``1 - q`` of the kept rows).

    >>> cov, risk = risk_coverage_curve([0.1, 0.9, 0.5], [1.0, 0.0, 0.5])
    >>> risk.tolist()
    [0.0, 0.25, 0.5]
    """
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
