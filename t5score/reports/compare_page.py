"""The page of ``t5score compare``: ``compare.md``, ``compare.csv`` and ``compare.png``.

Renders what :mod:`t5score.runs.compare` computed (its ``Run`` objects and ``compare_table``).
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


TEXT_COLUMNS = ("prediction", "target", "source")  # the first one both runs have is shown per example
TOP_CHANGED = 10  # examples listed per run pair


def _changed_most(runs: list[Run], index: pd.Index, metric: str) -> list[str]:
    lines = [f"## Examples whose `{metric}` changed most", ""]
    base = runs[0].frame.loc[index]
    for run in runs[1:]:
        other = run.frame.loc[index]
        change = (other[metric].astype("float64") - base[metric].astype("float64")).dropna()
        top = change.abs().sort_values(ascending=False, kind="stable").head(TOP_CHANGED).index
        text = next((c for c in TEXT_COLUMNS if c in base.columns and c in other.columns), None)
        header = ["id", runs[0].label, run.label, "change"] + (
            [f"{text} ({runs[0].label})", f"{text} ({run.label})"] if text else []
        )
        rows = []
        for k in top:
            texts = [base.at[k, text], other.at[k, text]] if text else []
            key = k if isinstance(k, str) else "/".join(map(str, k))
            rows.append([key, base.at[k, metric], other.at[k, metric], change[k], *texts])
        lines += [f"### {run.label} vs {runs[0].label}", ""]
        lines += (md_table(header, rows) if rows else ["(no paired rows)"]) + [""]
    return lines


def _summary_scalars(runs: list[Run]) -> list[list[Any]]:
    """Numeric leaves of summary.json present in every run, side by side."""
    flats = [flatten_dict(r.summary) for r in runs]
    number = (int, float)
    keys = [k for k, v in flats[0].items() if isinstance(v, number) and not isinstance(v, bool)]
    return [[k, *[f[k] for f in flats]] for k in keys if all(isinstance(f.get(k), number) for f in flats[1:])]


def write_outputs(
    out: Path,
    runs: list[Run],
    index: pd.Index,
    table: pd.DataFrame,
    note: str | None,
    key_metric: str | None,
    n_resamples: int,
    seed: int,
    argv: list[str],
) -> Path:
    """Write compare.csv, compare.png and compare.md into ``out``; return the path of compare.md."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv", index=False)
    compare_figure(table, out / "compare.png")
    lines = ["# t5score compare", "", f"`t5score compare {' '.join(argv)}`", ""]
    lines += ["Baseline: the first run. Differences are per-row (run - baseline), averaged.", ""]
    if note:
        lines += [f"**{note}**", ""]
    lines += md_table(
        ["run", "directory", "file", "rows", "compared"],
        [[r.label, str(r.path), r.file, len(r.frame), len(index)] for r in runs],
    ) + [""]
    lines += ["## Per-row metrics", ""]
    lines += [f"95% CI and two-sided p from a paired bootstrap ({n_resamples} resamples, seed {seed}).", ""]

    def ci(t: Any) -> str:
        return "" if pd.isna(t.ci_low) else f"[{t.ci_low:.4g}, {t.ci_high:.4g}]"

    rows = [[t.metric, t.run, t.n, t.mean, t.delta, ci(t), t.p_value] for t in table.itertuples()]
    lines += md_table(["metric", "run", "n", "mean", "Δ vs first", "95% CI", "p"], rows) + [""]
    scalars = _summary_scalars(runs)
    if scalars:
        lines += ["## Run-level numbers (summary.json, no CI)", ""]
        lines += md_table(["field", *[r.label for r in runs]], scalars) + [""]
    if key_metric:
        lines += _changed_most(runs, index, key_metric)
    lines += ["## Figure", "", "![difference to the first run](compare.png)", ""]
    (out / "compare.md").write_text("\n".join(lines), encoding="utf-8")
    return out / "compare.md"
