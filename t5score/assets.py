"""Paths of the data and model shipped inside the package (t5score's embedded default).

* ``default_model_path()``: ``tiny-code-t5``, a small T5 trained on Python standard-library code
  summarisation (see its ``README.md``); load it with ``AutoModelForSeq2SeqLM.from_pretrained``.
* ``default_data_path(split)``: the ``test`` or ``validation`` JSONL split (fields ``id``, ``source``,
  ``target``).
* ``default_candidates_path()``: candidate summaries for the first test sources (fields ``id``,
  ``source``, ``reference``, ``candidates``), for reranking.

>>> from pathlib import Path
>>> Path(default_model_path()).name
'tiny-code-t5'
>>> Path(default_data_path("validation")).name
'code_summary_validation.jsonl'
"""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DATA_SPLITS = ("test", "validation")


def _existing(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(
            f"t5score asset {path} is missing; reinstall t5score or rebuild it with "
            "tools/build_code_summary_data.py and tools/train_default_model.py"
        )
    return str(path)


def default_model_path() -> str:
    """Folder of the embedded tiny T5 (config, safetensors weights, tokenizer, model card)."""
    return _existing(ASSETS_DIR / "tiny-code-t5")


def default_data_path(split: str = "test") -> str:
    """JSONL file of one shipped code-summarisation split: ``"test"`` (default) or ``"validation"``."""
    if split not in DATA_SPLITS:
        raise ValueError(f"split must be one of {', '.join(DATA_SPLITS)}, got {split!r}")
    return _existing(ASSETS_DIR / "data" / f"code_summary_{split}.jsonl")


def default_candidates_path() -> str:
    """JSONL file of candidate summaries (greedy output + samples) for the first test sources."""
    return _existing(ASSETS_DIR / "data" / "code_summary_candidates.jsonl")
