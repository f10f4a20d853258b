"""One run from start to finish: output folder, resume, the Lightning predict loop, merge and reports.

Shared by ``predict``, ``score`` and ``rerank``: each gives its module, data module, record type and a
:class:`Finisher` that completes the merged rows chunk by chunk (e.g. ROUGE) and then summarises them.
Finishing streams: the output file is written chunk by chunk, and what stays in memory for the summary
and the report is the row table without its per-token list columns (``token_entropies`` excepted).
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from t5score.data.io import InputError
from t5score.runs.writer import (
    PredictionWriter,
    TableWriter,
    arrow_schema,
    done_batches,
    drop_columns,
    merge_parts,
)

MARKERS = ("run_config.json", "run.json", "parts")  # files that identify a t5score run folder


def prepare_output_dir(output_dir: Path, config: dict[str, Any], resume: bool, overwrite: bool) -> set[int]:
    """Make ``output_dir`` ready; return the batch indices already done (resume)."""
    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other: pick one")
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"{output_dir}: exists and is not a folder (--output_dir)")
    existing = [p for p in output_dir.iterdir()] if output_dir.exists() else []
    is_run = any((output_dir / m).exists() for m in MARKERS)
    saved = output_dir / "run_config.json"
    if existing and resume:
        if not saved.exists():
            raise InputError(f"{output_dir}: nothing to resume (no run_config.json); drop --resume")
        before = json.loads(saved.read_text())
        changed = [k for k in config if k in before and before[k] != config[k]]
        if changed:
            raise InputError(
                f"{output_dir}: cannot resume, options changed since the first run: {', '.join(changed)}"
            )
        return done_batches(output_dir)
    if existing and overwrite:
        if not is_run:
            raise InputError(f"{output_dir}: not empty and not a t5score run folder; refusing to delete it")
        shutil.rmtree(output_dir)
    elif existing:
        raise InputError(
            f"{output_dir}: output folder is not empty; add --resume to continue that run or --overwrite to replace it"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(config, indent=2, default=str))
    return set()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("t5score", "torch", "transformers", "lightning", "torchmetrics", "pandas", "pyarrow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def json_safe(value: Any) -> Any:
    """Replace NaN/inf by None so the JSON is standard."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class Finisher(Protocol):
    """Completes the merged rows of one kind of run."""

    def chunk(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One merged chunk (in output order) -> the rows to write (e.g. with ROUGE columns added)."""
        ...

    def summary(self, rows: pd.DataFrame) -> dict[str, Any]:
        """The run's summary from the row table (all rows, list columns left out but ``token_entropies``)."""
        ...


@dataclass
class RunSpec:
    """What differs between predict, score and rerank runs."""

    kind: str  # "predict" | "score" | "rerank"
    output_name: str  # e.g. "predictions.parquet"
    record_type: type
    expected_keys: list[tuple]  # every key the merged table must have
    key: list[str]  # key columns, e.g. ["position"]
    finisher: Finisher
    drop_if_empty: tuple[str, ...] = ()  # column-name prefixes dropped when all null (e.g. "score_")


KEPT_LISTS = ("token_entropies",)  # list columns the report needs (entropy histogram)


def finish_rows(output_dir: Path, spec: RunSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Merge the parts into ``<output_dir>/<output_name>`` chunk by chunk; return the row table and summary."""
    out = TableWriter(output_dir / spec.output_name, arrow_schema(spec.record_type))
    tables = []
    try:
        for merged in merge_parts(output_dir, spec.expected_keys, spec.key, spec.record_type):
            frame = spec.finisher.chunk(merged.to_pandas())
            out.write(frame.drop(columns=["position"], errors="ignore"))
            lists = [c for c in frame.columns if c not in KEPT_LISTS and _is_list(out.schema, merged, c)]
            tables.append(frame.drop(columns=lists).copy())  # a copy: a view would keep the lists alive
    except BaseException:
        out.abort()
        raise
    out.close()
    rows = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    empty = [c for c in rows.columns if c.startswith(spec.drop_if_empty) and rows[c].isna().all()]
    if empty:
        drop_columns(output_dir / spec.output_name, empty)
        rows = rows.drop(columns=empty)
    return rows, spec.finisher.summary(rows)


def _is_list(written: pa.Schema | None, merged: pa.Table, column: str) -> bool:
    for schema in (merged.schema, written):
        if schema is not None and column in schema.names:
            return pa.types.is_list(schema.field(column).type)
    return False


def run(
    trainer, module, datamodule, spec: RunSpec, output_dir: Path, config: dict, resume: bool, overwrite: bool
) -> Path | None:
    """Run the predict loop with a part writer, merge on rank 0, write summary, run.json and report.

    Returns the path of ``report.md`` on rank 0, None on the other ranks."""
    if trainer.is_global_zero:
        prepare_output_dir(output_dir, config, resume, overwrite)
    trainer.strategy.barrier()
    done = done_batches(output_dir) if resume else set()
    datamodule.skip_batches = done
    module.output_dir = output_dir
    trainer.callbacks.append(PredictionWriter(output_dir, spec.record_type))
    start = time.perf_counter()
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    wall = time.perf_counter() - start
    trainer.strategy.barrier()
    rank_zero = trainer.is_global_zero
    _leave_process_group()  # rank 0 merges alone: metrics over the merged table need no cross-rank sync
    if not rank_zero:
        return None
    frame, summary = finish_rows(output_dir, spec)
    shutil.rmtree(
        output_dir / "parts", ignore_errors=True
    )  # merged: the per-batch parts are no longer needed
    tokens = int(frame["num_tokens"].sum()) if "num_tokens" in frame else 0
    info = {
        "kind": spec.kind,
        "command": " ".join(["t5score", *sys.argv[1:]]),
        "config": config,
        "model": getattr(module, "name_or_path", None),
        # predict: the generation settings in force (non-default settings, length, processors, ignored)
        **_generation_info(module),
        "data": getattr(datamodule, "path", None),
        "versions": versions(),
        "device": str(trainer.strategy.root_device),
        "accelerator": type(trainer.accelerator).__name__,
        "precision": str(trainer.precision),
        "world_size": trainer.world_size,
        "rows": len(frame),
        "batches_resumed": len(done),
        "wall_time_s": round(wall, 3),
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 and not done else None,
    }
    from t5score.reports import write_report
    from t5score.runs.uncertainty import add_uncertainty

    uncertainties = add_uncertainty(summary, frame)  # summary["uncertainty"] when there is a quality column
    report = write_report(output_dir, frame, summary, info, kind=spec.kind, uncertainties=uncertainties)
    summary["figures"] = report.figures
    (output_dir / "summary.json").write_text(json.dumps(json_safe(summary), indent=2))
    log_summary(trainer.loggers, summary)
    (output_dir / "run.json").write_text(json.dumps(json_safe(info), indent=2, default=str))
    return report.path


def _generation_info(module: Any) -> dict[str, Any]:
    """``{"generation": ...}`` for a predict run (settings, length, processors, beam search), else empty."""
    summary = module.generation_summary() if hasattr(module, "generation_summary") else None
    return {"generation": summary} if summary else {}


def log_summary(loggers: list, summary: dict[str, Any]) -> None:
    """Send the summary's finite numbers (dotted keys) to the Trainer's loggers, e.g.
    ``--trainer.logger CSVLogger``: ``self.log`` is refused in predict hooks, so the corpus metrics are
    logged once the run is merged (none by default: ``logger: false``)."""
    if not loggers:
        return
    from t5score.reports.markdown import flatten_dict

    numbers = {
        key: float(value)
        for key, value in flatten_dict(summary).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }
    for logger in loggers:
        logger.log_metrics(numbers, step=0)
        logger.finalize("success")
