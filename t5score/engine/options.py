"""How to decode, declared and validated once: :class:`DecodeOptions`, :class:`Sampling`, the engine names.

:class:`DecodeOptions` holds every default (the ``--model.*`` options of ``t5score predict`` take theirs
from it) and checks itself when built; :func:`t5score.engine.decode.greedy_decode` takes it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from t5score.engine.logits_store import DTYPES

ENGINES = ("auto", "hf", "t5")  # auto: the fast T5 kernels where they apply, else the model's own forward
CAPTURE_MODES = ("stats", "full")  # full: also every step's raw logits, streamed to disk
#: inflight: a fixed number of decoder slots, a finished row's slot refilled at once (t5score.engine.inflight);
#: static: batches of ``slots`` rows run to their longest row; auto: inflight where it applies, else static
BATCHING = ("auto", "inflight", "static")
MAX_SEED = 2**32  # seeds in [0, MAX_SEED): every batch's and sample's derived seed fits torch's generator


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
    ``engine``, ``compile`` and the generation settings; :func:`t5score.engine.beam.beam_search` also the
    beam settings (``num_beams`` > 1 decodes with beam search: ``num_return_sequences`` candidates per
    source, ``num_beam_groups`` / ``diversity_penalty`` for diverse beam search, ``length_penalty`` and
    ``early_stopping`` as ``generate`` takes them, ``None`` meaning the generation config's value) (:mod:`t5score.engine.processors`); the others
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
    num_beams: int = 1  # > 1: beam search (t5score.engine.beam); the generation config's is not applied
    num_return_sequences: int = 1  # candidates per source under beam search (<= num_beams)
    num_beam_groups: int = 1  # > 1: diverse beam search, num_beams split into groups
    diversity_penalty: float = 0.0  # Hamming diversity penalty between groups (needs num_beam_groups > 1)
    length_penalty: float | None = None  # None: the generation config's, else 1.0
    early_stopping: bool | str | None = None  # None: the generation config's, else False; or "never"
    batching: str = "auto"  # "inflight", "static", or "auto": in-flight where it applies (BATCHING)
    slots: int = 16  # rows decoded at once: in-flight decoder slots, or the static batches' size

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if self.capture not in CAPTURE_MODES:
            raise ValueError(f"capture must be one of {CAPTURE_MODES}, got {self.capture!r}")
        if self.logits_dtype not in DTYPES:
            raise ValueError(f"logits_dtype must be one of {sorted(DTYPES)}, got {self.logits_dtype!r}")
        Sampling(self.temperature, self.top_p)  # checked when given, sampled or not
        if not 0 <= self.seed < MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.eos_check_every < 1:
            raise ValueError(f"eos_check_every must be >= 1, got {self.eos_check_every}")
        if self.top_k < 0 or self.num_samples < 0:
            raise ValueError(f"need top_k >= 0 and num_samples >= 0; got {self}")
        if self.capture == "full" and self.num_samples > 1:
            raise ValueError("capture='full' keeps one logits array per row: use it with num_samples 0 or 1")
        self._check_beams()
        if self.batching not in BATCHING:
            raise ValueError(f"batching must be one of {BATCHING}, got {self.batching!r}")
        if self.slots < 1:
            raise ValueError(f"slots must be >= 1, got {self.slots}")
        if self.generation_config is not None and not isinstance(self.generation_config, dict):
            raise ValueError(
                f"generation_config must be a dict of settings, got {type(self.generation_config).__name__}"
            )

    def _check_beams(self) -> None:
        """One ValueError per bad beam-search setting."""
        if self.num_beams < 1 or self.num_return_sequences < 1 or self.num_beam_groups < 1:
            raise ValueError(
                "need num_beams, num_return_sequences and num_beam_groups >= 1; got "
                f"{self.num_beams}, {self.num_return_sequences}, {self.num_beam_groups}"
            )
        if self.num_return_sequences > self.num_beams:
            raise ValueError(
                f"num_return_sequences ({self.num_return_sequences}) must be <= num_beams ({self.num_beams})"
            )
        if self.num_beams % self.num_beam_groups:
            raise ValueError(
                f"num_beams ({self.num_beams}) must be divisible by num_beam_groups ({self.num_beam_groups})"
            )
        if self.diversity_penalty < 0:
            raise ValueError(f"diversity_penalty must be >= 0, got {self.diversity_penalty}")
        if self.diversity_penalty > 0 and self.num_beam_groups < 2:
            raise ValueError("diversity_penalty > 0 needs num_beam_groups > 1 (diverse beam search)")
        if self.num_beams > 1 and self.num_samples > 0:
            raise ValueError("beam search (num_beams > 1) and sampling (num_samples > 0) cannot be combined")
        if self.early_stopping not in (None, True, False, "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")

    def sampling(self, batch_index: int, sample: int, part: int = 0) -> Sampling | None:
        """``None`` for greedy decoding; else the sampling of one sample of one batch (or of one part of
        it, see :attr:`slots`), with its own seed derived from :attr:`seed`, so a run is reproducible
        batch by batch."""
        if not self.num_samples:
            return None
        seed = self.seed * 1_000_003 + batch_index * 1009 + sample + part * 104_729
        return Sampling(self.temperature, self.top_p, seed)
