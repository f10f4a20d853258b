"""The shipped model card is what tools/model_card.py renders from the recorded training metadata."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from t5score.assets import default_model_path

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shipped() -> tuple[dict, str]:
    folder = Path(default_model_path())
    info = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    return info, (folder / "README.md").read_text(encoding="utf-8")


def test_card_renders_the_shipped_card_from_training_json(shipped):
    info, card = shipped
    assert _tool("model_card").render_model_card(info) == card


def test_card_shows_the_recorded_numbers(shipped):
    info, _ = shipped
    model_card = _tool("model_card")
    fields = model_card.card_fields(info)
    assert fields["num_parameters"] == f"{info['num_parameters']:,}"
    assert fields["validation_loss"] == f"{info['validation']['loss']:.3f}"
    assert fields["test_rows"] == str(info["data"]["test"])
    changed = {**info, "validation": {**info["validation"], "loss": 9.87654}}
    text = model_card.render_model_card(changed)
    assert "| validation | 9.877 |" in text and f"| validation | {fields['validation_loss']} |" not in text
    with pytest.raises(KeyError, match="seed"):
        model_card.render_model_card({k: v for k, v in info.items() if k != "seed"})


def test_card_only_rewrites_the_card_from_training_json(tmp_path, shipped, monkeypatch):
    """``tools/train_default_model.py --card-only`` (the training script, split into modules, still loads:
    run in this process, which has its imports already, rather than in a fresh one that pays for them)."""
    _, card = shipped
    shutil.copy(Path(default_model_path()) / "training.json", tmp_path / "training.json")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts tools/ on it
    _tool("train_default_model").main(["--card-only", "--out-dir", str(tmp_path)])
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == card
