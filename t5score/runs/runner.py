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

from t5score.runs.lock import RunLock
from t5score.runs.output_dir import Prepared, clear, make_folder, prepare
from t5score.runs.stopping import RunStopped, StopAfterBatch, stop_after_batch, stop_at_once
from t5score.runs.token_pieces import ParquetTokens, ids_in, write_token_pieces
from t5score.runs.writer import (
    PARTS,
    PredictionWriter,
    TableWriter,
    arrow_schema,
    done_batches,
    drop_columns,
    merge_parts,
)


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


def finish_rows(
    output_dir: Path, spec: RunSpec, token_ids: set[int] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Merge the parts into ``<output_dir>/<output_name>`` chunk by chunk; return the row table and summary
    (and add the token ids the table holds to ``token_ids``, for ``token_pieces.json``)."""
    out = TableWriter(output_dir / spec.output_name, arrow_schema(spec.record_type))
    tables = []
    try:
        for merged in merge_parts(output_dir, spec.expected_keys, spec.key, spec.record_type):
            frame = spec.finisher.chunk(merged.to_pandas())
            if token_ids is not None:
                token_ids |= ids_in(merged)
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


@dataclass
class RunResult:
    """What a finished run tells the command: the report, and the rows the output file holds."""

    report: Path
    output: Path
    rows: int
    already_complete: bool = False  # --resume found the run finished: nothing was redone


def run(
    trainer,
    module,
    datamodule,
    spec: RunSpec,
    output_dir: Path,
    state: dict[str, Any],
    rows: list,
    resume: bool,
    overwrite: bool,
) -> RunResult | None:
    """Run into ``output_dir``, holding its lock throughout (rank 0); see :func:`run_locked`.

    ``state`` is what a resume must find unchanged (:func:`t5score.runs.run_state.run_state`), ``rows``
    the input rows. Returns the result on rank 0, None on the other ranks."""
    if not trainer.is_global_zero:  # DDP ranks > 0: rank 0 made the folder, holds the lock and merges
        return run_locked(trainer, module, datamodule, spec, output_dir, Prepared(done_batches(output_dir)))
    created = make_folder(output_dir)
    lock, prepared = (
        RunLock(output_dir).acquire(),
        None,
    )  # refused: another run owns the folder, touch nothing
    try:
        prepared = prepare(output_dir, state, rows, resume, overwrite)
        if prepared.complete:
            output = output_dir / spec.output_name
            return RunResult(output_dir / "report.md", output, _rows_in(output), already_complete=True)
        return run_locked(trainer, module, datamodule, spec, output_dir, prepared)
    except BaseException:
        if (created or (prepared and prepared.fresh)) and not done_batches(output_dir):
            clear(output_dir)  # nothing decoded: leave no run_config.json that would block the next try
            if created:
                lock.release()
                shutil.rmtree(output_dir, ignore_errors=True)
        raise
    finally:
        lock.release()


def run_locked(trainer, module, datamodule, spec: RunSpec, output_dir: Path, prepared: Prepared):
    """Decode the batches not yet on disk (a signal stops after the current one), then on rank 0 merge
    them, write the summary, report and ``run.json`` (last: its presence marks a complete run), and only
    then delete the parts, so that a run killed at any point resumes to the same output."""
    datamodule.skip_batches = prepared.done
    module.output_dir = output_dir
    stopper = StopAfterBatch()
    trainer.callbacks.extend([PredictionWriter(output_dir, spec.record_type), stopper])
    start = time.perf_counter()
    try:
        with stop_after_batch(stopper):
            trainer.predict(module, datamodule=datamodule, return_predictions=False)
    except SystemExit:  # Lightning exits 1 on a KeyboardInterrupt: a second Ctrl-C
        if stopper.signum is None:
            raise
        raise RunStopped(stopper.signum, "while decoding (the batch in progress is lost)") from None
    wall = time.perf_counter() - start
    trainer.strategy.barrier()
    rank_zero = trainer.is_global_zero
    _leave_process_group()  # rank 0 merges alone: metrics over the merged table need no cross-rank sync
    if not rank_zero:
        return None
    with stop_at_once("while writing the output (every decoded batch is kept)"):
        report = _finish(trainer, module, datamodule, spec, output_dir, prepared, wall)
    shutil.rmtree(output_dir / PARTS, ignore_errors=True)  # merged and reported: the parts are done
    output = output_dir / spec.output_name
    return RunResult(report, output, _rows_in(output))


def _rows_in(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows  # what the file holds, not the input


def _finish(trainer, module, datamodule, spec, output_dir, prepared, wall) -> Path:
    """Merge, summarise and report; ``run.json`` is written last."""
    token_ids: set[int] = set()
    frame, summary = finish_rows(output_dir, spec, token_ids)
    done = prepared.done
    config = json.loads((output_dir / "run_config.json").read_text())
    tokens = int(frame["num_tokens"].sum()) if "num_tokens" in frame else 0
    info = {
        "kind": spec.kind,
        "command": " ".join(["t5score", *sys.argv[1:]]),
        "config": {k: config.get(k) for k in ("model", "data", "output_dir")},
        "model": getattr(module, "name_or_path", None),
        # predict: the generation settings in force (non-default settings, length, processors, ignored)
        **_generation_info(module),
        "data": getattr(datamodule, "path", None),
        "input": config.get("input"),
        "model_files": config.get("model_files"),
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
    tokenizer = getattr(module, "tokenizer", None)
    if tokenizer is not None and token_ids:
        eos = (info.get("generation") or {}).get("eos_token_ids") or [tokenizer.eos_token_id]
        write_token_pieces(output_dir, tokenizer, token_ids, [e for e in eos if e is not None])
    tokens = ParquetTokens(output_dir / spec.output_name)
    report = write_report(output_dir, frame, summary, info, spec.kind, uncertainties, tokens)
    summary["figures"] = report.figures
    (output_dir / "summary.json").write_text(json.dumps(json_safe(summary), indent=2))
    log_summary(trainer.loggers, summary)
    _write_atomic(output_dir / "run.json", json.dumps(json_safe(info), indent=2, default=str))
    return report.path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


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
