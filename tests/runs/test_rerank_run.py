"""`t5score rerank`: ranks agree with Hugging Face scores; sampled candidates from `predict` feed it directly."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.cli import main

GROUPS = [
    {
        "id": "g1",
        "source": "open the file and read the first line",
        "reference": "read the first line of a file",
        "candidates": ["read a line", "read the first line", "open the file", "read a line"],
    },
    {
        "id": "g2",
        "source": "return the value of the key",
        "reference": "get a value",
        "candidates": ["get the value", "return a value", "the value"],
    },
    {"id": "g3", "source": "make a new list", "reference": "make a list", "candidates": []},
    {"id": "g4", "source": "sort the list", "reference": "sort a list", "candidates": "sort it"},
]


def _mean_logprob(model, tok, source, target) -> float:
    enc = tok([source], return_tensors="pt")
    labels = tok([target], return_tensors="pt").input_ids
    with torch.no_grad():
        return -model(**enc, labels=labels).loss.item()


def test_rerank_orders_by_hf_scores_and_flags_bad_rows(t5_dir, tmp_path):
    path = tmp_path / "cands.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in GROUPS))
    out = tmp_path / "run"
    assert (
        main(
            [
                "rerank",
                "--model.name_or_path",
                str(t5_dir),
                "--data.path",
                str(path),
                "--data.id_column",
                "id",
                "--data.reference_column",
                "reference",
                "--data.batch_size",
                "1",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    df = pd.read_parquet(out / "reranked.parquet")
    assert len(df) == 4 + 3 + 1 + 1  # every candidate, plus one flagged row per bad group
    bad = df[df["group_id"].isin(["g3", "g4"])]
    assert bad["error"].notna().all() and bad["rank"].isna().all()
    assert "empty" in bad.iloc[0]["error"] and "list" in bad.iloc[1]["error"]
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    for group in GROUPS[:2]:
        part = df[df["group_id"] == group["id"]].sort_values("candidate_index")
        ref = [_mean_logprob(model, tok, group["source"], c) for c in group["candidates"]]
        assert part["score"].tolist() == pytest.approx(ref, rel=1e-4)
        expected = sorted(range(len(ref)), key=lambda i: (-round(ref[i], 6), i))  # ties: earlier first
        assert part.sort_values("rank")["candidate_index"].tolist() == expected
    g1 = df[df["group_id"] == "g1"].set_index("candidate_index")
    assert g1.loc[0, "score"] == g1.loc[3, "score"] and g1.loc[0, "rank"] < g1.loc[3, "rank"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groups"] == 4 and summary["rows_with_error"] == 2
    assert {"top", "first", "oracle"} <= set(summary["rouge"])
    assert summary["rouge"]["oracle"]["rougeL"] >= summary["rouge"]["top"]["rougeL"]


def test_sampled_candidates_from_predict_feed_rerank(t5_dir, tmp_path):
    data = tmp_path / "src.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": g["id"], "source": g["source"], "target": g["reference"]}) + "\n"
            for g in GROUPS
        )
    )
    cands = tmp_path / "cands"
    assert (
        main(
            [
                "predict",
                "--model.name_or_path",
                str(t5_dir),
                "--data.path",
                str(data),
                "--data.id_column",
                "id",
                "--data.target_column",
                "target",
                "--model.num_samples",
                "3",
                "--model.max_new_tokens",
                "6",
                "--model.temperature",
                "1.5",
                "--model.seed",
                "7",
                "--output_dir",
                str(cands),
            ]
        )
        == 0
    )
    pred = pd.read_parquet(cands / "predictions.parquet")
    assert len(pred) == 12 and pred[["id", "sample_index"]].drop_duplicates().shape[0] == 12
    assert pred["id"].tolist() == [g["id"] for g in GROUPS for _ in range(3)]
    again = tmp_path / "again"
    assert (
        main(
            [
                "predict",
                "--model.name_or_path",
                str(t5_dir),
                "--data.path",
                str(data),
                "--data.id_column",
                "id",
                "--data.target_column",
                "target",
                "--model.num_samples",
                "3",
                "--model.max_new_tokens",
                "6",
                "--model.temperature",
                "1.5",
                "--model.seed",
                "7",
                "--output_dir",
                str(again),
            ]
        )
        == 0
    )
    assert (
        pd.read_parquet(again / "predictions.parquet")["token_ids"].map(list).tolist()
        == pred["token_ids"].map(list).tolist()
    )  # seeded: reproducible
    out = tmp_path / "rr"
    assert (
        main(
            [
                "rerank",
                "--model.name_or_path",
                str(t5_dir),
                "--data.path",
                str(cands / "predictions.parquet"),
                "--data.group_column",
                "id",
                "--data.candidate_column",
                "prediction",
                "--data.reference_column",
                "target",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    rr = pd.read_parquet(out / "reranked.parquet")
    assert len(rr) == 12 and rr["group_id"].tolist() == pred["id"].tolist()
    assert sorted(rr.groupby("group_id")["rank"].apply(list).iloc[0]) == [1, 2, 3]


def test_rerank_by_harm_f_with_hyp_src_and_rouge_lsum(t5_dir, tmp_path):
    """--model.rank_by harm_F ranks by BARTScore's P * R / (P + R); hyp->src is a column; references of
    several lines get rougeLsum (summary-level, over lines) beside rougeL, as rouge_score computes them."""
    groups = [
        {
            "id": "m1",
            "source": "open the file and read the first line",
            "reference": "open the file.\nread the first line.",
            "candidates": ["read the first line.\nopen the file.", "open the file and read", "the line"],
        },
        {
            "id": "m2",
            "source": "return the value of the key",
            "reference": "get the value.\nreturn it.",
            "candidates": ["return it.\nget the value.", "get a value"],
        },
    ]
    path = tmp_path / "cands.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in groups))
    out = tmp_path / "run"
    args = ["rerank", "--model.name_or_path", str(t5_dir), "--data.path", str(path)]
    args += ["--data.id_column", "id", "--data.reference_column", "reference", "--output_dir", str(out)]
    assert main([*args, "--model.rank_by", "harm_F", "--model.directions", "[hyp->src]"]) == 0
    df = pd.read_parquet(out / "reranked.parquet")
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    for group in groups:
        part = df[df["group_id"] == group["id"]].sort_values("candidate_index")
        ref, src = group["reference"], group["source"]
        p = [_mean_logprob(model, tok, ref, c) for c in group["candidates"]]
        r = [_mean_logprob(model, tok, c, ref) for c in group["candidates"]]
        harm = [a * b / (a + b) for a, b in zip(p, r, strict=True)]
        assert part["score_harm_f"].tolist() == pytest.approx(harm, rel=1e-5)
        assert part["score"].tolist() == part["score_harm_f"].tolist()
        hyp_src = [_mean_logprob(model, tok, c, src) for c in group["candidates"]]
        assert part["score_hyp_src"].tolist() == pytest.approx(hyp_src, rel=1e-5)
        expected = sorted(range(len(harm)), key=lambda i: (-harm[i], i))
        assert part.sort_values("rank")["candidate_index"].tolist() == expected
        for _, row in part.iterrows():
            want = scorer.score(ref, row["candidate"])
            assert row["rougeLsum"] == want["rougeLsum"].fmeasure and row["rougeL"] == want["rougeL"].fmeasure
    swapped = df[df["candidate_index"] == 0]  # the reference's sentences in the other order
    assert (swapped["rougeLsum"] == 1.0).all() and (swapped["rougeL"] < 1.0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rank_by"] == "harm_F"
    assert summary["rouge"]["top"]["rougeLsum"] == pytest.approx(df[df["rank"] == 1]["rougeLsum"].mean())
