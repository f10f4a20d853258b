"""``report.md`` and ``report.html``: the human-readable pages of a ``predict``, ``score`` or ``rerank`` run.

1. The blocks are computed once (:mod:`t5score.reports.run_contents`, :mod:`~t5score.reports.rerank_contents`,
   the figures of :mod:`~t5score.reports.run_figures`, the examples of :mod:`~t5score.reports.examples`).
2. ``report.md`` renders them as Markdown (a terminal, a pull request) and links to ``report.html``.
3. ``report.html`` renders the same blocks as one self-contained page, with the token views.

It works from the run's table and dicts only and copes with missing optional columns (no targets, no
calibration, score runs without ``prediction``): a section whose inputs are absent says so. It renders only:
the numbers it shows are computed before, by the run (:mod:`t5score.runs.uncertainty`), and it never changes
the summary it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from t5score.reports import html, rerank_contents, run_contents
from t5score.reports.blocks import Block, Examples, Heading, Para
from t5score.reports.examples import TokenSource, build_examples, choose_rows, rows_by_reason
from t5score.reports.markdown import render_markdown
from t5score.reports.run_contents import UNCERTAINTY_MEANING
from t5score.reports.run_figures import run_figures

KINDS = ("predict", "score", "rerank")
__all__ = ["KINDS", "UNCERTAINTY_MEANING", "WrittenReport", "report_blocks", "write_report"]


class WrittenReport(NamedTuple):
    """What :func:`write_report` wrote: the pages and the figures (title -> path relative to the page)."""

    path: Path  # report.md
    figures: dict[str, str]
    html: Path | None = None


def report_blocks(
    out: Path,
    df: pd.DataFrame,
    summary: Mapping[str, Any],
    run_info: Mapping[str, Any],
    kind: str,
    uncertainties: Mapping[str, Any] | None,
    tokens: TokenSource | None,
    ids: Iterable[str],
) -> tuple[list[Block], dict[str, str]]:
    """Every block of the report (drawing the figures into ``out/figures``) and the figures drawn."""
    quality = (summary.get("uncertainty") or {}).get("quality_column")
    reasons = rows_by_reason(df, quality, ids)
    chosen = choose_rows(df, quality, ids)
    examples = build_examples(df, chosen, tokens, kind)
    hint = f"Run `t5score report {out} --ids ID` to add it."
    drawn, skipped = run_figures(df, summary, run_info, out, uncertainties)
    blocks: list[Block] = []
    if kind == "rerank":
        blocks += rerank_contents.rerank_headline(summary)
    headline, every_number = run_contents.headline(df, summary, kind)
    blocks += headline
    if kind == "rerank":
        blocks += rerank_contents.rerank_groups(df, quality)
    else:
        blocks += [Heading("Token views", anchor="tokens"), Examples(examples, hint)]
    blocks += [Heading("Figures", anchor="figures"), *drawn]
    if skipped:
        blocks += [Para(["Not drawn: " + "; ".join(skipped) + "."])]
    blocks += run_contents.uncertainty(summary)
    if kind != "rerank":
        blocks += run_contents.example_tables(df, reasons, quality)
    blocks += run_contents.problems(df, kind, set(chosen) if kind != "rerank" else set())
    blocks += run_contents.what_was_run(run_info, kind)
    blocks += every_number
    return blocks, {f.title: f.png for f in drawn}


def write_report(
    output_dir: str | Path,
    predictions: pd.DataFrame,
    summary: Mapping[str, Any],
    run_info: Mapping[str, Any],
    kind: str = "predict",
    uncertainties: Mapping[str, Any] | None = None,
    tokens: TokenSource | None = None,
    ids: Iterable[str] = (),
) -> WrittenReport:
    """Write ``report.md``, ``report.html`` and the PNG figures (under ``figures/``) into ``output_dir``.

    ``predictions`` is the run's table in file order (row ``i`` is row ``i`` of the Parquet file), without
    the per-token lists except ``token_entropies``; ``tokens`` gives the lists of the rows shown as
    examples (and the text of each token id), ``ids`` the rows to show besides the chosen ones.
    ``summary["uncertainty"]`` (when present, from :func:`t5score.runs.uncertainty.uncertainty_summary`)
    fills the uncertainty section and names the quality column; the risk-coverage curve then plots
    ``uncertainties`` (score name -> per-row values aligned with ``predictions``) against it. Reliability
    diagrams come from ``summary["calibration"]["bins"]``, ``summary["reliability"]`` and
    ``summary["ref_reliability"]``, whichever are present. Returns the pages and the figures drawn.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = predictions.reset_index(drop=True)
    blocks, drawn = report_blocks(out, df, summary, run_info, kind, uncertainties, tokens, ids)
    title = f"t5score {kind} report"
    what = "The full page" + (", with each example's tokens coloured" if kind != "rerank" else "")
    md = f"# {title}\n\n{what}: [report.html](report.html).\n\n"
    path = out / "report.md"
    path.write_text(md + render_markdown(blocks), encoding="utf-8")
    page = out / "report.html"
    page.write_text(html.page(title, blocks, [("report.md", "report.md")]), encoding="utf-8")
    return WrittenReport(path, drawn, page)
