"""A run's life in its folder: locked against a second run, killed anywhere and resumed to the same
output, refused when what it is made of changed, stopped cleanly by a signal."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from t5score.cli import main
from t5score.runs.lock import LOCK_NAME
from tests.helpers.cli import assert_user_error
from tests.helpers.frames import assert_same_rows

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["the data of a file", "return a value", "open the path", "make a new list of names", "check it"]
ROWS = 24


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(n: int = ROWS) -> list[dict]:
    return [
        {"id": f"row{i}", "source": " ".join(WORDS[i % 5 :] * (i % 3 + 1)), "target": "return the data"}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def input_file(tmp_path_factory) -> Path:
    return _write_rows(tmp_path_factory.mktemp("data") / "in.jsonl", _rows())


def _args(model_dir, data, out, *extra) -> list[str]:
    return [
        "predict",
        f"--model.name_or_path={model_dir}",
        f"--data.path={data}",
        "--data.id_column=id",
        "--data.target_column=target",
        "--data.batch_size=3",
        "--model.max_new_tokens=8",
        f"--output_dir={out}",
        *extra,
    ]


@pytest.fixture(scope="module")
def uninterrupted(t5_dir, input_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    assert main(_args(t5_dir, input_file, out)) == 0
    return out


def _driver(fault: str, args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.fault_driver", fault, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _assert_same_run(a: Path, b: Path) -> None:
    assert_same_rows(pd.read_parquet(a / "predictions.parquet"), pd.read_parquet(b / "predictions.parquet"))
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    sa.pop("figures"), sb.pop("figures")
    assert sa == sb
    assert not (b / "parts").exists() and not list(b.glob(".*.tmp")) and not (b / "merge").exists()


@pytest.mark.parametrize("fault", ["kill-decode", "kill-merge", "kill-report"])
def test_kill_anywhere_then_resume_equals_uninterrupted(t5_dir, input_file, uninterrupted, tmp_path, fault):
    out = tmp_path / "run"
    proc = _driver(fault, _args(t5_dir, input_file, out))
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "run.json").exists() and (out / "parts").is_dir()
    assert main(_args(t5_dir, input_file, out, "--resume")) == 0
    _assert_same_run(uninterrupted, out)


def _lock_is_held(out: Path) -> bool:
    path = out / LOCK_NAME
    if not path.exists():
        return False
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_two_resumes_at_once_one_refused_other_complete(t5_dir, input_file, uninterrupted, tmp_path):
    out = tmp_path / "run"
    first = _driver("kill-decode", _args(t5_dir, input_file, out))
    first.communicate(timeout=300)  # a partial run: 2 batches on disk
    args = _args(t5_dir, input_file, out, "--resume")
    a, b = _driver("slow", args), _driver("slow", args)  # two real processes, started together
    _wait_for(lambda: _lock_is_held(out))
    results = [p.communicate(timeout=300) + (p.returncode,) for p in (a, b)]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 2], [err[-2000:] for _, err, _ in results]
    refused = next(err for _, err, code in results if code == 2)
    assert "another t5score run is writing into this folder (pid" in refused and "Traceback" not in refused
    winner = next(out_text for out_text, _, code in results if code == 0)
    assert f"{ROWS} rows -> " in winner
    _assert_same_run(uninterrupted, out)
    assert not _lock_is_held(out)


def test_second_run_into_a_locked_folder_is_refused_and_touches_nothing(t5_dir, input_file, tmp_path, capsys):
    out = tmp_path / "run"
    holder = _driver("slow", _args(t5_dir, input_file, out))
    try:
        _wait_for(lambda: _lock_is_held(out))
        os.kill(holder.pid, signal.SIGSTOP)  # hold it there, lock held
        before = sorted(p.name for p in out.rglob("*"))
        assert_user_error(capsys, _args(t5_dir, input_file, out, "--overwrite"), f"pid {holder.pid}")
        assert sorted(p.name for p in out.rglob("*")) == before
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.communicate(timeout=300)
    assert holder.returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_after_the_batch_and_resume_completes(
    t5_dir, input_file, uninterrupted, tmp_path, signum
):
    out = tmp_path / "run"
    proc = _driver("slow", _args(t5_dir, input_file, out))
    _wait_for(lambda: (out / "parts").is_dir() and any((out / "parts").glob("batch-*.parquet")))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("t5score:")]
    assert len(lines) == 1 and "--resume" in lines[0] and signal.Signals(signum).name in lines[0], err
    assert "Traceback" not in err
    done = list((out / "parts").glob("batch-*.parquet"))
    assert 1 <= len(done) < 8 and not (out / "predictions.parquet").exists()
    assert main(_args(t5_dir, input_file, out, "--resume")) == 0
    _assert_same_run(uninterrupted, out)


def test_ctrl_c_during_the_merge_says_how_to_resume(t5_dir, input_file, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = _driver("sigint-merge", _args(t5_dir, input_file, out))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "while writing the output" in err and "--resume" in err
    assert not (out / "predictions.parquet").exists() and not list(out.glob(".*.tmp"))
    assert main(_args(t5_dir, input_file, out, "--resume")) == 0
    _assert_same_run(uninterrupted, out)
