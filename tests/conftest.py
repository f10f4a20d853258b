from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_models import make_tiny_model_dir

torch.set_num_threads(1)  # tiny test models: threads cost more than they give


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Folders with a saved tiny model + tokenizer for each kind ("t5", "t5v1.1", "bart")."""
    root = tmp_path_factory.mktemp("models")
    return {kind: make_tiny_model_dir(root / kind, kind) for kind in ("t5", "t5v1.1", "bart")}


@pytest.fixture(scope="session")
def t5_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["t5"]
