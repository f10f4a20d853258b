"""The page of ``t5score compare``: ``compare.md``, ``compare.csv`` and ``compare.png``.

Renders what :mod:`t5score.runs.compare` computed (its ``Comparison``: ``Run`` objects and the table).
Rerank runs get two tables, per candidate and per group (the top candidate's ``top_*`` values), the number
of groups whose top candidate changed, and their largest per-group changes with the chosen candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from t5score.reports.figures import compare_figure
from t5score.reports.markdown import flatten_dict, md_table


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


#: per example, the first text column both runs have is shown (rerank: the candidate, or the chosen one)
TEXT_COLUMNS = ("top_candidate", "candidate", "prediction", "target", "source")
TOP_CHANGED = 10  # examples listed per run pair


def _changed_most(
    frames: list[pd.DataFrame], labels: list[str], index: pd.Index, metric: str, what: str
) -> list[str]:
    lines = [f"## {what} whose `{metric}` changed most", ""]
    base = frames[0].loc[index]
    for frame, label in zip(frames[1:], labels[1:], strict=True):
        other = frame.loc[index]
        change = (other[metric].astype("float64") - base[metric].astype("float64")).dropna()
        top = change.abs().sort_values(ascending=False, kind="stable").head(TOP_CHANGED).index
        text = next((c for c in TEXT_COLUMNS if c in base.columns and c in other.columns), None)
        header = ["/".join(index.names), labels[0], label, "change"] + (
            [f"{text} ({labels[0]})", f"{text} ({label})"] if text else []
        )
        rows = []
        for k in top:
            texts = [base.at[k, text], other.at[k, text]] if text else []
            key = k if isinstance(k, str) else "/".join(map(str, k))
            rows.append([key, base.at[k, metric], other.at[k, metric], change[k], *texts])
        lines += [f"### {label} vs {labels[0]}", ""]
        lines += (md_table(header, rows) if rows else ["(no paired rows)"]) + [""]
    return lines


def _metric_table(table: pd.DataFrame) -> list[str]:
    def ci(t: Any) -> str:
        return "" if pd.isna(t.ci_low) else f"[{t.ci_low:.4g}, {t.ci_high:.4g}]"

    rows = [[t.metric, t.run, t.n, t.mean, t.delta, ci(t), t.p_value] for t in table.itertuples()]
    return md_table(["metric", "run", "n", "mean", "Δ vs first", "95% CI", "p"], rows) + [""]


def _summary_scalars(runs: list[Run]) -> list[list[Any]]:
    """Numeric leaves of summary.json present in every run, side by side."""
    flats = [flatten_dict(r.summary) for r in runs]
    number = (int, float)
    keys = [k for k, v in flats[0].items() if isinstance(v, number) and not isinstance(v, bool)]
    return [[k, *[f[k] for f in flats]] for k in keys if all(isinstance(f.get(k), number) for f in flats[1:])]


def write_outputs(out: Path, result: Compared, n_resamples: int, seed: int, argv: list[str]) -> Path:
    """Write compare.csv, compare.png and compare.md into ``out``; return the path of compare.md."""
    runs, table, labels = result.runs, result.table, [r.label for r in result.runs]
    rerank = result.group_index is not None
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv", index=False)
    compare_figure(table, out / "compare.png")
    lines = ["# t5score compare", "", f"`t5score compare {' '.join(argv)}`", ""]
    lines += ["Baseline: the first run. Differences are per-row (run - baseline), averaged.", ""]
    if result.note:
        lines += [f"**{result.note}**", ""]
    header = ["run", "directory", "file", "rows", "compared"] + (["groups compared"] if rerank else [])
    rows = [
        [r.label, str(r.path), r.file, len(r.frame) + r.unkeyed, len(result.index)]
        + ([len(result.group_index)] if rerank else [])
        for r in runs
    ]
    lines += md_table(header, rows) + [""]
    per_group = table["metric"].isin(result.group_metrics)
    lines += ["## Per-candidate metrics" if rerank else "## Per-row metrics", ""]
    lines += [f"95% CI and two-sided p from a paired bootstrap ({n_resamples} resamples, seed {seed}).", ""]
    if rerank:
        lines += ["Joined on group_id and candidate_index: each run's scores of the same candidate.", ""]
    lines += _metric_table(table[~per_group]) if (~per_group).any() else ["(none)", ""]
    if rerank:
        lines += ["## Per-group metrics: the top-ranked candidate", ""]
        lines += [
            "Joined on group_id; `top_*` is the value of the group's rank-1 candidate (a group without one is "
            "left out of the pairs); the bootstrap resamples groups.",
            "",
        ]
        lines += _metric_table(table[per_group]) if per_group.any() else ["(no reference or human score)", ""]
        changed = [[label, n, len(result.group_index)] for label, n in result.chosen_changed.items()]
        lines += md_table(
            ["run", "groups whose top candidate differs from the first run's", "groups"], changed
        )
        lines += [""]
    scalars = _summary_scalars(runs)
    if scalars:
        lines += ["## Run-level numbers (summary.json, no CI)", ""]
        lines += md_table(["field", *labels], scalars) + [""]
    if result.key_metric in result.group_metrics:
        lines += _changed_most(
            [r.groups for r in runs], labels, result.group_index, result.key_metric, "Groups"
        )
    elif result.key_metric:
        what = "Candidates" if rerank else "Examples"
        lines += _changed_most([r.frame for r in runs], labels, result.index, result.key_metric, what)
    lines += ["## Figure", "", "![difference to the first run](compare.png)", ""]
    (out / "compare.md").write_text("\n".join(lines), encoding="utf-8")
    return out / "compare.md"
