"""Typed records passed between the data, decoding, scoring, writing and reporting layers.

One record is one row of a run's Parquet table: :class:`PredictionRecord` of ``predictions.parquet``,
:class:`ScoreRecord` of ``scores.parquet``, :class:`RerankRecord` of ``reranked.parquet`` (the writer
derives the Parquet schema from the dataclass fields, so a record's field order is its file's column order;
see the README, "Output contract"). The CLI and the Python API produce the same records.

Columns that several records have (the per-token lists, the sequence scores, the direction scores...) are
declared once in :data:`COLUMNS`; each record lists its columns in file order and takes the type and the
default of a shared column from there (:func:`record_type`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, make_dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from t5score.engine.forced import PairScore

EMPTY_LIST = object()  # default marker: a fresh empty list per record

#: name -> (type, default) of every column that more than one record (or row) has; MISSING: required.
COLUMNS: dict[str, tuple[Any, Any]] = {
    "position": (int, MISSING),  # 0-based row of the input (or of the candidate table): the output order
    "id": (str, MISSING),
    "source": (str, MISSING),
    "target": (str | None, None),
    "error": (str | None, None),  # why the row was not decoded or scored; the row is kept
    "token_ids": (list[int], EMPTY_LIST),
    "token_logprobs": (list[float], EMPTY_LIST),  # natural log
    "token_entropies": (list[float], EMPTY_LIST),  # nats
    "top1_probs": (list[float], EMPTY_LIST),
    "topk_ids": (list[list[int]], EMPTY_LIST),
    "topk_logprobs": (list[list[float]], EMPTY_LIST),
    "num_tokens": (int, 0),
    "sum_logprob": (float | None, None),
    "mean_logprob": (float | None, None),
    "penalised_logprob": (float | None, None),  # sum / num_tokens ** alpha
    "mean_entropy": (float | None, None),
    "truncated": (bool, False),
    "score_src_hyp": (float | None, None),  # BARTScore directions (t5score.scoring.directions)
    "score_hyp_src": (float | None, None),
    "score_ref_hyp": (float | None, None),
    "score_hyp_ref": (float | None, None),
    "score_f": (float | None, None),
    "score_harm_f": (float | None, None),
    "group_id": (str | None, MISSING),  # rerank: a candidate's source group (None when its id is empty)
    "group_position": (int, MISSING),
    "line": (int, MISSING),
    "candidate_index": (int | None, None),  # rerank: the candidate's number; predict: the beam (0 = best)
    "sequence_score": (float | None, None),  # beam search: the length-penalised beam score that ranked it
    "candidate": (str | None, None),
    "reference": (str | None, None),
    "human_score": (float | None, None),
}

TOKEN_LISTS = ("token_ids", "token_logprobs", "token_entropies", "top1_probs")
TOPK_LISTS = ("topk_ids", "topk_logprobs")
SEQUENCE_SCORES = ("num_tokens", "sum_logprob", "mean_logprob")
DIRECTION_SCORES = (
    "score_src_hyp",
    "score_hyp_src",
    "score_ref_hyp",
    "score_hyp_ref",
    "score_f",
    "score_harm_f",
)
CANDIDATE_COLUMNS = (
    "position",
    "group_id",
    "group_position",
    "line",
    "candidate_index",
    ("source", str | None, None),  # None when the row's source is unusable (the row is flagged)
    "candidate",
    "reference",
    "human_score",
    "error",
)

Column = str | tuple[str, Any, Any]  # a name from COLUMNS, or (name, type, default) of a column of its own


class Record:
    """What every record type has besides its fields."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def column_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def record_type(name: str, doc: str, columns: tuple[Column, ...] | list[Column]) -> type:
    """A dataclass (subclass of :class:`Record`) with ``columns`` as its fields, in this order."""
    specs = []
    for column in columns:
        column_name, hint, default = (column, *COLUMNS[column]) if isinstance(column, str) else column
        if default is MISSING:
            specs.append((column_name, hint))
        elif default is EMPTY_LIST:
            specs.append((column_name, hint, field(default_factory=list)))
        else:
            specs.append((column_name, hint, field(default=default)))
    return make_dataclass(name, specs, bases=(Record,), namespace={"__module__": __name__, "__doc__": doc})


@dataclass
class SourceRow:
    """One input row as read from the user's file."""

    position: int  # 0-based row number in the input file: the output order
    id: str
    source: str
    target: str | None = None
    error: str | None = None  # set when the row cannot be decoded (e.g. empty source)
    references: str | list[str] | None = None  # for scoring directions that need references


@dataclass
class SourceBatch:
    """A batch of input rows, as the data module hands it to the LightningModule."""

    batch_index: int  # global index of this batch in the run's fixed batch plan
    rows: list[SourceRow]
    max_source_length: int | None = None

    def __len__(self) -> int:
        return len(self.rows)


CandidateRow = record_type(
    "CandidateRow",
    "One candidate of the rerank input (or one flagged input row: ``candidate_index`` None).",
    CANDIDATE_COLUMNS,
)


@dataclass
class CandidateBatch:
    """Whole groups of candidates (a source with all its candidates), as the rerank data module gives them."""

    batch_index: int  # global index of this batch in the run's fixed batch plan
    rows: list[CandidateRow]
    max_source_length: int | None = None

    def __len__(self) -> int:
        return len(self.rows)


PredictionRecord = record_type(
    "PredictionRecord",
    'One decoded row: the columns of ``predictions.parquet`` (see README, "Output contract").',
    [
        "position",
        "id",
        "source",
        ("prediction", str | None, None),
        *TOKEN_LISTS,
        *TOPK_LISTS,
        # after the generation config's logits processors: log-probability of each token (0 when forced)
        ("token_processed_logprobs", list[float], EMPTY_LIST),
        ("processor_changed_steps", int | None, None),  # steps where a processor changed the argmax
        *SEQUENCE_SCORES,
        "mean_entropy",
        ("max_entropy", float | None, None),
        ("finished", bool, False),
        "truncated",
        "error",
        "target",
        # Filled only when the run has references (target_column): teacher-forced scores of the target.
        ("ref_num_tokens", int | None, None),
        ("ref_logprob", float | None, None),
        ("ref_mean_logprob", float | None, None),
        ("ref_token_ids", list[int] | None, None),  # the reference's tokens (as scored)
        ("ref_token_logprobs", list[float] | None, None),  # per reference token: its log-probability
        ("ref_top1_probs", list[float] | None, None),  # per reference token: the top-1 probability
        ("ref_top1_correct", list[bool] | None, None),  # per reference token: top-1 id == reference id
        ("sample_index", int | None, None),  # candidate number when several samples are drawn per source
        # Filled only with beam search (num_beams > 1): one row per returned candidate of a source.
        "candidate_index",
        "sequence_score",
    ],
)

ScoreRecord = record_type(
    "ScoreRecord",
    "One row of ``scores.parquet``: the target scored given the source (``src->hyp``), plus directions.",
    [
        "position",
        "id",
        "source",
        "target",
        *TOKEN_LISTS,
        *SEQUENCE_SCORES,
        "penalised_logprob",
        "mean_entropy",
        "truncated",
        "error",
        *DIRECTION_SCORES,
    ],
)

RerankRecord = record_type(
    "RerankRecord",
    "One candidate (or one flagged input row) of ``reranked.parquet``.",
    [
        *CANDIDATE_COLUMNS,
        ("num_tokens", int | None, None),  # None: not scored (a flagged row)
        "sum_logprob",
        "mean_logprob",
        "penalised_logprob",
        "token_logprobs",
        ("nonfinite", bool | None, None),
        *DIRECTION_SCORES,
        ("score", float | None, None),  # the direction ranked by
        ("rank", int | None, None),  # 1 = best within the group; None for flagged rows
    ],
)


#: Column -> how it is read off a teacher-forced :class:`~t5score.engine.forced.PairScore`.
PAIR_COLUMNS: dict[str, Callable[[PairScore], Any]] = {
    **{name: attrgetter(name) for name in (*TOKEN_LISTS, *SEQUENCE_SCORES, "penalised_logprob", "nonfinite")},
    "mean_entropy": lambda p: sum(p.token_entropies) / p.num_tokens if p.num_tokens else None,
    "truncated": lambda p: p.source_truncated or p.target_truncated,
    "top1_correct": lambda p: [top[0] == tok for top, tok in zip(p.topk_ids, p.token_ids, strict=True)],
}
#: The ``ref_*`` columns of a :class:`PredictionRecord` and the pair column each holds (needs ``top_k >= 1``).
REFERENCE_COLUMNS = {
    "ref_num_tokens": "num_tokens",
    "ref_logprob": "sum_logprob",
    "ref_mean_logprob": "mean_logprob",
    "ref_token_ids": "token_ids",
    "ref_token_logprobs": "token_logprobs",
    "ref_top1_probs": "top1_probs",
    "ref_top1_correct": "top1_correct",
}


def fill_from_pair(record: Any, pair: PairScore, columns: Mapping[str, str] | None = None) -> None:
    """Copy a teacher-forced pair's scores into ``record``: ``columns`` maps a record column to the
    :data:`PAIR_COLUMNS` entry it takes; by default every column of the record that has one by name."""
    if columns is None:
        columns = {f.name: f.name for f in fields(record) if f.name in PAIR_COLUMNS}
    for column, statistic in columns.items():
        setattr(record, column, PAIR_COLUMNS[statistic](pair))
