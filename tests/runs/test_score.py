"""`t5score score`: per-row sums equal the model's own loss on the target; directions add columns."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.cli import main

ROWS = [
    {
        "id": "a",
        "source": "open the file and read the first line",
        "target": "read a line",
        "refs": ["read the first line", "open a file"],
    },
    {
        "id": "b",
        "source": "return the value of the key",
        "target": "get the value of a key in the dict",
        "refs": ["return a value"],
    },
    {"id": "c", "source": "make a new list", "target": "", "refs": None},
    {
        "id": "d",
        "source": "sort the list and return the first item",
        "target": "return the first",
        "refs": ["sort a list"],
    },
]


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def _hf_sum(model, tok, source: str, target: str) -> float:
    enc = tok([source], return_tensors="pt")
    labels = tok([target], return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(**enc, labels=labels).loss
    return -(loss * labels.shape[1]).item()


@pytest.mark.parametrize("engine", ["auto", "hf"])
def test_score_matches_forward_pass_with_labels(t5_dir, input_file, tmp_path, engine):
    out = tmp_path / "run"
    args = [
        "score",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(input_file),
        "--data.id_column",
        "id",
        "--data.target_column",
        "target",
        "--data.batch_size",
        "3",
        "--model.engine",
        engine,
        "--output_dir",
        str(out),
    ]
    assert main(args) == 0
    df = pd.read_parquet(out / "scores.parquet")
    assert df["id"].tolist() == ["a", "b", "c", "d"]
    for col in ("id", "num_tokens", "token_logprobs", "sum_logprob", "mean_logprob", "score_src_hyp"):
        assert col in df.columns
    assert "empty" in df.loc[2, "error"]
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    for i in (0, 1, 3):
        row = df.iloc[i]
        assert row["sum_logprob"] == pytest.approx(
            _hf_sum(model, tok, row["source"], row["target"]), rel=1e-4
        )
        assert row["mean_logprob"] == pytest.approx(row["sum_logprob"] / row["num_tokens"], rel=1e-9)
        assert row["score_src_hyp"] == pytest.approx(row["mean_logprob"], rel=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 4 and summary["rows_with_error"] == 1


def test_score_directions_with_references(t5_dir, input_file, tmp_path):
    out = tmp_path / "run"
    args = [
        "score",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(input_file),
        "--data.target_column",
        "target",
        "--data.reference_column",
        "refs",
        "--model.directions",
        "[src->hyp, ref->hyp, hyp->ref, F]",
        "--model.score",
        "sum_logprob",
        "--model.aggregate",
        "max",
        "--output_dir",
        str(out),
    ]
    assert main(args) == 0
    df = pd.read_parquet(out / "scores.parquet")
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    row, refs = df.iloc[0], ROWS[0]["refs"]
    precision = [_hf_sum(model, tok, r, row["target"]) for r in refs]
    recall = [_hf_sum(model, tok, row["target"], r) for r in refs]
    assert row["score_ref_hyp"] == pytest.approx(max(precision), rel=1e-4)
    assert row["score_hyp_ref"] == pytest.approx(max(recall), rel=1e-4)
    f = max((p + r) / 2 for p, r in zip(precision, recall, strict=True))
    assert row["score_f"] == pytest.approx(f, rel=1e-4)


def test_score_without_target_column_is_a_one_line_error(t5_dir, input_file, tmp_path, capsys):
    code = main(
        [
            "score",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(input_file),
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "target_column" in capsys.readouterr().err
