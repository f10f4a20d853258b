"""PNG figures for run reports and comparisons (matplotlib, Agg canvas, no pyplot global state).

Each function draws one figure, writes it to ``path`` (parent folders are created) and returns the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from t5score.functional.uncertainty import risk_coverage_curve

_DPI = 100


def _new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


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


def reliability_diagram(bins: Any, path: str | Path, title: str = "Reliability diagram") -> Path:
    """Accuracy vs confidence per bin (bars), the diagonal of perfect calibration, and each bin's count.

    ``bins``: anything :func:`reliability_bins` accepts. Bars span ``[lower, upper]`` when given, else
    equal-width bins on ``[0, 1]``; empty bins (``count == 0``, confidence/accuracy None) are drawn empty.
    """
    bins = reliability_bins(bins) or []
    for i, b in enumerate(bins):
        missing = [k for k in ("confidence", "accuracy", "count") if not isinstance(b, Mapping) or k not in b]
        if missing:
            raise ValueError(f"calibration bin {i} lacks field(s) {', '.join(missing)}")
    conf = np.array([float(b["confidence"] or 0.0) for b in bins])
    acc = np.array([float(b["accuracy"] or 0.0) for b in bins])
    count = np.array([int(b["count"] or 0) for b in bins])
    if bins and all("lower" in b and "upper" in b for b in bins):
        lower = np.array([float(b["lower"]) for b in bins])
        width = np.array([float(b["upper"]) for b in bins]) - lower
    else:
        width = np.full(len(bins), 1.0 / max(len(bins), 1))
        lower = np.arange(len(bins)) * width
    centers = lower + width / 2
    fig = _new_figure(6.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
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
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.05),
        xlabel="confidence",
        ylabel="accuracy",
        title=f"{title}\n(n = {int(count.sum())}; count above each bar)",
    )
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def token_entropy_histogram(token_entropies: Iterable[Any], path: str | Path, bins: int = 40) -> Path:
    """Histogram of every generated token's entropy (nats), pooled over rows (a list per row)."""
    flat = _flatten(token_entropies)
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    if flat.size:
        ax.hist(flat, bins=bins, color="tab:blue", alpha=0.8)
        ax.axvline(float(np.mean(flat)), color="black", linestyle="--", label=f"mean {np.mean(flat):.3f}")
        ax.legend(fontsize=8)
    ax.set(xlabel="token entropy (nats)", ylabel="tokens", title=f"Token entropies ({flat.size} tokens)")
    return _save(fig, path)


def mean_logprob_histogram(mean_logprobs: Iterable[Any], path: str | Path, bins: int = 40) -> Path:
    """Histogram of the mean token log-probability of each sequence (missing rows skipped)."""
    flat = _flatten([[v] for v in mean_logprobs if v is not None])
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    if flat.size:
        ax.hist(flat, bins=bins, color="tab:green", alpha=0.8)
        ax.axvline(float(np.mean(flat)), color="black", linestyle="--", label=f"mean {np.mean(flat):.3f}")
        ax.legend(fontsize=8)
    ax.set(
        xlabel="mean log-probability per token (nats)",
        ylabel="sequences",
        title=f"Mean log-probability per sequence ({flat.size} sequences)",
    )
    return _save(fig, path)


def risk_coverage_figure(
    uncertainties: Mapping[str, Any], quality: Any, path: str | Path, quality_name: str = "quality"
) -> Path:
    """Risk (``1 - quality`` of kept rows) vs coverage for each uncertainty score, plus oracle and random.

    ``uncertainties`` maps a score name to per-row values (higher = less sure) aligned with ``quality``;
    rows where either value is not finite are left out of that curve.
    """
    q = np.asarray(quality, dtype=np.float64)
    fig = _new_figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    finite_q = q[np.isfinite(q)]
    if finite_q.size:
        cov, risk = risk_coverage_curve(-finite_q, finite_q)
        ax.plot(cov, risk, color="black", linestyle=":", label="oracle", zorder=5)
        ax.axhline(1.0 - float(np.mean(finite_q)), color="grey", linestyle="--", label="random")
    for name, values in uncertainties.items():
        u = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(u) & np.isfinite(q)
        if ok.any():
            cov, risk = risk_coverage_curve(u[ok], q[ok])
            ax.plot(cov, risk, label=f"{name} (AURC {np.mean(risk):.3f})")
    ax.set(
        xlim=(0, 1),
        xlabel="coverage (fraction of rows kept, most confident first)",
        ylabel=f"risk = 1 - mean {quality_name} of kept rows",
        title="Risk-coverage curve",
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def compare_figure(table: Any, path: str | Path) -> Path:
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
        ax.errorbar(delta, y, xerr=np.vstack([lo, hi]), fmt="o", capsize=4)
        ax.axvline(0.0, color="grey", linestyle="--")
        ax.set_yticks(y, [str(r) for r in sub["run"]])
        ax.set_ylim(-0.7, len(sub) - 0.3)
        ax.set_title(f"{metric}: difference to first run (95% CI)", fontsize=9)
    if not metrics:
        fig.add_subplot(1, 1, 1).set_title("no metric to compare")
    return _save(fig, path)
