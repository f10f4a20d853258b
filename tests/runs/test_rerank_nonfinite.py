"""`t5score rerank` with a model that gives NaN scores (issue 15, defect 6).

A candidate whose score is not finite is flagged (its ``error`` names the score), never ranked; the other
candidates of its group are ranked among themselves; a group without a finite candidate has no top row;
``summary.json`` counts both, and its ROUGE of the top / first / oracle candidate uses ranked candidates only.
The broken model is a saved tiny T5 with a NaN relative position bias (``tests/helpers/nan_bias.py``): long
sources (encoder) and long candidates (decoder) go NaN; the reference for which do is the model's own
forward with ``labels`` (its loss is NaN exactly there).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.cli import main
from tests.helpers.nan_bias import nan_bias_model

NOT_FINITE = "score src->hyp is not finite (non-finite logits)"
GROUPS = [
    {
        "id": "ok",
        "source": "make a new list",
        "reference": "make a list",
        "candidates": ["make a list", "a new list", "list", "make the new list"],
    },
    {
        "id": "mixed",
        "source": "sort the list by name",
        "reference": "sort the list",
        "candidates": [
            "sort the list of the data in the file",  # 9 words + EOS: NaN
            "sort the list",
            "return the list of the data in the file and the name",  # NaN
            "sort a list",
            "list",
        ],
    },
    {
        "id": "all_long",
        "source": "open the file",
        "reference": "read the file",
        "candidates": [
            "read the first line of the file and close it",
            "open the file and read the first line",
        ],
    },
    {  # 8 words + EOS: the source itself goes NaN, so every candidate does
        "id": "long_source",
        "source": "open the file and read the first line",
        "reference": "read the first line",
        "candidates": ["read the first line", "open the file"],
    },
    {"id": "empty", "source": "make a list", "reference": "a list", "candidates": []},  # an input error
]


def _hf_mean_logprob(model, tok, source: str, target: str) -> float:
    enc = tok([source], return_tensors="pt")
    labels = tok([target], return_tensors="pt").input_ids
    with torch.no_grad():
        return -model(**enc, labels=labels).loss.item()


def _rerank(model_dir, data, out) -> pd.DataFrame:
    argv = ["rerank", "--model.name_or_path", str(model_dir), "--data.path", str(data)]
    argv += ["--data.id_column", "id", "--data.reference_column", "reference", "--data.batch_size", "1"]
    argv += ["--model.max_tokens_per_batch", "8"]  # one pair per forward pass (see nan_bias.py)
    assert main([*argv, "--output_dir", str(out)]) == 0
    return pd.read_parquet(out / "reranked.parquet")


@pytest.fixture(scope="module")
def runs(t5_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("nonfinite")
    data = root / "cands.jsonl"
    data.write_text("".join(json.dumps(g) + "\n" for g in GROUPS))
    broken = nan_bias_model(t5_dir, root / "broken")
    faulty = _rerank(broken, data, root / "faulty")
    summary = json.loads((root / "faulty" / "summary.json").read_text())
    return t5_dir, broken, faulty, summary


def test_nonfinite_candidates_are_flagged_and_the_rest_ranked_among_themselves(runs):
    t5_dir, broken, df, _ = runs
    assert len(df) == sum(len(g["candidates"]) or 1 for g in GROUPS)  # nothing dropped or doubled
    assert df["group_id"].tolist() == [g["id"] for g in GROUPS for _ in g["candidates"] or [None]]
    tok = AutoTokenizer.from_pretrained(t5_dir)
    clean_model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    broken_model = AutoModelForSeq2SeqLM.from_pretrained(broken).eval()
    for group in GROUPS[:4]:
        part = df[df["group_id"] == group["id"]].sort_values("candidate_index")
        assert part["candidate"].tolist() == group["candidates"]  # rows are kept as they were
        broken_scores = [_hf_mean_logprob(broken_model, tok, group["source"], c) for c in group["candidates"]]
        bad = [not np.isfinite(s) for s in broken_scores]
        assert [None if pd.isna(e) else e for e in part["error"]] == [NOT_FINITE if b else None for b in bad]
        assert part.loc[part["error"].notna(), ["score", "score_src_hyp", "rank"]].isna().all().all()
        finite = [
            (-_hf_mean_logprob(clean_model, tok, group["source"], c), i)
            for i, (c, b) in enumerate(zip(group["candidates"], bad, strict=True))
            if not b
        ]
        expected = {i: rank for rank, (_, i) in enumerate(sorted(finite), start=1)}
        got = {
            int(i): int(r) for i, r in zip(part["candidate_index"], part["rank"], strict=True) if pd.notna(r)
        }
        assert got == expected  # ranks 1..k over the finite candidates only
        scored = part[part["error"].isna()]
        assert scored["score"].tolist() == pytest.approx([-s for s, _ in finite], rel=1e-4)
    flagged = df.set_index("group_id")["error"]
    assert sum(flagged.eq(NOT_FINITE)) == 2 + 2 + 2  # two candidates of "mixed", all of the two others
    assert flagged["empty"] and flagged["empty"] != NOT_FINITE
    assert df.loc[df["group_id"].isin(["all_long", "long_source"]), "rank"].isna().all()  # no top row


def test_summary_counts_them_and_rouge_uses_ranked_candidates_only(runs):
    _, _, df, summary = runs
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    ranked = df[df["rank"].notna()]
    picks = {"top": [], "first": [], "oracle": []}
    for _, part in ranked.groupby("group_position"):
        rouge = [scorer.score(r, c) for r, c in zip(part["reference"], part["candidate"], strict=True)]
        values = [{k: s[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")} for s in rouge]
        ranks, indices = part["rank"].tolist(), part["candidate_index"].tolist()
        picks["top"].append(values[ranks.index(1)])
        picks["first"].append(values[indices.index(min(indices))])
        means = [np.mean(list(v.values())) for v in values]
        picks["oracle"].append(values[int(np.argmax(means))])
    assert summary["rouge"]["groups"] == 2 == len(picks["top"])
    for name, rows in picks.items():
        for key in ("rouge1", "rouge2", "rougeL"):
            assert summary["rouge"][name][key] == pytest.approx(np.mean([r[key] for r in rows]), rel=1e-9)
    assert summary["candidates_not_finite"] == 6
    assert summary["groups_without_finite_score"] == 2
    assert summary["candidates_nonfinite"] == 6  # logits with NaN/inf (flagged or not)
    assert summary["groups"] == 5 and summary["rows_with_error"] == 7
    assert summary["candidates_scored"] == len(ranked) == 7
