"""`t5score predict` with multi-line targets: rougeLsum (summary-level, sentences = lines) beside rougeL,
as rouge_score computes them, and its mean in summary.json."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from rouge_score import rouge_scorer

from t5score.cli import main

ROWS = [
    {"id": "a", "source": "open the file and read the first line", "target": "open the file.\nread a line."},
    {"id": "b", "source": "return the value of the key", "target": "get the value"},
    {"id": "c", "source": "sort the list", "target": "sort it.\n\nreturn the list."},
]


def test_predict_writes_rouge_lsum(t5_dir, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "run"
    args = ["predict", "--model.name_or_path", str(t5_dir), "--data.path", str(path)]
    args += ["--data.target_column", "target", "--model.max_new_tokens", "8", "--output_dir", str(out)]
    assert main(args) == 0
    df = pd.read_parquet(out / "predictions.parquet")
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    for _, row in df.iterrows():
        want = scorer.score(row["target"], row["prediction"])
        assert row["rougeLsum"] == want["rougeLsum"].fmeasure and row["rougeL"] == want["rougeL"].fmeasure
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rouge"]["rougeLsum"] == pytest.approx(df["rougeLsum"].astype(float).mean(), rel=1e-9)
