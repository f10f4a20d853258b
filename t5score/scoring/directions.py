"""BARTScore's scoring directions on top of :func:`t5score.engine.forced.score_pairs`.

``src->hyp`` (faithfulness: the hypothesis given the source), ``hyp->src`` (the source given the
hypothesis: T5Score's source "recall"), ``ref->hyp`` (precision), ``hyp->ref`` (recall), ``F`` (the mean of
precision and recall: BARTScore's ``avg_f``) and ``harm_F`` (BARTScore's ``harm_f``, ``P * R / (P + R)``:
half the harmonic mean, as its code computes it), with several references per row aggregated by ``mean``
or ``max``. Scoring is three steps: :func:`plan_pairs` lists the (source, target) pairs every direction
needs, one ``score_pairs`` call scores them all (so a text used as the source of several pairs, a
hypothesis in ``hyp->ref`` with many references or a reference in ``ref->hyp``, is encoded once), and
:func:`direction_scores` reads each direction's per-row score off them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from t5score.engine.forced import PairScore, score_pairs
from t5score.scoring.options import AGGREGATES, DIRECTIONS, SOURCE_DIRECTIONS, ScoreOptions

__all__ = [
    "AGGREGATES",
    "DIRECTIONS",
    "SOURCE_DIRECTIONS",
    "DirectionScores",
    "PairPlan",
    "direction_column",
    "direction_scores",
    "plan_pairs",
    "reference_lists",
    "score_directions",
]


def direction_column(direction: str) -> str:
    """The output column of a direction: ``src->hyp`` -> ``score_src_hyp``; ``harm_F`` -> ``score_harm_f``."""
    return "score_" + direction.lower().replace("->", "_")


@dataclass
class DirectionScores:
    """One direction's score per row; ``pairs[i]`` holds row ``i``'s pair scores (one per reference)."""

    direction: str
    scores: list[float | None]
    pairs: list[list[PairScore]]


@dataclass
class PairPlan:
    """The pairs to score for all directions: distinct source texts, and per pair its source and target."""

    references: list[list[str]]  # per row: its references (empty when it has none)
    sources: list[str] = field(default_factory=list)  # distinct texts used as a pair's source
    pair_source_index: list[int] = field(default_factory=list)  # pair -> index into ``sources``
    targets: list[str] = field(default_factory=list)  # pair -> target text
    where: dict[tuple[str, int, int], int] = field(default_factory=dict)  # (kind, row, ref) -> pair
    source_number: dict[str, int] = field(default_factory=dict, repr=False)  # text -> index into sources

    def add(self, kind: str, row: int, ref: int, source: str, target: str) -> None:
        """One pair: ``target`` given ``source``, found again under ``(kind, row, ref)``."""
        if source not in self.source_number:
            self.source_number[source] = len(self.sources)
            self.sources.append(source)
        self.where[(kind, row, ref)] = len(self.targets)
        self.pair_source_index.append(self.source_number[source])
        self.targets.append(target)


def reference_lists(
    references: list[list[str] | str | None] | None, n: int, directions: tuple[str, ...]
) -> list[list[str]]:
    """Each row's references as a list (a text is a one-item list, ``None`` an empty one); checked only
    when a direction needs references."""
    if all(d in SOURCE_DIRECTIONS for d in directions):
        return [[] for _ in range(n)]
    if references is None or len(references) != n:
        raise ValueError(f"directions {list(directions)} need one reference entry per hypothesis ({n})")
    refs = []
    for i, r in enumerate(references):
        refs.append([] if r is None else [r] if isinstance(r, str) else list(r))
        if r is not None and not refs[i]:
            raise ValueError(f"references[{i}] is an empty list")
    return refs


def plan_pairs(
    hypotheses: list[str],
    sources: list[str] | None,
    references: list[list[str]],
    directions: tuple[str, ...],
) -> PairPlan:
    """Every pair the ``directions`` need, row by row (``F`` and ``harm_F`` need the ``ref->hyp`` and
    ``hyp->ref`` pairs)."""
    n = len(hypotheses)
    for d in SOURCE_DIRECTIONS:
        if d in directions and (sources is None or len(sources) != n):
            raise ValueError(f"direction {d!r} needs one source per hypothesis ({n})")
    precision = bool({"ref->hyp", "F", "harm_F"} & set(directions))
    recall = bool({"hyp->ref", "F", "harm_F"} & set(directions))
    plan = PairPlan(references)
    for i, hyp in enumerate(hypotheses):
        if "src->hyp" in directions:
            plan.add("src->hyp", i, 0, sources[i], hyp)
        if "hyp->src" in directions:
            plan.add("hyp->src", i, 0, hyp, sources[i])
        for j, ref in enumerate(references[i]):
            if precision:
                plan.add("ref->hyp", i, j, ref, hyp)
            if recall:
                plan.add("hyp->ref", i, j, hyp, ref)
    return plan


def _aggregate(values: list[float | None], how: str) -> float | None:
    kept = [v for v in values if v is not None]
    if not kept:
        return None
    return sum(kept) / len(kept) if how == "mean" else max(kept)


def harmonic_f(precision: float, recall: float) -> float:
    """BARTScore's ``harm_f``: ``P * R / (P + R)`` (half the harmonic mean; 0 when both are 0).

    >>> harmonic_f(-2.0, -6.0)
    -1.5
    """
    total = precision + recall
    if total == 0:
        return 0.0 if precision == 0 else math.nan
    return precision * recall / total


def _precision_recall(plan: PairPlan, scored: list[PairScore], row: int, score: str) -> list[tuple]:
    """(P, R) per reference of ``row`` where both are scored."""
    pairs = []
    for ref in range(len(plan.references[row])):
        p = scored[plan.where[("ref->hyp", row, ref)]].score(score)
        r = scored[plan.where[("hyp->ref", row, ref)]].score(score)
        if p is not None and r is not None:
            pairs.append((p, r))
    return pairs


def _combined(direction: str, pairs: list[tuple], aggregate: str) -> float | None:
    """``F`` or ``harm_F`` of one row from its references' (P, R), as BARTScore combines them: with
    ``mean``, P and R averaged over the references first, then combined (SUM/score.py; for ``F`` the same
    as the mean of the per-reference F); with ``max``, the best reference's combined value
    (D2T/score.py)."""
    if not pairs:
        return None
    combine = harmonic_f if direction == "harm_F" else (lambda p, r: (p + r) / 2)
    if aggregate == "max":
        return max(combine(p, r) for p, r in pairs)
    return combine(sum(p for p, _ in pairs) / len(pairs), sum(r for _, r in pairs) / len(pairs))


def direction_scores(
    direction: str, plan: PairPlan, scored: list[PairScore], score: str, aggregate: str
) -> DirectionScores:
    """One direction's per-row score from the scored pairs of ``plan``, references aggregated."""
    per_row, pairs = [], []
    for i, refs in enumerate(plan.references):
        if direction in SOURCE_DIRECTIONS:
            row_pairs = [scored[plan.where[(direction, i, 0)]]]
            value = row_pairs[0].score(score)
        elif direction in ("F", "harm_F"):
            row_pairs = []
            value = _combined(direction, _precision_recall(plan, scored, i, score), aggregate)
        else:
            row_pairs = [scored[plan.where[(direction, i, j)]] for j in range(len(refs))]
            value = _aggregate([p.score(score) for p in row_pairs], aggregate)
        per_row.append(value)
        pairs.append(row_pairs)
    return DirectionScores(direction=direction, scores=per_row, pairs=pairs)


def score_directions(
    model: torch.nn.Module,
    tokenizer,
    hypotheses: list[str],
    *,
    sources: list[str] | None = None,
    references: list[list[str] | str | None] | None = None,
    options: ScoreOptions | None = None,
    max_source_length: int | None = None,
) -> dict[str, DirectionScores]:
    """BARTScore's ``options.directions`` for each hypothesis, all pairs scored in one :func:`score_pairs` call.

    ``src->hyp`` scores the hypothesis given the source (faithfulness), ``hyp->src`` the source given the
    hypothesis, ``ref->hyp`` the hypothesis given a reference (precision), ``hyp->ref`` the reference
    given the hypothesis (recall); ``F`` is ``(P + R) / 2`` and ``harm_F`` is ``P * R / (P + R)``. With
    several references per row, ``options.aggregate`` ``mean`` averages a direction over them (``F`` and
    ``harm_F``: of the averaged P and R) and ``max`` keeps the best (``F`` and ``harm_F``: the best
    reference's value), as BARTScore's SUM and D2T scripts do. ``options.score`` picks the pair statistic
    (BARTScore uses ``mean_logprob``). ``options.encoder_prompt`` / ``decoder_prompt`` rewrite every pair's
    source / target text (:meth:`ScoreOptions.encoder_text`, :meth:`ScoreOptions.decoder_text`). A row
    whose reference is ``None`` gets ``None`` for the reference directions.
    """
    options = options or ScoreOptions()
    directions = options.directions
    refs = reference_lists(references, len(hypotheses), directions)
    plan = plan_pairs(hypotheses, sources, refs, directions)
    scored = score_pairs(
        model,
        tokenizer,
        [options.encoder_text(t) for t in plan.sources],
        [options.decoder_text(t) for t in plan.targets],
        pair_source_index=plan.pair_source_index,
        **options.score_pairs_kwargs(max_source_length),
    )
    return {d: direction_scores(d, plan, scored, options.score, options.aggregate) for d in directions}
