"""The page of ``t5score compare``: ``compare.md`` and ``compare.html`` (one set of blocks), ``compare.csv``,
``compare.png``.

Renders what :mod:`t5score.runs.compare` computed (its ``Comparison``): which run is the baseline (the
first), the runs, their configurations' differences (:mod:`t5score.reports.compare_config`), the metric
table (mean per run, difference to the baseline with its 95% CI and p, which direction is better and
whether the change is an improvement, a regression or not significant), the run-level numbers of
``summary.json``, the examples that changed most (:mod:`t5score.reports.compare_examples`: both outputs,
their tokens coloured in ``compare.html``) and the figure. Rerank runs get two metric tables, per
candidate and per group (the top candidate's ``top_*`` values), and the number of groups whose top
candidate changed.

Every number is a :class:`~t5score.reports.blocks.Num` whose ``src`` is one of:

* ``compare:<metric>:<run>:<column>`` — the cell ``column`` (``n``, ``mean``, ``n_paired``, ``delta``,
  ``ci_low``, ``ci_high``, ``p_value``) of the row of ``compare.csv`` with that ``metric`` and ``run``
  (the run's label, which may hold ``:`` itself: the metric is before the first ``:``, the column after
  the last);
* ``runs:<i>:<src>`` — ``<src>`` as a run's own report names it (``summary:<key>``, ``run:<key>``,
  ``row:<r>:<column>``, ``rows:all``), in the ``i``-th run given (0 is the baseline);
* ``change:<i>:<column>:<r0>:<ri>`` — ``runs:<i>:row:<ri>:<column>`` minus ``runs:0:row:<r0>:<column>``:
  one example's change (rerank groups: the rows of the top candidates);
* ``compared:rows`` — the join keys compared, present in every run (rerank: candidates);
  ``compared:groups`` — the group ids compared (rerank); ``compared:top_changed:<run>`` — the groups whose
  top candidate in that run is not the baseline's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from t5score.reports import html
from t5score.reports.blocks import Block, Figure, Heading, Num, Para, Table
from t5score.reports.compare_config import config_blocks
from t5score.reports.compare_examples import changed_most
from t5score.reports.examples import scalar
from t5score.reports.figures import compare_chart, save_png, to_svg
from t5score.reports.markdown import flatten_dict, render_markdown

PAGE = "compare.html"
ALPHA = 0.05  # a change with p >= ALPHA is "not significant"
HIGHER = ("rouge", "score", "top_", "human_score")  # name prefixes: higher is better (and *logprob)
LOWER = ("entropy", "perplexity")  # in the name: lower is better


class Run(Protocol):
    """What the page reads of a compared run (``t5score.runs.compare.Run``)."""

    label: str
    path: Path
    file: str
    frame: pd.DataFrame  # indexed by the join key
    summary: dict[str, Any]
    kind: str
    groups: pd.DataFrame | None  # rerank: indexed by group id
    unkeyed: int
    positions: pd.Series | None  # join key -> row of the file
    run_info: dict[str, Any] | None  # run.json
    tokens: Any  # a t5score.reports.examples.TokenSource, or None


class Compared(Protocol):
    """What the page reads of a comparison (``t5score.runs.compare.Comparison``)."""

    runs: list[Run]
    index: pd.Index
    table: pd.DataFrame
    note: str | None
    key_metric: str
    group_index: pd.Index | None
    group_metrics: list[str]
    chosen_changed: dict[str, int]


def better(metric: str) -> int:
    """1 when a higher value of ``metric`` is better, -1 when a lower one is, 0 when neither (or unknown)."""
    if any(word in metric for word in LOWER):
        return -1
    if metric.startswith(HIGHER) or metric.endswith("logprob"):
        return 1
    return 0


def verdict(metric: str, delta: float, p: float) -> str:
    """What a run's change of ``metric`` is: an improvement, a regression, or not significant."""
    if not (math.isfinite(delta) and math.isfinite(p)):
        return "—"
    if p >= ALPHA:
        return "not significant"
    direction = better(metric)
    if direction == 0:
        return f"{'higher' if delta > 0 else 'lower'} (significant; neither is better)"
    return "improvement" if delta * direction > 0 else "regression"


BETTER_TEXT = {1: "higher", -1: "lower", 0: "—"}
METRIC_HEADER = ["metric", "better", "run", "n", "mean", "Δ vs baseline", "95% CI low", "95% CI high", "p"]


def metric_table(table: pd.DataFrame, baseline: str) -> Table:
    """One row per metric and run: its mean, and for the other runs the change, its CI, p and verdict."""

    def cell(t: Any, column: str) -> Num:
        return Num(scalar(getattr(t, column)), f"compare:{t.metric}:{t.run}:{column}")

    rows = []
    for t in table.itertuples():
        row = [t.metric, BETTER_TEXT[better(t.metric)], t.run, cell(t, "n"), cell(t, "mean")]
        if t.run == baseline:
            row += [None, None, None, None, "baseline"]
        else:
            row += [cell(t, c) for c in ("delta", "ci_low", "ci_high", "p_value")]
            row.append(verdict(t.metric, float(t.delta), float(t.p_value)))
        rows.append(row)
    return Table([*METRIC_HEADER, "verdict"], rows, wide=("verdict",))


def _summary_scalars(runs: list[Run]) -> list[list[Any]]:
    """Numeric leaves of summary.json present in every run, side by side."""
    flats = [flatten_dict(r.summary) for r in runs]
    number = (int, float)
    keys = [k for k, v in flats[0].items() if isinstance(v, number) and not isinstance(v, bool)]
    keys = [k for k in keys if all(isinstance(f.get(k), number) for f in flats[1:])]
    return [[k, *[Num(f[k], f"runs:{i}:summary:{k}") for i, f in enumerate(flats)]] for k in keys]


def _runs_table(result: Compared) -> Table:
    rerank = result.group_index is not None
    header = ["run", "role", "directory", "file", "rows", "compared"] + (
        ["groups compared"] if rerank else []
    )
    rows = []
    for i, r in enumerate(result.runs):
        row = [r.label, "baseline" if i == 0 else "compared with the baseline", str(r.path), r.file]
        row += [Num(len(r.frame) + r.unkeyed, f"runs:{i}:rows:all"), Num(len(result.index), "compared:rows")]
        rows.append(row + ([Num(len(result.group_index), "compared:groups")] if rerank else []))
    return Table(header, rows, wide=("directory",))


def _metric_blocks(result: Compared, n_resamples: int, seed: int) -> list[Block]:
    table, baseline = result.table, result.runs[0].label
    rerank = result.group_index is not None
    per_group = table["metric"].isin(result.group_metrics)
    blocks: list[Block] = [
        Heading("Per-candidate metrics" if rerank else "Per-row metrics", anchor="metrics")
    ]
    blocks.append(
        Para(
            [
                f"Mean of each run; Δ: the mean of the per-row differences (run − baseline), with its 95% CI "
                f"and two-sided p from a paired bootstrap ({n_resamples} resamples, seed {seed}). `better`: "
                f"which direction is better for the metric (— for neither, as output length); `verdict`: "
                f"not significant when p ≥ {ALPHA}, else an improvement or a regression."
            ]
        )
    )
    if rerank:
        blocks.append(
            Para(["Joined on group_id and candidate_index: each run's scores of the same candidate."])
        )
    blocks += [metric_table(table[~per_group], baseline)] if (~per_group).any() else [Para(["(none)"])]
    if rerank:
        blocks += [Heading("Per-group metrics: the top-ranked candidate", anchor="group-metrics")]
        blocks.append(
            Para(
                [
                    "Joined on group_id; `top_*` is the value of the group's rank-1 candidate (a group "
                    "without one is left out of the pairs); the bootstrap resamples groups."
                ]
            )
        )
        blocks.append(
            metric_table(table[per_group], baseline)
            if per_group.any()
            else Para(["(no reference or human score)"])
        )
        groups = Num(len(result.group_index), "compared:groups")
        changed = [
            [label, Num(n, f"compared:top_changed:{label}"), groups]
            for label, n in result.chosen_changed.items()
        ]
        blocks.append(
            Table(["run", "groups whose top candidate differs from the first run's", "groups"], changed)
        )
    return blocks


def compare_blocks(out: Path, result: Compared, n_resamples: int, seed: int, argv: list[str]) -> list[Block]:
    """Every block of the page (drawing ``compare.png`` into ``out``)."""
    runs, labels = result.runs, [r.label for r in result.runs]
    others = ", ".join(f"`{label}`" for label in labels[1:])
    blocks: list[Block] = [
        Para(
            [
                f"Baseline: `{labels[0]}`, the first run given. {others} "
                f"{'is' if len(labels) == 2 else 'are'} compared with it: every difference is run − baseline, "
                "per row, averaged."
            ]
        ),
        Para([f"`t5score compare {' '.join(argv)}`"]),
    ]
    if result.note:
        blocks.append(Para([result.note]))
    blocks += [Heading("Runs", anchor="runs"), _runs_table(result)]
    blocks += config_blocks(runs)
    blocks += _metric_blocks(result, n_resamples, seed)
    scalars = _summary_scalars(runs)
    if scalars:
        blocks += [Heading("Run-level numbers (summary.json, no CI)", anchor="summary")]
        blocks.append(Table(["field", *labels], scalars))
    blocks += changed_most(result)
    fig = compare_chart(result.table)
    save_png(fig, out / "compare.png")
    caption = (
        "Each run's mean difference to the baseline (run − baseline) with its 95% bootstrap CI, per metric."
    )
    figure = Figure("compare", "difference to the first run", caption, "compare.png", to_svg(fig))
    return [*blocks, Heading("Figure", anchor="figure"), figure]


def write_outputs(out: Path, result: Compared, n_resamples: int, seed: int, argv: list[str]) -> Path:
    """Write compare.csv, compare.png, compare.md and compare.html into ``out``; return compare.md's path."""
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / "compare.csv", index=False)
    blocks = compare_blocks(out, result, n_resamples, seed, argv)
    title = "t5score compare"
    md = f"# {title}\n\nThe full page, with the changed examples' tokens coloured: [{PAGE}]({PAGE}).\n\n"
    (out / "compare.md").write_text(md + render_markdown(blocks, PAGE), encoding="utf-8")
    links = [("compare.md", "compare.md"), ("compare.csv", "compare.csv"), ("compare.png", "compare.png")]
    (out / PAGE).write_text(html.page(title, blocks, links), encoding="utf-8")
    return out / "compare.md"
