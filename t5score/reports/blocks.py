"""The contents of a report as typed blocks: computed once, rendered to ``report.md`` and ``report.html``.

A report is a list of blocks (headings, paragraphs, tables, figures, token views). Every number a block
shows is a :class:`Num` that names where it comes from (``src``), so both pages show the same values and
a test can check each one against ``summary.json``, ``run.json`` or the Parquet table:

* ``summary:<dotted key>`` — a leaf of ``summary.json`` (``rouge.top.rougeL``);
* ``run:<dotted key>`` — a leaf of ``run.json``;
* ``row:<i>:<column>`` — row ``i`` (0-based, file order) of the run's Parquet table;
* ``rows:<what>`` — a count of the table's rows: ``all``, ``error`` (``error`` set), ``truncated``,
  ``unfinished`` (no error and no EOS);
* ``mean:<column>`` — the mean of a column over the rows without an error, non-finite values left out
  (``mean:perplexity`` is the mean of each row's ``exp(-mean_logprob)``).

The page of ``t5score compare`` uses its own sources, defined in :mod:`t5score.reports.compare_page`:
``compare:<metric>:<run>:<column>`` (a cell of ``compare.csv``), ``runs:<i>:<src>`` (one of the above in
the i-th run given, 0 = the baseline), ``change:<i>:<column>:<r0>:<ri>`` (one example's run - baseline)
and ``compared:rows|groups|top_changed:<run>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Num:
    """A number shown in a report, and where it comes from."""

    value: Any  # int | float | bool | None
    src: str


@dataclass(frozen=True)
class Link:
    """Text that links to an embedded example (the row's token view in ``report.html``)."""

    text: str
    row: int  # row of the table (0-based)


Cell = Num | Link | str | int | float | bool | None
Inline = str | Num  # a paragraph: text (`code` in backticks) and numbers


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str | None = None


@dataclass
class Para:
    parts: list[Inline]


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    wide: tuple[str, ...] = ("meaning",)  # columns never shortened in Markdown
    sortable: bool = True


@dataclass
class Code:
    text: str
    summary: str | None = None  # folded under this summary when set
    language: str = ""


@dataclass
class Figure:
    key: str  # file stem under figures/
    title: str
    caption: str
    png: str  # path relative to the page
    svg: str  # inline SVG


@dataclass
class Tokens:
    """One token sequence of an example: what each token is and how sure the model was of it."""

    label: str  # e.g. "prediction", "reference (teacher-forced)"
    src: str  # Parquet list column of the log-probabilities, e.g. "row:12:token_logprobs"
    pieces: list[str]
    logprobs: list[float]
    entropies: list[float] | None = None
    alternatives: list[list[tuple[str, float]]] | None = None  # per token: top-k (piece, log-probability)
    forced: list[bool] | None = None  # the generation config forced the token (processed log-prob 0)
    eos: list[bool] | None = None


@dataclass
class Example:
    """An embedded row: its numbers, its texts and its token sequences (``report.html`` only)."""

    row: int
    key: str  # the row's id (with sample/candidate number)
    tags: list[str]  # why it is shown: "least confident", "unfinished", ...
    numbers: list[tuple[str, Num]]
    texts: list[tuple[str, str]]  # (column, full text)
    tokens: list[Tokens] = field(default_factory=list)
    columns: int = 1  # 2: the token sequences side by side (a compare page: baseline | other run)


@dataclass
class Examples:
    """The embedded token views, with the colour switch and the pick-by-id box."""

    examples: list[Example]
    not_embedded_hint: str  # what to run to embed another row


Block = Heading | Para | Table | Code | Figure | Examples
