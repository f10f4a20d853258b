"""A model folder that names its own Python code (``auto_map``) never runs it, and never prompts, unless
``trust_remote_code`` is asked for (``--model.trust_remote_code true``)."""

from __future__ import annotations

import builtins
import json
import shutil
import sys

import pandas as pd
import pytest
import transformers.dynamic_module_utils as dynamic_modules

from t5score.cli import main
from t5score.engine.modeling import load_model_and_tokenizer
from tests.helpers.cli import assert_user_error

CUSTOM_CODE = """
from pathlib import Path

from transformers import T5Config, T5ForConditionalGeneration

Path({marker!r}).write_text("the folder's own code ran")


class MarkerT5Config(T5Config):
    model_type = "t5score-marker-t5"


class MarkerT5Model(T5ForConditionalGeneration):
    config_class = MarkerT5Config
"""


@pytest.fixture
def remote_code_dir(t5_dir, tmp_path, monkeypatch):
    """A copy of the tiny T5 whose config.json maps its classes to a local ``marker_t5.py``, which writes
    ``tmp_path / "marker"`` when imported; its model_type is unknown to transformers, so only that code can
    load it. transformers' module cache goes to ``tmp_path``."""
    folder = tmp_path / "custom_t5"
    shutil.copytree(t5_dir, folder)
    marker = tmp_path / "marker"
    (folder / "marker_t5.py").write_text(CUSTOM_CODE.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "t5score-marker-t5"
    config["architectures"] = ["MarkerT5Model"]
    config["auto_map"] = {
        "AutoConfig": "marker_t5.MarkerT5Config",
        "AutoModelForSeq2SeqLM": "marker_t5.MarkerT5Model",
    }
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(dynamic_modules, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the module cache joins sys.path: undone after
    prompts: list[str] = []

    def no_prompt(text: str = "") -> str:  # transformers asks "run the custom code? [y/N]" through input()
        prompts.append(text)
        raise EOFError("stdin is closed")

    monkeypatch.setattr(builtins, "input", no_prompt)
    return folder, marker, prompts


def _argv(folder, data, out, *extra):
    return [
        "predict",
        "--model.name_or_path",
        str(folder),
        "--data.path",
        str(data),
        "--output_dir",
        str(out),
        *extra,
    ]


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "source": "open the file"}) + "\n")
    return path


def test_load_refuses_the_folders_code_without_running_or_prompting(remote_code_dir):
    folder, marker, prompts = remote_code_dir
    with pytest.raises(ValueError, match="trust_remote_code") as err:
        load_model_and_tokenizer(str(folder))
    assert prompts == [] and not marker.exists()
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("command", ["predict", "score", "rerank"])
def test_cli_refuses_in_one_line_before_the_output_folder(
    remote_code_dir, data_file, tmp_path, capsys, command
):
    folder, marker, prompts = remote_code_dir
    out = tmp_path / "run"
    argv = _argv(folder, data_file, out)
    argv[0] = command
    if command == "score":
        data_file.write_text(json.dumps({"id": "a", "source": "open the file", "target": "read"}) + "\n")
        argv += ["--data.target_column", "target"]
    if command == "rerank":
        data_file.write_text(
            json.dumps({"id": "a", "source": "open the file", "candidates": ["a", "b"]}) + "\n"
        )
    line = assert_user_error(capsys, argv, r"--model\.trust_remote_code true")
    assert "auto_map" in line
    assert prompts == [] and not marker.exists() and not out.exists()


def test_trust_remote_code_opts_in(remote_code_dir, data_file, tmp_path):
    folder, marker, prompts = remote_code_dir
    model, tokenizer = load_model_and_tokenizer(str(folder), trust_remote_code=True)
    assert type(model).__name__ == "MarkerT5Model" and marker.exists() and prompts == []
    assert tokenizer("open the file").input_ids
    marker.unlink()
    out = tmp_path / "run"
    assert (
        main(
            _argv(folder, data_file, out, "--model.max_new_tokens", "3", "--model.trust_remote_code", "true")
        )
        == 0
    )
    assert (out / "predictions.parquet").is_file() and prompts == []


def test_rerank_and_the_python_api_opt_in_too(remote_code_dir, data_file, tmp_path):
    from t5score import Predictor

    folder, marker, prompts = remote_code_dir
    with pytest.raises(ValueError, match="trust_remote_code"):
        Predictor.from_pretrained(str(folder))
    assert not marker.exists()
    predictor = Predictor.from_pretrained(str(folder), trust_remote_code=True)
    assert type(predictor.model).__name__ == "MarkerT5Model"
    data_file.write_text(json.dumps({"id": "a", "source": "open the file", "candidates": ["a", "b"]}) + "\n")
    out = tmp_path / "rerank"
    argv = ["rerank", f"--model.name_or_path={folder}", f"--data.path={data_file}", f"--output_dir={out}"]
    assert main([*argv, "--model.trust_remote_code", "true"]) == 0
    assert len(pd.read_parquet(out / "reranked.parquet")) == 2 and prompts == []
