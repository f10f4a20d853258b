"""`t5score compare`: deltas against pandas, bootstrap CI and p-value behaviour, refusal of mismatched runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from t5score.cli.compare import main
from t5score.runs.compare import paired_bootstrap

REPO = Path(__file__).resolve().parents[2]


def write_run(
    root: Path, name: str, df: pd.DataFrame, summary: dict | None = None, file: str = "predictions.parquet"
) -> str:
    run = root / name
    run.mkdir(parents=True)
    df.to_parquet(run / file)
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    return str(run)


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mean_lp = rng.normal(-1.0, 0.3, n) + shift
    return pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(n)],
            "source": [f"source {i}" for i in range(n)],
            "prediction": [f"pred {i} s{seed}" for i in range(n)],
            "token_logprobs": [list(rng.normal(size=3)) for _ in range(n)],
            "num_tokens": rng.integers(1, 10, n),
            "mean_logprob": mean_lp,
            "sum_logprob": mean_lp * 4,
            "rougeL": rng.uniform(size=n),
            "finished": rng.uniform(size=n) < 0.9,
        }
    )


def read_csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "compare.csv")


def test_deltas_match_pandas(tmp_path: Path) -> None:
    a, b = make_frame(120, 0), make_frame(120, 1, shift=0.2)
    b.loc[3, "rougeL"] = np.nan  # a row without a value in one run: left out of that pair only
    b = b.sample(frac=1.0, random_state=0)  # row order must not matter: joined on id
    out = tmp_path / "cmp"
    rc = main(
        [
            write_run(tmp_path, "a", a, {"ece": 0.1}),
            write_run(tmp_path, "b", b, {"ece": 0.3}),
            "--output_dir",
            str(out),
            "--n-resamples",
            "300",
        ]
    )
    assert rc == 0
    table = read_csv(out)
    assert set(table["metric"]) == {
        "num_tokens",
        "mean_logprob",
        "sum_logprob",
        "rougeL",
    }  # bools/lists excluded
    ia, ib = a.set_index("id"), b.set_index("id")
    for metric in ["num_tokens", "mean_logprob", "sum_logprob", "rougeL"]:
        rows = table[table["metric"] == metric].set_index("run")
        assert rows.loc["a", "mean"] == pytest.approx(ia[metric].mean())
        assert rows.loc["b", "mean"] == pytest.approx(ib[metric].mean())
        diff = (ib[metric] - ia[metric]).dropna()  # pandas aligns on id
        assert rows.loc["b", "delta"] == pytest.approx(diff.mean())
        assert rows.loc["b", "n_paired"] == len(diff)
        assert rows.loc["b", "ci_low"] <= rows.loc["b", "delta"] <= rows.loc["b", "ci_high"]
    text = (out / "compare.md").read_text()
    assert "![difference to the first run](compare.png)" in text and "| ece | 0.1 | 0.3 |" in text
    top = (ib["rougeL"] - ia["rougeL"]).dropna().abs().sort_values(ascending=False).index[0]
    first_row = text.split("changed most")[1].split("|---|")[-1].splitlines()[1]
    assert first_row.startswith(f"| {top} |")
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(out / "compare.png")
    assert pixels.shape[:2] == (620, 700)  # one panel per metric: 7 x (1.4 * 4 + 0.6) inches at 100 dpi
    assert pixels[..., :3].std() > 0.01


def test_bootstrap_ci_contains_true_difference_and_matches_normal_theory() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(size=400)
    diff = 0.5 + noise - noise.mean()  # true mean difference exactly 0.5
    low, high, p = paired_bootstrap(diff, 2000, seed=0)
    assert low < 0.5 < high
    half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)  # normal-theory 95% CI as the reference
    assert low == pytest.approx(0.5 - half, abs=0.02) and high == pytest.approx(0.5 + half, abs=0.02)
    assert p == pytest.approx(2 / 2001)  # no resample reaches 0: the smallest p the bootstrap can give
    assert paired_bootstrap(diff, 2000, seed=0) == (low, high, p)  # seeded
    assert paired_bootstrap(np.zeros(10), 100, seed=0) == (0.0, 0.0, 1.0)


def test_p_value_small_for_shift_and_large_for_none(tmp_path: Path) -> None:
    a = make_frame(200, 2)
    rng = np.random.default_rng(3)
    noise = rng.normal(scale=0.3, size=100)
    shifted, same = a.copy(), a.copy()
    shifted["mean_logprob"] += 0.15 + rng.normal(scale=0.3, size=200)
    same["mean_logprob"] += np.concatenate([noise, -noise])  # per-row changes that average to exactly 0
    runs = [write_run(tmp_path, n, f) for n, f in (("base", a), ("shifted", shifted), ("same", same))]
    assert main([*runs, "--output_dir", str(tmp_path / "o"), "--metric", "mean_logprob", "--seed", "3"]) == 0
    rows = read_csv(tmp_path / "o").set_index("run")
    assert rows.loc["shifted", "p_value"] < 0.01
    assert rows.loc["same", "p_value"] > 0.5
    assert rows.loc["same", "ci_low"] < 0 < rows.loc["same", "ci_high"]


def test_mismatched_ids_refused_then_allow_partial(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = make_frame(50, 0), make_frame(50, 1)
    b = b.iloc[3:].copy()
    b.loc[b.index[:2], "id"] = ["new1", "new2"]  # x0..x4 only in a, new1/new2 only in b: 7 differ
    runs = [write_run(tmp_path, "a", a), write_run(tmp_path, "b", b)]
    out = tmp_path / "o"
    assert main([*runs, "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "7 id(s) are not in every run" in err and "--allow-partial" in err
    assert not out.exists()

    assert main([*runs, "--output_dir", str(out), "--allow-partial", "--n-resamples", "100"]) == 0
    shared = a.merge(b, on="id", suffixes=("_a", "_b"))
    assert len(shared) == 45
    rows = read_csv(out)
    sub = rows[(rows["metric"] == "sum_logprob") & (rows["run"] == "b")].iloc[0]
    assert sub["n"] == 45 and sub["delta"] == pytest.approx(
        (shared["sum_logprob_b"] - shared["sum_logprob_a"]).mean()
    )
    assert "Partial comparison (--allow-partial): 45 id(s)" in (out / "compare.md").read_text()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_dir", "run directory not found"),
        ("missing_file", "no reranked.parquet or scores.parquet or predictions.parquet in"),
        ("duplicate_id", "appears 2 times"),
        ("unknown_metric", "metric(s) bleu not shared by all runs"),
        ("bad_summary", "summary.json is not valid JSON"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, setup: str, message: str
) -> None:
    a = write_run(tmp_path, "a", make_frame(10, 0))
    other = make_frame(10, 1)
    extra: list[str] = []
    if setup == "missing_dir":
        b = str(tmp_path / "nope")
    elif setup == "missing_file":
        (tmp_path / "empty").mkdir()
        b = str(tmp_path / "empty")
    elif setup == "duplicate_id":
        other.loc[1, "id"] = "x0"
        b = write_run(tmp_path, "b", other)
    elif setup == "unknown_metric":
        b, extra = write_run(tmp_path, "b", other), ["--metric", "bleu"]
    else:
        b = write_run(tmp_path, "b", other)
        (Path(b) / "summary.json").write_text("{not json")
    assert main([a, b, "--output_dir", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_score_runs_without_prediction(tmp_path: Path) -> None:
    a = make_frame(30, 0).drop(columns=["prediction"])
    b = make_frame(30, 1).drop(columns=["prediction"])
    runs = [write_run(tmp_path, n, f, file="scores.parquet") for n, f in (("a", a), ("b", b))]
    assert main([*runs, "--output_dir", str(tmp_path / "o"), "--metric", "sum_logprob", "mean_logprob"]) == 0
    table = read_csv(tmp_path / "o")
    assert table["metric"].unique().tolist() == ["sum_logprob", "mean_logprob"]
    assert "source (a)" in (tmp_path / "o" / "compare.md").read_text()


def test_import_is_light() -> None:
    """compare must start fast: importing it pulls in neither torch, Lightning, transformers nor matplotlib."""
    code = (
        "import sys, t5score.cli.compare, t5score.runs.compare; "
        "print(sorted(m for m in ('torch', 'lightning', 'transformers', 'matplotlib') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"


def test_sampled_runs_join_on_id_and_sample_index(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def sampled(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        ids = [f"x{i}" for i in range(5) for _ in range(3)]
        return pd.DataFrame({"id": ids, "sample_index": [0, 1, 2] * 5, "mean_logprob": rng.normal(size=15)})

    a, b = sampled(0), sampled(1)
    runs = [write_run(tmp_path, "a", a), write_run(tmp_path, "b", b.iloc[::-1])]
    assert main([*runs, "--output_dir", str(tmp_path / "o"), "--n-resamples", "50"]) == 0
    row = read_csv(tmp_path / "o").iloc[1]
    merged = a.merge(b, on=["id", "sample_index"])
    assert row["n_paired"] == 15
    assert row["delta"] == pytest.approx((merged["mean_logprob_y"] - merged["mean_logprob_x"]).mean())
    assert "| x" in (tmp_path / "o" / "compare.md").read_text()  # changed-most rows are listed as id/sample

    greedy = write_run(tmp_path, "greedy", a.drop(columns=["sample_index"]).drop_duplicates("id"))
    assert main([runs[0], greedy, "--output_dir", str(tmp_path / "o2")]) == 2
    assert "keyed by different columns" in capsys.readouterr().err
