"""The ROUGE wrapper against ``rouge_score`` called directly."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from rouge_score import rouge_scorer

import t5score.scoring.rouge
from t5score.scoring.rouge import ROUGE_KEYS, add_rouge_columns, rouge_scores

PREDS = ["the cats were running home", "", "a completely different sentence", "Dogs barked loudly."]
REFS = ["the cat ran home quickly", "something", "a different sentence entirely", "the dog barks loud"]


def test_matches_rouge_score_directly():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    got = rouge_scores(PREDS, REFS)
    for row, pred, ref in zip(got, PREDS, REFS, strict=True):
        expected = scorer.score(ref, pred)
        assert row == {k: expected[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")}
    # stemming is on: "cats"/"cat" and "running"/"ran" would differ without it
    plain = (
        rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False).score(REFS[0], PREDS[0])["rouge1"].fmeasure
    )
    assert got[0]["rouge1"] > plain
    # keys selects the measures: P = 2/4, R = 2/2, F1 = 2/3
    assert rouge_scores(["a b c d"], ["a b"], keys=("rouge1",)) == [{"rouge1": pytest.approx(2 / 3)}]


def test_missing_values_give_none_and_bad_input_is_clear():
    got = rouge_scores([None, "x", np.nan, "y", pd.NA], ["x", None, "x", float("nan"), "y"])
    assert got == [{"rouge1": None, "rouge2": None, "rougeL": None}] * 5
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unknown ROUGE keys"):
        rouge_scores(["a"], ["a"], keys=("rouge3x",))
    with pytest.raises(ValueError, match="pair 0"):
        rouge_scores([3], ["a"])


def test_docstring_example():
    assert doctest.testmod(t5score.scoring.rouge).failed == 0


def test_add_rouge_columns_for_predictions_and_candidates():
    """One column-adding function serves predict (prediction vs target) and rerank (candidate vs reference):
    values from rouge_score directly, null where a side is missing or the row is flagged; input untouched."""
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    frame = pd.DataFrame(
        {
            "prediction": [PREDS[0], None, PREDS[2], PREDS[3]],
            "target": [REFS[0], REFS[1], None, REFS[3]],
            "error": [None, None, None, "bad row"],
        },
        index=[10, 11, 12, 13],
    )
    out = add_rouge_columns(frame, "prediction", "target")
    assert list(frame.columns) == ["prediction", "target", "error"]  # a copy
    assert list(out.columns) == ["prediction", "target", "error", *ROUGE_KEYS]
    assert list(out.index) == [10, 11, 12, 13]
    for key in ROUGE_KEYS:
        assert str(out[key].dtype) == "Float64"
        assert out[key].iloc[0] == pytest.approx(scorer.score(REFS[0], PREDS[0])[key].fmeasure)
        assert out[key].iloc[1:].isna().all()
    renamed = frame.rename(columns={"prediction": "candidate", "target": "reference"})
    again = add_rouge_columns(renamed, "candidate", "reference")
    assert again[list(ROUGE_KEYS)].equals(out[list(ROUGE_KEYS)])
