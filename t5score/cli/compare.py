"""Compare t5score runs row by row: ``t5score compare RUN_DIR RUN_DIR [...] --output_dir D``.

Each RUN_DIR holds the output of a ``predict``, ``score`` or ``rerank`` run: ``reranked.parquet``,
``scores.parquet`` or ``predictions.parquet`` (the first found, or ``--file``) and, optionally,
``summary.json``. Rows are joined on ``id`` (and ``sample_index`` when present). For every per-row numeric
metric that all runs share (``mean_logprob``, ``sum_logprob``, ``mean_entropy``, ``num_tokens``,
``rougeL``, ``ref_logprob``, ...) it reports the mean of each run and the difference to the FIRST run
(mean of the per-row differences) with a paired bootstrap 95% confidence interval and p-value, plus the
examples whose value changed most. Writes ``compare.md``, ``compare.html`` (the same page, self-contained:
which direction is better per metric, the runs' ``run.json`` differences, the changed examples with both
runs' tokens coloured), ``compare.csv`` and ``compare.png``.

Rerank runs are compared with rerank runs only (over the same candidates): per candidate, joined on
``group_id`` and ``candidate_index`` (the ``score_*`` columns, ``mean_logprob``, ... and ``score`` when all
runs rank by the same score), and per group, joined on ``group_id``: the top-ranked candidate's ROUGE and
human score (``top_rouge1/2/L``, ``top_human_score``), with the number of groups whose top candidate changed.

Statistics: rows are resampled with replacement (numpy ``default_rng(seed)``, restarted for every
metric and run so a number does not depend on which other metrics are compared); the CI is the 2.5 and
97.5 percentiles of the resampled mean differences; the two-sided p-value is
``min(1, 2 * min(P*(mean <= 0), P*(mean >= 0)))`` with ``P*(.) = (1 + count) / (1 + n_resamples)``
over the bootstrap distribution, so p < 0.05 roughly when 0 lies outside the 95% CI.

Runs over different example sets are refused (exit 2) unless ``--allow-partial``, which compares the
ids present in every run and says so in ``compare.md``. User errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from t5score.runs.compare import OUTPUT_FILES, CompareError, compare_runs, load_run


def _labels(paths: list[str]) -> list[str]:
    """Run labels: the folder names, or ``i:path`` when two folders share a name."""
    names = [Path(p).resolve().name or str(p) for p in paths]
    return names if len(set(names)) == len(names) else [f"{i}:{p}" for i, p in enumerate(paths)]


def build_parser() -> argparse.ArgumentParser:
    """The options of ``t5score compare`` (its help is this module's docstring)."""
    parser = argparse.ArgumentParser(
        prog="t5score compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run output folders; the first is the baseline"
    )
    parser.add_argument("--output_dir", "--output-dir", required=True, type=Path, help="where compare.* go")
    parser.add_argument(
        "--allow-partial",
        "--allow_partial",
        action="store_true",
        help="compare the ids present in every run instead of refusing different example sets",
    )
    parser.add_argument("--n-resamples", "--n_resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--metric",
        nargs="+",
        action="extend",
        default=None,
        help="compare only these per-row metrics (default: all shared numeric columns)",
    )
    parser.add_argument("--file", choices=OUTPUT_FILES, default=None, help="which output table to read")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``t5score compare``; returns the exit code (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two RUN_DIRs")
    if args.n_resamples < 1:
        parser.error("--n-resamples must be at least 1")
    try:
        runs = [load_run(p, label, args.file) for p, label in zip(args.runs, _labels(args.runs), strict=True)]
        result = compare_runs(runs, args.allow_partial, args.metric, args.n_resamples, args.seed)
        argv = sys.argv[1:] if argv is None else list(argv)
        from t5score.reports.compare_page import write_outputs  # (matplotlib: imported only when needed)

        path = write_outputs(args.output_dir, result, args.n_resamples, args.seed, argv)
    except CompareError as exc:
        print(f"t5score compare: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an unreadable summary.json or an output folder that cannot be written
        print(f"t5score compare: error: {exc}", file=sys.stderr)
        return 2
    page = path.with_name("compare.html")
    print(
        f"t5score compare: {len(runs)} runs, {len(result.index)} rows, {len(result.metrics)} metrics "
        f"-> {path}; page: {page}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
