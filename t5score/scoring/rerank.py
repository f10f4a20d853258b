"""Reranking candidate summaries by model score (candidates as :func:`t5score.data.candidates.read_candidates`
gives them), and the meta-evaluation of that ranking.

Ranking: rank 1 is the highest score; ties are broken by candidate index (the earlier candidate first),
missing scores (a reference direction in a group without reference) rank last, flagged rows (``error`` set,
or no candidate) get no rank. A candidate with a non-finite score (NaN or inf, in any direction computed:
non-finite logits) is flagged, ``error`` = ``score src->hyp is not finite (non-finite logits)``, its
non-finite scores are written as nulls and it is never ranked; the other candidates of its group are ranked
among themselves, and a group left without one has no rank-1 candidate. Default score: mean
log-probability of the candidate given the source (``src->hyp``). Meta-evaluation (summary-level, see
:mod:`t5score.scoring.meta_evaluation`): ROUGE-1/2/L/Lsum F1 (stemmed) against the reference of the top-ranked
candidate, of the first candidate (baseline) and of the oracle (the candidate with the best mean of
ROUGE-1/2/L); Kendall's tau-b and Spearman's rho between score and ROUGE-L (and the human score) computed
within each group and averaged over groups. Groups with fewer than two scored candidates or with constant
values (correlation undefined) are skipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from itertools import groupby
from typing import Any

import pandas as pd
import torch

from t5score.data.frames import records_frame
from t5score.data.values import is_missing
from t5score.records import CandidateRow, RerankRecord, fill_from_pair
from t5score.scoring.directions import direction_column, score_directions
from t5score.scoring.meta_evaluation import meta_evaluate, not_finite_error
from t5score.scoring.options import SOURCE_DIRECTIONS, ScoreOptions
from t5score.scoring.rouge import add_rouge_columns


def _unrankable(score: Any) -> bool:
    """A score that is there but not finite (NaN, inf): such a candidate gets no rank."""
    return score is not None and score is not pd.NA and not math.isfinite(float(score))


def rank_values(
    groups: Sequence[Any], indices: Sequence[Any], scores: Sequence[Any], errors: Sequence[Any]
) -> list[int | None]:
    """1-based rank of each candidate within its group: highest score first, ties by candidate index, a
    missing (None) score last; None where ``errors`` is set, ``indices`` is missing or the score is not
    finite (NaN, inf), the other candidates of the group being ranked among themselves."""
    ranked = [
        i
        for i in range(len(groups))
        if is_missing(errors[i]) and not is_missing(indices[i]) and not _unrankable(scores[i])
    ]

    def key(i: int) -> tuple:
        missing = scores[i] is None or scores[i] is pd.NA
        return groups[i], missing, 0.0 if missing else -float(scores[i]), indices[i]

    ranks: list[int | None] = [None] * len(groups)
    for _, members in groupby(sorted(ranked, key=key), key=lambda i: groups[i]):
        for rank, i in enumerate(members, start=1):
            ranks[i] = rank
    return ranks


def rank_within_groups(frame: pd.DataFrame, score_column: str = "score") -> pd.Series:
    """:func:`rank_values` of a candidate frame (columns ``group_position``, ``candidate_index``, ``error``
    and ``score_column``), as an ``Int64`` series on the frame's index. A null (NaN) cell is a missing
    score, as in ``reranked.parquet`` (whose non-finite scores are nulls on flagged rows); inf is not
    ranked."""
    scores = pd.to_numeric(frame[score_column], errors="coerce").astype(float)
    ranks = rank_values(
        frame["group_position"].tolist(),
        frame["candidate_index"].tolist(),
        [None if math.isnan(s) else s for s in scores.tolist()],
        frame["error"].tolist(),
    )
    return pd.Series(ranks, index=frame.index, dtype="Int64")


def _flag_not_finite(record: RerankRecord, directions: Sequence[str], nonfinite_logits: bool) -> None:
    """Set ``error`` when a direction's score is not finite (before :func:`_nan_to_none` hides it)."""
    bad = [d for d in directions if _unrankable(getattr(record, direction_column(d)))]
    if bad:
        cause = "non-finite logits" if nonfinite_logits else "NaN or inf"
        record.error = not_finite_error(bad, cause)


def _nan_to_none(record: RerankRecord) -> None:
    """Non-finite scores (NaN, inf: non-finite logits) are written as nulls."""
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            setattr(record, f.name, None)


def score_candidates(
    rows: list[CandidateRow],
    model: torch.nn.Module,
    tokenizer,
    options: ScoreOptions | None = None,
    max_source_length: int | None = None,
) -> list[RerankRecord]:
    """Score every valid candidate (:attr:`ScoreOptions.run_directions`: always ``src->hyp``), rank by
    ``options.rank_by``; one :class:`RerankRecord` per row, flagged rows unscored and unranked.

    Fills ``num_tokens``, ``sum_logprob``, ``mean_logprob``, ``penalised_logprob``, ``token_logprobs`` and
    ``nonfinite`` (of ``src->hyp``), ``score_<direction>`` per direction (the ``options.score``
    statistic), ``score`` (the one ranked by) and ``rank``; a candidate with a non-finite score is flagged
    and unranked (see the module docstring). Groups must be whole in ``rows``.
    """
    options = options or ScoreOptions()
    wanted = options.run_directions
    records = [RerankRecord(**asdict(row)) for row in rows]
    todo = [r for r in records if r.error is None and r.candidate_index is not None]
    refs_needed = any(d not in SOURCE_DIRECTIONS for d in wanted)
    if todo and refs_needed and all(r.reference is None for r in records):
        raise ValueError(
            f"directions {list(wanted)} need references, and no row has one (set reference_column)"
        )
    if todo:
        result = score_directions(
            model,
            tokenizer,
            [r.candidate for r in todo],
            sources=[r.source for r in todo],
            references=[r.reference for r in todo],
            options=replace(options, directions=wanted),
            max_source_length=max_source_length,
        )
        for k, record in enumerate(todo):
            fill_from_pair(record, result["src->hyp"].pairs[k][0])
            for d in wanted:
                setattr(record, direction_column(d), result[d].scores[k])
            record.score = getattr(record, direction_column(options.rank_by))
            logits = any(p.nonfinite for d in wanted for p in result[d].pairs[k])
            _flag_not_finite(record, wanted, logits)
            _nan_to_none(record)
    ranks = rank_values(
        [r.group_position for r in records],
        [r.candidate_index for r in records],
        [r.score for r in records],
        [r.error for r in records],
    )
    for record, rank in zip(records, ranks, strict=True):
        record.rank = rank
    return records


def rerank(
    rows: list[CandidateRow],
    model: torch.nn.Module,
    tokenizer,
    options: ScoreOptions | None = None,
    max_source_length: int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score and rank the candidates of :func:`~t5score.data.candidates.read_candidates`, add ROUGE vs the
    reference, summarize.

    Returns the per-candidate frame (the columns of :class:`RerankRecord`, then ``rouge1/2/L/Lsum``) and the
    summary of :func:`t5score.scoring.meta_evaluation.meta_evaluate` with ``rank_by`` and ``score``.
    """
    options = options or ScoreOptions()
    records = score_candidates(rows, model, tokenizer, options, max_source_length)
    scored = add_rouge_columns(records_frame(records, RerankRecord), "candidate", "reference")
    summary = meta_evaluate(scored)
    summary["rank_by"], summary["score"] = options.rank_by, options.score
    return scored, summary
