"""Uncertainty quality of a run's table (``summary["uncertainty"]``) against explicit-loop references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t5score.runs.uncertainty import add_uncertainty, pick_quality_column, uncertainty_summary


def _area_direct(order: np.ndarray, q: np.ndarray) -> float:
    """Mean over k of the mean quality of the first k rows of ``order`` (explicit loop)."""
    return float(np.mean([q[order[:k]].mean() for k in range(1, len(q) + 1)]))


def _prr_direct(u: np.ndarray, q: np.ndarray) -> float:
    """PRR with distinct uncertainties, from explicit sorts and loops."""
    unc = _area_direct(np.argsort(u), q)
    oracle = _area_direct(np.argsort(-q), q)
    return (unc - q.mean()) / (oracle - q.mean())


def test_uncertainty_summary_from_dataframe() -> None:
    rng = np.random.default_rng(4)
    n = 40
    mean_lp = rng.normal(-1.0, 0.4, n)
    df = pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "sum_logprob": mean_lp * rng.integers(1, 6, n),
            "mean_logprob": mean_lp,
            "mean_entropy": rng.gamma(2.0, 0.5, n),
            "rougeL": np.exp(mean_lp) + rng.normal(scale=0.05, size=n),
        }
    )
    df.loc[5, ["sum_logprob", "mean_logprob", "mean_entropy"]] = np.nan  # an error row
    df.loc[9, "rougeL"] = np.nan  # a row without a reference
    result = uncertainty_summary(df, "rougeL")
    ok = df.drop(index=[5, 9])
    q = ok["rougeL"].to_numpy()
    assert result["quality_column"] == "rougeL" and result["n_rows"] == n
    assert result["mean_quality"] == pytest.approx(df["rougeL"].mean())
    for name, u in {
        "msp": -ok["sum_logprob"].to_numpy(),
        "mean_token_entropy": ok["mean_entropy"].to_numpy(),
        "perplexity": np.exp(-ok["mean_logprob"].to_numpy()),
    }.items():
        entry = result["scores"][name]
        assert entry["n"] == n - 2 and entry["n_excluded"] == 2
        assert entry["prr"] == pytest.approx(_prr_direct(u, q), rel=1e-9)
        assert entry["aurc"] == pytest.approx(1.0 - _area_direct(np.argsort(u), q), rel=1e-9)
        assert entry["aurc_random"] == pytest.approx(1.0 - q.mean())
        assert entry["aurc_oracle"] == pytest.approx(1.0 - _area_direct(np.argsort(-q), q))
    assert result["scores"]["perplexity"]["prr"] > 0.5  # quality was built from the log-probability


def test_uncertainty_summary_errors_and_partial_columns() -> None:
    df = pd.DataFrame({"mean_entropy": [0.1, 0.5, 0.3], "rougeL": [0.2, 0.2, 0.2]})
    with pytest.raises(ValueError, match="'bleu' not found; columns are: mean_entropy, rougeL"):
        uncertainty_summary(df, "bleu")
    result = uncertainty_summary(df, "rougeL")
    assert list(result["scores"]) == ["mean_token_entropy"]
    assert result["scores"]["mean_token_entropy"]["prr"] is None  # constant quality: undefined


def test_quality_column_preference_and_add_uncertainty() -> None:
    df = pd.DataFrame(
        {"sum_logprob": [-1.0, -3.0, -2.0], "rouge1": [0.9, 0.1, 0.4], "rougeL": [None, None, None]}
    )
    assert pick_quality_column(df) == "rouge1"  # rougeL is preferred but has no finite value
    assert pick_quality_column(df.drop(columns=["rouge1"])) is None
    summary: dict = {"rows": 3}
    scores = add_uncertainty(summary, df)
    assert list(summary) == ["rows", "uncertainty"]
    assert summary["uncertainty"] == uncertainty_summary(df, "rouge1")
    np.testing.assert_array_equal(scores["msp"], [1.0, 3.0, 2.0])
    assert summary["uncertainty"]["scores"]["msp"]["prr"] == pytest.approx(1.0)  # ranks like the oracle
    bare: dict = {}
    assert list(add_uncertainty(bare, df.drop(columns=["rouge1"]))) == ["msp"] and bare == {}
