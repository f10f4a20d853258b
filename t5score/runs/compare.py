"""What ``t5score compare`` computes: runs joined row by row, per-metric means and paired differences.

A run is the output folder of ``predict``, ``score`` or ``rerank``: its table (``reranked.parquet``,
``scores.parquet`` or ``predictions.parquet``, the first found) and, optionally, ``summary.json``,
``run.json`` (the page's configuration diff) and ``token_pieces.json`` (its token views). Rows
of predict and score runs are joined on ``id`` (and ``sample_index`` / ``candidate_index`` when present);
rows of rerank runs, which are candidates, on ``(group_id, candidate_index)``, and their groups on
``group_id`` for the top candidate's ROUGE and human score (:mod:`t5score.runs.compare_rerank` says which
metrics, and why). A rerank run is compared with rerank runs only. Every difference is to the FIRST run.
The command line is :mod:`t5score.cli.compare`, the page :mod:`t5score.reports.compare_page`.

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

from t5score.runs import compare_rerank

OUTPUT_FILES = ("reranked.parquet", "scores.parquet", "predictions.parquet")
KINDS = {"reranked.parquet": "rerank", "scores.parquet": "score", "predictions.parquet": "predict"}
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
    kind: str = "predict"  # "predict" | "score" | "rerank", from the table's name
    groups: pd.DataFrame | None = None  # rerank: one row per group id (compare_rerank.group_frame)
    unkeyed: int = 0  # rerank: rows without group id or candidate index, not compared
    positions: pd.Series | None = None  # join key -> the row's 0-based position in the file
    run_info: dict[str, Any] | None = None  # run.json; None when the folder has none
    tokens: Any = None  # predict/score: the per-token lists (runs.token_pieces.ParquetTokens) when
    # the folder has token_pieces.json, else None


def load_run(path: str | Path, label: str, file: str | None = None) -> Run:
    """Read one run directory's output table (scalar columns only), ``summary.json`` and ``run.json``."""
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
        frame = pd.read_parquet(found, columns=columns).reset_index(drop=True)  # index: row in file
    except (OSError, ValueError) as exc:
        raise CompareError(f"cannot read {found}: {exc}") from None
    kind, groups, unkeyed = KINDS[found.name], None, 0
    if kind == "rerank":
        try:
            keyed, unkeyed = compare_rerank.candidate_frame(frame, str(found))
        except ValueError as exc:
            raise CompareError(str(exc)) from None
        groups, frame = compare_rerank.group_frame(frame), keyed
        key = list(compare_rerank.KEY)
    else:
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
    indexed = frame.set_index(key)
    positions = pd.Series(frame.index.to_numpy(), index=indexed.index)
    tokens = None
    if kind != "rerank" and (path / "token_pieces.json").is_file():
        from t5score.runs.token_pieces import ParquetTokens

        try:
            tokens = ParquetTokens(found)
        except (ValueError, AttributeError) as exc:  # not JSON, or not the object runs write
            raise CompareError(f"{path / 'token_pieces.json'} is not valid: {exc}") from None
    run = Run(label, path, found.name, indexed, _json(path / "summary.json") or {}, kind, groups, unkeyed)
    run.positions, run.run_info, run.tokens = positions, _json(path / "run.json"), tokens
    return run


def _json(path: Path) -> dict[str, Any] | None:
    """A JSON object file (anything else reads as an empty object), or None when there is no such file."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompareError(f"{path} is not valid JSON: {exc}") from None
    return data if isinstance(data, dict) else {}


def check_kinds(runs: list[Run]) -> None:
    """Refuse to put a rerank run beside a predict or score run: their rows are different things."""
    kinds = [r.kind for r in runs]
    if "rerank" in kinds and any(k != "rerank" for k in kinds):
        other = next(r for r in runs if r.kind != "rerank")
        rerank = next(r for r in runs if r.kind == "rerank")
        raise CompareError(
            f"cannot compare a rerank run ({rerank.label}: {rerank.file}, rows are candidates keyed by "
            f"group_id and candidate_index) with a {other.kind} run ({other.label}: {other.file}, rows keyed "
            "by id); compare rerank runs with rerank runs"
        )


def align(
    labels: list[str], frames: list[pd.DataFrame], allow_partial: bool, noun: str = "id"
) -> tuple[pd.Index, str | None]:
    """The join keys to compare (in the first frame's order) and, for partial runs, a note saying so."""
    names = [list(f.index.names) for f in frames]
    if any(n != names[0] for n in names[1:]):
        pairs = ", ".join(f"{label}: {n}" for label, n in zip(labels, names, strict=True))
        raise CompareError(f"runs are keyed by different columns ({pairs}); compare runs of the same kind")
    keys = [set(f.index) for f in frames]
    common = set.intersection(*keys)
    differing = len(set.union(*keys)) - len(common)
    if differing == 0:
        return frames[0].index, None
    sizes = ", ".join(f"{label}: {len(k)}" for label, k in zip(labels, keys, strict=True))
    if not allow_partial:
        raise CompareError(
            f"runs cover different examples: {differing} {noun}(s) are not in every run ({sizes} {noun}s); "
            f"pass --allow-partial to compare the {len(common)} shared {noun}(s)"
        )
    if not common:
        raise CompareError(f"runs share no {noun} ({sizes} {noun}s): nothing to compare")
    index = frames[0].index[frames[0].index.isin(list(common))]
    note = (
        f"Partial comparison (--allow-partial): {len(common)} {noun}(s) present in every run are compared; "
        f"{differing} {noun}(s) missing from at least one run are left out ({sizes} {noun}s)."
    )
    return index, note


def shared_metrics(frames: list[pd.DataFrame], excluded: set[str] = NOT_METRICS) -> list[str]:
    """Numeric, non-boolean columns with values in every frame (``excluded`` and ``*_index`` columns
    aside), in the first frame's column order."""

    def numeric(frame: pd.DataFrame) -> set[str]:
        return {
            c
            for c in frame.columns
            if c not in excluded
            and not str(c).endswith("_index")
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
            and frame[c].notna().any()
        }

    common = set.intersection(*(numeric(f) for f in frames))
    return sorted(common, key=list(frames[0].columns).index)


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
    frames: list[pd.DataFrame],
    labels: list[str],
    index: pd.Index,
    metrics: list[str],
    n_resamples: int,
    seed: int,
) -> pd.DataFrame:
    """One row per (metric, run): mean, and for runs after the first the paired difference with CI and p."""
    records = []
    for metric in metrics:
        base = frames[0].loc[index, metric].astype("float64")
        for i, (frame, label) in enumerate(zip(frames, labels, strict=True)):
            values = frame.loc[index, metric].astype("float64")
            rec = {"metric": metric, "run": label, "n": int(values.notna().sum()), "mean": values.mean()}
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
    metrics: list[str]  # per row (for rerank runs: per candidate)
    table: pd.DataFrame  # the per-row metrics, then (rerank) the per-group ones
    note: str | None  # set for partial comparisons (--allow-partial) and what was left out
    key_metric: str  # whose largest per-row (rerank: per-group, when there is one) changes the page lists
    group_index: pd.Index | None = None  # rerank: the group ids compared
    group_metrics: list[str] = field(default_factory=list)  # rerank: the top_* metrics
    chosen_changed: dict[str, int] = field(default_factory=dict)  # rerank: groups whose top candidate changed


def compare_runs(
    runs: list[Run],
    allow_partial: bool = False,
    metrics: list[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Align ``runs`` (the first is the baseline), pick the shared metrics and bootstrap their differences.

    Raises :class:`CompareError` for runs that cannot be compared (a rerank run beside another kind,
    different keys or ids, no shared numeric metric, an unknown ``metrics`` entry).
    """
    check_kinds(runs)
    labels, frames = [r.label for r in runs], [r.frame for r in runs]
    rerank = runs[0].kind == "rerank"
    index, note = align(labels, frames, allow_partial, "candidate" if rerank else "id")
    notes = [note]
    excluded = compare_rerank.not_metrics(runs) if rerank else NOT_METRICS
    shared, group_index, group_shared, groups = shared_metrics(frames, excluded), None, [], []
    if rerank:
        groups = [r.groups for r in runs]
        group_index, note = align(labels, groups, allow_partial, "group")
        group_shared = shared_metrics(groups)
        notes += [note, compare_rerank.score_note(runs), compare_rerank.unkeyed_note(runs)]
    if metrics:
        unknown = [m for m in metrics if m not in shared + group_shared]
        if unknown:
            said = ", ".join(sorted(shared + group_shared)) or "none"
            raise CompareError(f"metric(s) {', '.join(unknown)} not shared by all runs; shared: {said}")
        shared, group_shared = (
            [m for m in dict.fromkeys(metrics) if m in have] for have in (shared, group_shared)
        )
    if not shared and not group_shared:
        raise CompareError("the runs share no numeric per-row metric")
    table = compare_table(frames, labels, index, shared, n_resamples, seed)
    if group_shared:
        group_table = compare_table(groups, labels, group_index, group_shared, n_resamples, seed)
        table = pd.concat([t for t in (table, group_table) if len(t)], ignore_index=True)
    order = (
        (metrics or []) + list(compare_rerank.GROUP_METRIC_ORDER if rerank else ()) + list(KEY_METRIC_ORDER)
    )
    key = next((m for m in order if m in shared + group_shared), (shared + group_shared)[0])
    note = " ".join(n for n in notes if n) or None
    changed = compare_rerank.chosen_changed(runs, group_index) if rerank else {}
    return Comparison(runs, index, shared, table, note, key, group_index, group_shared, changed)
