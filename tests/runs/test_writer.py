"""The chunked merge and finishing: same rows, order, files and summaries as the whole-table reference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import t5score.runs.writer as writer
from t5score.cli import main
from t5score.runs.corpus_summary import RecordSummary, summarize_records
from t5score.runs.writer import drop_columns, merge_parts, write_part


@dataclass
class Row:
    position: int
    sample_index: int | None = None
    text: str | None = None
    values: list[float] = field(default_factory=list)


def _write_shuffled_parts(folder, n_rows: int, batch: int, seed: int = 0, duplicate: int | None = None):
    """Rows 0..n-1 in shuffled order, split into parts of ``batch`` rows; optionally one duplicated row."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_rows).tolist()
    if duplicate is not None:
        order.append(duplicate)  # a distributed sampler's padding repeats rows: the first copy wins
    for b, start in enumerate(range(0, len(order), batch)):
        rows = [
            Row(p, None, f"t{p}" if p % 3 else None, [float(p)] * (p % 4))
            for p in order[start : start + batch]
        ]
        write_part(folder, b, rows, Row)


def _assert_same_numbers(a, b, path="summary"):
    """Equal structure; floats equal up to summation order (chunked sums add in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_numbers(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_numbers(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), path
    else:
        assert a == b, path


def _reference(n_rows: int) -> pd.DataFrame:
    """What the merged table must hold: every row once, in position order (built without t5score)."""
    return pd.DataFrame(
        {
            "position": range(n_rows),
            "sample_index": [None] * n_rows,
            "text": [f"t{p}" if p % 3 else None for p in range(n_rows)],
            "values": [[float(p)] * (p % 4) for p in range(n_rows)],
        }
    )


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_merge_in_chunks_restores_order_and_drops_duplicates(tmp_path, chunk_rows):
    _write_shuffled_parts(tmp_path, 50, batch=6, duplicate=17)
    chunks = list(
        merge_parts(tmp_path, [(p, None) for p in range(50)], ["position", "sample_index"], Row, chunk_rows)
    )
    assert all(len(c) <= max(chunk_rows, 1) for c in chunks) and len(chunks) == -(-50 // chunk_rows)
    got = pd.concat([c.to_pandas() for c in chunks], ignore_index=True)
    want = _reference(50)
    assert got["position"].tolist() == want["position"].tolist()
    assert got["text"].tolist() == want["text"].tolist()
    assert [list(v) for v in got["values"]] == want["values"].tolist()
    assert not (tmp_path / "merge").exists()  # the spool is cleaned up


def test_merge_refuses_missing_or_unexpected_rows_before_yielding(tmp_path):
    _write_shuffled_parts(tmp_path, 10, batch=4)
    with pytest.raises(RuntimeError, match="1 expected rows have no result"):
        next(merge_parts(tmp_path, [(p, None) for p in range(11)], ["position", "sample_index"], Row))
    with pytest.raises(RuntimeError, match="1 unexpected rows"):
        next(merge_parts(tmp_path, [(p, None) for p in range(9)], ["position", "sample_index"], Row))
    assert len(list((tmp_path / "parts").glob("*.parquet"))) == 3  # parts are kept for a retry


def test_merge_of_an_empty_run_yields_the_empty_table(tmp_path):
    (chunk,) = merge_parts(tmp_path, [], ["position"], Row)
    assert chunk.num_rows == 0 and chunk.schema.names == ["position", "sample_index", "text", "values"]


def test_drop_columns_rewrites_by_row_group(tmp_path):
    path = tmp_path / "t.parquet"
    frame = _reference(30).drop(columns=["values"])
    frame.to_parquet(path, row_group_size=7)
    drop_columns(path, ["text"])
    back = pd.read_parquet(path)
    assert list(back.columns) == ["position", "sample_index"] and back["position"].tolist() == list(range(30))


def test_record_summary_over_chunks_equals_whole_table():
    rng = np.random.default_rng(4)
    records = []
    for i in range(23):
        n = int(rng.integers(0, 6))
        lp = -rng.exponential(0.8, n)
        ref_n = int(rng.integers(1, 5))
        records.append(
            {
                "id": f"r{i}",
                "token_logprobs": lp.tolist(),
                "token_entropies": rng.uniform(0, 3, n).tolist(),
                "top1_probs": np.maximum(np.exp(lp), rng.uniform(0, 1, n)).tolist(),
                "ref_logprob": float(-rng.exponential(1.0) * ref_n),
                "ref_num_tokens": ref_n,
                "ref_top1_probs": rng.uniform(0, 1, ref_n).tolist(),
                "ref_top1_correct": rng.integers(0, 2, ref_n).astype(bool).tolist(),
                "correct": bool(rng.integers(0, 2)),
            }
        )
    df = pd.DataFrame(records)
    whole = summarize_records(df, n_bins=7)
    acc = RecordSummary(n_bins=7)
    for start in range(0, len(df), 5):
        acc.update(df.iloc[start : start + 5])
    _assert_same_numbers(acc.compute(), whole)


def test_predict_output_is_the_same_with_tiny_merge_chunks(t5_dir, tmp_path, monkeypatch):
    """A run merged 2 rows at a time writes the same file and summary as one merged in one chunk."""
    data = tmp_path / "in.jsonl"
    texts = ["open the file", "   ", "read a line", "make a list", "sort the keys", "copy it", "return none"]
    data.write_text("".join(json.dumps({"s": t, "t": "return the value"}) + "\n" for t in texts))
    outputs = {}
    for chunk_rows in (2, 4096):
        monkeypatch.setattr(writer, "MERGE_CHUNK_ROWS", chunk_rows)
        out = tmp_path / f"run{chunk_rows}"
        args = [
            "predict",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(data),
            "--data.source_column",
            "s",
            "--data.target_column",
            "t",
            "--data.batch_size",
            "3",
            "--model.max_new_tokens",
            "6",
            "--output_dir",
            str(out),
        ]
        assert main(args) == 0
        summary = json.loads((out / "summary.json").read_text())
        summary.pop("figures", None)
        outputs[chunk_rows] = (
            pd.read_parquet(out / "predictions.parquet"),
            summary,
            pq.read_metadata(out / "predictions.parquet").num_row_groups,
        )
    (small, small_summary, groups), (big, big_summary, one) = outputs[2], outputs[4096]
    assert groups == 4 and one == 1  # 7 rows in chunks of 2, and in one chunk
    pd.testing.assert_frame_equal(small, big)
    assert small["source"].tolist() == texts and small["error"].notna().tolist() == [
        t.strip() == "" for t in texts
    ]
    _assert_same_numbers(small_summary, big_summary)
    assert small_summary["rows"] == 7 and small_summary["rows_with_error"] == 1
    assert {"rougeL", "ref_logprob"} <= set(small.columns)


@dataclass
class ScoredRow:
    position: int
    token_entropies: list[float] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    score_a: float | None = None
    score_b: float | None = None


class _Finisher:
    def __init__(self):
        self.chunks = 0

    def chunk(self, frame):
        self.chunks += 1
        return frame.assign(doubled=frame["position"] * 2)

    def summary(self, rows):
        return {"rows": len(rows), "doubled_sum": int(rows["doubled"].sum())}


def test_finish_rows_writes_everything_keeps_a_light_row_table_and_drops_empty_columns(tmp_path, monkeypatch):
    from t5score.runs.runner import RunSpec, finish_rows

    monkeypatch.setattr(writer, "MERGE_CHUNK_ROWS", 4)
    rows = [ScoredRow(p, [0.5] * (p % 3), [-1.0] * (p % 3), score_a=float(p)) for p in range(10)]
    for b, start in enumerate(range(0, 10, 3)):
        write_part(tmp_path, b, list(reversed(rows[start : start + 3])), ScoredRow)
    finisher = _Finisher()
    spec = RunSpec(
        "score", "out.parquet", ScoredRow, [(p,) for p in range(10)], ["position"], finisher, ("score_",)
    )
    table, summary = finish_rows(tmp_path, spec)
    assert finisher.chunks == 3 and summary == {"rows": 10, "doubled_sum": 90}
    assert list(table.columns) == [
        "position",
        "token_entropies",
        "score_a",
        "doubled",
    ]  # lists dropped, empty too
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert list(written.columns) == ["token_entropies", "token_logprobs", "score_a", "doubled"]  # no position
    assert written["score_a"].tolist() == [float(p) for p in range(10)]
    assert [list(v) for v in written["token_logprobs"]] == [[-1.0] * (p % 3) for p in range(10)]
