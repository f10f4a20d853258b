"""Targets and references that are not text (issue 15, item 10.4): never stringified and scored.

A target (``predict``'s reference, ``score``'s hypothesis) or a rerank reference that is a list, a number
or a dict flags its row: the row keeps its place, its ``error`` says which field and what it is, and
nothing else in the output changes. ``score``'s ``reference_column`` takes several references per row, so
there a list of texts is several references; a list holding anything but texts is flagged.
"""

from __future__ import annotations

import json

import lightning.pytorch  # noqa: F401  (its log handler binds to the session stream, not to one test's capsys)
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.cli import main
from t5score.data.candidates import read_candidates
from t5score.data.io import RawRow
from t5score.data.rows import build_rows

MAX_NEW = 4
GOOD = {"source": "return the data of the file", "target": "return the data"}
NOT_TEXT = [(["a", "b"], "list"), (7, "int"), (2.5, "float"), ({"text": "a"}, "dict"), (True, "bool")]


@pytest.fixture(scope="module")
def hf(t5_dir):
    return AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval(), AutoTokenizer.from_pretrained(t5_dir)


def _sum_logprob(hf, source: str, target: str) -> float:
    model, tok = hf
    labels = tok([target], return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(**tok([source], return_tensors="pt"), labels=labels).loss
    return -(loss * labels.shape[1]).item()


def _generate(hf, text: str) -> list[int]:
    model, tok = hf
    with torch.no_grad():
        seq = model.generate(**tok([text], return_tensors="pt"), do_sample=False, max_new_tokens=MAX_NEW)
    seq = seq[0, 1:].tolist()
    return seq[: seq.index(1) + 1] if 1 in seq else seq


def _jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize("value,kind", NOT_TEXT + [(np.array(["a"]), "ndarray")])
def test_a_target_that_is_not_text_flags_its_row(value, kind):
    records = [GOOD, {"source": "make a list", "target": value}, {"source": "", "target": value}, GOOD]
    rows = build_rows(records, "in.jsonl", target_column="target")
    assert [r.position for r in rows] == [0, 1, 2, 3]
    assert [r.error for r in rows] == [
        None,
        f"field 'target' is not text ({kind})",
        "field 'source' is empty",
        None,
    ]
    assert [r.target for r in rows] == ["return the data", None, None, "return the data"]  # never str(value)
    assert [r.source for r in rows] == [GOOD["source"], "make a list", "", GOOD["source"]]


def test_a_missing_target_is_no_reference_not_an_error():
    rows = build_rows([{"source": "a", "target": None}, {"source": "b"}], "in.jsonl", target_column="target")
    assert [(r.target, r.error) for r in rows] == [(None, None), (None, None)]


REFERENCES = [
    (["r1", "r2"], ["r1", "r2"], None),
    (["r1", None, "r2"], ["r1", "r2"], None),  # a missing item is no reference
    ('["r3"]', ["r3"], None),  # a JSON list in a CSV cell
    ("[not json", "[not json", None),  # a text that starts with "["
    ("one text", "one text", None),
    (None, None, None),
    ([], None, None),
    (7, None, "field 'refs' is not text or a list of texts (int)"),
    ({"a": "b"}, None, "field 'refs' is not text or a list of texts (dict)"),
    (["r1", 2], None, "field 'refs[1]' is not text (int)"),
    ('["r1", ["r2"]]', None, "field 'refs[1]' is not text (list)"),
    (np.array(["r1", "r2"], dtype=object), ["r1", "r2"], None),
]


@pytest.mark.parametrize("value,references,error", REFERENCES)
def test_score_references_are_texts_or_lists_of_texts(value, references, error):
    records = [RawRow(4, {"source": "s", "target": "t", "refs": value})]
    (row,) = build_rows(records, "in.jsonl", target_column="target", reference_column="refs")
    assert (row.references, row.error) == (references, error)


@pytest.mark.parametrize("value,kind", NOT_TEXT)
def test_a_rerank_reference_that_is_not_text_flags_its_candidates(value, kind):
    records = [
        {"source": "s0", "candidates": ["a", "b"], "reference": "r0"},
        RawRow(5, {"source": "s1", "candidates": ["c", "d"], "reference": value}),
    ]
    rows = read_candidates(records, "c.jsonl", reference_column="reference")
    assert [(r.group_position, r.candidate_index, r.candidate) for r in rows] == [
        (0, 0, "a"),
        (0, 1, "b"),
        (1, 0, "c"),
        (1, 1, "d"),
    ]
    message = f"c.jsonl: line 5: field 'reference' is not text ({kind})"
    assert [r.error for r in rows] == [None, None, message, message]
    assert [r.reference for r in rows] == ["r0", "r0", None, None]
    long = [RawRow(2, {"g": "x", "source": "s", "cand": "a", "reference": value})]
    (row,) = read_candidates(
        long, "l.jsonl", group_column="g", candidate_column="cand", reference_column="reference"
    )
    assert row.error == f"l.jsonl: line 2: field 'reference' is not text ({kind})"
    with pytest.raises(ValueError, match="line 5: field 'reference' is not text"):
        read_candidates(records, "c.jsonl", reference_column="reference", on_error="raise")


def test_cli_predict_flags_targets_that_are_not_text(t5_dir, hf, tmp_path):
    rows = [
        {"id": "ok0", **GOOD},
        {"id": "list", "source": "open the file", "target": ["open", "read"]},
        {"id": "number", "source": "make a new list", "target": 3},
        {"id": "dict", "source": "sort the list", "target": {"text": "sort"}},
        {"id": "ok1", "source": "read the first line", "target": "read a line"},
    ]
    path, out = tmp_path / "in.jsonl", tmp_path / "out"
    _jsonl(path, rows)
    argv = [
        "predict",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(path),
        "--output_dir",
        str(out),
    ]
    extra = [
        "--data.id_column",
        "id",
        "--data.target_column",
        "target",
        "--model.max_new_tokens",
        str(MAX_NEW),
    ]
    assert main([*argv, *extra]) == 0
    df = pd.read_parquet(out / "predictions.parquet")
    assert df["id"].tolist() == [r["id"] for r in rows] and df["source"].tolist() == [
        r["source"] for r in rows
    ]
    kinds = {"list": "list", "number": "int", "dict": "dict"}
    for row in df.itertuples():
        if row.id in kinds:
            assert row.error == f"field 'target' is not text ({kinds[row.id]})"
            assert pd.isna(row.target) and row.num_tokens == 0 and pd.isna(row.ref_logprob)
        else:
            want = next(r for r in rows if r["id"] == row.id)
            assert pd.isna(row.error) and row.target == want["target"]
            assert list(row.token_ids) == _generate(hf, want["source"])
            assert row.ref_logprob == pytest.approx(
                _sum_logprob(hf, want["source"], want["target"]), rel=1e-4
            )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 5 and summary["rows_with_error"] == 3


def test_cli_score_flags_pairs_that_are_not_text_and_takes_lists_of_references(t5_dir, hf, tmp_path):
    rows = [
        {"source": "open the file", "hyp": "read a line", "refs": ["read the first line", "open a file"]},
        {"source": "return the value", "hyp": ["get", "value"], "refs": "return a value"},
        {"source": "make a new list", "hyp": "make a list", "refs": 5},
        {"source": "sort the list", "hyp": "sort it", "refs": "sort a list"},
    ]
    path, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    _jsonl(path, rows)
    argv = ["score", "--model.name_or_path", str(t5_dir), "--data.path", str(path), "--output_dir", str(out)]
    extra = [
        "--data.target_column",
        "hyp",
        "--data.reference_column",
        "refs",
        "--model.directions",
        "[src->hyp, ref->hyp]",
    ]
    assert main([*argv, *extra, "--model.score", "sum_logprob", "--model.aggregate", "mean"]) == 0
    df = pd.read_parquet(out / "scores.parquet")
    assert df["source"].tolist() == [r["source"] for r in rows]
    assert df["error"].tolist()[1:3] == [
        "field 'hyp' is not text (list)",
        "field 'refs' is not text or a list of texts (int)",
    ]
    assert pd.isna(df["target"][1]) and df["target"][2] == "make a list"
    assert df.loc[1:2, ["sum_logprob", "score_ref_hyp"]].isna().all().all()
    for i in (0, 3):
        assert pd.isna(df["error"][i])
        assert df["sum_logprob"][i] == pytest.approx(
            _sum_logprob(hf, rows[i]["source"], rows[i]["hyp"]), rel=1e-4
        )
    refs = rows[0]["refs"]  # several references: their mean (--model.aggregate mean)
    want = np.mean([_sum_logprob(hf, r, rows[0]["hyp"]) for r in refs])
    assert df["score_ref_hyp"][0] == pytest.approx(want, rel=1e-4)


def test_cli_rerank_flags_a_reference_that_is_not_text(t5_dir, tmp_path):
    groups = [
        {"id": "g1", "source": "open the file", "reference": "read a line", "candidates": ["read", "open"]},
        {"id": "g2", "source": "return the value", "reference": ["get", "value"], "candidates": ["get", "x"]},
        {"id": "g3", "source": "make a list", "reference": "a list", "candidates": ["list"]},
    ]
    path, out = tmp_path / "cands.jsonl", tmp_path / "out"
    _jsonl(path, groups)
    argv = ["rerank", "--model.name_or_path", str(t5_dir), "--data.path", str(path), "--output_dir", str(out)]
    assert main([*argv, "--data.id_column", "id", "--data.reference_column", "reference"]) == 0
    df = pd.read_parquet(out / "reranked.parquet")
    assert df["group_id"].tolist() == ["g1", "g1", "g2", "g2", "g3"]
    assert df["candidate"].tolist() == ["read", "open", "get", "x", "list"]
    bad = df[df["group_id"] == "g2"]
    assert (bad["error"] == f"{path}: line 2: field 'reference' is not text (list)").all()
    assert bad["rank"].isna().all() and bad["score"].isna().all() and bad["reference"].isna().all()
    good = df[df["group_id"] != "g2"]
    assert good["error"].isna().all() and good["rank"].notna().all()
    assert good["reference"].tolist() == ["read a line", "read a line", "a list"]
