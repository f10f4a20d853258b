"""PRR and AURC against brute-force numpy references on constructed cases."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from t5score.functional import uncertainty
from t5score.functional.uncertainty import aurc, prr, rejection_curve, risk_coverage_curve


def _area_direct(order: np.ndarray, q: np.ndarray) -> float:
    """Mean over k of the mean quality of the first k rows of ``order`` (explicit loop)."""
    return float(np.mean([q[order[:k]].mean() for k in range(1, len(q) + 1)]))


def _prr_direct(u: np.ndarray, q: np.ndarray) -> float:
    """PRR with distinct uncertainties, from explicit sorts and loops."""
    unc = _area_direct(np.argsort(u), q)
    oracle = _area_direct(np.argsort(-q), q)
    return (unc - q.mean()) / (oracle - q.mean())


def test_functional_uncertainty_is_numpy_only() -> None:
    source = Path(uncertainty.__file__).read_text()
    assert "pandas" not in source


def test_oracle_gives_exactly_one() -> None:
    rng = np.random.default_rng(0)
    q = rng.uniform(size=500)
    assert prr(-q, q) == 1.0
    assert prr(7.0 - 3.0 * q, q) == 1.0  # any decreasing function of quality ranks the same
    binary = (rng.uniform(size=300) < 0.3).astype(float)  # ties in quality do not matter to the oracle
    assert prr(-binary + 1e-3 * rng.uniform(size=300), binary) == 1.0


def test_random_gives_about_zero() -> None:
    rng = np.random.default_rng(1)
    values = []
    for _ in range(20):
        q = rng.uniform(size=2000)
        values.append(prr(rng.normal(size=2000), q))
    assert abs(np.mean(values)) < 0.03
    assert max(abs(v) for v in values) < 0.15


def test_constant_uncertainty_gives_zero_and_constant_quality_nan() -> None:
    q = np.array([0.1, 0.9, 0.4, 0.7])
    assert prr(np.zeros(4), q) == 0.0
    assert np.isnan(prr([0.3, 0.1, 0.2, 0.5], [0.5] * 4))


def test_reversed_convention() -> None:
    q = np.linspace(0, 1, 101)  # symmetric about its mean: exactly -1
    assert prr(q, q) == pytest.approx(-1.0, abs=1e-12)
    assert prr([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(-1.0, abs=1e-12)
    # asymmetric qualities: Q_bottom = (0, 0, 1/3), Q_top = (1, 1/2, 1/3), random 1/3 -> (1/3 - 1) / (11/6 - 1)
    assert prr([0, 0, 1], [0, 0, 1]) == pytest.approx((1 / 3 - 1) / (11 / 6 - 1))
    assert prr([0, 1, 1], [0, 1, 1]) == pytest.approx(-1.25)


def test_prr_matches_direct_computation() -> None:
    rng = np.random.default_rng(2)
    q = rng.uniform(size=60)
    u = -q + rng.normal(scale=0.3, size=60)
    assert prr(u, q) == pytest.approx(_prr_direct(u, q), rel=1e-12)


def test_aurc_matches_direct_numpy() -> None:
    rng = np.random.default_rng(3)
    q = rng.uniform(size=50)
    u = rng.normal(size=50)
    order = np.argsort(u)
    direct = np.mean([np.mean(1.0 - q[order[:k]]) for k in range(1, 51)])
    assert aurc(u, q) == pytest.approx(direct, rel=1e-12)
    assert aurc(u, q) == pytest.approx(1.0 - _area_direct(order, q), rel=1e-12)
    cov, kept = rejection_curve(u, q)
    np.testing.assert_allclose(cov, np.arange(1, 51) / 50)
    np.testing.assert_allclose(kept, np.cumsum(q[order]) / np.arange(1, 51))
    cov_risk, risk = risk_coverage_curve(u, q)
    np.testing.assert_allclose(cov_risk, cov)
    np.testing.assert_allclose(risk, np.cumsum(1.0 - q[order]) / np.arange(1, 51))


def test_ties_are_the_expectation_over_tie_breaking() -> None:
    u = np.array([0.2, 0.2, 0.2, 0.5, 0.1, 0.5])
    q = np.array([1.0, 0.0, 0.3, 0.6, 0.9, 0.2])
    tie_orders = []  # every order consistent with u (ties broken all possible ways)
    for perm in itertools.permutations(range(6)):
        if all(u[perm[i]] <= u[perm[i + 1]] for i in range(5)):
            tie_orders.append(np.array(perm))
    expected = np.mean([1.0 - _area_direct(o, q) for o in tie_orders])
    assert aurc(u, q) == pytest.approx(expected, rel=1e-12)
    assert aurc(u[::-1], q[::-1]) == pytest.approx(expected, rel=1e-12)  # row order does not matter


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="3 values but quality has 2"):
        prr([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        aurc([1.0, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        prr([], [])
