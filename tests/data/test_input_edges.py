"""Input edge cases of issue 15 (item 10): huge CSV fields, repeated column names, user columns named like
t5score's own bookkeeping, and references that are not text.

Each case goes through the reader (``read_records`` and the row builders) and, where it is a user mistake,
through the CLI: one ``t5score: error:`` line, exit 2.
"""

from __future__ import annotations

import csv
import json
import re

import lightning.pytorch  # noqa: F401  (its log handler binds to the session stream, not to one test's capsys)
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.api import Predictor
from t5score.cli import main
from t5score.data.candidates import read_candidates
from t5score.data.io import InputError, RawRow, read_records
from t5score.data.rows import build_rows
from tests.helpers.cli import assert_user_error

BIG = 300_000  # over the csv module's default field limit (131,072 characters)
MAX_NEW = 4


@pytest.fixture(scope="module")
def hf(t5_dir):
    """The independent reference: the saved model and tokenizer through Hugging Face directly."""
    return AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval(), AutoTokenizer.from_pretrained(t5_dir)


def _generate(hf, text: str) -> list[int]:
    model, tok = hf
    enc = tok([text], return_tensors="pt", truncation=True, max_length=512)
    with torch.no_grad():
        seq = model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=MAX_NEW)[0, 1:].tolist()
    return seq[: seq.index(1) + 1] if 1 in seq else seq  # up to and including EOS, as the contract says


def _predict(t5_dir, path, out, *extra) -> int:
    argv = [
        "predict",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(path),
        "--output_dir",
        str(out),
    ]
    return main([*argv, "--model.max_new_tokens", str(MAX_NEW), *extra])


def _big_text() -> str:
    words = ('the data 数据 of a file, "quoted"\nline ' * (BIG // 30 + 1))[:BIG]
    assert len(words) == BIG
    return words


@pytest.mark.parametrize("sep,suffix", [(",", "csv"), ("\t", "tsv")])
def test_a_field_over_the_csv_limit_arrives_intact(tmp_path, sep, suffix):
    big = _big_text()
    path = tmp_path / f"big.{suffix}"
    with path.open("w", encoding="utf-8", newline="") as handle:  # the csv module as the writer
        writer = csv.writer(handle, delimiter=sep)
        writer.writerows([["id", "source"], ["a", "short"], ["b", big], ["c", "after"]])
    before = csv.field_size_limit()
    rows = read_records(path)
    assert csv.field_size_limit() == before  # the limit is raised for the read only
    assert [r.values["source"] for r in rows] == ["short", big, "after"]
    # each row is numbered by the line it starts on (the big field spans many lines)
    assert [r.line for r in rows] == [2, 3, 3 + big.count("\n") + 1]


def test_rows_are_numbered_by_their_first_line(tmp_path):
    """A quoted cell over several lines, blank lines between records, a short row: each row names the
    line it starts on, as an editor shows it."""
    path = tmp_path / "lines.csv"
    path.write_text('id,source\n\n"a","one\ntwo\r\nthree"\n\nb,x\nc\n', encoding="utf-8", newline="")
    rows = read_records(path)
    assert [r.line for r in rows] == [3, 7, 8]
    assert rows[0].values["source"] == "one\ntwo\r\nthree"
    assert rows[2].error == "line 8: 1 of the header's 2 fields (missing: 'source')"
    assert rows[2].values == {"id": "c", "source": None}


# --- repeated column names: the file is refused, naming the file, the name(s) and their positions --------

REPEATED = [
    ("dup.csv", "id,source,source\n1,a,b\n", ["line 1", "'source' (columns 2 and 3)"]),
    (
        "dup.tsv",
        "a\tsource\ta\tb\tb\tb\n1\tx\t2\t3\t4\t5\n",
        ["'a' (columns 1 and 3)", "'b' (columns 4, 5 and 6)"],
    ),
    ("dup_late.csv", "\n\nsource,x,x\ns,1,2\n", ["line 3", "'x' (columns 2 and 3)"]),  # blank lines first
    ("two_unnamed.csv", "source,,\ns,1,2\n", ["'' (columns 2 and 3)"]),  # two trailing delimiters
    ("dup.jsonl", '{"source": "a"}\n{"source": "a", "id": 1, "source": "b"}\n', ["line 2", "key 'source'"]),
    ("dup_nested.jsonl", '{"source": "a", "meta": {"k": 1, "k": 2}}\n', ["line 1", "key 'k'"]),
]


@pytest.mark.parametrize("name,content,needles", REPEATED, ids=[c[0] for c in REPEATED])
def test_a_repeated_column_name_is_refused(tmp_path, name, content, needles):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match="repeated") as caught:
        read_records(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_a_parquet_file_with_a_repeated_column_name_is_refused(tmp_path):
    path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array([1]), pa.array(["b"])], names=["source", "n", "source"]
    )
    pq.write_table(table, path)  # pyarrow writes it; reading it back is where it goes wrong
    with pytest.raises(
        InputError, match=re.escape(f"{path}: repeated column names: 'source' (columns 1 and 3)")
    ):
        read_records(path)


def test_one_unnamed_column_is_an_ordinary_column(tmp_path):
    """pandas' ``to_csv`` writes its index under an empty name: one unnamed column is read, and ignored
    unless chosen; two are refused above (their cells would overwrite each other)."""
    path = tmp_path / "index.csv"
    pd.DataFrame({"source": ["a", "b"], "target": ["x", "y"]}).to_csv(path)  # header ",source,target"
    rows = read_records(path)
    assert [(r.values[""], r.values["source"], r.values["target"]) for r in rows] == [
        ("0", "a", "x"),
        ("1", "b", "y"),
    ]
    built = build_rows(rows, path, "source", "target")
    assert [(r.source, r.target, r.error) for r in built] == [("a", "x", None), ("b", "y", None)]


def test_a_dataframe_with_a_repeated_column_name_is_refused(t5_dir):
    """pandas' ``to_dict`` would keep the last of the repeated columns (with a warning)."""
    frame = pd.DataFrame([["a", "b"]], columns=["source", "source"])
    predictor = Predictor.from_pretrained(str(t5_dir))
    with pytest.raises(
        InputError, match=re.escape("<DataFrame>: repeated column names: 'source' (columns 1 and 2)")
    ):
        predictor.predict(frame, max_new_tokens=2)
    with pytest.raises(InputError, match="repeated column names: 'source'"):
        read_candidates(frame.assign(candidates=[["c"]]))


@pytest.mark.parametrize(
    "name,content,needle",
    [
        (
            "dup.csv",
            "id,source,target,source\n1,a,b,c\n",
            "line 1: repeated column names: 'source' (columns 2 and 4)",
        ),
        ("dup.jsonl", '{"source": "a"}\n{"source": "b", "source": "c"}\n', "line 2: key 'source' repeated"),
    ],
)
def test_cli_refuses_a_repeated_column_name(t5_dir, tmp_path, capsys, name, content, needle):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    argv = [
        "predict",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(path),
        "--output_dir",
        str(out),
    ]
    line = assert_user_error(capsys, argv, "repeated")
    assert line.startswith(f"t5score: error: {path}: {needle}"), line
    assert not out.exists()


# --- user columns named like t5score's bookkeeping are ordinary columns ----------------------------------

INTERNAL = [
    {"__line__": "k1", "__error__": "return the data of the file", "note": "x"},
    {"__line__": "k2", "__error__": "make a new list", "note": ""},
]


def _internal_file(tmp_path, suffix):
    path = tmp_path / f"internal.{suffix}"
    frame = pd.DataFrame(INTERNAL)
    if suffix == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in INTERNAL), encoding="utf-8")
    elif suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_columns_named_like_the_bookkeeping_are_read_as_columns(tmp_path, suffix):
    path = _internal_file(tmp_path, suffix)
    rows = read_records(path)
    assert [r.values for r in rows] == INTERNAL  # nothing overwritten, nothing added
    assert [r.line for r in rows] == ([2, 3] if suffix == "csv" else [1, 2])
    assert [r.error for r in rows] == [None, None]
    built = build_rows(rows, path, source_column="__error__", id_column="__line__", target_column="note")
    assert [(r.id, r.source, r.target, r.error) for r in built] == [
        ("k1", "return the data of the file", "x", None),
        ("k2", "make a new list", "", None),
    ]
    cands = read_candidates(
        [RawRow(r.line, {**r.values, "c": ["a"]}) for r in rows],
        path,
        source_column="__error__",
        candidates_column="c",
    )
    assert [(c.line, c.source, c.error) for c in cands] == [
        (rows[0].line, INTERNAL[0]["__error__"], None),
        (rows[1].line, INTERNAL[1]["__error__"], None),
    ]


def test_the_python_api_reads_bookkeeping_named_columns_as_columns(t5_dir):
    frame = pd.DataFrame(INTERNAL)
    out = Predictor.from_pretrained(str(t5_dir)).predict(
        frame, source_column="__error__", id_column="__line__", max_new_tokens=2
    )
    assert out["id"].tolist() == ["k1", "k2"] and out["error"].isna().all()
    assert out["source"].tolist() == frame["__error__"].tolist() and (out["num_tokens"] > 0).all()
    cands = read_candidates(frame.assign(c=[["a"], ["b"]]), source_column="__error__", candidates_column="c")
    assert [(c.line, c.candidate, c.error) for c in cands] == [(1, "a", None), (2, "b", None)]


def test_a_short_csv_row_is_flagged_for_rerank_too(tmp_path):
    """The reader's own row error reaches the candidates reader (a row missing its reference is not
    scored without it)."""
    path = tmp_path / "cands.csv"
    path.write_text('source,candidates,reference\ns1,"[""a""]",r1\ns2,"[""b""]"\n', encoding="utf-8")
    cands = read_candidates(read_records(path), path, reference_column="reference")
    assert [c.error for c in cands] == [
        None,
        f"{path}: line 3: 2 of the header's 3 fields (missing: 'reference')",
    ]
    assert [c.candidate for c in cands] == ["a", "b"] and [c.line for c in cands] == [2, 3]


def test_cli_decodes_a_source_column_named_error(t5_dir, hf, tmp_path):
    path = _internal_file(tmp_path, "csv")
    out = tmp_path / "out"
    argv = [
        "--data.source_column",
        "__error__",
        "--data.id_column",
        "__line__",
        "--data.target_column",
        "note",
    ]
    assert _predict(t5_dir, path, out, *argv) == 0
    df = pd.read_parquet(out / "predictions.parquet")
    assert df["id"].tolist() == ["k1", "k2"] and df["error"].isna().all()
    assert df["source"].tolist() == [r["__error__"] for r in INTERNAL]
    assert df["target"].tolist() == ["x", ""]
    for row in df.itertuples():
        assert list(row.token_ids) == _generate(hf, row.source)
