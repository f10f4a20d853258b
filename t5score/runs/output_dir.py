"""The output folder of a run: chosen, made (or checked) before anything is written, locked, prepared.

0. :func:`run_folder` picks it: ``--output_dir`` as given, else a new numbered folder per run,
   ``reports/<command>/run_NNN`` (``--resume``: the latest), as Lightning numbers ``version_N``.
1. :func:`make_folder` checks ``--output_dir`` (a file on the way, no permission) and creates it.
2. :class:`~t5score.runs.lock.RunLock` is taken before the folder is looked at, so two runs never share it.
3. :func:`prepare` decides what the run does: start afresh (an empty folder; ``--overwrite`` empties a
   t5score run folder), resume (``--resume``: the options, model, versions and input rows must be the
   first start's, see :mod:`t5score.runs.run_state`), or nothing (a complete run).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t5score.data.io import InputError
from t5score.runs.lock import LOCK_NAME
from t5score.runs.run_state import CONFIG_NAME, check_resume, save_state
from t5score.runs.writer import PARTS, done_batches

MARKERS = (CONFIG_NAME, "run.json", PARTS)  # files that identify a t5score run folder
SPOOL = "merge"  # the merge's spool folder (runs.writer)


RUN_DIR_ENV = "T5SCORE_RUN_DIR"  # the folder rank 0 chose, for the DDP ranks it starts
RUN_NAME = re.compile(r"run_(\d+)")


def numbered_runs(base: Path) -> list[Path]:
    """The ``run_NNN`` folders under ``base``, in number order."""
    found = [
        (int(m.group(1)), p) for p in base.glob("run_*") if (m := RUN_NAME.fullmatch(p.name)) and p.is_dir()
    ]
    return [p for _, p in sorted(found)] if base.is_dir() else []


def run_folder(given: str | None, base: Path, resume: bool) -> Path:
    """``given`` (``--output_dir``) as it is; else the next ``base/run_NNN`` (``resume``: the latest one,
    or ``base`` itself when it holds a run of an older t5score)."""
    if given:
        return Path(given)
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":  # a DDP rank started by rank 0: its folder
        return Path(inherited)
    runs = numbered_runs(base)
    if resume:
        if runs:
            chosen = runs[-1]
        elif (base / CONFIG_NAME).exists():
            chosen = base
        else:
            raise InputError(f"{base}: nothing to resume (no run_NNN folder); name the run with --output_dir")
    else:
        last = int(RUN_NAME.fullmatch(runs[-1].name).group(1)) if runs else 0
        chosen = base / f"run_{last + 1:03d}"
    os.environ[RUN_DIR_ENV] = str(chosen)
    return chosen


@dataclass
class Prepared:
    """What a run has to do in its folder."""

    done: set[int] = field(default_factory=set)  # batch indices already on disk
    complete: bool = False  # a finished run: nothing to do
    fresh: bool = False  # started afresh: what is in the folder is this run's own


def make_folder(output_dir: Path) -> bool:
    """Create ``output_dir`` (and its parents); True when it did not exist. One-line errors for a file in
    the way or a folder that cannot be written."""
    for part in [*reversed(output_dir.parents), output_dir]:
        if part.exists() and not part.is_dir():
            where = "exists and is not a folder" if part == output_dir else f"{part} is a file, not a folder"
            raise InputError(f"{output_dir}: {where} (--output_dir)")
    existed = output_dir.exists()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{output_dir}: cannot create the output folder ({err.strerror})") from None
    return not existed


def _entries(output_dir: Path) -> list[Path]:
    return [p for p in output_dir.iterdir() if p.name != LOCK_NAME]


def clear(output_dir: Path) -> None:
    """Remove everything in ``output_dir`` but its lock file."""
    for path in _entries(output_dir):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def remove_leftovers(output_dir: Path) -> None:
    """Delete what an interrupted run leaves half-written: temporary files and the merge spool."""
    shutil.rmtree(output_dir / SPOOL, ignore_errors=True)
    for folder in (output_dir, output_dir / PARTS, output_dir / "logits"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


def prepare(output_dir: Path, state: dict[str, Any], rows: list, resume: bool, overwrite: bool) -> Prepared:
    """Make the locked ``output_dir`` ready for the run; see the module docstring."""
    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other: pick one")
    existing = _entries(output_dir)
    is_run = any((output_dir / m).exists() for m in MARKERS)
    if existing and resume:
        if not (output_dir / CONFIG_NAME).exists():
            raise InputError(f"{output_dir}: nothing to resume (no {CONFIG_NAME}); drop --resume")
        check_resume(output_dir, state, rows)
        remove_leftovers(output_dir)
        return Prepared(done_batches(output_dir), complete=(output_dir / "run.json").exists())
    if existing and overwrite:
        if not is_run:
            raise InputError(f"{output_dir}: not empty and not a t5score run folder; refusing to delete it")
        clear(output_dir)
    elif existing:
        raise InputError(
            f"{output_dir}: output folder is not empty; add --resume to continue that run or --overwrite to replace it"
        )
    save_state(output_dir, state, rows)
    return Prepared(fresh=True)
