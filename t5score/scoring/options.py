"""How to score, declared and validated once: :class:`ScoreOptions`.

``t5score score`` and ``t5score rerank`` take their ``--model.*`` defaults from it and build one when they
start; :func:`t5score.scoring.directions.score_directions` and
:func:`t5score.scoring.rerank.score_candidates` take it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t5score.engine.forced import SCORE_FIELDS
from t5score.engine.options import ENGINES

DIRECTIONS = ("src->hyp", "hyp->src", "ref->hyp", "hyp->ref", "F", "harm_F")
SOURCE_DIRECTIONS = ("src->hyp", "hyp->src")  # the directions that need no reference
AGGREGATES = ("mean", "max")


@dataclass
class ScoreOptions:
    """BARTScore-style scoring options; invalid values raise one ValueError naming each problem.

    ``directions`` are the directions to compute (:data:`DIRECTIONS`); ``score`` the pair statistic they
    hold (:data:`SCORE_FIELDS`); ``aggregate`` how several references per row combine; ``rank_by`` the
    direction a rerank ranks by. ``encoder_prompt`` / ``decoder_prompt``: BARTScore's prompt variants, the
    text of every pair's source becoming ``f"{source} {encoder_prompt},"`` and of every target
    ``f"{decoder_prompt}, {target}"``; ``score_decoder_prompt`` whether the decoder prompt's tokens count
    in the score (BARTScore counts them). The rest goes to :func:`t5score.engine.forced.score_pairs`.
    """

    directions: tuple[str, ...] = ("src->hyp",)
    score: str = "mean_logprob"
    aggregate: str = "mean"
    include_eos: bool = True
    include_bos: bool = True
    strip_bos: bool = False
    alpha: float = 1.0
    max_target_length: int | None = None
    max_tokens_per_batch: int = 8192
    engine: str = "auto"
    rank_by: str = "src->hyp"
    encoder_prompt: str | None = None
    decoder_prompt: str | None = None
    score_decoder_prompt: bool = True

    def __post_init__(self) -> None:
        self.directions = tuple(dict.fromkeys(self.directions))
        problems = []
        unknown = [d for d in self.directions if d not in DIRECTIONS]
        if unknown:
            problems.append(f"directions must be among {DIRECTIONS}, got {unknown}")
        if self.rank_by not in DIRECTIONS:
            problems.append(f"rank_by must be one of {DIRECTIONS}, got {self.rank_by!r}")
        if self.score not in SCORE_FIELDS:
            problems.append(f"score must be one of {SCORE_FIELDS}, got {self.score!r}")
        if self.aggregate not in AGGREGATES:
            problems.append(f"aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")
        if self.engine not in ENGINES:
            problems.append(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.max_target_length is not None and self.max_target_length < 1:
            problems.append(
                f"max_target_length must be >= 1 (or null: no limit), got {self.max_target_length}"
            )
        if self.max_tokens_per_batch < 1:
            problems.append(f"max_tokens_per_batch must be >= 1, got {self.max_tokens_per_batch}")
        for name in ("encoder_prompt", "decoder_prompt"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                problems.append(f"{name} must be a non-empty text (or null: no prompt), got {value!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def run_directions(self) -> tuple[str, ...]:
        """What a ``score`` or ``rerank`` run computes: ``src->hyp`` (its pair gives the token columns),
        then ``directions`` and ``rank_by``."""
        return tuple(dict.fromkeys(["src->hyp", *self.directions, self.rank_by]))

    def encoder_text(self, text: str) -> str:
        """A pair's source as the encoder reads it: BARTScore's ``suffix_prompt`` (``x + ' ' + p + ','``)."""
        return text if self.encoder_prompt is None else f"{text} {self.encoder_prompt},"

    def decoder_text(self, text: str) -> str:
        """A pair's target as the decoder reads it: BARTScore's ``prefix_prompt`` (``p + ', ' + x``)."""
        return text if self.decoder_prompt is None else f"{self.decoder_prompt}, {text}"

    def score_pairs_kwargs(self, max_source_length: int | None = None) -> dict[str, Any]:
        """The keyword arguments of :func:`t5score.engine.forced.score_pairs` these options set."""
        unscored = (
            None if self.decoder_prompt is None or self.score_decoder_prompt else self.decoder_prompt + ","
        )
        return {
            "include_eos": self.include_eos,
            "include_bos": self.include_bos,
            "strip_bos": self.strip_bos,
            "unscored_prefix": unscored,
            "alpha": self.alpha,
            "max_source_length": max_source_length,
            "max_target_length": self.max_target_length,
            "max_tokens_per_batch": self.max_tokens_per_batch,
            "engine": self.engine,
        }
