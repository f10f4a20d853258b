"""How to decode, declared and validated once: :class:`DecodeOptions`, :class:`Sampling`, the engine names.

:class:`DecodeOptions` holds every default (the ``--model.*`` options of ``t5score predict`` take theirs
from it) and checks itself when built; :func:`t5score.engine.decode.greedy_decode` takes it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("auto", "hf", "t5")  # auto: the fast T5 kernels where they apply, else the model's own forward
CAPTURE_MODES = ("stats", "full")  # full: also every step's raw logits, streamed to disk


def check_engine(engine: str) -> None:
    """A ValueError unless ``engine`` is one of :data:`ENGINES` (decoding and scoring alike)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


@dataclass
class Sampling:
    """Ancestral sampling instead of greedy choice; statistics still describe the raw model distribution."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class DecodeOptions:
    """How to decode; the fields are the ``--model.*`` options of ``t5score predict``.

    ``greedy_decode`` reads ``max_new_tokens``, ``top_k``, ``eos_check_every``, ``drop_finished``,
    ``engine``, ``compile`` and the generation settings (:mod:`t5score.engine.processors`); the others
    (capture, samples, their seed) are the caller's: see :func:`t5score.runs.decode_rows.decode_rows` and
    :meth:`sampling`.

    ``max_new_tokens`` ``None``: the generation config's ``max_new_tokens``, else its ``max_length - 1``,
    else 64. ``generation_config``: overrides of the model's generation config, as ``generate`` takes them
    (``{"no_repeat_ngram_size": 0}``); ``use_generation_config=False`` decodes from the raw model alone
    (only its special tokens; overrides still apply); ``forced_bos_token``: the first generated token (the
    target language of multilingual models), an id or a token string (resolved with the tokenizer by
    :func:`t5score.engine.processors.with_token_ids`).
    """

    max_new_tokens: int | None = None
    top_k: int = 5
    capture: str = "stats"
    logits_dtype: str = "float16"
    num_samples: int = 0  # 0: greedy; N > 0: N sampled candidates per source
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    eos_check_every: int = 1  # check for "all rows finished" every N steps (fewer host syncs)
    drop_finished: bool = False  # finished rows leave the batch
    engine: str = "auto"  # one of ENGINES
    compile: bool | str = False  # torch.compile the fast T5 step (a string names the backend)
    generation_config: dict | None = None  # overrides of the model's generation config
    use_generation_config: bool = True  # False: the raw model alone, no logits processors
    forced_bos_token: str | int | None = None  # e.g. "fra_Latn", or an id

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if self.capture not in CAPTURE_MODES:
            raise ValueError(f"capture must be one of {CAPTURE_MODES}, got {self.capture!r}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.eos_check_every < 1:
            raise ValueError(f"eos_check_every must be >= 1, got {self.eos_check_every}")
        if self.top_k < 0 or self.num_samples < 0:
            raise ValueError(f"need top_k >= 0 and num_samples >= 0; got {self}")
        if self.capture == "full" and self.num_samples > 1:
            raise ValueError("capture='full' keeps one logits array per row: use it with num_samples 0 or 1")
        if self.generation_config is not None and not isinstance(self.generation_config, dict):
            raise ValueError(
                f"generation_config must be a dict of settings, got {type(self.generation_config).__name__}"
            )

    def sampling(self, batch_index: int, sample: int) -> Sampling | None:
        """``None`` for greedy decoding; else the sampling of one sample of one batch, with its own seed
        derived from :attr:`seed`, so a run is reproducible batch by batch."""
        if not self.num_samples:
            return None
        seed = self.seed * 1_000_003 + batch_index * 1009 + sample
        return Sampling(self.temperature, self.top_p, seed)
