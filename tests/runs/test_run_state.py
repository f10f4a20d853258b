"""Resume checks what a run is made of: the input rows, the options, the precision, the model's files, the
versions. Each change is refused with its name; a finished run is not redone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import t5score.runs.predict
import t5score.runs.run_state
import t5score.runs.writer
from t5score.cli import main
from t5score.runs.lock import LOCK_NAME
from tests.helpers.cli import assert_user_error
from tests.runs.test_run_lifecycle import _args, _rows, _write_rows


def _partial_run(model_dir: Path, data: Path, out: Path, monkeypatch, *extra: str) -> None:
    """A run that crashed after 2 batches (of 8)."""
    real, calls = t5score.runs.writer.write_part, []

    def crash_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(t5score.runs.writer, "write_part", crash_after_two)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(_args(model_dir, data, out, *extra))
    monkeypatch.setattr(t5score.runs.writer, "write_part", real)
    assert len(list((out / "parts").glob("*.parquet"))) == 2


def _edit(rows: list[dict], how: str) -> list[dict]:
    rows = [dict(r) for r in rows]
    if how == "edited":
        rows[5]["source"] = "a changed text"  # longest-first plan: row 5 is in an early batch
    elif how == "swapped":
        rows[2], rows[7] = rows[7], rows[2]
    elif how == "appended":
        rows.append({"id": "new", "source": "one more row", "target": "return"})
    elif how == "removed":
        rows.pop(3)
    elif how == "target":
        rows[0]["target"] = "another reference"
    return rows


CHANGES = {
    "edited": r"input row 6 \(id 'row5'\) changed",
    "swapped": r"input row 3 \(id 'row7'\) and 1 more changed",
    "appended": "the input now has 25 rows, the run began with 24",
    "removed": "the input now has 23 rows, the run began with 24",
    "target": r"input row 1 \(id 'row0'\) changed",
}


@pytest.mark.parametrize("how", list(CHANGES))
def test_resume_refuses_a_changed_input(t5_dir, tmp_path, monkeypatch, capsys, how):
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    _partial_run(t5_dir, data, out, monkeypatch)
    _write_rows(data, _edit(_rows(), how))
    line = assert_user_error(capsys, _args(t5_dir, data, out, "--resume"), CHANGES[how])
    assert "--overwrite" in line
    assert main(_args(t5_dir, data, out, "--overwrite")) == 0  # the way out it names works


def test_resume_keeps_a_run_whose_unused_columns_changed(t5_dir, tmp_path, monkeypatch):
    data = _write_rows(tmp_path / "in.jsonl", [r | {"note": "x"} for r in _rows()])
    out = tmp_path / "run"
    _partial_run(t5_dir, data, out, monkeypatch)
    _write_rows(data, [r | {"note": "changed"} for r in _rows()])  # a column t5score does not read
    assert main(_args(t5_dir, data, out, "--resume")) == 0


def test_resume_refuses_another_precision_naming_the_key(t5_dir, tmp_path, monkeypatch, capsys):
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    _partial_run(t5_dir, data, out, monkeypatch)
    args = _args(t5_dir, data, out, "--resume", "--trainer.precision=bf16-true")
    assert_user_error(capsys, args, r"trainer\.precision: '32-true' -> 'bf16-true'")


def test_resume_refuses_a_changed_option_naming_the_key_not_the_group(t5_dir, tmp_path, monkeypatch, capsys):
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    _partial_run(t5_dir, data, out, monkeypatch)
    args = _args(t5_dir, data, out, "--resume", "--model.top_k=3")
    assert_user_error(capsys, args, r"model\.top_k: 5 -> 3")


def test_resume_refuses_changed_model_weights(t5_dir, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    shutil.copytree(t5_dir, model)
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    _partial_run(model, data, out, monkeypatch)
    weights = next(model.glob("*.safetensors"))
    blob = bytearray(weights.read_bytes())
    blob[-8:] = bytes(8)  # the last values of the last tensor: same size, other numbers
    weights.write_bytes(bytes(blob))
    assert_user_error(capsys, _args(model, data, out, "--resume"), f"model file {weights.name} changed")


def test_resume_refuses_another_t5score_version(t5_dir, tmp_path, monkeypatch, capsys):
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    _partial_run(t5_dir, data, out, monkeypatch)
    real = t5score.runs.run_state.versions_in_force
    monkeypatch.setattr(t5score.runs.run_state, "versions_in_force", lambda: real() | {"t5score": "9.9.9"})
    assert_user_error(capsys, _args(t5_dir, data, out, "--resume"), r"t5score version .* -> 9\.9\.9")


def test_resume_on_a_finished_run_redoes_nothing(t5_dir, tmp_path, monkeypatch, capsys):
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    assert main(_args(t5_dir, data, out)) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != LOCK_NAME}

    def no_decoding(*args, **kwargs):
        raise AssertionError("a finished run was decoded again")

    monkeypatch.setattr(t5score.runs.predict.Seq2SeqPredictor, "predict_step", no_decoding)
    capsys.readouterr()
    assert main(_args(t5_dir, data, out, "--resume")) == 0
    assert "is complete (24 rows in" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != LOCK_NAME} == before


def test_run_config_records_what_resume_checks(t5_dir, tmp_path):
    data = _write_rows(tmp_path / "in.jsonl", _rows())
    out = tmp_path / "run"
    assert main(_args(t5_dir, data, out)) == 0
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["trainer"] == {"precision": "32-true", "accelerator": "CPUAccelerator"}
    assert saved["input"]["rows"] == 24 and set(saved["versions"]) == {"t5score", "torch", "transformers"}
    assert any(name.endswith(".safetensors") for name in saved["model_files"])
    assert (out / "input_rows.bin").stat().st_size == 24 * 8
    run = json.loads((out / "run.json").read_text())
    assert run["input"] == saved["input"] and run["model_files"] == saved["model_files"]
