"""Loading a seq2seq model and reading its special token ids from its own config.

One code path for a hub id and a local folder: ``from_pretrained(name_or_path)``. The special name
``"default"`` (or no name) means the small model shipped inside the package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class SpecialTokens:
    decoder_start_token_id: int
    eos_token_id: int  # the first of ``eos_token_ids``
    pad_token_id: int
    eos_token_ids: tuple[int, ...] = ()  # every EOS id: a row stops at any of them
    bos_token_id: int | None = None


def _first_id(value: int | list[int] | None) -> int | None:
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def _all_ids(value: int | list[int] | None) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return () if value is None else (int(value),)


def special_tokens(model: torch.nn.Module) -> SpecialTokens:
    """The decoder start, EOS and pad ids of ``model``, from its generation config, then its config.

    Works for T5/mT5/Flan-T5 (start = pad = 0, eos = 1) and BART (start = eos = 2, pad = 1) alike. As in
    ``generate``, a missing decoder start falls back to the BOS id (T5Gemma-style configs), a missing pad
    to the first EOS id, and an EOS list (``eos_token_id: [1, 107]``) keeps all its ids.
    """
    sources = [getattr(model, "generation_config", None), model.config]

    def pick(name: str) -> int | list[int] | None:
        for src in sources:
            value = getattr(src, name, None) if src is not None else None
            if value is not None and (not isinstance(value, (list, tuple)) or value):
                return value
        return None

    bos = _first_id(pick("bos_token_id"))
    start = _first_id(pick("decoder_start_token_id"))
    start = bos if start is None else start
    eos_ids, pad = _all_ids(pick("eos_token_id")), _first_id(pick("pad_token_id"))
    if start is None or not eos_ids:
        raise ValueError(
            f"model config of {type(model).__name__} lacks decoder_start_token_id (or bos_token_id) or "
            "eos_token_id; set them in config.json or generation_config.json"
        )
    return SpecialTokens(start, eos_ids[0], eos_ids[0] if pad is None else pad, eos_ids, bos)


def resolve_model_path(name_or_path: str | None) -> str:
    """Map ``None``/``"default"`` to the shipped model's folder; other values pass through unchanged."""
    if name_or_path in (None, "", DEFAULT_MODEL):
        from t5score.assets import default_model_path

        return default_model_path()
    return str(name_or_path)


def load_model_and_tokenizer(name_or_path: str | None, dtype: torch.dtype | None = None):
    """Load ``AutoModelForSeq2SeqLM`` and ``AutoTokenizer`` from a hub id or a local folder, in eval mode."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    path = resolve_model_path(name_or_path)
    local = Path(path)
    if (local.exists() or path.startswith((".", "/"))) and not (local / "config.json").is_file():
        raise FileNotFoundError(
            f"model folder {path!r} has no config.json (expected a Hugging Face model folder)"
        )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars clutter run logs and error output
    kwargs = {"dtype": dtype} if dtype is not None else {}
    untied = _UntiedT5HeadFilter()
    hf_logging.get_logger("transformers.modeling_utils").addFilter(untied)
    try:
        config = AutoConfig.from_pretrained(path)
        untied.active = config.model_type in ("t5", "mt5")
        model = AutoModelForSeq2SeqLM.from_pretrained(path, config=config, **kwargs).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as err:  # not a folder, and not reachable on the hub
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileNotFoundError(f"cannot load model {path!r}: {first}") from None
    finally:
        hf_logging.get_logger("transformers.modeling_utils").removeFilter(untied)
    return model, tokenizer


class _UntiedT5HeadFilter(logging.Filter):
    """Drop transformers' "tied weights ... both are present ... update the config" warning for T5 v1.1 /
    Flan-T5 checkpoints: transformers 5 forces ``T5Config.tie_word_embeddings=True``, so the advice cannot be
    followed, and the checkpoint's own output layer is loaded (the case the warning describes is handled)."""

    active = False  # set once the config says the model is a T5 / mT5

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (self.active and "both are present in the checkpoints" in text and "lm_head" in text)
