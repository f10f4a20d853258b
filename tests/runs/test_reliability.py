"""Distributed runs and resume give the same rows as one uninterrupted process: none lost, none doubled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

import t5score.runs.writer
from t5score.cli import main
from tests.helpers.frames import assert_same_rows

WORDS = ["the data of a file", "return a value", "open the path", "make a new list of names"]


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "in.jsonl"
    with path.open("w") as f:
        for i in range(11):  # 11 rows: does not divide by 2 ranks nor by the batch size
            source = " ".join(WORDS[i % 4 :] * (i % 3 + 1)) if i != 4 else ""
            f.write(json.dumps({"id": f"row{i}", "source": source, "target": "return the data"}) + "\n")
    return path


def _args(model_dir, input_file, out, *extra):
    return [
        "predict",
        "--model.name_or_path",
        str(model_dir),
        "--data.path",
        str(input_file),
        "--data.id_column",
        "id",
        "--data.target_column",
        "target",
        "--data.batch_size",
        "2",
        "--model.max_new_tokens",
        "8",
        "--output_dir",
        str(out),
        *extra,
    ]


def test_ddp_two_processes_equal_single_process(t5_dir, input_file, tmp_path):
    single = tmp_path / "single"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each DDP rank below: the same float reduction order
    try:
        assert main(_args(t5_dir, input_file, single)) == 0
    finally:
        torch.set_num_threads(threads)
    ddp = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "t5score.cli",
            *_args(
                t5_dir,
                input_file,
                ddp,
                "--trainer.accelerator",
                "cpu",
                "--trainer.devices",
                "2",
                "--trainer.strategy",
                "ddp",
            ),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = pd.read_parquet(single / "predictions.parquet")
    b = pd.read_parquet(ddp / "predictions.parquet")
    assert len(b) == 11 and b["id"].is_unique
    assert_same_rows(a, b, atol=1e-5)
    run = json.loads((ddp / "run.json").read_text())
    assert run["world_size"] == 2
    s1 = json.loads((single / "summary.json").read_text())
    s2 = json.loads((ddp / "summary.json").read_text())
    assert s1["num_tokens"] == s2["num_tokens"] and s1["rows_with_error"] == s2["rows_with_error"] == 1
    assert s2["mean_token_logprob"] == pytest.approx(s1["mean_token_logprob"], rel=2e-6, abs=1e-6)


def test_crash_then_resume_equals_uninterrupted(t5_dir, input_file, tmp_path, monkeypatch):
    full = tmp_path / "full"
    assert main(_args(t5_dir, input_file, full)) == 0
    crashed = tmp_path / "crashed"
    real_write = t5score.runs.writer.write_part
    calls = []

    def crash_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise RuntimeError("simulated crash after 2 batches")
        calls.append(1)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(t5score.runs.writer, "write_part", crash_after_two)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(_args(t5_dir, input_file, crashed))
    monkeypatch.setattr(t5score.runs.writer, "write_part", real_write)
    assert len(list((crashed / "parts").glob("batch-*.parquet"))) == 2
    assert not (crashed / "predictions.parquet").exists()
    assert main(_args(t5_dir, input_file, crashed)) == 2  # refuses a non-empty folder without --resume
    assert main(_args(t5_dir, input_file, crashed, "--resume")) == 0
    run = json.loads((crashed / "run.json").read_text())
    assert run["batches_resumed"] == 2
    assert_same_rows(
        pd.read_parquet(full / "predictions.parquet"), pd.read_parquet(crashed / "predictions.parquet")
    )


def test_resume_refuses_changed_options(t5_dir, input_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(t5_dir, input_file, out)) == 0
    assert main(_args(t5_dir, input_file, out, "--resume", "--data.batch_size", "3")) == 2
    assert "changed since the run began: data.batch_size: 2 -> 3" in capsys.readouterr().err
