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
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    got = rouge_scores(PREDS, REFS)
    for row, pred, ref in zip(got, PREDS, REFS, strict=True):
        expected = scorer.score(ref, pred)
        assert row == {k: expected[k].fmeasure for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
        assert row["rougeLsum"] == row["rougeL"]  # one-line texts: summary-level LCS is the LCS
    # stemming is on: "cats"/"cat" and "running"/"ran" would differ without it
    plain = (
        rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False).score(REFS[0], PREDS[0])["rouge1"].fmeasure
    )
    assert got[0]["rouge1"] > plain
    # keys selects the measures: P = 2/4, R = 2/2, F1 = 2/3
    assert rouge_scores(["a b c d"], ["a b"], keys=("rouge1",)) == [{"rouge1": pytest.approx(2 / 3)}]


def test_missing_values_give_none_and_bad_input_is_clear():
    got = rouge_scores([None, "x", np.nan, "y", pd.NA], ["x", None, "x", float("nan"), "y"])
    assert got == [{"rouge1": None, "rouge2": None, "rougeL": None, "rougeLsum": None}] * 5
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
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
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


# Sentences one per line, as Hugging Face's summarization examples prepare texts for evaluate's rouge
# ("\n".join(nltk.sent_tokenize(text))); the second pair has its sentences in the other order.
MULTI_PREDS = [
    "the cat sat on the mat.\nit was happy.",
    "the file is read.\nthe value is returned.",
    "one line only",
    "first part.\n\nsecond part after a blank line.",
]
MULTI_REFS = [
    "a cat sat on a mat.\nthe cat was happy.",
    "the value is returned.\nthe file is read.",
    "one line\nthen another line",
    "first part.\nsecond part.",
]


def test_rouge_lsum_is_summary_level_over_lines_as_rouge_score():
    """rougeLsum splits both texts on newlines (rouge_score's default split_summaries=False, which
    evaluate's rouge keeps), skipping empty lines; against rouge_score called directly, and unlike rougeL
    when the sentences come in another order."""
    got = rouge_scores(MULTI_PREDS, MULTI_REFS, keys=("rougeL", "rougeLsum"))
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    for row, pred, ref in zip(got, MULTI_PREDS, MULTI_REFS, strict=True):
        expected = scorer.score(ref, pred)
        assert row["rougeLsum"] == expected["rougeLsum"].fmeasure
        assert row["rougeL"] == expected["rougeL"].fmeasure
    assert got[1]["rougeLsum"] == pytest.approx(1.0) and got[1]["rougeL"] < 0.75
    # the same texts on one line: rougeLsum falls back to rougeL
    flat = rouge_scores(
        [p.replace("\n", " ") for p in MULTI_PREDS], [r.replace("\n", " ") for r in MULTI_REFS]
    )
    assert [r["rougeLsum"] for r in flat] == [r["rougeL"] for r in flat]
    frame = pd.DataFrame({"prediction": MULTI_PREDS, "target": MULTI_REFS, "error": [None] * 4})
    assert add_rouge_columns(frame, "prediction", "target")["rougeLsum"].tolist() == [
        r["rougeLsum"] for r in rouge_scores(MULTI_PREDS, MULTI_REFS)
    ]
