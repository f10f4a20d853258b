"""End to end on real decodes: two tiny random T5 models decode the same rows; report and compare both runs."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from t5score.cli.compare import main as compare_main
from t5score.records import SourceRow
from t5score.reports import write_report
from t5score.runs.decode_rows import DecodeOptions, decode_rows
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

SOURCES = [
    "the value of the list is not none",
    "read the file and return the data",
    "",  # an empty source: kept with an error, never decoded
    "check the key in the dict for this name",
    "open a new file to write the text",
    "sort the list and find the first item",
]


def decode_run(tmp_path: Path, name: str, seed: int) -> tuple[Path, pd.DataFrame]:
    tokenizer = make_tiny_tokenizer(tmp_path / "tok")
    model = make_tiny_model("t5", seed=seed)
    rows = [
        SourceRow(position=i, id=f"r{i}", source=s, error=None if s else "empty source")
        for i, s in enumerate(SOURCES)
    ]
    records = decode_rows(model, tokenizer, rows, DecodeOptions(max_new_tokens=6))
    frame = pd.DataFrame([r.to_dict() for r in records]).drop(columns=["position", "sample_index"])
    run = tmp_path / name
    run.mkdir()
    frame.to_parquet(run / "predictions.parquet", index=False)
    return run, pd.read_parquet(run / "predictions.parquet")


def test_report_and_compare_on_decoded_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_a, a = decode_run(tmp_path, "seed0", seed=0)
    run_b, b = decode_run(tmp_path, "seed1", seed=1)
    assert a["error"].notna().sum() == 1 and a["mean_logprob"].notna().sum() == len(SOURCES) - 1

    summary: dict = {}
    report = write_report(run_a, a, summary, {"command": "t5score predict", "model": "tiny-t5"})
    text = report.path.read_text(encoding="utf-8")
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (run_a / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = {"token_entropy", "mean_logprob", "entropy_by_position", "output_length"}  # no targets, no bins
    assert set(report.figures.values()) == {f"figures/{name}.png" for name in drawn}
    assert "| r2 | empty source |" in text

    out = tmp_path / "cmp"
    assert compare_main([str(run_a), str(run_b), "--output_dir", str(out), "--n-resamples", "200"]) == 0
    table = pd.read_csv(out / "compare.csv")
    ia, ib = a.set_index("id"), b.set_index("id")
    for metric in ("mean_logprob", "sum_logprob", "mean_entropy", "num_tokens"):
        row = table[(table["metric"] == metric) & (table["run"] == "seed1")].iloc[0]
        diff = (ib[metric].astype(float) - ia[metric].astype(float)).dropna()
        assert row["delta"] == pytest.approx(diff.mean())
        # the error row has null scores in both runs, but num_tokens = 0
        assert row["n_paired"] == len(SOURCES) - (metric != "num_tokens")
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]
