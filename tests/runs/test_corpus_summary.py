"""summarize_records against numpy on a predictions table, also after a parquet round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from t5score.runs.corpus_summary import summarize_records
from tests.helpers.metrics_reference import np_brier, np_calibration


def _table(seed: int = 0, rows: int = 9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(rows):
        n = int(rng.integers(1, 7))
        lp = -rng.exponential(0.8, n)
        ref_n = int(rng.integers(1, 9))
        record = {
            "position": i,
            "id": f"r{i}",
            "token_logprobs": lp.tolist(),
            "token_entropies": rng.uniform(0, 3, n).tolist(),
            "top1_probs": np.maximum(np.exp(lp), rng.uniform(0, 1, n)).tolist(),
            "ref_logprob": float(-rng.exponential(1.0) * ref_n),
            "ref_num_tokens": ref_n,
            "ref_top1_probs": rng.uniform(0, 1, ref_n).tolist(),
            "ref_top1_correct": rng.integers(0, 2, ref_n).astype(bool).tolist(),
            "correct": bool(rng.integers(0, 2)),
            "error": None,
        }
        records.append(record)
    # An errored row: no tokens, no reference score; it is skipped and counted, never dropped silently.
    records[min(3, rows - 1)].update(
        token_logprobs=[],
        token_entropies=[],
        top1_probs=[],
        ref_logprob=None,
        ref_num_tokens=None,
        ref_top1_probs=[],
        ref_top1_correct=[],
        error="empty source",
    )
    return pd.DataFrame(records)


def _expected(df: pd.DataFrame) -> dict:
    rows = [r for _, r in df.iterrows() if len(r["token_logprobs"]) > 0]
    lps = [np.asarray(r["token_logprobs"], dtype=float) for r in rows]
    flat = np.concatenate(lps)
    refs = df[df["ref_logprob"].notna()]
    ref_sum = refs["ref_logprob"].to_numpy(float)
    ref_n = refs["ref_num_tokens"].to_numpy(float)
    ref_conf = np.concatenate([np.asarray(x, float) for x in df["ref_top1_probs"]])
    ref_correct = np.concatenate([np.asarray(x, float) for x in df["ref_top1_correct"]])
    fr_conf = np.exp(flat)
    fr_correct = np.concatenate(
        [np.full(len(lp), float(r["correct"])) for lp, r in zip(lps, rows, strict=True)]
    )
    ref_cal = np_calibration(ref_conf, ref_correct, 10)
    fr_cal = np_calibration(fr_conf, fr_correct, 10)
    return {
        "num_rows": len(df),
        "num_rows_with_tokens": len(rows),
        "num_tokens": flat.size,
        "mean_token_entropy": np.concatenate([r["token_entropies"] for r in rows]).mean(),
        "mean_top1_prob": np.concatenate([r["top1_probs"] for r in rows]).mean(),
        "sum_logprob": flat.sum(),
        "mean_token_logprob": flat.mean(),
        "mean_sequence_logprob": np.mean([lp.mean() for lp in lps]),
        "perplexity": np.exp(-flat.mean()),
        "ref_num_rows": len(refs),
        "ref_num_tokens": ref_n.sum(),
        "ref_sum_logprob": ref_sum.sum(),
        "ref_mean_token_logprob": ref_sum.sum() / ref_n.sum(),
        "ref_mean_sequence_logprob": (ref_sum / ref_n).mean(),
        "ref_perplexity": np.exp(-ref_sum.sum() / ref_n.sum()),
        "ref_ece": ref_cal["l1"],
        "ref_rmsce": ref_cal["l2"],
        "ref_mce": ref_cal["max"],
        "ref_brier": np_brier(ref_conf, ref_correct),
        "ece": fr_cal["l1"],
        "mce": fr_cal["max"],
        "brier": np_brier(fr_conf, fr_correct),
    }, ref_cal


def test_summary_matches_numpy_and_survives_parquet(tmp_path):
    df = _table()
    expected, ref_cal = _expected(df)
    out = summarize_records(df, n_bins=10)
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert out["num_rows_without_tokens"] == 1
    assert out["ref_reliability"]["count"] == ref_cal["count"].tolist()
    json.dumps(out, allow_nan=False)  # strict JSON: no NaN / inf, only plain Python types
    path = tmp_path / "predictions.parquet"
    df.to_parquet(path)
    assert summarize_records(pd.read_parquet(path), n_bins=10) == out


def test_minimal_table_without_optional_columns():
    df = _table(1)[["token_logprobs", "token_entropies", "top1_probs"]]
    out = summarize_records(df)
    assert "ref_perplexity" not in out and "ece" not in out and "ref_ece" not in out
    expected, _ = _expected(_table(1))
    assert out["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-12)


def test_no_references_and_no_tokens_give_none():
    df = _table(2, rows=2)
    df["ref_logprob"] = None
    df["token_logprobs"] = [[], []]
    df["token_entropies"] = [[], []]
    df["top1_probs"] = [[], []]
    out = summarize_records(df.drop(columns=["correct", "ref_top1_probs", "ref_top1_correct"]))
    assert out["num_tokens"] == 0 and out["perplexity"] is None and out["mean_token_entropy"] is None
    assert out["ref_num_rows"] == 0 and out["ref_perplexity"] is None
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("token_entropies", [0.1], r"row 1 \(id='r1'\).*'token_entropies' has 1 values"),
        ("token_logprobs", [-0.1, 0.5], r"row 1 \(id='r1'\).*'token_logprobs' holds 0.5"),
        ("top1_probs", [1.5, 0.1], r"row 1 \(id='r1'\).*'top1_probs' holds 1.5"),
        ("token_entropies", "abc", r"row 1 \(id='r1'\).*'token_entropies' must be a list"),
        ("correct", 2, r"row 1 \(id='r1'\).*'correct' holds 2"),
        ("ref_top1_correct", [3], r"row 1 \(id='r1'\).*'ref_top1_probs' and 'ref_top1_correct' differ"),
        ("ref_num_tokens", None, r"row 1 \(id='r1'\).*'ref_num_tokens' is null"),
    ],
)
def test_bad_rows_are_named(column, value, match):
    df = _table(3, rows=3)
    df["token_logprobs"] = [[-1.0, -2.0]] * 3
    df["token_entropies"] = [[0.5, 0.5]] * 3
    df["top1_probs"] = [[0.5, 0.5]] * 3
    df[column] = df[column].astype(object)
    df.at[1, column] = value
    with pytest.raises(ValueError, match=match):
        summarize_records(df)


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['top1_probs'\]"):
        summarize_records(pd.DataFrame({"token_logprobs": [[-1.0]], "token_entropies": [[0.0]]}))


def test_nullable_dtypes_from_pandas():
    """Nullable pandas columns (Int64, Float64, boolean with NA) are read; an NA label is named."""
    df = _table(4, rows=4)
    expected = summarize_records(df, n_bins=10)
    df["ref_num_tokens"] = df["ref_num_tokens"].astype("Int64")
    df["ref_logprob"] = df["ref_logprob"].astype("Float64")
    df["correct"] = df["correct"].astype("boolean")
    assert summarize_records(df, n_bins=10) == expected
    df.loc[0, "correct"] = pd.NA
    with pytest.raises(ValueError, match=r"row 0 \(id='r0'\).*'correct' holds <NA>"):
        summarize_records(df)
    df.loc[0, "correct"] = True
    df["correct"] = df["correct"].astype(object)
    df.at[1, "correct"] = [1, 0] * 4  # rows have at most 6 tokens
    with pytest.raises(ValueError, match=r"row 1 \(id='r1'\).*'correct' has 8 values for \d+ tokens"):
        summarize_records(df)
