"""The bad-input battery of ``t5score predict`` (issue 8, item 4; issue 2, items 7, 10, 11).

File-level problems: exit 2, one ``t5score: error:`` line naming the file (and the line or field), no
traceback, no output folder. Row-level problems: exit 0, every input row present once, in input order,
the bad rows flagged in ``error`` and not decoded, the others equal to Hugging Face ``generate``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import lightning.pytorch  # noqa: F401  (imported here, so its log handler binds to pytest's session stream, not to one test's capsys)
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import t5score
from t5score.cli import main

MAX_NEW = 4
# Lines other than t5score's own that may precede the error line: none (Lightning's banner is silenced).
LIGHTNING_BANNER: tuple[str, ...] = ()
UNICODE = [
    "the data 数据 of 文件",  # CJK
    "return 😀 the 👩‍👩‍👧 value",  # emoji, incl. a zero-width-joiner sequence
    "שלום open العربية the file",  # right-to-left scripts
    "a\u2028line\u2029sep \x85nel\x0cff end",  # characters str.splitlines() treats as line breaks
]
LONG = ("the data of a file " * 2700)[:50_000]


@pytest.fixture(scope="module")
def hf(t5_dir):
    """The independent reference: the saved model and tokenizer through Hugging Face directly."""
    return AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval(), AutoTokenizer.from_pretrained(t5_dir)


def _generate(hf, text: str, max_length: int | None = 512) -> list[int]:
    model, tok = hf
    enc = tok([text], return_tensors="pt", truncation=max_length is not None, max_length=max_length)
    with torch.no_grad():
        seq = model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=MAX_NEW)[0, 1:].tolist()
    return seq[: seq.index(1) + 1] if 1 in seq else seq  # up to and including EOS, as the contract says


def _predict(t5_dir, path, out, *extra) -> int:
    return main(
        [
            "predict",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(path),
            "--model.max_new_tokens",
            str(MAX_NEW),
            "--output_dir",
            str(out),
            *extra,
        ]
    )


def _error_line(capsys) -> str:
    """The single ``t5score: error:`` line t5score wrote on stderr (a real process: see the subprocess test)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [
        line
        for line in err.splitlines()
        if line.strip() and not line.removeprefix("INFO: ").startswith(LIGHTNING_BANNER)
    ]
    assert len(lines) == 1, lines
    assert lines[0].startswith("t5score: error: "), lines
    return lines[0]


def _write(path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _jsonl(*records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


# (file name, content, extra options, [parts the message must hold]); "{path}" is the input file
FILE_ERRORS = [
    ("empty.jsonl", b"", [], ["the file has no rows"]),
    ("blank.jsonl", "\n  \n\n", [], ["the file has no rows"]),
    ("empty.csv", b"", [], ["the file is empty"]),
    ("header_only.csv", "id,source\n", [], ["the file has no rows"]),
    ("not_json.jsonl", '{"source": "a"}\n\n{"source": oops}\n', [], ["line 3: not valid JSON"]),
    ("truncated_json.jsonl", '{"source": "a"}\n{"source": "b"\n', [], ["line 2: not valid JSON"]),
    ("list_line.jsonl", '{"source": "a"}\n["a", "b"]\n', [], ["line 2: expected a JSON object, got list"]),
    ("string_line.jsonl", '"the data"\n', [], ["line 1: expected a JSON object, got str"]),
    (
        "missing_column.jsonl",
        '{"id": 1, "sorce": "a"}\n',
        [],
        ["no column 'source'", "did you mean 'sorce'?", "columns: id, sorce"],
    ),
    (
        "missing_column.csv",
        "key,text\n1,a\n",
        ["--data.source_column", "txt"],
        ["no column 'txt'", "did you mean 'text'?", "columns: key, text"],
    ),
    ("missing_id.jsonl", '{"source": "a"}\n', ["--data.id_column", "key"], ["no column 'key'"]),
    (
        "latin1.jsonl",
        b'{"source": "a"}\n{"source": "b"}\n{"source": "caf\xe9"}\n',
        [],
        ["line 3", "not UTF-8"],
    ),
    ("latin1.csv", b"source\nthe\ncaf\xe9\n", [], ["line 3", "not UTF-8"]),
    ("utf16.jsonl", '{"source": "a"}\n'.encode("utf-16"), [], ["line 1", "not UTF-8"]),
    (
        "dup_ids.jsonl",
        _jsonl({"id": "a", "source": "x"}, {"id": "b", "source": "y"}, {"id": "a", "source": "z"}),
        ["--data.id_column", "id"],
        ["line 3: duplicate id 'a'", "first at line 1", "'id'"],
    ),
    (
        "null_id.jsonl",
        _jsonl({"id": "a", "source": "x"}, {"id": None, "source": "y"}),
        ["--data.id_column", "id"],
        ["line 2: field 'id' (id) is empty"],
    ),
    (
        "blank_id.csv",
        "id,source\na,x\n ,y\n",
        ["--data.id_column", "id"],
        ["line 3: field 'id' (id) is empty"],
    ),
    ("long_row.csv", "id,source\n1,the data\n2,a,b\n", [], ["line 3: more fields than the header has"]),
    (
        "open_quote.csv",
        'id,source\n1,the data\n2,"open the file\n3,make a list\n',
        [],
        ["line 3: malformed CSV", "never closed"],
    ),
    ("stray_quote.tsv", 'id\tsource\n1\t"the" data\n', [], ["line 2: malformed TSV"]),
    ("fake.parquet", "not parquet at all", [], ["not a readable Parquet file"]),
    ("input.txt", "the data\n", [], ["unknown file type '.txt'", ".jsonl"]),
    ("folder.jsonl", None, [], ["is a folder"]),
    ("absent.jsonl", "", ["--data.path", "{path}.missing"], ["no such file"]),
    ("ok.jsonl", '{"source": "the"}\n', ["--data.batch_size", "0"], ["batch_size must be >= 1", "got 0"]),
    (
        "ok.jsonl",
        '{"source": "the"}\n',
        ["--data.max_source_length", "0"],
        ["max_source_length must be >= 1"],
    ),
    ("ok.jsonl", '{"source": "the"}\n', ["--model.capture", "bogus"], ["capture must be one of", "'bogus'"]),
]


@pytest.mark.parametrize(
    "name,content,extra,needles", FILE_ERRORS, ids=[f"{c[0]}{''.join(c[2][:1])}" for c in FILE_ERRORS]
)
def test_file_level_problem_is_one_line_and_exit_2(t5_dir, tmp_path, capsys, name, content, extra, needles):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        _write(path, content)
    extra = [e.replace("{path}", str(path)) for e in extra]
    out = tmp_path / "out"
    assert _predict(t5_dir, path, out, *extra) == 2
    line = _error_line(capsys)
    for needle in needles:
        assert needle in line, line
    if not any(e.startswith("--model.") or e.endswith("_length") or e.endswith("batch_size") for e in extra):
        assert str(path) in line, line  # names the file
    assert not out.exists()  # refused before anything was written: the same command can simply be rerun


def test_model_path_that_does_not_exist(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    _write(path, '{"source": "the"}\n')
    missing = tmp_path / "no_such_model"
    assert _predict(missing, path, tmp_path / "out") == 2
    line = _error_line(capsys)
    assert str(missing) in line and "config.json" in line


def test_model_path_error_leaves_no_output_folder(tmp_path):
    path = tmp_path / "in.jsonl"
    _write(path, '{"source": "the"}\n')
    assert _predict(tmp_path / "no_such_model", path, tmp_path / "out") == 2
    assert not (tmp_path / "out").exists()


def test_row_level_problems_are_flagged_and_nothing_is_dropped(t5_dir, hf, tmp_path):
    """Null, empty, whitespace, number and absent sources; unicode; a 50,000-character source."""
    records = [
        {"id": "good0", "source": "return the data of the file"},
        {"id": "null", "source": None},
        {"id": "empty", "source": ""},
        {"id": "space", "source": " \t\n  "},
        {"id": "number", "source": 42},
        {"id": "absent"},
        *({"id": f"uni{i}", "source": s} for i, s in enumerate(UNICODE)),
        {"id": "long", "source": LONG},
        {"id": "good1", "source": "make a new list"},
    ]
    path = tmp_path / "in.jsonl"
    _write(path, _jsonl(*records))  # ensure_ascii=False: raw CJK, emoji, U+2028 ... in the file
    out = tmp_path / "out"
    assert _predict(t5_dir, path, out, "--data.id_column", "id", "--data.batch_size", "3") == 0
    df = pd.read_parquet(out / "predictions.parquet")
    assert df["id"].tolist() == [r["id"] for r in records]  # none dropped, none doubled, input order

    flagged = {
        "null": "is empty",
        "empty": "is empty",
        "space": "is empty",
        "number": "is not text (int)",
        "absent": "is empty",
    }
    for row in df.itertuples():
        if row.id in flagged:
            assert flagged[row.id] in row.error and "'source'" in row.error
            assert row.num_tokens == 0 and len(row.token_ids) == 0  # not decoded
        else:
            assert pd.isna(row.error), row.error
            want = next(r["source"] for r in records if r["id"] == row.id)
            assert row.source == want  # unicode round-trips unchanged
            assert list(row.token_ids) == _generate(hf, want)
    assert df.set_index("id").loc["number", "source"] == "42"
    long = df.set_index("id").loc["long"]
    assert len(hf[1](LONG)["input_ids"]) > 512  # the reference says it is longer than max_source_length
    assert long["truncated"] and long["num_tokens"] > 0 and pd.isna(long["error"])
    assert not df.loc[df["id"] != "long", "truncated"].any()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == len(records) and summary["rows_with_error"] == len(flagged)
    assert summary["rows_truncated"] == 1 and summary["rows_nonfinite"] == 0


def test_csv_ragged_short_row_is_flagged_and_quoting_round_trips(t5_dir, hf, tmp_path):
    text = (
        "\ufeffid,source,target\n"  # a byte-order mark, as Excel writes it
        "r1,the data,return the data\n"
        'r2,"open the file, read the first line",read\n'  # delimiter inside quotes
        "r3,make a new list\n"  # ragged: no target cell
        'r4,"a ""quoted"" multi\nline 数据 😀",\n'  # doubled quotes, a newline inside a cell, empty target
        "r5,,x\n"  # empty source
    )
    path = tmp_path / "in.csv"
    _write(path, text)
    out = tmp_path / "out"
    assert _predict(t5_dir, path, out, "--data.id_column", "id", "--data.target_column", "target") == 0
    df = pd.read_parquet(out / "predictions.parquet").set_index("id")
    ref = pd.read_csv(path, dtype=str, keep_default_na=False)  # pandas as the independent CSV reader
    assert df.index.tolist() == ref["id"].tolist() == ["r1", "r2", "r3", "r4", "r5"]
    assert df["source"].tolist() == ref["source"].tolist()
    assert "line 4" in df.loc["r3", "error"] and "'target'" in df.loc["r3", "error"]
    assert df.loc["r3", "num_tokens"] == 0
    assert "is empty" in df.loc["r5", "error"]
    for rid in ("r1", "r2", "r4"):
        assert pd.isna(df.loc[rid, "error"])
        assert list(df.loc[rid, "token_ids"]) == _generate(hf, df.loc[rid, "source"])


def test_api_dataframe_missing_values_are_null_not_text(t5_dir, hf):
    """pandas writes missing cells as NaN/None/pd.NA: they are empty sources and missing targets, never "nan"."""
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    frame = pd.DataFrame(
        {
            "source": ["the data", None, np.nan, "return a value", 7],
            "target": ["the data", "x", "y", np.nan, "z"],
        },
        dtype=object,
    )
    frame.loc[1, "source"] = pd.NA
    df = predictor.predict(frame, target_column="target", max_new_tokens=MAX_NEW)
    assert df["id"].tolist() == ["0", "1", "2", "3", "4"]
    assert df["error"].isna().tolist() == [True, False, False, True, False]
    assert all("is empty" in e for e in df["error"][1:3]) and "is not text (int)" in df["error"][4]
    assert df["source"][1] == df["source"][2] == ""  # not the text "nan" / "<NA>"
    assert pd.isna(df["target"][3]) and pd.isna(df["ref_logprob"][3])  # no reference: nothing scored
    assert not math.isnan(df["ref_logprob"][0])
    assert list(df["token_ids"][3]) == _generate(hf, "return a value")


@pytest.mark.parametrize("bad_id", [None, np.nan, pd.NA, " "])
def test_api_dataframe_null_id_is_an_error(t5_dir, bad_id):
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    frame = pd.DataFrame({"key": ["a", "b"], "source": ["the", "data"]}, dtype=object)
    frame.loc[1, "key"] = bad_id
    with pytest.raises(ValueError, match="field 'key' \\(id\\) is empty"):
        predictor.predict(frame, id_column="key", max_new_tokens=MAX_NEW)


def test_api_texts_unicode_and_long_source(t5_dir, hf):
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    texts = [*UNICODE, LONG, "", "make a list"]
    df = predictor.predict(texts, max_new_tokens=MAX_NEW, max_source_length=64)
    assert df["id"].tolist() == [str(i) for i in range(len(texts))]
    assert df["source"].tolist() == texts
    assert df["truncated"].tolist() == [False] * 4 + [True, False, False]
    assert df["error"].isna().tolist() == [True] * 5 + [False, True]
    assert list(df["token_ids"][4]) == _generate(hf, LONG, max_length=64)


def test_real_process_stderr_is_one_line(t5_dir, tmp_path):
    """The console entry point in its own process: stderr holds the error line and only Lightning's banner."""
    path = tmp_path / "in.jsonl"
    _write(path, '{"source": "a"}\n{"source": "b"}\n{"source": "caf\xe9"}\n'.encode("latin-1"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "t5score.cli",
            "predict",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(path),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith(LIGHTNING_BANNER)]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"t5score: error: {path}: line 3: bytes that are not UTF-8"), lines
