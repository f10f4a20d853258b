"""``t5score predict`` with in-flight batching (the default for greedy decoding) against each row decoded alone.

The reference run decodes every row on its own (``--model.batching static --model.slots 1``). The in-flight
runs decode 10-row data batches through 3 slots, so slots are refilled and the tail compacted: in one
process, under DDP on 2 processes (BART), and killed (SIGKILL) after 2 batches then resumed. Every row must equal
its own decoding: tokens exact, numbers within float32 rounding. The models are a tiny T5 and a tiny BART
whose rows end at spread lengths (EOS after 1 to 13 tokens, some at the limit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from t5score.cli import main
from tests.helpers.cli import assert_user_error
from tests.helpers.families import make_family
from tests.helpers.frames import assert_same_rows

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["the data of a file", "return a value", "open the path", "make a new list of names", "check it"]
STEPS = 12


@pytest.fixture(scope="module", params=["t5", "bart"])
def setup(request, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The model folder (T5: the fast engine's slots; BART: the model's own forward, with its checkpoint's
    n-gram blocking and minimum length), the input rows, and the per-row reference run."""
    root = tmp_path_factory.mktemp(f"inflight-{request.param}")
    model, tokenizer = make_family(request.param)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    rows = [{"id": f"r{i}", "source": " ".join(WORDS[i % 5 :] * (i % 3 + 1))} for i in range(30)]
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    alone = root / "alone"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses below
    try:
        assert (
            main(_args(root / "model", data, alone, "--model.batching", "static", "--model.slots", "1")) == 0
        )
    finally:
        torch.set_num_threads(threads)
    return root / "model", data, alone


def _args(model_dir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "predict",
        f"--model.name_or_path={model_dir}",
        f"--data.path={data}",
        "--data.batch_size=10",
        f"--model.max_new_tokens={STEPS}",
        "--model.top_k=3",
        "--trainer.enable_progress_bar=false",
        f"--output_dir={out}",
        *extra,
    ]


def _equal_to_alone(run: Path, alone: Path) -> float:
    """Tokens exact, numbers within float32 rounding; returns the largest token log-probability difference.

    The encoder runs on the padded 10-row batch (as with static batching), not row by row, so the numbers
    differ from the lone rows' in the last bits of the logits (~45 here): 1e-4 relative at most."""
    a = pd.read_parquet(alone / "predictions.parquet")
    b = pd.read_parquet(run / "predictions.parquet")
    assert a["token_ids"].map(list).tolist() == b["token_ids"].map(list).tolist()
    assert_same_rows(a, b, atol=1e-4)
    lengths = set(a["num_tokens"])
    assert (
        len(lengths) > 3
    )  # spread: the slots were refilled (rows at the limit: tests/engine/test_inflight*.py)
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0))
        for x, y in zip(a["token_logprobs"], b["token_logprobs"], strict=True)
    )


def _subprocess(module: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs
    )


def test_inflight_run_equals_each_row_alone(setup, tmp_path: Path) -> None:
    model_dir, data, alone = setup
    out, static = tmp_path / "inflight", tmp_path / "static"
    assert main(_args(model_dir, data, out, "--model.slots", "3")) == 0
    assert json.loads((out / "run_config.json").read_text())["model"]["batching"] == "auto"
    assert main(_args(model_dir, data, static, "--model.batching", "static", "--model.slots", "10")) == 0
    # in-flight adds no error of its own: static batches of the same rows differ from the lone rows as much
    assert _equal_to_alone(out, alone) <= max(2 * _equal_to_alone(static, alone), 1e-5)


# DDP shards and merges rows the same whichever slots decode them (the engines' slots are tested in one
# process above and in tests/engine): one model here, the generic engine's, keeps the suite's time
@pytest.mark.parametrize("setup", ["bart"], indirect=True)
def test_inflight_under_ddp_equals_each_row_alone(setup, tmp_path: Path) -> None:
    model_dir, data, alone = setup
    out = tmp_path / "ddp"
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    done = _subprocess("t5score.cli", _args(model_dir, data, out, "--model.slots", "3", *ddp), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    _equal_to_alone(out, alone)


def test_inflight_killed_then_resumed_equals_each_row_alone(setup, tmp_path: Path) -> None:
    model_dir, data, alone = setup
    out = tmp_path / "killed"
    args = _args(model_dir, data, out, "--model.slots", "3")
    killed = _subprocess("tests.helpers.fault_driver", ["kill-decode", *args], timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (out / "predictions.parquet").exists()
    assert main([*args, "--resume"]) == 0
    _equal_to_alone(out, alone)


def test_inflight_where_it_cannot_apply_is_one_line(setup, tmp_path: Path, capsys) -> None:
    model_dir, data, _ = setup
    args = _args(
        model_dir, data, tmp_path / "beams", "--model.batching", "inflight", "--model.num_beams", "2"
    )
    assert_user_error(capsys, args, r"batching='inflight' needs greedy decoding")
    assert not (tmp_path / "beams").exists()
