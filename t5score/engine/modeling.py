"""Loading a seq2seq model and reading its special token ids from its own config.

One code path for a hub id and a local folder: ``from_pretrained(name_or_path)``. The special name
``"default"`` (or no name) means the small model shipped inside the package. Before a hub id is looked up,
one connection attempt of :data:`HUB_TIMEOUT` seconds tells whether the hub answers at all; if it does not
(or ``HF_HUB_OFFLINE`` is set) the model is loaded from the local Hugging Face cache only, and a model not
in it fails at once in one line, instead of after a minute of retries.
"""

from __future__ import annotations

import logging
import pickle
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError

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


def vocab_size(model: torch.nn.Module) -> int:
    """The number of logits per step: the output layer's size (also once quantised), else the config's."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    size = getattr(head, "out_features", None)
    return int(size) if size is not None else int(model.config.vocab_size)


#: Generation settings that name token ids the decoder feeds or forces: each must be in the vocabulary.
DECODED_TOKEN_SETTINGS = (
    "decoder_start_token_id",
    "eos_token_id",
    "forced_bos_token_id",
    "forced_eos_token_id",
)


#: decoder position tables of a fixed size (they raise an index error past it; M2M100's and FSMT's grow)
FIXED_POSITION_TABLES = (
    "LearnedPositionalEmbedding",
    "PegasusSinusoidalPositionalEmbedding",
    "MarianSinusoidalPositionalEmbedding",
)


def decoder_positions(model: torch.nn.Module) -> int | None:
    """How many decoder positions ``model``'s fixed table of absolute position embeddings holds (its rows less
    BART's offset of 2); None for relative positions (T5) or a table that grows as needed."""
    get_decoder = getattr(model, "get_decoder", None)
    embed = getattr(get_decoder(), "embed_positions", None) if get_decoder is not None else None
    if not isinstance(embed, torch.nn.Embedding) or not type(embed).__name__.endswith(FIXED_POSITION_TABLES):
        return None
    return embed.num_embeddings - int(getattr(embed, "offset", 0))


def check_token_ids(config: object, vocab: int) -> None:
    """A ValueError naming the first of :data:`DECODED_TOKEN_SETTINGS` in ``config`` (a generation config)
    with an id outside ``[0, vocab)``."""
    for name in DECODED_TOKEN_SETTINGS:
        value = getattr(config, name, None)
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if token is not None and not 0 <= int(token) < vocab:
                raise ValueError(f"{name} {token} is not in the model's vocabulary ({vocab} tokens)")


def resolve_model_path(name_or_path: str | None) -> str:
    """Map ``None``/``"default"`` to the shipped model's folder; other values pass through unchanged."""
    if name_or_path in (None, "", DEFAULT_MODEL):
        from t5score.assets import default_model_path

        return default_model_path()
    return str(name_or_path)


#: The weight files ``from_pretrained`` reads from a local folder, in the order it prefers them.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


#: seconds one connection attempt to the hub (or the proxy in the way) may take
HUB_TIMEOUT = 3.0


def _hub_address() -> tuple[str, int]:
    """Host and port a request to the hub goes to first: ``HF_ENDPOINT``'s, or the proxy's in the way."""
    import urllib.request
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(timeout: float = HUB_TIMEOUT) -> bool:
    """Whether the hub (or its proxy) accepts a connection within ``timeout`` seconds, name lookup
    included (run in a thread, as ``getaddrinfo`` has no timeout of its own)."""
    host, port = _hub_address()
    answered: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answered.append(True)
        except OSError:
            answered.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered and answered[0])


def hub_offline() -> str | None:
    """Why a hub id can only come from the local cache (``HF_HUB_OFFLINE`` set, the hub unreachable), or
    None when the hub answers."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if not hub_reachable():
        return f"the Hugging Face hub ({constants.ENDPOINT}) is unreachable"
    return None


def _not_cached(path: str, offline: str) -> str:
    from huggingface_hub import constants

    return (
        f"cannot load model {path!r}: {offline} and the model is not in the local Hugging Face cache "
        f"({constants.HF_HUB_CACHE}); pass a local model folder: --model.name_or_path /path/to/folder "
        "(Python: Predictor.from_pretrained('/path/to/folder'))"
    )


def load_model_and_tokenizer(
    name_or_path: str | None, dtype: torch.dtype | None = None, trust_remote_code: bool = False
):
    """Load ``AutoModelForSeq2SeqLM`` and ``AutoTokenizer`` from a hub id or a local folder, in eval mode.

    A model that names its own Python code (``auto_map``) is refused in one ValueError line, without a
    prompt and without running that code, unless ``trust_remote_code``; so are weight files that are
    damaged, not a state dict, or hold none of the model's weights. A hub id is read from the local
    cache alone when the hub does not answer (:func:`hub_offline`).
    """
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    path = resolve_model_path(name_or_path)
    local = Path(path)
    if (local.exists() or path.startswith((".", "/"))) and not (local / "config.json").is_file():
        raise FileNotFoundError(
            f"model folder {path!r} has no config.json (expected a Hugging Face model folder)"
        )
    offline = None if local.exists() else hub_offline()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars clutter run logs and error output
    trust = {"trust_remote_code": bool(trust_remote_code)}  # explicit: never transformers' y/N prompt
    if offline:
        trust["local_files_only"] = True  # no request at all: no retries, no "Name or service" noise
    kwargs = {"dtype": dtype} if dtype is not None else {}
    held = _LoadMessages()
    hf_logger = hf_logging.get_logger("transformers.modeling_utils")
    hf_logger.addFilter(held)
    try:
        config = AutoConfig.from_pretrained(path, **trust)
        held.untied_t5 = config.model_type in ("t5", "mt5")
        try:
            model, info = AutoModelForSeq2SeqLM.from_pretrained(
                path, config=config, output_loading_info=True, **trust, **kwargs
            )
        except torch.OutOfMemoryError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, RuntimeError, SafetensorError) as err:
            raise ValueError(_weights_error(path, err)) from None
        if model.state_dict() and set(model.state_dict()) <= set(info["missing_keys"]):
            raise ValueError(
                f"{_weights_name(path)} holds none of the weights of {type(model).__name__} (all "
                f"{len(info['missing_keys'])} missing): it is not this model's checkpoint"
            )
        tokenizer = AutoTokenizer.from_pretrained(path, **trust)
        held.release(hf_logger)
    except OSError as err:  # not a folder, and not reachable on the hub
        if offline:
            raise FileNotFoundError(_not_cached(path, offline)) from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileNotFoundError(f"cannot load model {path!r}: {first}") from None
    except ValueError as err:
        if "trust_remote_code" not in str(err) or trust_remote_code:
            raise
        raise ValueError(
            f"model {path!r} names its own Python code to load it (auto_map); t5score does not run a "
            "model's code unless asked: read that code, then pass --model.trust_remote_code true "
            "(Python: trust_remote_code=True)"
        ) from None
    finally:
        hf_logger.removeFilter(held)
    return model.eval(), tokenizer


def _weights_name(path: str) -> str:
    """The weight file ``from_pretrained`` reads in the folder ``path`` (or a hub id's weights)."""
    found = [name for name in WEIGHT_FILES if (Path(path) / name).is_file()]
    return str(Path(path) / found[0]) if found else f"the weights of {path!r}"


def _weights_error(path: str, err: BaseException) -> str:
    """One line naming the weight file that did not load and why."""
    text = str(err).strip()
    if "ignore_mismatched_sizes" in text:
        reason = "its tensor shapes do not match config.json (a checkpoint of another model size?)"
    elif isinstance(err, (pickle.UnpicklingError, EOFError, TypeError)):
        reason = "it is not a state dict of tensors (torch.save(model.state_dict()) writes one)"
    else:
        reason = f"it is damaged ({type(err).__name__}: {text.splitlines()[0] if text else 'no detail'})"
    return f"cannot load {_weights_name(path)}: {reason}"


class _LoadMessages(logging.Filter):
    """Holds transformers' loading messages until the model is known to load, so a refused checkpoint
    leaves one line, not its load report; :meth:`release` passes them on. Drops transformers' "tied weights
    ... both are present ... update the config" warning for T5 v1.1 / Flan-T5 checkpoints: transformers 5
    forces ``T5Config.tie_word_embeddings=True``, so the advice cannot be followed, and the checkpoint's own
    output layer is loaded (the case the warning describes is handled)."""

    def __init__(self) -> None:
        super().__init__()
        self.untied_t5 = False  # set once the config says the model is a T5 / mT5
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if not (self.untied_t5 and "both are present in the checkpoints" in text and "lm_head" in text):
            self.records.append(record)
        return False

    def release(self, logger: logging.Logger) -> None:
        logger.removeFilter(self)
        for record in self.records:
            logger.handle(record)
        self.records = []
