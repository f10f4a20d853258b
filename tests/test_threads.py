"""t5score.threads: the OpenMP wait policy set before torch loads, the CPUs a process may use (affinity,
cgroup quotas), and which thread count wins (``--threads``, the user's environment, the default).

The child-process tests read what the OpenMP runtime itself took from the environment
(``OMP_DISPLAY_ENV=VERBOSE`` makes libgomp, torch's OpenMP on Linux, print its settings when it loads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from t5score import threads
from t5score.data.io import InputError

ROOT = Path(__file__).resolve().parents[1]
MAPS = Path("/proc/self/maps")
#: torch's OpenMP is libgomp (Linux CPU builds): its OMP_DISPLAY_ENV output is what the checks read
LIBGOMP = MAPS.exists() and "libgomp" in MAPS.read_text()
POLICY_AND_THREADS = threads.POLICY_VARIABLES + threads.THREAD_VARIABLES + (threads.SWITCH,)


@pytest.fixture
def clean_env(monkeypatch):
    """No wait policy, thread count or switch from the environment the tests run in; torch's threads and
    the module's state restored afterwards."""
    for name in POLICY_AND_THREADS:
        monkeypatch.delenv(name, raising=False)  # monkeypatch puts back the ones that were set
    monkeypatch.setattr(threads, "_STATE", threads._State())
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)
    for name in POLICY_AND_THREADS:  # prepare_threads sets os.environ itself, unrecorded: undo that
        os.environ.pop(name, None)


def _without_torch(monkeypatch):
    """prepare_threads as it runs in a fresh ``t5score`` process: torch not imported yet."""
    monkeypatch.delitem(sys.modules, "torch")


# --- prepare_threads: the wait policy ------------------------------------------------------------


def test_prepare_sets_the_passive_policy_before_torch_loads(clean_env):
    _without_torch(clean_env)
    threads.prepare_threads(["predict", "--threads", "3"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert threads._STATE.argv_threads == 3 and threads._STATE.policy_set == ("OMP_WAIT_POLICY",)


@pytest.mark.parametrize(
    "name, value",
    [
        ("OMP_WAIT_POLICY", "ACTIVE"),
        ("GOMP_SPINCOUNT", "300000"),
        ("KMP_BLOCKTIME", "200"),
        ("KMP_LIBRARY", "turnaround"),
    ],
)
def test_a_users_wait_policy_is_kept(clean_env, name, value):
    _without_torch(clean_env)
    clean_env.setenv(name, value)
    threads.prepare_threads(["predict"])
    assert os.environ[name] == value
    assert [n for n in threads.POLICY_VARIABLES if n in os.environ] == [name]  # nothing added beside it
    assert threads._STATE.policy_set == ()


def test_switch_torch_and_an_already_loaded_torch_change_no_environment(clean_env):
    clean_env.setenv(threads.SWITCH, "torch")
    _without_torch(clean_env)
    threads.prepare_threads(["predict"])
    assert "OMP_WAIT_POLICY" not in os.environ
    clean_env.delenv(threads.SWITCH)
    clean_env.setitem(sys.modules, "torch", torch)  # loaded: too late for this process, and not ours
    threads.prepare_threads(["predict"])
    assert "OMP_WAIT_POLICY" not in os.environ and threads._STATE.torch_preloaded


def test_threads_in_argv_reads_both_forms_and_keeps_argv(clean_env):
    argv = ["predict", "--threads=2", "--data.path", "x", "--threads", "4"]
    assert threads.threads_in_argv(argv) == 4  # the last one, as the parser reads it
    assert threads.threads_in_argv(["predict", "--threads", "many"]) == "many"
    assert threads.threads_in_argv(["predict", "--", "--threads", "2"]) is None
    assert threads.threads_in_argv(["predict", "--threads"]) is None
    before = list(argv)
    threads.prepare_threads(argv)
    assert argv == before


# --- available_cpus: affinity and cgroup quotas --------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_of_the_group_and_its_parents(tmp_path):
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/a/b\n")
    _write(tmp_path / "cg" / "a" / "b" / "cpu.max", "150000 100000\n")
    _write(tmp_path / "cg" / "a" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == pytest.approx(1.5, rel=1e-12)
    _write(tmp_path / "cg" / "a" / "cpu.max", "50000 100000\n")  # the parent is tighter: it binds
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == pytest.approx(0.5, rel=1e-12)
    assert threads.available_cpus(tmp_path / "cg", proc, affinity={0, 1, 2, 3}) == 1  # at least one


def test_cgroup_v2_in_a_namespace_reads_the_root(tmp_path):
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/\n")
    _write(tmp_path / "cg" / "cpu.max", "250000 100000\n")
    assert threads.available_cpus(tmp_path / "cg", proc, affinity=set(range(8))) == 2  # 2.5 rounded down
    _write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) is None
    assert threads.available_cpus(tmp_path / "cg", proc, affinity=set(range(8))) == 8


@pytest.mark.parametrize("controllers", ["cpu,cpuacct", "cpu"])
def test_cgroup_v1_cfs_quota(tmp_path, controllers):
    proc = tmp_path / "proc_cgroup"
    _write(proc, f"4:memory:/docker/x\n3:{controllers}:/docker/x\n0::/\n")
    group = tmp_path / "cg" / controllers / "docker" / "x"
    _write(group / "cpu.cfs_quota_us", "300000\n")
    _write(group / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == pytest.approx(3.0, rel=1e-12)
    assert threads.available_cpus(tmp_path / "cg", proc, affinity=set(range(16))) == 3
    assert threads.available_cpus(tmp_path / "cg", proc, affinity={0, 1}) == 2  # affinity is tighter
    _write(group / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) is None


def test_unreadable_or_odd_cgroup_files_mean_no_limit(tmp_path):
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/g\n")
    _write(tmp_path / "cg" / "g" / "cpu.max", "garbage\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) is None
    assert threads.cgroup_cpu_limit(tmp_path / "nowhere", tmp_path / "no_proc_file") is None


def test_affinity_and_the_cpu_count_fallback(tmp_path, monkeypatch):
    none = (tmp_path / "nowhere", tmp_path / "no_proc_file")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5, 7}, raising=False)
    assert threads.available_cpus(*none) == 3
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert threads.available_cpus(*none) == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert threads.available_cpus(*none) == 1


# --- apply_threads: who wins ---------------------------------------------------------------------


def _prepared(monkeypatch, argv_threads=None):
    """The state prepare_threads leaves in a fresh process (torch not loaded before it)."""
    monkeypatch.setattr(threads, "_STATE", threads._State(prepared=True, argv_threads=argv_threads))


def test_the_default_is_the_available_cpus(clean_env):
    _prepared(clean_env)
    torch.set_num_threads(2)
    clean_env.setattr(threads, "available_cpus", lambda *a, **k: 1)
    assert threads.apply_threads() == 1 == torch.get_num_threads()


@pytest.mark.parametrize("name", threads.THREAD_VARIABLES)
def test_a_users_thread_variable_wins_over_the_default(clean_env, name):
    _prepared(clean_env)
    torch.set_num_threads(1)  # what torch made of OMP_NUM_THREADS=1 when it loaded
    clean_env.setenv(name, "1")
    clean_env.setattr(threads, "available_cpus", lambda *a, **k: 2)
    assert threads.apply_threads() == 1 == torch.get_num_threads()


def test_threads_option_wins_over_everything(clean_env):
    _prepared(clean_env)
    clean_env.setenv("OMP_NUM_THREADS", "2")
    clean_env.setenv(threads.SWITCH, "torch")
    torch.set_num_threads(2)
    assert threads.apply_threads(1) == 1 == torch.get_num_threads()
    _prepared(clean_env, argv_threads=1)  # seen by prepare_threads, no value passed
    torch.set_num_threads(2)
    assert threads.apply_threads() == 1 == torch.get_num_threads()


def test_torch_loaded_first_or_switched_off_keeps_torchs_threads(clean_env):
    clean_env.setattr(threads, "available_cpus", lambda *a, **k: 1)
    torch.set_num_threads(2)
    clean_env.setattr(threads, "_STATE", threads._State(prepared=True, torch_preloaded=True))
    assert threads.apply_threads() == 2 == torch.get_num_threads()
    _prepared(clean_env)
    clean_env.setenv(threads.SWITCH, "torch")
    assert threads.apply_threads() == 2 == torch.get_num_threads()


@pytest.mark.parametrize("bad", [0, -2, "many", True, 1.5])
def test_bad_thread_counts_are_one_line_errors(clean_env, bad):
    _prepared(clean_env)
    with pytest.raises(InputError, match=r"^--threads must be a whole number of at least 1, got "):
        threads.apply_threads(bad)


def test_bad_switch_is_a_one_line_error(clean_env):
    clean_env.setenv(threads.SWITCH, "fast")
    with pytest.raises(InputError, match=r"^T5SCORE_THREADS='fast': use 'auto' \(the default\) or 'torch'$"):
        threads.apply_threads()


def test_describe_names_what_is_in_force(clean_env):
    _without_torch(clean_env)
    threads.prepare_threads(["predict"])
    clean_env.setitem(sys.modules, "torch", torch)
    info = threads.describe()
    assert info["wait_policy"] == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert info["wait_policy_set_by_t5score"] == ["OMP_WAIT_POLICY"]
    assert info["torch_threads"] == torch.get_num_threads() and info["switch"] == "auto"


# --- in a fresh process: what the OpenMP runtime and torch really took ---------------------------

CHILD = """
import json, sys
from t5score.threads import apply_threads, available_cpus, prepare_threads
if sys.argv[1] == "prepare":
    prepare_threads(sys.argv[2:])
import os, torch
n = apply_threads() if sys.argv[1] == "prepare" else None
print(json.dumps({"applied": n, "torch": torch.get_num_threads(), "cpus": available_cpus(),
                  "interop": torch.get_num_interop_threads(),
                  "policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def _child(*args: str, **env: str) -> tuple[dict, str]:
    base = {k: v for k, v in os.environ.items() if k not in POLICY_AND_THREADS}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env={**base, "OMP_DISPLAY_ENV": "VERBOSE", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_in_a_fresh_process_the_runtime_takes_the_passive_policy():
    got, stderr = _child("prepare", "predict")
    assert got["policy"] == "PASSIVE"
    assert got["applied"] == got["torch"] == got["interop"] == got["cpus"]
    if LIBGOMP:
        assert "GOMP_SPINCOUNT = '0'" in stderr  # libgomp read it at load: no spinning
    control, stderr = _child("none")  # without prepare_threads: libgomp's default spin
    assert control["policy"] is None
    if LIBGOMP:
        assert "GOMP_SPINCOUNT = '300000'" in stderr


def test_in_a_fresh_process_the_users_settings_win():
    got, stderr = _child("prepare", "predict", OMP_NUM_THREADS="1", GOMP_SPINCOUNT="1000")
    assert got["applied"] == got["torch"] == 1 and got["policy"] is None
    if LIBGOMP:
        assert "GOMP_SPINCOUNT = '1000'" in stderr
    got, _ = _child("prepare", "predict", "--threads", "1")
    assert got["applied"] == got["torch"] == got["interop"] == 1 and got["policy"] == "PASSIVE"


@pytest.mark.skipif(not LIBGOMP, reason="reads libgomp's OMP_DISPLAY_ENV output")
def test_the_t5score_command_sets_the_policy_before_anything_loads_torch():
    """``main()`` calls prepare_threads before anything else (even ``--help``), so the torch it loads later
    (in a run, or here right after) gets the passive policy."""
    code = "from t5score.cli.main import main; main(['--help']); import torch"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **{k: v for k, v in os.environ.items() if k not in POLICY_AND_THREADS},
            "OMP_DISPLAY_ENV": "VERBOSE",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GOMP_SPINCOUNT = '0'" in proc.stderr
