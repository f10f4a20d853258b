"""Render a finished run's report again: ``t5score report RUN_DIR [--ids ID [ID ...]]``.

Writes ``report.md``, ``report.html`` and ``figures/`` of the run in RUN_DIR (a ``predict``, ``score`` or
``rerank`` output folder) from its table, ``summary.json`` and ``run.json``; nothing is decoded again.
``--ids`` embeds the token views of these rows (by ``id``) besides the chosen examples: the page embeds
examples only, so that a page for a big run stays small. User errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t5score report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", metavar="RUN_DIR", help="a finished run's output folder")
    parser.add_argument("--ids", nargs="+", default=[], metavar="ID", help="rows to embed, by id")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``t5score report``; returns the exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    from t5score.data.io import InputError
    from t5score.runs.report_run import rewrite_report

    try:
        report = rewrite_report(args.run, args.ids)
    except (InputError, OSError) as exc:
        print(f"t5score: error: {exc}", file=sys.stderr)
        return 2
    print(f"t5score: report: {report.html} ({report.path.name} beside it)")
    return 0
