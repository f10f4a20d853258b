"""``report.html`` of a 300-, 1,000- and 10,000-row run: its size, what fills it, its write and render times.

1. A real run: ``t5score predict --model.top_k 5`` of the shipped model on its 300-row test split (a
   subprocess, ~20 s). The bigger runs are built from it: its ``predictions.parquet`` rows repeated in
   order until there are N (row ``i`` is row ``i % 300``, id ``<id>#<i // 300>``, every column kept, the
   per-token lists included) beside its ``run.json``, ``run_config.json``, ``token_pieces.json`` and
   ``summary.json`` (left as the 300-row run's: corpus counts and the calibration bins are not scaled; the
   page's tables, figures and examples come from the table, which has N rows).
2. Per size: ``rewrite_report(folder)`` (what ``t5score report RUN_DIR`` does: read the table, recompute
   the uncertainty scores, write ``report.md``, ``report.html`` and the PNG figures) timed once to warm
   up, then ``--repeats`` times (min, median); the bytes of ``report.html`` and ``report.md``, the
   examples and token spans embedded, and the page's bytes by part (inline SVG per figure, token views,
   tables, CSS, script, the rest).
3. In headless Chromium (``tests/helpers/browser.py``, offline): wall time of ``open_page`` (browser
   start, navigation, load event; a one-line page gives the browser's own start-up), the page's
   navigation timing (load event, DOMContentLoaded) and paint timings, and the time a sort of the biggest
   sortable table takes (a header ``click()`` in the page, ``performance.now()`` around it, then a forced
   layout). Skipped, with the reason in the JSON, when no browser is found.

    python benchmarks/bench_report.py --out reports/bench/report.json     # ~1.5 min on 2 busy cores
    python benchmarks/bench_report.py --sizes 300 1000 --repeats 1         # smoke run

Benchmarks, not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, median, versions, write_json

RUN = "from t5score.cli.main import main; import sys; sys.exit(main(sys.argv[1:]))"
COPIED = ("run.json", "run_config.json", "token_pieces.json", "summary.json")
LIMIT_BYTES = 3_000_000  # "a page for 10,000 rows stays under a few MB" (issue 17)
#: top-level parts of the page (they do not nest in one another), by a pattern matching each element
PARTS = {
    "svg figures": r"<svg\b.*?</svg>",
    "token views (examples)": r'<article class="example".*?</article>',
    "tables": r'<div class="table">.*?</table></div>',
    "css": r"<style>.*?</style>",
    "script": r"<script>.*?</script>",
}
TOKEN = r'<span class="tok[ "][^>]*>.*?</span>'
#: the sort: the sortable table with most rows, its first column whose cells carry data-sort (numbers)
SORT_JS = """(() => {
  const tables = [...document.querySelectorAll('table.sortable')];
  if (!tables.length) return null;
  const table = tables.reduce((a, b) => b.tBodies[0].rows.length > a.tBodies[0].rows.length ? b : a);
  const first = table.tBodies[0].rows[0];
  let col = [...first.cells].findIndex(td => td.hasAttribute('data-sort'));
  if (col < 0) col = 0;
  const th = table.querySelectorAll('thead th')[col], out = [];
  for (const round of [1, 2]) {  // ascending, then descending
    const t0 = performance.now(); th.click(); const t1 = performance.now();
    void document.body.offsetHeight; const t2 = performance.now();
    out.push({click_ms: t1 - t0, with_layout_ms: t2 - t0});
  }
  return {rows: table.tBodies[0].rows.length, column: th.textContent.trim(), rounds: out,
          sorted: th.getAttribute('aria-sort')};
})()"""
TIMING_JS = """(() => { const t = performance.timing, p = {};
  performance.getEntriesByType('paint').forEach(e => { p[e.name] = e.startTime; });
  return {load_event_ms: t.loadEventEnd - t.navigationStart,
          dom_content_loaded_ms: t.domContentLoadedEventEnd - t.navigationStart,
          first_paint_ms: p['first-paint'] ?? null, first_contentful_paint_ms: p['first-contentful-paint'] ?? null,
          dom_elements: document.getElementsByTagName('*').length}; })()"""


def real_run(folder: Path, timeout: float) -> float:
    """``t5score predict`` of the shipped model into ``folder``; its wall time."""
    cmd = [sys.executable, "-c", RUN, "predict", "--model.top_k", "5", "--output_dir", str(folder)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=folder.parent, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"t5score predict failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def grown_run(base: Path, rows: int, folder: Path) -> Path:
    """A run folder of ``rows`` rows: ``base``'s table repeated in order with distinct ids, its JSON files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(base / "predictions.parquet")
    n = table.num_rows
    take = pa.array([i % n for i in range(rows)], pa.int64())
    grown = table.take(take)
    ids = [f"{table['id'][i % n].as_py()}#{i // n}" for i in range(rows)]
    grown = grown.set_column(grown.schema.get_field_index("id"), "id", pa.array(ids, pa.string()))
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(grown, folder / "predictions.parquet")
    for name in COPIED:
        shutil.copy2(base / name, folder / name)
    return folder


def page_parts(html: str) -> dict:
    """Bytes of the page by part, per figure, and the examples and token spans it embeds."""
    size = lambda texts: sum(len(t.encode()) for t in texts)  # noqa: E731
    parts = {name: size(re.findall(pattern, html, re.S)) for name, pattern in PARTS.items()}
    parts["rest (headings, numbers, prose, markup)"] = len(html.encode()) - sum(parts.values())
    figures = {
        key: len(svg.encode())
        for key, svg in re.findall(r'<figure id="fig-([^"]+)">(<svg\b.*?</svg>)', html, re.S)
    }
    tokens = re.findall(TOKEN, html, re.S)
    titles = re.findall(r' title="[^"]*"', "".join(tokens))
    return {
        "bytes_by_part": parts,
        "svg_bytes_by_figure": figures,
        "examples": len(re.findall(r'<article class="example"', html)),
        "token_spans": len(tokens),
        "token_span_bytes": size(tokens),
        "token_title_bytes": size(titles),
        "table_rows": len(re.findall(r"<tr>", html)),
    }


def time_writes(folder: Path, repeats: int) -> dict:
    """``rewrite_report(folder)`` after a warm-up, ``repeats`` times; the figures' PNG and SVG time apart."""
    from t5score.reports import figures
    from t5score.runs.report_run import rewrite_report

    rewrite_report(folder)  # warm-up: imports, matplotlib's font cache, the page cache
    spent = {"save_png": 0.0, "to_svg": 0.0}
    originals = {name: getattr(figures, name) for name in spent}

    def timed_call(name):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return call

    times, png, svg = [], [], []
    try:
        for name in spent:  # run_figures calls them as figures.save_png / figures.to_svg
            setattr(figures, name, timed_call(name))
        for _ in range(repeats):
            spent.update(save_png=0.0, to_svg=0.0)
            start = time.perf_counter()
            rewrite_report(folder)
            times.append(time.perf_counter() - start)
            png.append(spent["save_png"])
            svg.append(spent["to_svg"])
    finally:
        for name, fn in originals.items():
            setattr(figures, name, fn)
    rest = [t - p - s for t, p, s in zip(times, png, svg, strict=True)]
    return {
        "times_s": times,
        "min_s": min(times),
        "median_s": median(times),
        "png_figures_median_s": median(png),
        "svg_figures_median_s": median(svg),
        "rest_median_s": median(rest),
    }


def browser_times(path: Path, repeats: int, blank: Path) -> dict:
    """Open ``path`` ``repeats`` times, each in a fresh browser: wall time, navigation, paints, sort."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers.browser import find_browser, open_page

    browser = find_browser()
    if browser is None:
        return {"skipped": "no headless Chromium found (apt-get install -y chromium; see .ci/run)"}

    def opened(p: Path):
        start = time.perf_counter()
        ctx = open_page(p, timeout=120)
        page = ctx.__enter__()
        return ctx, page, time.perf_counter() - start

    runs, blanks = [], []
    for _ in range(repeats):
        ctx, page, seconds = opened(blank)
        ctx.__exit__(None, None, None)
        blanks.append(seconds)
        ctx, page, seconds = opened(path)
        try:
            run = {"open_to_load_s": seconds, **page.evaluate(TIMING_JS), "sort": page.evaluate(SORT_JS)}
            run["console_errors"] = page.console_errors
        finally:
            ctx.__exit__(None, None, None)
        runs.append(run)

    def med(key: str):
        values = [r[key] for r in runs if r.get(key) is not None]
        return median(values) if values else None

    sorts = [r["sort"] for r in runs if r["sort"]]
    return {
        "browser": browser,
        "runs": runs,
        "blank_page_open_s": median(blanks),
        "open_to_load_s": med("open_to_load_s"),
        "load_event_ms": med("load_event_ms"),
        "dom_content_loaded_ms": med("dom_content_loaded_ms"),
        "first_contentful_paint_ms": med("first_contentful_paint_ms"),
        "sort_click_ms": median([s["rounds"][0]["click_ms"] for s in sorts]) if sorts else None,
        "sort_with_layout_ms": median([s["rounds"][0]["with_layout_ms"] for s in sorts]) if sorts else None,
        "sort_table_rows": sorts[0]["rows"] if sorts else None,
    }


def section(d: dict) -> list[str]:
    """The ``reports/benchmarks.md`` section for this JSON (``benchmarks/report.py`` renders it)."""
    sizes = list(d["results"])
    res = d["results"]
    lines = [
        "## report.html for " + " / ".join(f"{int(n):,}" for n in sizes) + " rows",
        "",
        f"A real run (`t5score predict --model.top_k 5`, the shipped model, its {d['base_rows']}-row test split, "
        f"{d['base_run_s']:.0f} s), its table repeated in order with distinct ids to the bigger sizes (every "
        "column kept, per-token lists included; `summary.json` left as the 300-row run's). Write time: "
        f"`rewrite_report(folder)` (= `t5score report RUN_DIR`: read the table, uncertainty scores, report.md, "
        f"report.html and PNG figures), after one warm-up, {d['repeats']} times, min / median. Browser: headless "
        "Chromium offline, a fresh browser per load, median of "
        f"{d['repeats']}; open to load = `open_page` wall time (the browser's start-up included: a one-line "
        "page takes the 'blank' time), load event and first contentful paint from the page's own timings, "
        "sort = a click on a numeric header of the biggest sortable table, timed in the page (with the layout "
        f"after it). Load (1/5/15 min) {d['machine'].get('load_average')} at the start, "
        f"{d.get('machine_at_end', {}).get('load_average')} at the end (2 shared cores), {d['threads']}.",
        "",
        "| rows | report.html | report.md | examples / token spans | write min / median s (PNG + SVG + rest) | open to load s "
        "(blank) | load event ms | first contentful paint ms | sort ms: click / with layout (rows) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in res.items():
        b, w = r.get("browser", {}), r["write"]
        if "skipped" in b:
            shown = [f"skipped: {b['skipped']}"] + [""] * 3
        else:
            fcp = b.get("first_contentful_paint_ms")
            shown = [
                f"{b['open_to_load_s']:.2f} ({b['blank_page_open_s']:.2f})",
                f"{b['load_event_ms']:.0f}",
                "n/a" if fcp is None else f"{fcp:.0f}",
                f"{b['sort_click_ms']:.1f} / {b['sort_with_layout_ms']:.1f} ({b['sort_table_rows']})",
            ]
        lines.append(
            f"| {int(n):,} | {r['html_bytes'] / 1e6:.2f} MB | {r['md_bytes'] / 1e3:.0f} kB | "
            f"{r['examples']} / {r['token_spans']:,} | {w['min_s']:.2f} / {w['median_s']:.2f} "
            f"({w['png_figures_median_s']:.2f} + {w['svg_figures_median_s']:.2f} + {w['rest_median_s']:.2f}) | "
            + " | ".join(shown)
            + " |"
        )
    big = res[sizes[-1]]
    total = big["html_bytes"]
    parts = ", ".join(
        f"{name} {v / 1e3:.0f} kB ({100 * v / total:.0f}%)"
        for name, v in sorted(big["bytes_by_part"].items(), key=lambda kv: -kv[1])
    )
    figs = ", ".join(
        f"{k} {v / 1e3:.0f} kB" for k, v in sorted(big["svg_bytes_by_figure"].items(), key=lambda kv: -kv[1])
    )
    verdict = "under" if total <= LIMIT_BYTES else "**over**"
    lines += [
        "",
        f"The {int(sizes[-1]):,}-row page: {total / 1e6:.2f} MB, {verdict} the {LIMIT_BYTES / 1e6:.0f} MB "
        f"taken for the issue's 'under a few MB'. Its bytes: {parts}. Inline SVG by figure: {figs}. Token "
        f"spans: {big['token_span_bytes'] / 1e3:.0f} kB for {big['token_spans']:,} spans, of which their "
        f"titles (probability, entropy, top-k) {big['token_title_bytes'] / 1e3:.0f} kB.",
        "",
    ]
    first, last = res[sizes[0]]["write"], big["write"]
    figs_s = [r["write"]["png_figures_median_s"] + r["write"]["svg_figures_median_s"] for r in res.values()]
    lines += [
        f"Write time: the {len(big['svg_bytes_by_figure'])} figures, each drawn as a PNG (for report.md) and as "
        f"inline SVG, take {min(figs_s):.2f}-{max(figs_s):.2f} s at every size (the scatter is rasterized "
        f"above 2,000 points); the rest (reading the table, per-row masks, tables, examples, "
        f"the page) goes from {first['rest_median_s']:.2f} s at {int(sizes[0]):,} rows to "
        f"{last['rest_median_s']:.2f} s at {int(sizes[-1]):,}.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/report.json"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for the runs (default: a temporary one)"
    )
    parser.add_argument(
        "--base", type=Path, default=None, help="a finished predict run to grow (skips the real run)"
    )
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    threads = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    work = args.work or Path(tempfile.mkdtemp(prefix="t5score-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    payload: dict = {
        "machine": machine(),
        "versions": versions(),
        "threads": threads,
        "repeats": args.repeats,
    }
    base = args.base or work / "run-base"
    if args.base is None:
        shutil.rmtree(base, ignore_errors=True)
        print("== real run", flush=True)
        payload["base_run_s"] = real_run(base, timeout=900)
    else:
        payload["base_run_s"] = json.loads((base / "run.json").read_text()).get("wall_time_s")
    import pyarrow.parquet as pq

    payload["base_rows"] = pq.read_metadata(base / "predictions.parquet").num_rows
    blank = work / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title><p>blank</p>\n")
    payload["results"] = {}
    for n in args.sizes:
        folder = grown_run(base, n, work / f"run{n}")
        print(f"== {n} rows: writing x{args.repeats + 1}", flush=True)
        write = time_writes(folder, args.repeats)
        page = folder / "report.html"
        html = page.read_text(encoding="utf-8")
        result = {
            "rows": n,
            "parquet_bytes": (folder / "predictions.parquet").stat().st_size,
            "html_bytes": page.stat().st_size,
            "md_bytes": (folder / "report.md").stat().st_size,
            "write": write,
            **page_parts(html),
        }
        if args.no_browser:
            result["browser"] = {"skipped": "--no-browser"}
        else:
            print(f"== {n} rows: browser x{args.repeats}", flush=True)
            result["browser"] = browser_times(page, args.repeats, blank)
        payload["results"][str(n)] = result
        print(json.dumps({k: v for k, v in result.items() if k != "browser"}, default=str)[:400], flush=True)
    payload["machine_at_end"] = machine()
    write_json(args.out, payload)
    print("\n".join(section(payload)))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
