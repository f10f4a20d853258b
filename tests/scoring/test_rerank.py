"""Candidate parsing and validation, ranking against Hugging Face forward passes, meta-evaluation vs scipy."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from rouge_score import rouge_scorer
from scipy import stats
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.data.candidates import candidates_frame, read_candidates
from t5score.data.frames import records_frame
from t5score.data.io import RawRow, read_records
from t5score.records import RerankRecord
from t5score.scoring.meta_evaluation import group_correlations, meta_evaluate
from t5score.scoring.options import ScoreOptions
from t5score.scoring.rerank import rank_values, rank_within_groups, rerank, score_candidates
from t5score.scoring.rouge import add_rouge_columns
from tests.helpers.nan_bias import nan_bias_model
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

WIDE = [
    {
        "id": "a",
        "source": "read the file and return the value",
        "reference": "return the value of the file",
        "candidates": ["return the value", "read the file", "return the value", "close the file", "value"],
        "human": [3.0, 1.0, 3.0, 0.0, 2.0],
    },
    {
        "id": "b",
        "source": "count items in the list",
        "reference": "count the items",
        "candidates": ["count the items", "list", "count items in the list"],
        "human": [2.0, 0.0, 1.0],
    },
    {
        "id": "c",
        "source": "open a new file",
        "reference": "open the file",
        "candidates": ["open the file"],
        "human": [1.0],
    },
]


def _check_frame(frame: pd.DataFrame) -> None:
    assert frame["group_id"].tolist() == ["a"] * 5 + ["b"] * 3 + ["c"]
    assert frame["candidate_index"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0]
    assert frame["candidate"].tolist() == [c for r in WIDE for c in r["candidates"]]
    assert frame["human_score"].astype(float).tolist() == [h for r in WIDE for h in r["human"]]
    assert frame["error"].isna().all()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_wide_layout_from_each_file_type(tmp_path, fmt):
    """Real lists in JSONL/Parquet, JSON strings in CSV: the same candidate rows."""
    df = pd.DataFrame(WIDE)
    path = tmp_path / f"cands.{fmt}"
    if fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        df.to_parquet(path)
    else:
        df.assign(candidates=df["candidates"].map(json.dumps), human=df["human"].map(json.dumps)).to_csv(
            path, index=False
        )
    frame = candidates_frame(
        read_candidates(
            read_records(path), path, id_column="id", reference_column="reference", human_column="human"
        )
    )
    _check_frame(frame)
    assert frame["source"].iloc[0] == WIDE[0]["source"]
    # a DataFrame works too, with a prefix
    frame = candidates_frame(
        read_candidates(df, id_column="id", reference_column="reference", human_column="human", prefix="p: ")
    )
    _check_frame(frame)
    assert frame["source"].iloc[-1] == "p: open a new file"


def test_long_layout_groups_in_order_and_checks_consistency():
    records = [
        {"g": "x", "source": "s1", "cand": "one", "h": "1"},
        {"g": "y", "source": "s2", "cand": "two", "h": 2},
        {"g": "x", "source": "s1", "cand": "three", "h": None},
        {"g": "x", "source": "other", "cand": "four", "h": 1},
        {"g": None, "source": "s3", "cand": "five", "h": 1},
        {"g": "y", "source": "s2", "cand": None, "h": 1},
        {"g": "y", "source": "s2", "cand": "six", "h": "high"},
    ]
    frame = candidates_frame(
        read_candidates(records, "long.csv", group_column="g", candidate_column="cand", human_column="h")
    )
    assert len(frame) == len(records)  # nothing dropped
    assert [None if pd.isna(g) else g for g in frame["group_id"]] == ["x", "y", "x", "x", None, "y", "y"]
    assert frame["group_position"].tolist() == [0, 1, 0, 0, 2, 1, 1]
    assert frame["candidate_index"].tolist() == [0, 0, 1, 2, 0, 1, 2]
    humans = frame["human_score"].astype(float).tolist()
    assert humans[:2] == [1.0, 2.0] and np.isnan(humans[2]) and np.isnan(humans[6])
    errors = frame["error"].tolist()
    assert errors[:3] == [None, None, None]
    assert errors[3] == "long.csv: line 4: field 'source' differs from the first row of group 'x' (line 1)"
    assert errors[4] == "long.csv: line 5: field 'g' (group id) is empty"
    assert errors[5] == "long.csv: line 6: field 'cand' is null"
    assert errors[6] == "long.csv: line 7: field 'h' is not a number ('high')"
    with pytest.raises(ValueError, match="long.csv: line 4: field 'source' differs"):
        read_candidates(records, "long.csv", group_column="g", candidate_column="cand", on_error="raise")


MALFORMED = [
    (5, "'candidates' is not a list (int)"),
    ({"a": 1}, "'candidates' is not a list (dict)"),
    ('["a", "b"', "'candidates' is not a JSON list"),
    ('{"a": 1}', "'candidates' is not a list (dict)"),
    ([], "'candidates' is an empty list"),
    ("[]", "'candidates' is an empty list"),
    (None, "'candidates' is missing"),
    (["ok", None], "'candidates[1]' is null"),
    (["ok", 7], "'candidates[1]' is not text (int)"),
]


@pytest.mark.parametrize(("value", "message"), MALFORMED)
def test_malformed_candidate_lists(value, message):
    records = [{"source": "s0", "candidates": ["fine"]}, RawRow(7, {"source": "s1", "candidates": value})]
    expected = f"in.jsonl: line 7: field {message}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        read_candidates(records, "in.jsonl", on_error="raise")
    frame = candidates_frame(read_candidates(records, "in.jsonl"))  # default: flag the row, keep it
    assert set(frame["group_position"]) == {0, 1}
    assert frame["error"].iloc[0] is None
    bad = frame[frame["group_position"] == 1]
    assert [e for e in bad["error"] if e is not None] and all(
        e.startswith(expected) for e in bad["error"] if e is not None
    )


def test_other_row_problems_are_flagged():
    records = [
        {"source": "  ", "candidates": ["a", "b"], "h": [1, 2]},
        {"source": "s", "candidates": ["a", "b"], "h": [1]},
        {"source": 3, "candidates": ["a"], "h": [1]},
    ]
    frame = candidates_frame(read_candidates(records, "f.jsonl", human_column="h"))
    assert frame["error"].tolist() == [
        "f.jsonl: line 1: field 'source' is empty",
        "f.jsonl: line 1: field 'source' is empty",
        "f.jsonl: line 2: field 'h' has 1 scores for 2 candidates",
        "f.jsonl: line 2: field 'h' has 1 scores for 2 candidates",
        "f.jsonl: line 3: field 'source' is not text",
    ]
    with pytest.raises(ValueError, match="no column 'cands'.*columns: candidates, h, source"):
        read_candidates(records, "f.jsonl", candidates_column="cands")
    with pytest.raises(
        ValueError, match="f.jsonl: line 2: duplicate id 'x' in field 'id' \\(first at line 1\\)"
    ):
        read_candidates([{**r, "id": "x"} for r in records], "f.jsonl", id_column="id")
    with pytest.raises(ValueError, match="f.jsonl: line 1: field 'id' \\(id\\) is empty"):
        read_candidates([{**r, "id": None} for r in records], "f.jsonl", id_column="id")
    with pytest.raises(ValueError, match="on_error"):
        read_candidates(records, on_error="skip")


def test_rank_within_groups_ties_nan_and_errors():
    frame = pd.DataFrame(
        {
            "group_position": [0, 0, 0, 0, 0, 1, 1, 1],
            "candidate_index": pd.array([0, 1, 2, 3, 4, 0, 1, 2], dtype="Int64"),
            "score": [-1.0, -0.5, -1.0, np.nan, -0.5, 2.0, 2.0, 3.0],
            "error": [None, None, None, None, None, None, "bad", None],
        }
    )
    assert rank_within_groups(frame).tolist() == [3, 1, 4, 5, 2, 2, pd.NA, 1]


@pytest.fixture(scope="module", params=["t5", "bart"])
def model_and_tokenizer(request, tmp_path_factory):
    kind = request.param
    tok = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), kind)
    return make_tiny_model(kind, init_scale=1.0 if kind == "t5" else 5.0), tok


@pytest.mark.parametrize("score", ["mean_logprob", "sum_logprob"])
def test_ranking_matches_scores_from_hugging_face(model_and_tokenizer, score):
    model, tok = model_and_tokenizer
    rows = read_candidates(WIDE, id_column="id", reference_column="reference", human_column="human")
    out, summary = rerank(rows, model, tok, ScoreOptions(score=score, max_tokens_per_batch=64))
    expected_scores = []
    for row in rows:
        x = tok(row.source, return_tensors="pt")
        y = tok(text_target=row.candidate, return_tensors="pt").input_ids
        with torch.no_grad():
            loss = model(**x, labels=y).loss.item()
        expected_scores.append(-loss if score == "mean_logprob" else -loss * y.shape[1])
    assert np.allclose(out["score"].astype(float), expected_scores, atol=1e-4)
    for _, part in out.assign(hf=expected_scores).groupby("group_position"):
        distinct = np.unique(np.round(part["hf"], 6))
        assert len(distinct) < 2 or np.diff(distinct).min() > 1e-3  # order not decided by float noise
        order = sorted(zip(-part["hf"].round(6), part["candidate_index"], strict=True))
        expected_rank = {int(idx): r + 1 for r, (_, idx) in enumerate(order)}
        assert [expected_rank[int(i)] for i in part["candidate_index"]] == part["rank"].tolist()
    # the duplicate candidate ("return the value" at 0 and 2) ties exactly and the earlier one ranks first
    a = out[out["group_id"] == "a"]
    assert a["score"].iloc[0] == a["score"].iloc[2] and a["rank"].iloc[0] < a["rank"].iloc[2]
    assert summary["candidates_scored"] == 9 and summary["rows_with_error"] == 0
    assert summary["score"] == score and summary["rank_by"] == "src->hyp"


def test_flagged_rows_pass_through_rerank_unscored(model_and_tokenizer):
    model, tok = model_and_tokenizer
    records = [*WIDE, {"source": "s", "candidates": []}, {"source": "s", "candidates": ["close", None]}]
    rows = read_candidates(records, "in.jsonl", reference_column="reference")
    out, summary = rerank(rows, model, tok)
    assert len(out) == len(rows) == 9 + 1 + 2
    bad = out["error"].notna()
    assert bad.sum() == 2 and out.loc[bad, "rank"].isna().all() and out.loc[bad, "score"].isna().all()
    assert out.loc[~bad, "rank"].notna().all()
    assert (summary["groups"], summary["rows_with_error"], summary["candidates_scored"]) == (5, 2, 10)


def test_rerank_other_directions_need_references(model_and_tokenizer):
    model, tok = model_and_tokenizer
    rows = read_candidates(WIDE, reference_column="reference")
    out, _ = rerank(rows, model, tok, ScoreOptions(rank_by="F", directions=("ref->hyp", "hyp->ref")))
    f = (out["score_ref_hyp"].astype(float) + out["score_hyp_ref"].astype(float)) / 2
    assert np.allclose(out["score_f"].astype(float), f) and out["score"].equals(out["score_f"])
    with pytest.raises(ValueError, match="need references"):
        rerank(read_candidates(WIDE), model, tok, ScoreOptions(rank_by="ref->hyp"))


def test_meta_evaluation_against_rouge_score_and_scipy():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rng = np.random.default_rng(0)
    frame = candidates_frame(
        read_candidates(WIDE, id_column="id", reference_column="reference", human_column="human")
    )
    frame["score"] = rng.normal(size=len(frame))
    frame.loc[frame["group_id"] == "b", "human_score"] = 1.0  # constant: correlation undefined, skipped
    frame["rank"] = rank_within_groups(frame)
    frame["nonfinite"] = False
    summary = meta_evaluate(frame)

    rouge = [scorer.score(r, c) for r, c in zip(frame["reference"], frame["candidate"], strict=True)]
    for key in ("rouge1", "rouge2", "rougeL"):
        frame[key] = [s[key].fmeasure for s in rouge]
    top, first, oracle, taus, rhos = [], [], [], [], []
    for _, g in frame.groupby("group_position"):
        top.append(g[g["rank"] == 1].iloc[0])
        first.append(g.iloc[0])
        mean = (g["rouge1"] + g["rouge2"] + g["rougeL"]) / 3
        oracle.append(g.loc[mean.idxmax()])
        if len(g) > 1:
            taus.append(stats.kendalltau(g["score"], g["rougeL"]).statistic)
            rhos.append(stats.spearmanr(g["score"], g["rougeL"]).statistic)
    for name, rows in (("top", top), ("first", first), ("oracle", oracle)):
        for key in ("rouge1", "rouge2", "rougeL"):
            assert summary["rouge"][name][key] == pytest.approx(np.mean([r[key] for r in rows]))
    assert summary["rouge"]["groups"] == 3
    corr = summary["correlation"]["rougeL"]
    assert corr["kendall_tau"] == pytest.approx(np.mean(taus)) and corr["spearman"] == pytest.approx(
        np.mean(rhos)
    )
    assert (corr["groups"], corr["groups_too_few"], corr["groups_constant"]) == (2, 1, 0)
    human = summary["correlation"]["human"]
    a = frame[frame["group_id"] == "a"]
    assert human["kendall_tau"] == pytest.approx(
        stats.kendalltau(a["score"], a["human_score"].astype(float)).statistic
    )
    assert (human["groups"], human["groups_constant"], human["groups_too_few"]) == (1, 1, 1)
    assert summary["rouge"]["oracle"]["rougeL"] >= summary["rouge"]["top"]["rougeL"]


def test_group_correlations_tau_b_with_ties():
    df = pd.DataFrame({"g": [0] * 5, "s": [1.0, 2, 2, 3, 4], "r": [0.1, 0.2, 0.2, 0.1, 0.5]})
    got = group_correlations(df, "s", "r", group="g")
    assert got["kendall_tau"] == pytest.approx(stats.kendalltau(df["s"], df["r"], variant="b").statistic)
    assert got["spearman"] == pytest.approx(stats.spearmanr(df["s"], df["r"]).statistic)


def test_score_candidates_gives_typed_records_batch_by_batch(model_and_tokenizer):
    """Records out, flagged rows unscored; scoring whole groups in separate calls (as the CLI's batches do)
    gives the same records as one call over everything."""
    model, tok = model_and_tokenizer
    records = [*WIDE, {"source": "s", "candidates": []}]
    rows = read_candidates(records, "in.jsonl", id_column=None, reference_column="reference")
    options = ScoreOptions(directions=("ref->hyp",), max_tokens_per_batch=64)
    whole = score_candidates(rows, model, tok, options)
    assert all(isinstance(r, RerankRecord) for r in whole) and [r.position for r in whole] == list(range(10))
    flagged = whole[-1]
    assert flagged.error and flagged.candidate_index is None
    assert (flagged.num_tokens, flagged.score, flagged.rank, flagged.token_logprobs) == (None, None, None, [])
    scored = [r for r in whole if r.error is None]
    assert all(r.score == r.score_src_hyp and r.score_ref_hyp is not None for r in scored)
    assert all(r.num_tokens == len(r.token_logprobs) and r.nonfinite is False for r in scored)
    frame = candidates_frame(rows).assign(score=[r.score for r in whole])
    assert rank_within_groups(frame).tolist() == [pd.NA if r.rank is None else r.rank for r in whole]
    split = [
        record
        for group in sorted({r.group_position for r in rows})
        for record in score_candidates([r for r in rows if r.group_position == group], model, tok, options)
    ]
    assert [(r.rank, r.num_tokens) for r in split] == [(r.rank, r.num_tokens) for r in whole]
    assert [r.score for r in split] == pytest.approx([r.score for r in whole], abs=1e-5, nan_ok=False)


def test_rank_values_on_plain_values():
    """None (missing) ranks last; NaN and inf are not ranked, the rest of their group is ranked without them."""
    inf = float("inf")
    ranks = rank_values(
        [0, 0, 0, 1, 1, 2, 2, 2, 2],
        [0, 1, 2, 0, None, 0, 1, 2, 3],
        [-1.0, None, -1.0, float("nan"), 3.0, inf, -inf, -2.0, np.float64("nan")],
        [None] * 9,
    )
    assert ranks == [1, 3, 2, None, None, None, None, 1, None]


def test_nonfinite_score_of_any_direction_flags_the_candidate(t5_dir, tmp_path):
    """Encoder-only NaN bias: a long candidate goes NaN as the encoder input of ``hyp->ref`` (so ``F``), not
    in ``src->hyp`` (short source). The row says which scores, keeps its finite ones, and is not ranked."""
    folder = nan_bias_model(t5_dir, tmp_path / "broken", encoder=True, decoder=False)
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    group = {
        "source": "read the file",
        "reference": "read the file",
        "candidates": ["read the first line of the file and close it", "read the file", "read a line"],
    }
    rows = read_candidates([group], reference_column="reference")
    for rank_by in ("F", "src->hyp"):
        options = ScoreOptions(
            rank_by=rank_by, directions=("ref->hyp", "hyp->ref", "F"), max_tokens_per_batch=8
        )
        long, *short = score_candidates(rows, model, tok, options)
        assert long.error == "scores hyp->ref, F are not finite (non-finite logits)"
        assert long.rank is None and long.score_hyp_ref is None and long.score_f is None
        assert long.score_src_hyp is not None and np.isfinite(long.score_src_hyp)  # finite scores are kept
        assert [r.error for r in short] == [None, None] and sorted(r.rank for r in short) == [1, 2]
        frame = records_frame(score_candidates(rows, model, tok, options), RerankRecord)
        summary = meta_evaluate(add_rouge_columns(frame, "candidate", "reference"))
        assert (summary["candidates_not_finite"], summary["groups_without_finite_score"]) == (1, 0)
        assert summary["candidates_nonfinite"] == 0  # src->hyp logits were finite
