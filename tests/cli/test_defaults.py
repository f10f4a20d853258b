"""What a run does when the user names little: a new folder per run, the shipped model's own source length,
an ``id`` column taken as the id, and ``run.json`` holding the values in force."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoTokenizer

from t5score.assets import default_data_path, default_model_path
from t5score.cli import main
from t5score.engine.tokens import DEFAULT_SOURCE_LENGTH, source_length_limit
from t5score.runs.output_dir import RUN_DIR_ENV, run_folder
from tests.helpers.cli import assert_user_error

SHIPPED_ROWS = 6


@pytest.fixture
def shipped_rows(tmp_path) -> Path:
    """The first rows of the shipped test split (id, source, target), as a user's own file."""
    path = tmp_path / "mine.jsonl"
    with open(default_data_path("test")) as f:
        path.write_text("".join(islice(f, SHIPPED_ROWS)))
    return path


def _last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_runs_without_output_dir_each_get_a_new_folder(shipped_rows, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        "predict",
        f"--data.path={shipped_rows}",
        "--data.target_column=target",
        "--model.max_new_tokens=4",
    ]
    for number in (1, 2):
        assert main(args) == 0
        folder = Path("reports/predict") / f"run_{number:03d}"
        assert f"-> {folder / 'predictions.parquet'}" in _last_line(capsys)
        assert len(pd.read_parquet(folder / "predictions.parquet")) == SHIPPED_ROWS
    assert main([*args, "--resume"]) == 0  # the latest run: complete, nothing redone
    assert "reports/predict/run_002 is complete" in _last_line(capsys)
    given = tmp_path / "mine"
    assert main([*args, f"--output_dir={given}"]) == 0  # a named folder: as before
    assert_user_error(capsys, [*args, f"--output_dir={given}"], "not empty")


def test_resume_without_a_run_says_so(tmp_path, monkeypatch, capsys, shipped_rows):
    monkeypatch.chdir(tmp_path)
    assert_user_error(capsys, ["predict", f"--data.path={shipped_rows}", "--resume"], "nothing to resume")


def test_run_folder_numbers_and_ddp_ranks_follow_rank_zero(tmp_path, monkeypatch):
    base = tmp_path / "reports" / "predict"
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert run_folder(None, base, resume=False) == base / "run_001"
    (base / "run_007").mkdir(parents=True)
    (base / "run_not_a_number").mkdir()
    assert run_folder(None, base, resume=False) == base / "run_008"
    assert run_folder(None, base, resume=True) == base / "run_007"
    assert run_folder("elsewhere", base, resume=False) == Path("elsewhere")
    monkeypatch.setenv(RUN_DIR_ENV, str(base / "run_008"))
    monkeypatch.setenv("LOCAL_RANK", "1")  # a rank started by rank 0: its folder, not a new one
    assert run_folder(None, base, resume=False) == base / "run_008"


def test_source_length_defaults_to_the_tokenizers_real_limit(t5_dir):
    shipped = AutoTokenizer.from_pretrained(default_model_path())
    assert shipped.model_max_length == 64 and source_length_limit(shipped) == 64
    assert source_length_limit(shipped, 100) == 100
    unlimited = AutoTokenizer.from_pretrained(t5_dir)  # no model_max_length saved: transformers' 1e30
    assert unlimited.model_max_length > 10**6 and source_length_limit(unlimited) == DEFAULT_SOURCE_LENGTH


def test_shipped_model_truncates_at_its_own_length_and_run_json_records_values_in_force(
    shipped_rows, tmp_path
):
    out = tmp_path / "run"
    assert (
        main(["predict", f"--data.path={shipped_rows}", "--data.target_column=target", f"--output_dir={out}"])
        == 0
    )
    frame = pd.read_parquet(out / "predictions.parquet")
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    longer = [len(tokenizer(s, truncation=False).input_ids) > 64 for s in frame["source"]]
    assert frame["truncated"].tolist() == longer and any(longer)  # the reference: the tokenizer's own count
    assert frame["id"].tolist() == [json.loads(line)["id"] for line in shipped_rows.read_text().splitlines()]
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["data"]["id_column"] == "id" and config["data"]["target_column"] == "target"
    assert config["data"]["max_source_length"] == 64 and config["data"]["path"] == str(shipped_rows)
    generation = json.loads((out / "run.json").read_text())["generation"]
    assert config["model"]["max_new_tokens"] == generation["max_new_tokens"] > 0


def test_an_id_column_is_the_id_unless_told_otherwise(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"id": f"k{i}", "source": "open the file"}) + "\n" for i in range(3)))
    out = tmp_path / "a"
    assert main(["predict", f"--data.path={data}", "--model.max_new_tokens=2", f"--output_dir={out}"]) == 0
    assert pd.read_parquet(out / "predictions.parquet")["id"].tolist() == ["k0", "k1", "k2"]
    out = tmp_path / "b"
    args = [
        "predict",
        f"--data.path={data}",
        "--model.max_new_tokens=2",
        "--data.id_column=",
        f"--output_dir={out}",
    ]
    assert main(args) == 0
    assert pd.read_parquet(out / "predictions.parquet")["id"].tolist() == ["0", "1", "2"]
    data.write_text("".join(json.dumps({"id": "same", "source": "open the file"}) + "\n" for _ in range(2)))
    line = assert_user_error(
        capsys, ["predict", f"--data.path={data}", f"--output_dir={tmp_path / 'c'}"], "duplicate id"
    )
    assert "--data.id_column ''" in line


def test_the_closing_line_counts_the_rows_written_when_sampling(tmp_path, capsys, shipped_rows):
    out = tmp_path / "run"
    args = ["predict", f"--data.path={shipped_rows}", "--model.num_samples=3", "--model.max_new_tokens=3"]
    assert main([*args, f"--output_dir={out}"]) == 0
    assert _last_line(capsys).startswith(f"t5score: {3 * SHIPPED_ROWS} rows -> ")


def test_threads_option_sets_torchs_thread_count(shipped_rows, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        args = ["predict", f"--data.path={shipped_rows}", "--model.max_new_tokens=2", "--threads=1"]
        assert main([*args, f"--output_dir={tmp_path / 'run'}"]) == 0
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert main([*args[:-1], "--threads=2", f"--output_dir={tmp_path / 'run2'}"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
