"""Problems with the output folder and the disk: one line, exit 2, no traceback, no folder left behind."""

from __future__ import annotations

import errno
import os

import pytest

import t5score.runs.predict
import t5score.runs.runner
import t5score.runs.writer
from t5score.cli import main
from t5score.runs.lock import LOCK_NAME
from tests.helpers.cli import assert_user_error
from tests.runs.test_run_lifecycle import _args, _rows, _write_rows


@pytest.fixture
def data(tmp_path):
    return _write_rows(tmp_path / "in.jsonl", _rows(6))


def test_output_dir_below_a_file(t5_dir, data, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "sub"
    assert_user_error(capsys, _args(t5_dir, data, out), "afile is a file, not a folder")


def test_output_dir_that_is_a_file(t5_dir, data, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert_user_error(capsys, _args(t5_dir, data, tmp_path / "afile"), "exists and is not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_output_dir_without_write_permission(t5_dir, data, tmp_path, capsys):
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o500)
    try:
        assert_user_error(capsys, _args(t5_dir, data, parent / "run"), "cannot create the output folder")
    finally:
        parent.chmod(0o700)


def _raise(exc: OSError):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.mark.parametrize(
    ("exc", "match"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "parts/batch-000000.parquet"), "no space left"),
        (PermissionError(errno.EACCES, "Permission denied", "parts"), "parts: permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "parts"), "read-only file system"),
    ],
)
def test_disk_errors_while_decoding(t5_dir, data, tmp_path, capsys, monkeypatch, exc, match):
    monkeypatch.setattr(t5score.runs.writer, "write_part", _raise(exc))
    out = tmp_path / "run"
    assert_user_error(capsys, _args(t5_dir, data, out), match)
    assert not out.exists()  # nothing was decoded: no half-made folder blocks the next try


def test_disk_full_during_the_merge_keeps_the_batches(t5_dir, data, tmp_path, capsys, monkeypatch):
    # pyarrow's IO errors carry the text, not the errno
    monkeypatch.setattr(
        t5score.runs.runner.TableWriter, "write", _raise(OSError("IOError: No space left on device"))
    )
    out = tmp_path / "run"
    line = assert_user_error(capsys, _args(t5_dir, data, out), "no space left on the device")
    assert "--resume" in line and list((out / "parts").glob("batch-*.parquet"))
    monkeypatch.undo()
    assert main(_args(t5_dir, data, out, "--resume")) == 0


def test_a_late_failure_leaves_nothing_that_blocks_the_corrected_command(
    t5_dir, data, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(
        t5score.runs.predict.Seq2SeqPredictor, "predict_step", _raise(ValueError("a late option check"))
    )
    out = tmp_path / "run"
    assert_user_error(capsys, _args(t5_dir, data, out), "a late option check")
    assert not out.exists()
    out.mkdir()  # an empty folder the user made: the run's files go, the folder stays
    assert_user_error(capsys, _args(t5_dir, data, out), "a late option check")
    assert [p.name for p in out.iterdir()] in ([], [LOCK_NAME])  # its lock file may stay
    monkeypatch.undo()
    assert main(_args(t5_dir, data, out)) == 0


def test_resume_and_overwrite_together_are_refused(t5_dir, data, tmp_path, capsys):
    out = tmp_path / "run"
    assert_user_error(capsys, _args(t5_dir, data, out, "--resume", "--overwrite"), "exclude each other")
    assert not out.exists()
