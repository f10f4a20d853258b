"""The main job on a busy machine: ``t5score predict`` idle, beside one busy process, beside a 2-thread torch job.

Workload: the quick-start main job (``t5score predict``: the shipped tiny-code-t5 on the shipped test split,
with references), each run a fresh process into a new temporary folder, timed from start to exit (start-up
and imports included, as a user waits for them). Neighbours, started before each run and stopped after it:

* ``idle``: none;
* ``busy-python``: one process in a pure-Python busy loop (one core taken, no OpenMP);
* ``torch-2threads``: another torch job, a 2-thread matrix-product loop with torch's defaults (its OpenMP
  threads spin-wait too).

Each neighbour runs beside t5score's default (``new``: the passive OpenMP wait policy set before torch
loads, threads from the CPUs available) and beside the behaviour before it (``legacy``:
``T5SCORE_THREADS=torch``, i.e. torch's own thread count and the OpenMP runtime's default wait policy).
Wait-policy and thread variables of the calling shell are removed from every child's environment. Runs go
round-robin, the order rotated each repetition; the neighbour's own rate (loop rounds or products per
second) is recorded too, so a default that wins by starving the neighbour would show.

    python benchmarks/bench_busy.py --out reports/bench/busy.json            # full size (~30-60 min)
    python benchmarks/bench_busy.py --repeats 1 --rows 32 --out /tmp/busy.json  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, median, versions, write_json

from t5score.threads import POLICY_VARIABLES, SWITCH, THREAD_VARIABLES, available_cpus

SCENARIOS = ("idle", "busy-python", "torch-2threads")
MODES = {"new": {}, "legacy": {SWITCH: "torch"}}
#: the neighbours: each prints "ready" once started, then counts rounds until SIGTERM, then prints the rate
NEIGHBOURS = {
    "busy-python": "",
    "torch-2threads": "import torch\ntorch.set_num_threads(2)\na = torch.randn(384, 384)\n",
}
NEIGHBOUR_LOOP = """
import signal, sys, time
{setup}
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
start, rounds = time.perf_counter(), 0
while not stop:
    {work}
    rounds += 1
print(rounds / (time.perf_counter() - start), flush=True)
"""
#: the main job as the ``t5score`` console script runs it, plus what was in force when it ended
MAIN_JOB = """
import json, os, sys
from t5score.cli.main import main
rc = main(sys.argv[1:])
import torch
print(json.dumps({"rc": rc, "torch_threads": torch.get_num_threads(),
                  "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}), flush=True)
sys.exit(rc or 0)
"""


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without wait-policy, thread-count and switch variables, plus ``extra``."""
    drop = set(POLICY_VARIABLES) | set(THREAD_VARIABLES) | {SWITCH}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, **(extra or {})}


def start_neighbour(kind: str) -> subprocess.Popen | None:
    if kind == "idle":
        return None
    work = "a @ a" if kind == "torch-2threads" else "pass"
    code = NEIGHBOUR_LOOP.format(setup=NEIGHBOURS[kind], work=work)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=clean_env())
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", f"{kind} did not start"
    return proc


def stop_neighbour(proc: subprocess.Popen | None) -> float | None:
    """Stop the neighbour; its rate (rounds per second) while it ran."""
    if proc is None:
        return None
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
        return float(out.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        proc.kill()
        proc.wait()
        return None


def subset(rows: int | None, folder: Path) -> list[str]:
    """Data options: none (the shipped test split, as the quick start) or the first ``rows`` of it."""
    if rows is None:
        return []
    from t5score.assets import default_data_path

    lines = Path(default_data_path("test")).read_text().splitlines()[:rows]
    path = folder / f"test-{rows}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return ["--data.path", str(path), "--data.target_column", "target", "--data.id_column", "id"]


def outputs(folder: Path) -> list | None:
    """The generated token ids of a finished run, in row order (to check every run made the same output)."""
    import pyarrow.parquet as pq

    path = folder / "predictions.parquet"
    return (
        pq.read_table(path, columns=["token_ids"]).column("token_ids").to_pylist() if path.exists() else None
    )


def run_main_job(mode: str, data_args: list[str], out: Path, timeout: float) -> dict:
    cmd = [sys.executable, "-c", MAIN_JOB, "predict", *data_args, "--output_dir", str(out)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=clean_env(MODES[mode]), timeout=timeout, cwd=out.parent
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "timed_out": True}
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "timed_out": False, **info}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/busy.json"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rows", type=int, default=None, help="first N test rows (default: all, as the quick start)"
    )
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds per main-job run before it is stopped"
    )
    args = parser.parse_args(argv)
    at_start = machine()
    tmp = Path(tempfile.mkdtemp(prefix="t5score-busy-"))
    data_args = subset(args.rows, tmp)
    combos = [(s, m) for s in args.scenarios for m in args.modes]
    runs: dict[str, list[dict]] = {f"{s}, {m}": [] for s, m in combos}
    reference = None
    try:
        for rep in range(args.repeats):
            for scenario, mode in combos[rep % len(combos) :] + combos[: rep % len(combos)]:
                out = tmp / f"run-{rep}-{scenario}-{mode}"
                neighbour = start_neighbour(scenario)
                try:
                    result = run_main_job(mode, data_args, out, args.timeout)
                finally:
                    result_rate = stop_neighbour(neighbour)
                tokens = outputs(out)
                reference = tokens if reference is None else reference
                result |= {"neighbour_rate_per_s": result_rate, "outputs_equal": tokens == reference}
                runs[f"{scenario}, {mode}"].append(result)
                shutil.rmtree(out, ignore_errors=True)
                shown = "timed out" if result["timed_out"] else f"{result['seconds']:.1f} s"
                print(f"rep {rep} {scenario:15s} {mode:7s} {shown}  {json.dumps(result)}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = {}
    for name, items in runs.items():
        seconds = [r["seconds"] for r in items if r["seconds"] is not None]
        rates = [r["neighbour_rate_per_s"] for r in items if r["neighbour_rate_per_s"] is not None]
        results[name] = {
            "median_s": median(seconds) if len(seconds) == len(items) else None,
            "times_s": [r["seconds"] for r in items],
            "timed_out": sum(r["timed_out"] for r in items),
            "torch_threads": sorted({r.get("torch_threads") for r in items if "torch_threads" in r}),
            "wait_policy": sorted({str(r.get("OMP_WAIT_POLICY")) for r in items if "rc" in r}),
            "outputs_equal": all(r["outputs_equal"] for r in items if not r["timed_out"]),
            "neighbour_median_rate_per_s": median(rates) if rates else None,
        }
    payload = {
        "benchmark": "busy",
        "workload": vars(args) | {"out": str(args.out), "rows": args.rows or "all (300)"},
        "available_cpus": available_cpus(),
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "results": results,
        "ratios": ratios(results),
        "command": " ".join(["python", *sys.argv]),
    }
    write_json(args.out, payload)
    print("\n".join(section(payload)))
    return 0


def ratios(results: dict) -> dict:
    """Each run's median over the idle median of the same mode, and the new default over legacy."""
    out = {}
    for name, row in results.items():
        scenario, mode = name.split(", ")
        idle = results.get(f"idle, {mode}", {}).get("median_s")
        if row["median_s"] and idle and scenario != "idle":
            out[f"{scenario} / idle ({mode})"] = row["median_s"] / idle
        legacy = results.get(f"{scenario}, legacy", {}).get("median_s")
        if mode == "new" and row["median_s"] and legacy:
            out[f"{scenario}: new / legacy"] = row["median_s"] / legacy
    return out


def section(d: dict) -> list[str]:
    """The ``reports/benchmarks.md`` section for this JSON (``benchmarks/report.py`` can render it)."""
    w = d["workload"]
    lines = [
        "## The main job on a busy machine",
        "",
        f"`t5score predict` on the shipped model and test split ({w['rows']} rows), a fresh process per run, "
        f"wall time from start to exit; {w['repeats']} repetitions round-robin, median. `new`: t5score's "
        "default (passive OpenMP wait policy, threads from the CPUs available: "
        f"{d['available_cpus']} here); `legacy`: `T5SCORE_THREADS=torch` (torch's threads and the OpenMP "
        f"default wait policy, as before). Load at the start {d['machine'].get('load_average')}.",
        "",
        "| neighbour | default | median s | runs (s) | torch threads | neighbour's rate /s | same output |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for name, r in d["results"].items():
        scenario, mode = name.split(", ")
        runs = ", ".join("timeout" if x is None else f"{x:.1f}" for x in r["times_s"])
        rate, med = r["neighbour_median_rate_per_s"], r["median_s"]
        threads = ", ".join(map(str, r["torch_threads"]))
        lines.append(
            f"| {scenario} | {mode} | {'n/a' if med is None else f'{med:.1f}'} | {runs} | {threads} | "
            f"{'-' if rate is None else f'{rate:.3g}'} | {'yes' if r['outputs_equal'] else '**no**'} |"
        )
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f}x |" for k, v in d["ratios"].items()]
    return lines + [""]


if __name__ == "__main__":
    sys.exit(main())
