"""Per-row figures of a run: confidence vs quality, entropy by output position, output lengths.

Each function returns a :class:`~matplotlib.figure.Figure` (save it with
:func:`t5score.reports.figures.save_png` or inline it with :func:`t5score.reports.figures.to_svg`); an empty
input gives a figure saying "no data". numpy and matplotlib only: pandas Series are accepted as sequences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from t5score.reports.figures import _new_figure, no_data

#: above this many points the scatter is rasterized, so that an inline SVG stays small
RASTERIZE_ABOVE = 2000
N_BINS = 10  # quantile bins of the confidence for the binned means
#: axis labels (with units) of the usual per-row columns; any other name is shown as it is
AXIS_LABELS = {
    "mean_logprob": "mean token log-probability (nats; higher = more confident)",
    "sequence_logprob": "sequence log-probability (nats; higher = more confident)",
    "msp": "msp = -sequence log-probability (nats; higher = less confident)",
    "mean_token_entropy": "mean token entropy (nats; higher = less confident)",
    "perplexity": "perplexity = exp(-mean token log-probability)",
    "num_tokens": "output length (tokens)",
}


def _count(n: int, unit: str = "row") -> str:
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def _label(name: str) -> str:
    if name in AXIS_LABELS:
        return AXIS_LABELS[name]
    return f"{name} (0-1, higher = better)" if name.lower().startswith(("rouge", "bleu", "chrf")) else name


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # None, pandas.NA, text
        return math.nan


def _floats(values: Any) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return np.array([_float(v) for v in values], dtype=np.float64)


def average_ranks(values: Any) -> np.ndarray:
    """Ranks ``1..n`` of ``values``; tied values share the mean of their ranks (scipy's ``rankdata``)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(a, kind="stable")
    _, group, counts = np.unique(a[order], return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each group's first member
    ranks = np.empty(a.size)
    ranks[order] = first[group] + (counts[group] + 1) / 2.0
    return ranks


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation of two equally long finite arrays (average ranks for ties).

    ``nan`` when there are fewer than two values or either side is constant.
    """
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.size != ry.size:
        raise ValueError(f"spearman: {rx.size} x values but {ry.size} y values")
    if rx.size < 2:
        return math.nan
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denom if denom > 0 else math.nan


def binned_means(x: Any, y: Any, n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``x`` and mean ``y`` of each non-empty quantile bin of ``x`` (``n_bins`` bins).

    Bin ``i`` holds ``edges[i] <= x < edges[i + 1]`` (the last bin also its upper edge), where ``edges``
    are the ``0, 1/n_bins, ..., 1`` quantiles of ``x``; bins emptied by tied edges are left out.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if not x.size:
        return np.zeros(0), np.zeros(0)
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    index = np.searchsorted(edges[1:-1], x, side="right")
    count = np.bincount(index, minlength=n_bins)
    keep = count > 0
    mean_x = np.bincount(index, weights=x, minlength=n_bins)[keep] / count[keep]
    return mean_x, np.bincount(index, weights=y, minlength=n_bins)[keep] / count[keep]


def confidence_quality_chart(
    confidence: Any, quality: Any, confidence_name: str = "mean_logprob", quality_name: str = "rougeL"
) -> Figure:
    """Per-row confidence (x) vs quality (y): the rows, their mean per decile of x, Spearman's rho.

    Rows where either value is not finite are left out (the title says how many).
    """
    x, y = _floats(confidence), _floats(quality)
    if x.size != y.size:
        raise ValueError(f"confidence has {x.size} values but quality has {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, left_out = x[ok], y[ok], int((~ok).sum())
    fig = _new_figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    title = f"{quality_name} vs {confidence_name}"
    xlabel, ylabel = _label(confidence_name), _label(quality_name)
    if not x.size:
        no_data(ax, title, xlabel, ylabel)
        return fig
    ax.scatter(
        x,
        y,
        s=8,
        alpha=0.4,
        color="tab:blue",
        linewidths=0,
        label="one row",
        rasterized=x.size > RASTERIZE_ABOVE,
    )
    bx, by = binned_means(x, y)
    ax.plot(bx, by, color="black", marker="o", label=f"mean per {N_BINS}-quantile bin of x")
    rho = spearman(x, y)
    parts = [
        f"Spearman ρ = {rho:.3f}" if math.isfinite(rho) else "Spearman ρ undefined",
        f"n = {_count(x.size)}",
    ]
    if left_out:
        parts.append(f"{_count(left_out)} left out (value not finite)")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title}\n{' · '.join(parts)}")
    ax.legend(fontsize=8)
    return fig


def _rows(token_values: Iterable[Any]) -> list[np.ndarray]:
    rows = [np.asarray(v, dtype=np.float64).ravel() for v in token_values if v is not None]
    return [r for r in rows if r.size]


def entropy_by_position_chart(token_entropies: Iterable[Any]) -> Figure:
    """Mean token entropy at each output position (1 = first generated token) with its 25-75% band.

    Position ``p`` averages the rows that have a ``p``-th token (None and empty rows are skipped;
    non-finite values are left out of the mean); a second y-axis shows how many rows reach each position.
    """
    rows = _rows(token_entropies)
    fig = _new_figure(6.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    title = "Token entropy by output position"
    xlabel, ylabel = "output position (tokens; 1 = first generated token)", "token entropy (nats)"
    if not rows:
        no_data(ax, title, xlabel, ylabel)
        return fig
    lengths = np.array([r.size for r in rows])
    values = np.concatenate(rows)
    position = np.concatenate([np.arange(r.size) for r in rows])
    finite = np.isfinite(values)
    values, position = values[finite], position[finite]
    order = np.argsort(position, kind="stable")
    values, position = values[order], position[order]
    n_pos = int(lengths.max())
    starts = np.searchsorted(position, np.arange(n_pos + 1))
    stats = np.full((n_pos, 3), np.nan)  # mean, 25th, 75th percentile
    for p in range(n_pos):
        chunk = values[starts[p] : starts[p + 1]]
        if chunk.size:
            stats[p] = chunk.mean(), *np.percentile(chunk, [25.0, 75.0])
    reach = len(rows) - np.cumsum(np.bincount(lengths, minlength=n_pos))[:n_pos]  # rows longer than p
    x = np.arange(1, n_pos + 1)
    band = ax.fill_between(
        x, stats[:, 1], stats[:, 2], color="tab:orange", alpha=0.3, label="25-75 percentile"
    )
    (mean_line,) = ax.plot(x, stats[:, 0], color="tab:orange", label="mean entropy")
    twin = ax.twinx()
    (reach_line,) = twin.plot(
        x, reach, color="grey", drawstyle="steps-mid", linewidth=1, label="rows reaching it"
    )
    twin.set_ylim(0, reach.max() * 1.05)
    twin.set_ylabel("rows reaching the position")
    ax.set(
        xlim=(0.5, n_pos + 0.5),
        xlabel=xlabel,
        ylabel=ylabel,
        title=f"{title}\nmean over the rows that reach each position ({_count(len(rows))})",
    )
    ax.legend(handles=[mean_line, band, reach_line], fontsize=8, loc="upper right")
    return fig


def _finished_flag(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return bool(value)
    except TypeError:  # pandas.NA
        return None


def length_chart(num_tokens: Any, finished: Any, max_new_tokens: int | None = None) -> Figure:
    """Histogram of output lengths (tokens), stacked: finished (EOS emitted) vs not (stopped at the limit).

    Bins are whole numbers of tokens (one per length, or a few lengths per bin for long outputs); rows with
    no length are skipped, rows whose ``finished`` is missing form an "unknown" group when there are any.
    A dashed line marks ``max_new_tokens`` when given.
    """
    n = _floats(num_tokens)
    flags = [_finished_flag(v) for v in finished]
    if len(flags) != n.size:
        raise ValueError(f"num_tokens has {n.size} values but finished has {len(flags)}")
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    title, ylabel = "Output length", "rows"
    ok = np.isfinite(n)
    if not ok.any():
        no_data(ax, title, "output length (tokens)", ylabel)
        return fig
    state = np.array([{True: 0, False: 1, None: 2}[f] for f in flags])[ok]
    n = np.rint(n[ok])
    groups = [
        ("finished (EOS emitted)", "tab:green", n[state == 0]),
        ("not finished (hit the limit)", "tab:red", n[state == 1]),
        ("finished unknown", "tab:grey", n[state == 2]),
    ]
    groups = groups[:2] + ([groups[2]] if groups[2][2].size else [])
    lo, hi = int(n.min()), int(max(n.max(), max_new_tokens or 0))
    width = max(1, math.ceil((hi - lo + 1) / 100))  # at most 100 bins, each a whole number of tokens
    edges = lo - 0.5 + width * np.arange(math.ceil((hi - lo + 1) / width) + 1)
    ax.hist(
        [g[2] for g in groups],
        bins=edges,
        stacked=True,
        color=[g[1] for g in groups],
        label=[f"{g[0]}: {_count(g[2].size)}" for g in groups],
    )
    if max_new_tokens is not None:
        ax.axvline(max_new_tokens, color="black", linestyle="--", label=f"max_new_tokens = {max_new_tokens}")
    per_bin = "" if width == 1 else f"; {width} lengths per bar"
    ax.set(
        xlabel=f"output length (tokens{per_bin})", ylabel=ylabel, title=f"{title} ({_count(int(ok.sum()))})"
    )
    ax.legend(fontsize=8)
    return fig
