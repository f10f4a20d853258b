"""Render a finished run's report again, from its folder: ``t5score report RUN_DIR [--ids ID ...]``.

1. Read ``run.json`` (what was run), ``summary.json`` and the run's table (``predictions.parquet``,
   ``scores.parquet`` or ``reranked.parquet``) without its per-token lists (``token_entropies`` excepted).
2. Recompute the per-row uncertainty scores of the risk-coverage curve (:mod:`t5score.runs.uncertainty`).
3. Write ``report.md``, ``report.html`` and ``figures/`` as the run did, with the rows asked for by id
   embedded besides the chosen examples, and the figures' paths into ``summary.json``.

The numbers are the run's: nothing is decoded or scored again, and the table is not touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from t5score.data.io import InputError
from t5score.reports import WrittenReport, write_report
from t5score.runs.token_pieces import ParquetTokens
from t5score.runs.uncertainty import add_uncertainty

TABLES = {"predict": "predictions.parquet", "score": "scores.parquet", "rerank": "reranked.parquet"}
KEPT_LISTS = ("token_entropies",)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found; is {path.parent} a finished t5score run?") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None


def rewrite_report(run_dir: str | Path, ids: Sequence[str] = ()) -> WrittenReport:
    """Write the report of the finished run in ``run_dir`` again; ``ids``: rows to embed besides the examples."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such run folder")
    info = _read_json(folder / "run.json")
    kind = info.get("kind")
    if kind not in TABLES:
        raise InputError(f"{folder / 'run.json'}: kind {kind!r} is not one of {', '.join(TABLES)}")
    table = folder / TABLES[kind]
    if not table.is_file():
        raise InputError(f"{table}: not found; the run's table is missing")
    summary = _read_json(folder / "summary.json")
    schema = pq.read_schema(table)
    columns = [f.name for f in schema if f.type.num_fields == 0 or f.name in KEPT_LISTS]
    frame = pq.read_table(table, columns=columns).to_pandas()
    missing = [i for i in ids if "id" in frame and not (frame["id"].astype(str) == str(i)).any()]
    if missing:
        raise InputError(f"{table}: no row with id {missing[0]!r}")
    summary.pop("figures", None)
    uncertainties = add_uncertainty(summary, frame)
    report = write_report(folder, frame, summary, info, kind, uncertainties, ParquetTokens(table), ids)
    summary["figures"] = report.figures
    tmp = folder / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(folder / "summary.json")
    return report
