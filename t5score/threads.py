"""Torch threads that hold up on a busy machine (shared servers, CPU-quota containers).

Two things make torch's CPU defaults collapse when another process takes a core: OpenMP threads that
finish their share of an operation spin-wait for their peers (libgomp, torch's OpenMP on Linux, spins
about 300,000 rounds before it sleeps; Intel's and LLVM's OpenMP 200 ms), so a thread whose core is taken
holds the others up while they burn the core it needs; and torch counts the host's cores, not those the
process may use (an affinity mask, a cgroup CPU quota). So the ``t5score`` command:

* :func:`prepare_threads`, first thing in :func:`t5score.cli.main.main`, before torch loads: sets the
  passive wait policy (``OMP_WAIT_POLICY=PASSIVE``: libgomp then spins 0 rounds, Intel's and LLVM's
  OpenMP block at once) unless the user set a wait policy (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``,
  ``KMP_BLOCKTIME``, ``KMP_LIBRARY``), and notes a ``--threads N`` in the arguments;
* :func:`apply_threads`, once the options are parsed: ``--threads N`` if given, else the user's
  ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (torch reads them itself), else :func:`available_cpus`.

``T5SCORE_THREADS=torch`` leaves both to torch (its own thread count and the OpenMP runtime's default wait
policy), as before this module. When torch was imported before :func:`prepare_threads` (t5score run
in-process by a program of its own), the OpenMP runtime has read its environment already and the threads
are that program's: nothing is changed unless ``--threads`` is given.

>>> available_cpus() >= 1
True
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: the environment variable that switches this module off (``torch``) or on (``auto``, the default)
SWITCH = "T5SCORE_THREADS"
SWITCH_VALUES = ("auto", "torch")
#: set before torch loads, unless the user set any of :data:`POLICY_VARIABLES`
PASSIVE_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
#: the variables by which a user chooses an OpenMP wait policy (standard, libgomp, Intel/LLVM OpenMP)
POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")
#: thread counts a user sets in the environment; torch reads them when it loads
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass
class _State:
    prepared: bool = False
    torch_preloaded: bool = False  # torch was imported before prepare_threads: its threads are the caller's
    argv_threads: int | str | None = None  # --threads from the arguments (validated by apply_threads)
    policy_set: tuple[str, ...] = ()  # the variables prepare_threads set


_STATE = _State()


def _switch() -> str:
    return os.environ.get(SWITCH, "").strip().lower() or "auto"


def threads_in_argv(argv: list[str]) -> int | str | None:
    """The last ``--threads N`` / ``--threads=N`` in ``argv`` (an int where it reads as one, else the text).

    >>> threads_in_argv(["predict", "--threads", "3", "--data.path", "x.jsonl"])
    3
    >>> threads_in_argv(["predict", "--threads=1"]), threads_in_argv(["predict"])
    (1, None)
    """
    value: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--threads="):
            value = arg.split("=", 1)[1]
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def prepare_threads(argv: list[str]) -> None:
    """Before torch loads: the passive OpenMP wait policy (unless the user chose one, torch is already
    loaded or ``T5SCORE_THREADS=torch``) and a note of ``--threads`` in ``argv`` (which stays in ``argv``).

    Never raises: a bad ``--threads`` or ``T5SCORE_THREADS`` is reported by :func:`apply_threads`.
    """
    _STATE.prepared = True
    _STATE.torch_preloaded = "torch" in sys.modules
    _STATE.argv_threads = threads_in_argv(argv)
    _STATE.policy_set = ()
    if _switch() != "auto" or _STATE.torch_preloaded:
        return  # too late for this process (the runtime read its environment), or switched off
    if any(name in os.environ for name in POLICY_VARIABLES):
        return  # the user's wait policy
    os.environ.update(PASSIVE_POLICY)
    _STATE.policy_set = tuple(PASSIVE_POLICY)


def _cpu_max_v2(folder: Path) -> float | None:
    """CPUs allowed by ``folder/cpu.max`` (``"max 100000"`` or ``"<quota> <period>"``), None if unlimited."""
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _cfs_quota_v1(folder: Path) -> float | None:
    """CPUs allowed by ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in ``folder``, None if unlimited (-1)."""
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _ancestors(root: Path, group: str) -> list[Path]:
    """``root/group`` and each folder above it up to ``root`` (those that exist; a limit set on a parent
    group binds its children too)."""
    parts = [p for p in group.strip().split("/") if p and p not in (".", "..")]
    folders = [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [f for f in folders if f.is_dir()]


def cgroup_cpu_limit(root: Path | str = CGROUP_ROOT, proc_cgroup: Path | str = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``1.5`` = 150 ms per 100 ms), None without one.

    cgroup v2 (``0::<group>`` in ``/proc/self/cgroup``): ``cpu.max`` in the group's folder under ``root``
    and its parents; v1 (a line naming the ``cpu`` controller): ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
    under ``root/cpu`` (or ``root/cpu,cpuacct``). The tightest limit found counts.
    """
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    limits: list[float] = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, group = fields
        if controllers == "":  # v2, unified
            limits += [x for f in _ancestors(root, group) if (x := _cpu_max_v2(f)) is not None]
        elif "cpu" in controllers.split(","):
            for name in (controllers, "cpu", "cpu,cpuacct", "cpuacct,cpu"):
                if (root / name).is_dir():
                    v1 = [_cfs_quota_v1(f) for f in _ancestors(root / name, group)]
                    limits += [x for x in v1 if x is not None]
                    break
    if not lines:  # no /proc/self/cgroup: the root's own files, if any
        limits += [x for x in (_cpu_max_v2(root), _cfs_quota_v1(root / "cpu")) if x is not None]
    return min(limits) if limits else None


def available_cpus(
    root: Path | str = CGROUP_ROOT, proc_cgroup: Path | str = PROC_CGROUP, affinity: set[int] | None = None
) -> int:
    """CPUs this process may use: its affinity mask (``os.sched_getaffinity``, else ``os.cpu_count()``),
    capped by a cgroup CPU quota (rounded down, as Rust's ``available_parallelism``); at least 1."""
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # macOS, Windows
            affinity = None
    count = len(affinity) if affinity else (os.cpu_count() or 1)
    quota = cgroup_cpu_limit(root, proc_cgroup)
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def _checked(threads: object) -> int:
    from t5score.data.io import InputError

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads must be a whole number of at least 1, got {threads!r}")
    return threads


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)
    if torch.get_num_interop_threads() != count:
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError:  # inter-op work has started (or it was set once already): it stays
            pass


def apply_threads(threads: int | None = None) -> int:
    """Set torch's threads for this run; return the number in force (``torch.get_num_threads()``).

    ``threads`` (the ``--threads`` option; else the one :func:`prepare_threads` saw in the arguments) wins;
    else the user's ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, torch's own choice under
    ``T5SCORE_THREADS=torch`` and a caller's when torch was loaded before :func:`prepare_threads` are kept;
    else :func:`available_cpus`. A bad value raises :class:`~t5score.data.io.InputError` (one line).
    """
    switch = _switch()
    if switch not in SWITCH_VALUES:
        from t5score.data.io import InputError

        raise InputError(f"{SWITCH}={os.environ[SWITCH]!r}: use 'auto' (the default) or 'torch'")
    if threads is None:
        threads = _STATE.argv_threads  # type: ignore[assignment]
    import torch

    if threads is not None:
        _set_torch_threads(_checked(threads))
    elif not (
        switch == "torch"
        or _STATE.torch_preloaded
        or any(os.environ.get(name, "").strip() for name in THREAD_VARIABLES)
    ):
        _set_torch_threads(available_cpus())
    return torch.get_num_threads()


def describe() -> dict[str, object]:
    """What is in force, for a run's record: threads, the wait policy's variables and who set them."""
    import torch

    policy = {name: os.environ[name] for name in POLICY_VARIABLES if name in os.environ}
    return {
        "torch_threads": torch.get_num_threads(),
        "available_cpus": available_cpus(),
        "wait_policy": policy,
        "wait_policy_set_by_t5score": list(_STATE.policy_set),
        "switch": _switch(),
    }
