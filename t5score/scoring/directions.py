"""BARTScore's scoring directions on top of :func:`t5score.engine.forced.score_pairs`.

``src->hyp`` (faithfulness), ``ref->hyp`` (precision), ``hyp->ref`` (recall) and ``F`` (their mean), with
several references per row aggregated by ``mean`` or ``max``. Scoring is three steps: :func:`plan_pairs`
lists the (source, target) pairs every direction needs, one ``score_pairs`` call scores them all (so a text
used as the source of several pairs, a hypothesis in ``hyp->ref`` with many references or a reference in
``ref->hyp``, is encoded once), and :func:`direction_scores` reads each direction's per-row score off them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from t5score.engine.forced import PairScore, score_pairs
from t5score.scoring.options import AGGREGATES, DIRECTIONS, ScoreOptions

__all__ = [
    "AGGREGATES",
    "DIRECTIONS",
    "DirectionScores",
    "PairPlan",
    "direction_column",
    "direction_scores",
    "plan_pairs",
    "reference_lists",
    "score_directions",
]


def direction_column(direction: str) -> str:
    """The output column of a direction: ``src->hyp`` -> ``score_src_hyp``; ``F`` -> ``score_f``."""
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
    if all(d == "src->hyp" for d in directions):
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
    """Every pair the ``directions`` need, row by row (``F`` needs the ``ref->hyp`` and ``hyp->ref`` pairs)."""
    n = len(hypotheses)
    if "src->hyp" in directions and (sources is None or len(sources) != n):
        raise ValueError(f"direction 'src->hyp' needs one source per hypothesis ({n})")
    precision = bool({"ref->hyp", "F"} & set(directions))
    recall = bool({"hyp->ref", "F"} & set(directions))
    plan = PairPlan(references)
    for i, hyp in enumerate(hypotheses):
        if "src->hyp" in directions:
            plan.add("src->hyp", i, 0, sources[i], hyp)
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


def _f_value(plan: PairPlan, scored: list[PairScore], row: int, ref: int, score: str) -> float | None:
    """``F`` for one reference: the mean of its precision and recall (None when either is)."""
    p = scored[plan.where[("ref->hyp", row, ref)]].score(score)
    r = scored[plan.where[("hyp->ref", row, ref)]].score(score)
    return None if p is None or r is None else (p + r) / 2


def direction_scores(
    direction: str, plan: PairPlan, scored: list[PairScore], score: str, aggregate: str
) -> DirectionScores:
    """One direction's per-row score from the scored pairs of ``plan``, references aggregated."""
    per_row, pairs = [], []
    for i, refs in enumerate(plan.references):
        if direction == "src->hyp":
            row_pairs = [scored[plan.where[(direction, i, 0)]]]
            values = [row_pairs[0].score(score)]
        elif direction == "F":
            row_pairs, values = [], [_f_value(plan, scored, i, j, score) for j in range(len(refs))]
        else:
            row_pairs = [scored[plan.where[(direction, i, j)]] for j in range(len(refs))]
            values = [p.score(score) for p in row_pairs]
        per_row.append(_aggregate(values, aggregate))
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

    ``src->hyp`` scores the hypothesis given the source (faithfulness), ``ref->hyp`` given a reference
    (precision), ``hyp->ref`` the reference given the hypothesis (recall), and ``F`` is the mean of
    precision and recall. With several references per row, a direction's per-reference values (for ``F``:
    ``(P_r + R_r) / 2`` per reference) are aggregated by ``options.aggregate`` (``mean`` or ``max``).
    ``options.score`` picks the pair statistic (BARTScore uses ``mean_logprob``). A row whose reference is
    ``None`` gets ``None`` for the reference directions.
    """
    options = options or ScoreOptions()
    directions = options.directions
    refs = reference_lists(references, len(hypotheses), directions)
    plan = plan_pairs(hypotheses, sources, refs, directions)
    scored = score_pairs(
        model,
        tokenizer,
        plan.sources,
        plan.targets,
        pair_source_index=plan.pair_source_index,
        **options.score_pairs_kwargs(max_source_length),
    )
    return {d: direction_scores(d, plan, scored, options.score, options.aggregate) for d in directions}
