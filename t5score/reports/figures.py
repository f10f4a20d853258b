"""Figures for run reports and comparisons (matplotlib, Agg canvas, no pyplot global state).

Builders (``reliability_figure``, ``token_entropy_chart``, ``mean_logprob_chart``, ``risk_coverage_chart``,
``compare_chart``; the per-row charts are in :mod:`t5score.reports.row_figures`) return a
:class:`~matplotlib.figure.Figure`; :func:`save_png` writes one to a file and :func:`to_svg` gives it as an
SVG string to inline in an HTML page. The older ``path`` functions (``reliability_diagram``, ...) build and
save in one call and return the path. An empty input gives a figure saying "no data", never an error.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from t5score.functional.uncertainty import risk_coverage_curve

_DPI = 100
_LAID_OUT = "_t5score_laid_out"  # Figure attribute: tight_layout already done
_SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "t5score"}
_SVG_ROOT = re.compile(r"<svg\b[^>]*>")


def _new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _layout(fig: Figure) -> None:
    if not getattr(fig, _LAID_OUT, False):
        fig.tight_layout()
        setattr(fig, _LAID_OUT, True)


def no_data(ax: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    """Write "no data" in the middle of ``ax`` and give it its title and axis labels."""
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=14, color="grey")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[])


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG to ``path`` (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _layout(fig)
    fig.savefig(path, format="png")
    return path


def to_svg(fig: Figure, label: str | None = None) -> str:
    """``fig`` as an SVG element to inline in HTML: text kept as text, ids the same on every call.

    No XML header or doctype; the root ``<svg>`` has its ``viewBox`` but no fixed ``width``/``height`` (it
    scales with the page), ``role="img"`` and an ``aria-label``: ``label``, by default the first axes' title.
    """
    _layout(fig)
    buf = io.StringIO()
    with matplotlib.rc_context(_SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    match = _SVG_ROOT.search(text)
    if match is None:
        raise ValueError("matplotlib wrote no <svg> element")
    if label is None:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        label = titles[0] if titles else "figure"
    root = re.sub(r'\s(?:width|height)="[^"]*"', "", match.group(0))
    root = f'{root[:-1]} role="img" aria-label={quoteattr(" ".join(label.split()))}>'
    return root + text[match.end() :].rstrip() + "\n"


def _flatten(values: Iterable[Any]) -> np.ndarray:
    """Concatenate per-row lists/arrays (None rows skipped) into one finite float array."""
    parts = [np.asarray(v, dtype=np.float64).ravel() for v in values if v is not None]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return flat[np.isfinite(flat)]


def reliability_bins(obj: Any) -> list[dict[str, Any]] | None:
    """Normalise reliability bins to a list of per-bin dicts, or None when ``obj`` holds none.

    Accepts a list of ``{"confidence", "accuracy", "count"[, "lower", "upper"]}`` dicts, a dict with such
    a list under ``"bins"``, or a dict of per-bin lists (``"confidence"``, ``"accuracy"``, ``"count"``,
    optional ``"lower"``/``"upper"``) as ``t5score.runs.corpus_summary.summarize_records`` writes.
    """
    if isinstance(obj, Mapping):
        if "bins" in obj:
            return reliability_bins(obj["bins"])
        if "confidence" not in obj:
            return None
        keys = [k for k in ("confidence", "accuracy", "count", "lower", "upper") if k in obj]
        sizes = {k: len(obj[k]) for k in keys}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"reliability bins: per-bin lists differ in length: {sizes}")
        return [{k: obj[k][i] for k in keys} for i in range(sizes["confidence"])] or None
    if isinstance(obj, Sequence) and not isinstance(obj, str):
        return list(obj) or None
    return None


def reliability_figure(
    bins: Any,
    title: str = "Reliability diagram",
    ece: float | None = None,
    mce: float | None = None,
    unit: str = "tokens",
) -> Figure:
    """Accuracy vs confidence per bin (bars), the diagonal of perfect calibration, and each bin's count.

    ``bins``: anything :func:`reliability_bins` accepts. Bars span ``[lower, upper]`` when given, else
    equal-width bins on ``[0, 1]``; empty bins (``count == 0``, confidence/accuracy None) are drawn empty.
    The title gives ``ece`` and ``mce`` when given and the number of ``unit`` binned.
    """
    bins = reliability_bins(bins) or []
    for i, b in enumerate(bins):
        missing = [k for k in ("confidence", "accuracy", "count") if not isinstance(b, Mapping) or k not in b]
        if missing:
            raise ValueError(f"calibration bin {i} lacks field(s) {', '.join(missing)}")
    conf = np.array([float(b["confidence"] or 0.0) for b in bins])
    acc = np.array([float(b["accuracy"] or 0.0) for b in bins])
    count = np.array([int(b["count"] or 0) for b in bins], dtype=np.int64)
    if bins and all("lower" in b and "upper" in b for b in bins):
        lower = np.array([float(b["lower"]) for b in bins])
        width = np.array([float(b["upper"]) for b in bins]) - lower
    else:
        width = np.full(len(bins), 1.0 / max(len(bins), 1))
        lower = np.arange(len(bins)) * width
    centers = lower + width / 2
    fig = _new_figure(6.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    xlabel = f"confidence (predicted probability); above each bar: {unit} in the bin"
    ylabel = f"accuracy (fraction of {unit} correct)"
    if not count.sum():
        no_data(ax, title, xlabel, ylabel)
        return fig
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.bar(centers, np.where(count > 0, acc, 0.0), width=width * 0.9, alpha=0.7, label="accuracy")
    ax.scatter(conf[count > 0], acc[count > 0], color="black", s=12, zorder=3, label="(confidence, accuracy)")
    for x, y, n in zip(centers, acc, count, strict=True):
        ax.annotate(
            str(n),
            (x, min(float(y), 0.95) if n else 0.0),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=7,
        )
    parts = [f"ECE {ece:.3g}"] if ece is not None else []
    parts += [f"MCE {mce:.3g}"] if mce is not None else []
    parts.append(f"n = {int(count.sum()):,} {unit}")
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel=xlabel, ylabel=ylabel, title=f"{title}\n{' · '.join(parts)}")
    ax.xaxis.label.set_fontsize(9)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def reliability_diagram(
    bins: Any,
    path: str | Path,
    title: str = "Reliability diagram",
    ece: float | None = None,
    mce: float | None = None,
) -> Path:
    """:func:`reliability_figure` written as a PNG to ``path``."""
    return save_png(reliability_figure(bins, title, ece=ece, mce=mce), path)


def _histogram(values: np.ndarray, xlabel: str, ylabel: str, title: str, bins: int, color: str) -> Figure:
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    if not values.size:
        no_data(ax, title, xlabel, ylabel)
        return fig
    ax.hist(values, bins=bins, color=color, alpha=0.8, label=ylabel)
    mean = float(np.mean(values))
    ax.axvline(mean, color="black", linestyle="--", label=f"mean {mean:.3f}")
    ax.legend(fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title} ({values.size:,} {ylabel})")
    return fig


def token_entropy_chart(token_entropies: Iterable[Any], bins: int = 40) -> Figure:
    """Histogram of every generated token's entropy (nats), pooled over rows (a list per row)."""
    flat = _flatten(token_entropies)
    return _histogram(flat, "token entropy (nats)", "tokens", "Token entropies", bins, "tab:blue")


def token_entropy_histogram(token_entropies: Iterable[Any], path: str | Path, bins: int = 40) -> Path:
    """:func:`token_entropy_chart` written as a PNG to ``path``."""
    return save_png(token_entropy_chart(token_entropies, bins), path)


def mean_logprob_chart(mean_logprobs: Iterable[Any], bins: int = 40) -> Figure:
    """Histogram of the mean token log-probability of each sequence (missing rows skipped)."""
    flat = _flatten([[v] for v in mean_logprobs if v is not None])
    xlabel = "mean log-probability per token (nats)"
    return _histogram(flat, xlabel, "sequences", "Mean log-probability per sequence", bins, "tab:green")


def mean_logprob_histogram(mean_logprobs: Iterable[Any], path: str | Path, bins: int = 40) -> Path:
    """:func:`mean_logprob_chart` written as a PNG to ``path``."""
    return save_png(mean_logprob_chart(mean_logprobs, bins), path)


def risk_coverage_chart(
    uncertainties: Mapping[str, Any], quality: Any, quality_name: str = "quality"
) -> Figure:
    """Risk (``1 - quality`` of kept rows) vs coverage for each uncertainty score, plus oracle and random.

    ``uncertainties`` maps a score name to per-row values (higher = less sure) aligned with ``quality``;
    rows where either value is not finite are left out of that curve. The y-axis starts at 0 (never cut to
    the curves' range) and ends at 1 when every risk lies in [0, 1], else at the largest risk plus a margin.
    """
    q = np.asarray(quality, dtype=np.float64).ravel()
    fig = _new_figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    title = "Risk-coverage curve"
    xlabel = "coverage (fraction of rows kept, most confident first)"
    ylabel = f"risk = 1 - mean {quality_name} of kept rows"
    finite_q = q[np.isfinite(q)]
    if not finite_q.size:
        no_data(ax, title, xlabel, ylabel)
        return fig
    cov, risk = risk_coverage_curve(-finite_q, finite_q)
    risks = [risk, [1.0 - float(np.mean(finite_q))]]
    ax.plot(cov, risk, color="black", linestyle=":", label="oracle (rows sorted by quality)", zorder=5)
    ax.axhline(risks[1][0], color="grey", linestyle="--", label="random order (mean risk)")
    for name, values in uncertainties.items():
        u = np.asarray(values, dtype=np.float64).ravel()
        ok = np.isfinite(u) & np.isfinite(q)
        if ok.any():
            cov, risk = risk_coverage_curve(u[ok], q[ok])
            risks.append(risk)
            ax.plot(cov, risk, label=f"{name} (AURC {np.mean(risk):.3f})")
    every = np.concatenate([np.asarray(r, dtype=np.float64) for r in risks])
    low, high = float(every.min()), float(every.max())
    if low >= 0.0 and high <= 1.0:
        ylim = (0.0, 1.0)
    else:
        margin = 0.05 * (max(high, 0.0) - min(low, 0.0) or 1.0)
        ylim = (min(low - margin, 0.0), max(high + margin, 0.0))
    title = f"{title} ({finite_q.size:,} rows; lower is better)"
    ax.set(xlim=(0, 1), ylim=ylim, xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def risk_coverage_figure(
    uncertainties: Mapping[str, Any], quality: Any, path: str | Path, quality_name: str = "quality"
) -> Path:
    """:func:`risk_coverage_chart` written as a PNG to ``path``."""
    return save_png(risk_coverage_chart(uncertainties, quality, quality_name), path)


def compare_chart(table: Any) -> Figure:
    """Difference to the first run with its 95% bootstrap CI, one panel per metric.

    ``table`` is a DataFrame with columns ``metric``, ``run``, ``delta``, ``ci_low``, ``ci_high``
    (rows of the baseline run itself may have NaN deltas and are skipped).
    """
    rows = table[table["delta"].notna()]
    metrics = list(dict.fromkeys(rows["metric"]))
    fig = _new_figure(7.0, max(2.0, 1.4 * len(metrics) + 0.6))
    for i, metric in enumerate(metrics, start=1):
        ax = fig.add_subplot(max(len(metrics), 1), 1, i)
        sub = rows[rows["metric"] == metric]
        y = np.arange(len(sub))
        delta = sub["delta"].to_numpy(dtype=float)
        lo = delta - sub["ci_low"].to_numpy(dtype=float)
        hi = sub["ci_high"].to_numpy(dtype=float) - delta
        ax.errorbar(delta, y, xerr=np.vstack([lo, hi]), fmt="o", capsize=4, label="difference, 95% CI")
        ax.axvline(0.0, color="grey", linestyle="--", label="no difference")
        ax.set_yticks(y, [str(r) for r in sub["run"]])
        ax.set_ylim(-0.7, len(sub) - 0.3)
        ax.set_title(f"{metric}: difference to first run (95% CI)", fontsize=9)
        ax.set_xlabel(f"{metric} of run - {metric} of first run", fontsize=8)
        if i == 1:
            ax.legend(fontsize=7, loc="best")
    if not metrics:
        no_data(fig.add_subplot(1, 1, 1), "no metric to compare")
    return fig


def compare_figure(table: Any, path: str | Path) -> Path:
    """:func:`compare_chart` written as a PNG to ``path``."""
    return save_png(compare_chart(table), path)
