"""The data modules on their one base: fixed batch plans, resume skipping, the loader handing out whole batches."""

from __future__ import annotations

import json

import pytest

from t5score.data.io import InputError
from t5score.data.modules import CandidatesDataModule, PlannedDataModule, ScoreDataModule, TextDataModule
from t5score.records import CandidateBatch, CandidateRow, SourceBatch

LONG = [
    {"g": "x", "source": "s1", "cand": "one"},
    {"g": "y", "source": "s2", "cand": "two"},
    {"g": "x", "source": "s1", "cand": "three"},
    {"g": "z", "source": "s3", "cand": "four"},
    {"g": "y", "source": "s2", "cand": "five"},
    {"g": "w", "source": "s4", "cand": "six"},
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_candidate_batches_hold_whole_groups_in_input_order(tmp_path):
    path = _write(tmp_path / "long.jsonl", LONG)
    dm = CandidatesDataModule(str(path), group_column="g", candidate_column="cand", batch_size=2)
    rows = dm.load_rows()
    assert all(isinstance(r, CandidateRow) for r in rows) and [r.position for r in rows] == list(range(6))
    plan = dm.batch_plan()
    assert all(isinstance(b, CandidateBatch) for b in plan) and [b.batch_index for b in plan] == [0, 1]
    # groups x, y (positions 0, 1) in batch 0 and z, w in batch 1; rows keep their input order
    assert [[r.candidate for r in b.rows] for b in plan] == [["one", "two", "three", "five"], ["four", "six"]]
    assert [len(b) for b in plan] == [4, 2] and plan[0].max_source_length is None  # the run resolves it
    assert [b.batch_index for b in dm.batch_plan()] == [0, 1]  # the same plan every time


def test_resume_skips_written_batches_and_the_loader_gives_whole_batches(tmp_path):
    path = _write(tmp_path / "long.jsonl", LONG)
    dm = CandidatesDataModule(str(path), group_column="g", candidate_column="cand", batch_size=1)
    dm.setup("predict")
    dm.skip_batches = {0, 2}
    assert [b.batch_index for b in dm.pending_batches()] == [1, 3]
    loaded = list(dm.predict_dataloader())
    assert [b.batch_index for b in loaded] == [1, 3] and [r.group_id for r in loaded[0].rows] == ["y", "y"]

    text = TextDataModule(str(path), batch_size=4)
    text.skip_batches = {0}
    batches = list(text.predict_dataloader())
    assert [type(b) for b in batches] == [SourceBatch] and [b.batch_index for b in batches] == [1]
    assert len(batches[0]) == 2


def test_every_data_module_is_planned():
    for module in (TextDataModule, ScoreDataModule, CandidatesDataModule):
        assert issubclass(module, PlannedDataModule)
        for name in ("pending_batches", "predict_dataloader", "setup"):
            assert getattr(module, name) is getattr(PlannedDataModule, name), (module, name)


def test_batch_size_is_checked_when_built(tmp_path):
    path = _write(tmp_path / "long.jsonl", LONG)
    for build in (
        lambda: TextDataModule(str(path), batch_size=0),
        lambda: CandidatesDataModule(str(path), group_column="g", batch_size=0),
    ):
        with pytest.raises(InputError, match=r"batch_size must be >= 1, got 0 \(--data.batch_size\)"):
            build()


def test_score_rows_carry_their_references(tmp_path):
    rows = [
        {"source": "a", "target": "b", "refs": ["r1", None, "r2"]},
        {"source": "c", "target": "d", "refs": '["r3"]'},
        {"source": "e", "target": "f", "refs": None},
    ]
    path = _write(tmp_path / "s.jsonl", rows)
    dm = ScoreDataModule(str(path), target_column="target", reference_column="refs")
    assert [r.references for r in dm.load_rows()] == [["r1", "r2"], ["r3"], None]
    with pytest.raises(InputError, match="needs --data.target_column"):
        ScoreDataModule(str(path))
