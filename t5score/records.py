"""Typed records passed between the data, decoding, writing and reporting layers.

One :class:`PredictionRecord` is one row of ``predictions.parquet``; the CLI and the Python API
produce the same records, so a DataFrame from either has the same columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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


@dataclass
class PredictionRecord:
    """One decoded row: the columns of ``predictions.parquet`` (see README, "Output contract")."""

    position: int
    id: str
    source: str
    prediction: str | None = None
    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    token_entropies: list[float] = field(default_factory=list)
    top1_probs: list[float] = field(default_factory=list)
    topk_ids: list[list[int]] = field(default_factory=list)
    topk_logprobs: list[list[float]] = field(default_factory=list)
    num_tokens: int = 0
    sum_logprob: float | None = None
    mean_logprob: float | None = None
    mean_entropy: float | None = None
    max_entropy: float | None = None
    finished: bool = False
    truncated: bool = False
    error: str | None = None
    target: str | None = None
    # Filled only when the run has references (target_column): teacher-forced scores of the target.
    ref_num_tokens: int | None = None
    ref_logprob: float | None = None
    ref_mean_logprob: float | None = None
    ref_top1_probs: list[float] | None = None  # per reference token: the model's top-1 probability
    ref_top1_correct: list[bool] | None = None  # per reference token: top-1 id == reference id
    sample_index: int | None = None  # candidate number when several samples are drawn per source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def column_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
