"""BARTScore's scoring directions on top of :func:`t5score.engine.forced.score_pairs`.

``src->hyp`` (faithfulness), ``ref->hyp`` (precision), ``hyp->ref`` (recall) and ``F`` (their mean), with
several references per row aggregated by ``mean`` or ``max``. All pairs of all directions go through one
``score_pairs`` call, so a text used as the source of several pairs (a hypothesis in ``hyp->ref`` with many
references, a reference in ``ref->hyp``) is encoded once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t5score.engine.forced import SCORE_FIELDS, PairScore, score_pairs

DIRECTIONS = ("src->hyp", "ref->hyp", "hyp->ref", "F")
AGGREGATES = ("mean", "max")


@dataclass
class DirectionScores:
    """One direction's score per row; ``pairs[i]`` holds row ``i``'s pair scores (one per reference)."""

    direction: str
    scores: list[float | None]
    pairs: list[list[PairScore]]


def _aggregate(values: list[float | None], how: str) -> float | None:
    kept = [v for v in values if v is not None]
    if not kept:
        return None
    return sum(kept) / len(kept) if how == "mean" else max(kept)


def score_directions(
    model: torch.nn.Module,
    tokenizer,
    hypotheses: list[str],
    *,
    sources: list[str] | None = None,
    references: list[list[str] | str | None] | None = None,
    directions: tuple[str, ...] | list[str] = ("src->hyp",),
    score: str = "mean_logprob",
    aggregate: str = "mean",
    **kwargs,
) -> dict[str, DirectionScores]:
    """BARTScore's directions for each hypothesis, all pairs scored in one :func:`score_pairs` call.

    ``src->hyp`` scores the hypothesis given the source (faithfulness), ``ref->hyp`` given a reference
    (precision), ``hyp->ref`` the reference given the hypothesis (recall), and ``F`` is the mean of
    precision and recall. With several references per row, a direction's per-reference values (for ``F``:
    ``(P_r + R_r) / 2`` per reference) are aggregated by ``mean`` or ``max``. ``score`` picks the pair
    statistic (:data:`SCORE_FIELDS`; BARTScore uses ``mean_logprob``). A row whose reference is ``None``
    gets ``None`` for the reference directions. ``kwargs`` go to :func:`score_pairs`.
    """
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown or aggregate not in AGGREGATES or score not in SCORE_FIELDS:
        raise ValueError(
            f"directions must be among {DIRECTIONS} (got {unknown or list(directions)}), aggregate one of "
            f"{AGGREGATES} (got {aggregate!r}), score one of {SCORE_FIELDS} (got {score!r})"
        )
    n = len(hypotheses)
    if "src->hyp" in directions and (sources is None or len(sources) != n):
        raise ValueError(f"direction 'src->hyp' needs one source per hypothesis ({n})")
    refs: list[list[str]] = [[] for _ in range(n)]
    if any(d != "src->hyp" for d in directions):
        if references is None or len(references) != n:
            raise ValueError(f"directions {list(directions)} need one reference entry per hypothesis ({n})")
        for i, r in enumerate(references):
            refs[i] = [] if r is None else [r] if isinstance(r, str) else list(r)
            if r is not None and not refs[i]:
                raise ValueError(f"references[{i}] is an empty list")

    texts: dict[str, int] = {}
    pair_src: list[int] = []
    pair_tgt: list[str] = []
    where: dict[tuple[str, int, int], int] = {}  # (kind, row, ref) -> pair number

    def add(kind: str, row: int, ref: int, src: str, tgt: str) -> None:
        where[(kind, row, ref)] = len(pair_tgt)
        pair_src.append(texts.setdefault(src, len(texts)))
        pair_tgt.append(tgt)

    for i, hyp in enumerate(hypotheses):
        if "src->hyp" in directions:
            add("src->hyp", i, 0, sources[i], hyp)
        for j, ref in enumerate(refs[i]):
            if {"ref->hyp", "F"} & set(directions):
                add("ref->hyp", i, j, ref, hyp)
            if {"hyp->ref", "F"} & set(directions):
                add("hyp->ref", i, j, hyp, ref)
    scored = score_pairs(model, tokenizer, list(texts), pair_tgt, pair_source_index=pair_src, **kwargs)

    out: dict[str, DirectionScores] = {}
    for d in directions:
        per_row, pairs = [], []
        for i in range(n):
            if d == "src->hyp":
                row_pairs = [scored[where[(d, i, 0)]]]
                values = [row_pairs[0].score(score)]
            elif d == "F":
                row_pairs = []
                values = []
                for j in range(len(refs[i])):
                    p, r = (
                        scored[where[("ref->hyp", i, j)]].score(score),
                        scored[where[("hyp->ref", i, j)]].score(score),
                    )
                    values.append(None if p is None or r is None else (p + r) / 2)
            else:
                row_pairs = [scored[where[(d, i, j)]] for j in range(len(refs[i]))]
                values = [p.score(score) for p in row_pairs]
            per_row.append(_aggregate(values, aggregate))
            pairs.append(row_pairs)
        out[d] = DirectionScores(direction=d, scores=per_row, pairs=pairs)
    return out
