"""What ``t5score compare`` computes: runs joined row by row, per-metric means and paired differences.

A run is the output folder of ``predict``, ``score`` or ``rerank``: its table (``reranked.parquet``,
``scores.parquet`` or ``predictions.parquet``, the first found) and, optionally, ``summary.json``. Rows
are joined on ``id`` (and ``sample_index`` when present); every difference is to the FIRST run. The
command line is :mod:`t5score.cli.compare`, the page :mod:`t5score.reports.compare_page`.

Statistics: rows are resampled with replacement (numpy ``default_rng(seed)``, restarted for every
metric and run so a number does not depend on which other metrics are compared); the CI is the 2.5 and
97.5 percentiles of the resampled mean differences; the two-sided p-value is
``min(1, 2 * min(P*(mean <= 0), P*(mean >= 0)))`` with ``P*(.) = (1 + count) / (1 + n_resamples)``
over the bootstrap distribution, so p < 0.05 roughly when 0 lies outside the 95% CI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OUTPUT_FILES = ("reranked.parquet", "scores.parquet", "predictions.parquet")
NOT_METRICS = {"id", "position"}  # and every "*_index" column
KEY_EXTRA = ("sample_index", "pair_index", "candidate_index")  # join on these too when a run has them
KEY_METRIC_ORDER = (
    "rougeL",
    "mean_logprob",
    "ref_mean_logprob",
    "sum_logprob",
    "ref_logprob",
    "mean_entropy",
)


class CompareError(Exception):
    """A user mistake (missing file, mismatched ids, unknown metric): reported in one line, exit 2."""


@dataclass
class Run:
    label: str
    path: Path
    file: str
    frame: pd.DataFrame  # indexed by the join key, scalar columns only
    summary: dict[str, Any] = field(default_factory=dict)


def load_run(path: str | Path, label: str, file: str | None = None) -> Run:
    """Read one run directory's output table (scalar columns only) and ``summary.json``."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_dir():
        raise CompareError(f"run directory not found: {path}")
    names = [file] if file else list(OUTPUT_FILES)
    found = next((path / n for n in names if (path / n).is_file()), None)
    if found is None:
        raise CompareError(f"no {' or '.join(names)} in {path}")
    try:
        schema = pq.read_schema(found)
        columns = [f.name for f in schema if f.type.num_fields == 0]  # skip list and struct columns
        frame = pd.read_parquet(found, columns=columns)
    except (OSError, ValueError) as exc:
        raise CompareError(f"cannot read {found}: {exc}") from None
    if "id" not in frame.columns:
        raise CompareError(f"{found} has no 'id' column; columns are: {', '.join(frame.columns)}")
    frame["id"] = frame["id"].astype(str)
    key = ["id"] + [c for c in KEY_EXTRA if c in frame.columns and frame[c].notna().any()]
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        first = frame.loc[dup, key].iloc[0].tolist()
        raise CompareError(
            f"{found}: key {key}={first} appears {int(dup.sum())} times in total; keys must be unique"
        )
    summary: dict[str, Any] = {}
    if (path / "summary.json").is_file():
        try:
            summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CompareError(f"{path / 'summary.json'} is not valid JSON: {exc}") from None
    return Run(label, path, found.name, frame.set_index(key), summary if isinstance(summary, dict) else {})


def align(runs: list[Run], allow_partial: bool) -> tuple[pd.Index, str | None]:
    """The join keys to compare (in the first run's order) and, for partial runs, a note saying so."""
    names = [list(r.frame.index.names) for r in runs]
    if any(n != names[0] for n in names[1:]):
        pairs = ", ".join(f"{r.label}: {n}" for r, n in zip(runs, names, strict=True))
        raise CompareError(f"runs are keyed by different columns ({pairs}); compare runs of the same kind")
    keys = [set(r.frame.index) for r in runs]
    common = set.intersection(*keys)
    differing = len(set.union(*keys)) - len(common)
    if differing == 0:
        return runs[0].frame.index, None
    sizes = ", ".join(f"{r.label}: {len(k)}" for r, k in zip(runs, keys, strict=True))
    if not allow_partial:
        raise CompareError(
            f"runs cover different examples: {differing} id(s) are not in every run ({sizes} ids); "
            f"pass --allow-partial to compare the {len(common)} shared id(s)"
        )
    if not common:
        raise CompareError(f"runs share no id ({sizes} ids): nothing to compare")
    index = runs[0].frame.index[runs[0].frame.index.isin(list(common))]
    note = (
        f"Partial comparison (--allow-partial): {len(common)} id(s) present in every run are compared; "
        f"{differing} id(s) missing from at least one run are left out ({sizes} ids)."
    )
    return index, note


def shared_metrics(runs: list[Run], wanted: list[str] | None) -> list[str]:
    """Numeric, non-boolean columns with values in every run; ``wanted`` restricts and orders them."""

    def numeric(frame: pd.DataFrame) -> set[str]:
        return {
            c
            for c in frame.columns
            if c not in NOT_METRICS
            and not str(c).endswith("_index")
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
            and frame[c].notna().any()
        }

    common = set.intersection(*(numeric(r.frame) for r in runs))
    if wanted:
        unknown = [m for m in wanted if m not in common]
        if unknown:
            raise CompareError(
                f"metric(s) {', '.join(unknown)} not shared by all runs; shared: {', '.join(sorted(common)) or 'none'}"
            )
        return list(dict.fromkeys(wanted))
    order = list(runs[0].frame.columns)
    return sorted(common, key=order.index)


def paired_bootstrap(diff: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """95% percentile CI and two-sided p-value of ``mean(diff)`` (see the module docstring)."""
    diff = np.asarray(diff, dtype=np.float64)
    n = diff.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        means[start:stop] = diff[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    below = (1 + np.count_nonzero(means <= 0)) / (1 + n_resamples)
    above = (1 + np.count_nonzero(means >= 0)) / (1 + n_resamples)
    return float(low), float(high), float(min(1.0, 2 * min(below, above)))


def compare_table(
    runs: list[Run], index: pd.Index, metrics: list[str], n_resamples: int, seed: int
) -> pd.DataFrame:
    """One row per (metric, run): mean, and for runs after the first the paired difference with CI and p."""
    records = []
    for metric in metrics:
        base = runs[0].frame.loc[index, metric].astype("float64")
        for i, run in enumerate(runs):
            values = run.frame.loc[index, metric].astype("float64")
            rec = {"metric": metric, "run": run.label, "n": int(values.notna().sum()), "mean": values.mean()}
            if i > 0:
                diff = (values - base).dropna().to_numpy()
                low, high, p = paired_bootstrap(diff, n_resamples, seed)
                rec.update(
                    n_paired=int(diff.size),
                    delta=diff.mean() if diff.size else np.nan,
                    ci_low=low,
                    ci_high=high,
                    p_value=p,
                )
            records.append(rec)
    columns = ["metric", "run", "n", "mean", "n_paired", "delta", "ci_low", "ci_high", "p_value"]
    return pd.DataFrame.from_records(records, columns=columns)


@dataclass
class Comparison:
    """Runs joined on their key, ready for the page: the table of :func:`compare_table` and its context."""

    runs: list[Run]
    index: pd.Index  # the join keys compared, in the first run's order
    metrics: list[str]
    table: pd.DataFrame
    note: str | None  # set for partial comparisons (--allow-partial)
    key_metric: str  # whose largest per-row changes the page lists


def compare_runs(
    runs: list[Run],
    allow_partial: bool = False,
    metrics: list[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Align ``runs`` (the first is the baseline), pick the shared metrics and bootstrap their differences.

    Raises :class:`CompareError` for runs that cannot be compared (different keys or ids, no shared
    numeric metric, an unknown ``metrics`` entry).
    """
    index, note = align(runs, allow_partial)
    shared = shared_metrics(runs, metrics)
    if not shared:
        raise CompareError("the runs share no numeric per-row metric")
    table = compare_table(runs, index, shared, n_resamples, seed)
    key = next((m for m in (metrics or []) + list(KEY_METRIC_ORDER) if m in shared), shared[0])
    return Comparison(runs, index, shared, table, note, key)
