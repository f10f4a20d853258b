"""The report's figures draw the numbers they claim: plotted data read back from each Figure is compared
with numpy computations of the same quantities (loops, np.histogram, np.percentile, scipy's Spearman);
to_svg gives a deterministic, scalable, inline-ready SVG."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from t5score.reports import figures
from t5score.reports.row_figures import (
    average_ranks,
    binned_means,
    confidence_quality_chart,
    entropy_by_position_chart,
    length_chart,
    spearman,
)

try:
    from scipy.stats import rankdata, spearmanr
except ImportError:  # pragma: no cover - scipy is a dev dependency here; the pinned values stand in
    rankdata = spearmanr = None

SVG = "{http://www.w3.org/2000/svg}"
#: x, y with many ties, and their Spearman rho computed with scipy 1.17.1 (scipy.stats.spearmanr)
TIED_X = [(i * 3) % 7 for i in range(40)]
TIED_Y = [(i * i) % 11 + (i % 3) for i in range(40)]
TIED_RHO = 0.03983422028472526


def texts(fig: Figure) -> str:
    """Every piece of text of the figure (titles, labels, legends, annotations), newline-joined."""
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def title(fig: Figure) -> str:
    return fig.axes[0].get_title()


def svg_texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_spearman_with_ties_matches_scipy() -> None:
    assert spearman(TIED_X, TIED_Y) == pytest.approx(TIED_RHO, rel=1e-12)
    if spearmanr is None:
        return
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, y = rng.integers(0, 6, 50), rng.normal(size=50).round(1)
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, rel=1e-12)
        assert average_ranks(x) == pytest.approx(rankdata(x), rel=1e-12)
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])) and math.isnan(spearman([1.0], [2.0]))


def test_confidence_quality_chart_plots_the_rows_binned_means_and_spearman() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(-1.0, 0.4, 300)
    y = np.clip(0.5 + 0.2 * x + rng.normal(0, 0.1, 300), 0, 1)
    x[[3, 10]], y[[5]] = np.nan, np.inf  # three rows left out
    fig = confidence_quality_chart(pd.Series(x), list(y))
    ok = np.isfinite(x) & np.isfinite(y)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.column_stack([x[ok], y[ok]]), rtol=1e-12)
    assert not ax.collections[0].get_rasterized()
    # binned means by a loop over the ten quantile bins of x (last bin closed)
    xs, ys = x[ok], y[ok]
    edges = np.quantile(xs, np.linspace(0, 1, 11))
    expected = []
    for i in range(10):
        inside = (xs >= edges[i]) & ((xs < edges[i + 1]) | (i == 9))
        expected.append((xs[inside].mean(), ys[inside].mean()))
    np.testing.assert_allclose(ax.lines[0].get_xydata(), expected, rtol=1e-12)
    rho = spearmanr(xs, ys).statistic if spearmanr is not None else spearman(xs, ys)
    assert f"Spearman ρ = {rho:.3f}" in title(fig)
    assert "n = 297 rows" in title(fig) and "3 rows left out" in title(fig)
    assert "nats" in ax.get_xlabel() and "rougeL" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 2


def test_binned_means_with_tied_quantile_edges() -> None:
    x = np.array([0.0] * 6 + [1.0, 2.0, 3.0, 4.0])  # the 0, .1, ..., .5 quantiles are all 0
    y = np.arange(10.0)
    bx, by = binned_means(x, y)
    edges = np.quantile(x, np.linspace(0, 1, 11))
    loop = [
        (x[m].mean(), y[m].mean())
        for i in range(10)
        if (m := (x >= edges[i]) & ((x < edges[i + 1]) | (i == 9))).any()
    ]
    np.testing.assert_allclose(np.column_stack([bx, by]), loop, rtol=1e-12)
    assert bx.size < 10  # the tied bins are left out, not drawn as NaN


def test_entropy_by_position_chart_means_band_and_rows_reaching() -> None:
    rng = np.random.default_rng(3)
    rows = [rng.gamma(2.0, 0.5, int(k)) for k in rng.integers(1, 12, 40)]
    data = [*rows[:20], None, [], rows[20].tolist(), *rows[21:]]
    fig = entropy_by_position_chart(data)
    ax, twin = fig.axes
    n_pos = max(len(r) for r in rows)
    means, low, high, reach = [], [], [], []
    for p in range(n_pos):
        at_p = [r[p] for r in rows if len(r) > p]
        means.append(np.mean(at_p))
        low.append(np.percentile(at_p, 25))
        high.append(np.percentile(at_p, 75))
        reach.append(len(at_p))
    positions = np.arange(1, n_pos + 1)  # 1-based, as the label says
    np.testing.assert_allclose(ax.lines[0].get_xydata(), np.column_stack([positions, means]), rtol=1e-12)
    np.testing.assert_array_equal(twin.lines[0].get_xydata(), np.column_stack([positions, reach]))
    vertices = np.concatenate([path.vertices for path in ax.collections[0].get_paths()])
    for p, lo, hi in zip(positions, low, high, strict=True):
        at = vertices[vertices[:, 0] == p, 1]
        assert at.min() == pytest.approx(lo, rel=1e-12) and at.max() == pytest.approx(hi, rel=1e-12)
    assert "1 = first" in ax.get_xlabel() and "nats" in ax.get_ylabel() and "rows" in twin.get_ylabel()
    assert "(40 rows)" in title(fig) and len(ax.get_legend().get_texts()) == 3


def test_length_chart_stacks_finished_and_unfinished() -> None:
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 65, 200)
    finished = lengths < 64
    finished[:5] = False
    fig = length_chart(pd.Series(lengths), pd.Series(finished), max_new_tokens=64)
    ax = fig.axes[0]
    bars = [[(p.get_x(), p.get_width(), p.get_height()) for p in c] for c in ax.containers]
    assert len(bars) == 2
    edges = np.array([x for x, _, _ in bars[0]] + [bars[0][-1][0] + bars[0][-1][1]])
    np.testing.assert_allclose(edges, np.arange(lengths.min(), 66) - 0.5, rtol=1e-12)  # one bar per length
    for group, drawn in zip((lengths[finished], lengths[~finished]), bars, strict=True):
        np.testing.assert_array_equal([h for _, _, h in drawn], np.histogram(group, bins=edges)[0])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    k = int(finished.sum())
    assert legend == [
        f"finished (EOS emitted): {k} rows",
        f"not finished (hit the limit): {200 - k} rows",
        "max_new_tokens = 64",
    ]
    assert [tuple(line.get_xdata()) for line in ax.lines] == [(64, 64)]
    assert "tokens" in ax.get_xlabel() and "(200 rows)" in title(fig)


def test_length_chart_long_outputs_and_missing_flags() -> None:
    lengths = [0, 5, 299, None, 150, 7]
    fig = length_chart(lengths, [True, None, False, True, np.nan, True])
    ax = fig.axes[0]
    assert len(ax.containers) == 3  # finished, not finished, unknown
    edges = [p.get_x() for p in ax.containers[0]]
    width = ax.containers[0][0].get_width()
    assert width == 3 and len(edges) <= 100 and edges[0] == -0.5  # whole lengths per bar
    heights = [sum(p.get_height() for p in c) for c in ax.containers]
    assert heights == [2, 1, 2] and "(5 rows)" in title(fig) and "3 lengths per bar" in ax.get_xlabel()


def test_reliability_title_gives_ece_mce_and_count() -> None:
    bins = {"confidence": [0.2, 0.5, None], "accuracy": [0.1, 0.6, None], "count": [100, 8741, 0]}
    fig = figures.reliability_figure(bins, ece=0.076412, mce=0.16711)
    assert title(fig) == "Reliability diagram\nECE 0.0764 · MCE 0.167 · n = 8,841 tokens"
    bars = fig.axes[0].containers[0]
    assert [p.get_height() for p in bars] == pytest.approx([0.1, 0.6, 0.0], rel=1e-12)
    assert "n = 8,841" in figures.reliability_figure(bins).axes[0].get_title()
    assert "ECE" not in figures.reliability_figure(bins).axes[0].get_title()


def test_risk_coverage_axis_starts_at_zero() -> None:
    rng = np.random.default_rng(5)
    q = rng.uniform(0.7, 0.95, 50)  # risks all within [0.05, 0.3]: an autoscaled axis would be cut
    u = rng.normal(size=50)
    fig = figures.risk_coverage_chart({"u": u}, q, "rougeL")
    assert fig.axes[0].get_ylim() == (0.0, 1.0)
    # the curve of u: by a loop, the mean loss of the k most confident rows (no ties in u)
    order = np.argsort(u)
    risk = [np.mean(1 - q[order[:k]]) for k in range(1, 51)]
    drawn = fig.axes[0].lines[-1].get_xydata()
    np.testing.assert_allclose(drawn, np.column_stack([np.arange(1, 51) / 50, risk]), rtol=1e-12)
    assert "rougeL" in fig.axes[0].get_ylabel() and "coverage" in fig.axes[0].get_xlabel()
    wide = figures.risk_coverage_chart({"u": u}, q - 2.0)  # risk 1 - q up to 2.3
    low, high = wide.axes[0].get_ylim()
    assert low == 0.0 and np.max(1 - (q - 2.0)) < high < 1.1 * np.max(1 - (q - 2.0))


def test_svg_is_inline_ready_and_deterministic() -> None:
    fig = figures.reliability_figure(
        {"confidence": [0.3, 0.8], "accuracy": [0.2, 0.9], "count": [5, 9]}, ece=0.1
    )
    calls = []
    layout = fig.tight_layout
    fig.tight_layout = lambda *a, **k: (calls.append(1), layout(*a, **k))  # type: ignore[method-assign]
    svg = figures.to_svg(fig)
    assert svg == figures.to_svg(fig)
    assert not svg.startswith("<?xml") and "<!DOCTYPE" not in svg and svg.startswith("<svg")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("viewBox")
    assert root.get("width") is None and root.get("height") is None
    assert root.get("aria-label") == "Reliability diagram ECE 0.1 · n = 14 tokens"
    assert "Reliability diagram" in svg_texts(svg) and "ECE 0.1 · n = 14 tokens" in svg_texts(svg)
    # a second build of the same figure gives the same bytes (ids from the fixed hash salt, no date)
    again = figures.reliability_figure(
        {"confidence": [0.3, 0.8], "accuracy": [0.2, 0.9], "count": [5, 9]}, ece=0.1
    )
    assert figures.to_svg(again) == svg
    assert re.search(r'id="[^"]+"', svg)
    assert calls == [1]


def test_to_svg_and_save_png_on_one_figure(tmp_path: Path) -> None:
    fig = confidence_quality_chart([1.0, 2.0, 3.0], [0.1, 0.4, 0.2])
    svg = figures.to_svg(fig, label="my chart")
    path = figures.save_png(fig, tmp_path / "sub/cq.png")
    assert ET.fromstring(svg).get("aria-label") == "my chart"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (450, 600) and float(pixels[..., :3].std()) > 0.01
    assert figures.to_svg(fig, label="my chart") == svg  # saving a PNG changed nothing


def test_big_scatter_is_rasterized_and_small() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=5000)
    fig = confidence_quality_chart(x, x + rng.normal(size=5000))
    assert fig.axes[0].collections[0].get_rasterized()
    svg = figures.to_svg(fig)
    assert len(svg.encode()) < 300_000 and "<image" in svg
    assert len(ET.fromstring(svg).findall(f".//{SVG}image")) == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: confidence_quality_chart([], []),
        lambda: confidence_quality_chart([np.nan, 1.0], [0.5, np.nan]),
        lambda: entropy_by_position_chart([None, [], np.zeros(0)]),
        lambda: length_chart([], []),
        lambda: length_chart([None], [True]),
        lambda: figures.reliability_figure([]),
        lambda: figures.token_entropy_chart([None, []]),
        lambda: figures.mean_logprob_chart([None]),
        lambda: figures.risk_coverage_chart({}, [np.nan]),
        lambda: figures.compare_chart(pd.DataFrame({"metric": ["m"], "run": ["a"], "delta": [np.nan]})),
    ],
)
def test_empty_inputs_say_no_data(build) -> None:
    fig = build()
    assert "no data" in texts(fig) and fig.axes[0].get_title()
    assert "no data" in svg_texts(figures.to_svg(fig))


def test_every_figure_has_title_labels_and_legend() -> None:
    rng = np.random.default_rng(8)
    q = rng.uniform(size=40)
    compare = pd.DataFrame({"metric": ["m"] * 2, "run": ["a", "b"], "delta": [np.nan, 0.1]})
    compare["ci_low"], compare["ci_high"] = compare["delta"] - 0.05, compare["delta"] + 0.05
    built = [
        figures.reliability_figure({"confidence": [0.5], "accuracy": [0.4], "count": [3]}),
        figures.token_entropy_chart([rng.gamma(2, 1, 9)]),
        figures.mean_logprob_chart(rng.normal(size=9)),
        figures.risk_coverage_chart({"u": -q}, q),
        figures.compare_chart(compare),
        confidence_quality_chart(q, q),
        entropy_by_position_chart([q[:5], q[:3]]),
        length_chart([3, 4], [True, False]),
    ]
    for fig in built:
        ax = fig.axes[0]
        assert ax.get_title() and ax.get_xlabel() and ax.get_legend() is not None, ax.get_title()
        assert ax.get_ylabel() or ax.get_yticklabels(), ax.get_title()
    assert "nats" in built[1].axes[0].get_xlabel() and "nats" in built[2].axes[0].get_xlabel()
