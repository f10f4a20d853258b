from __future__ import annotations

from pathlib import Path

import pytest
import torch

from t5score.cli import main
from tests.helpers.tiny_models import make_tiny_model_dir

DATA = Path(__file__).resolve().parents[1] / "t5score" / "assets" / "data"
torch.set_num_threads(1)  # tiny test models: threads cost more than they give


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Folders with a saved tiny model + tokenizer for each kind ("t5", "t5v1.1", "bart")."""
    root = tmp_path_factory.mktemp("models")
    return {kind: make_tiny_model_dir(root / kind, kind) for kind in ("t5", "t5v1.1", "bart")}


@pytest.fixture(scope="session")
def t5_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["t5"]


@pytest.fixture(scope="session")
def shipped_runs(tmp_path_factory) -> dict[str, Path]:
    """A predict, a score and a rerank run of the shipped model (40 rows of its test split)."""
    root = tmp_path_factory.mktemp("report_page")
    rows = (DATA / "code_summary_test.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    subset = root / "rows.jsonl"
    subset.write_text("\n".join(rows) + "\n", encoding="utf-8")
    quiet = ["--trainer.enable_progress_bar", "false"]
    argv = {
        "predict": [
            "predict",
            "--data.path",
            str(subset),
            "--data.target_column",
            "target",
            "--model.top_k",
            "3",
        ],
        "score": ["score", "--data.path", str(subset), "--data.target_column", "target"],
        "rerank": ["rerank"],
    }
    out = {}
    for kind, args in argv.items():
        out[kind] = root / kind
        assert main([*args, *quiet, "--output_dir", str(out[kind])]) == 0
    return out
