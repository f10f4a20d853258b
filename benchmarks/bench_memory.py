"""Peak resident memory of ``t5score predict`` (capture=stats) for 1,000 vs 4,000 rows.

Each measurement is a fresh Python process that runs the CLI in-process and reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), so runs do not share allocator state. The model is a
smaller random T5 (d_model 128, 2+2 layers, heads 4) with t5-small's 32,128-token vocabulary, so one
step's logits are as large as t5-small's, with 32 new tokens forced per row: thousands of rows then fit
in a few minutes (one torch thread: peak memory does not depend on threads, and on a 2-core machine
shared with other jobs two threads spin-wait for each other and run several times slower). For contrast, the Python API (``Predictor.predict_records``), which returns
every record in memory by design, is measured the same way.

    python benchmarks/bench_memory.py --out reports/bench/memory.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SMALL, build_model, ids_to_text, machine, save_model_dir, versions, write_json

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
mode, model_dir, data, out = sys.argv[1:5]
start = time.perf_counter()
marks = {{}}


def peak_mb():  # VmHWM: this process's peak resident set so far
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


if mode == "cli":
    import t5score.runs.runner as runner
    from t5score.cli.main import main
    merge = runner.merge_parts

    def merge_parts(*args, **kwargs):  # the predict loop is over: note its peak, then merge as usual
        marks["predict_loop_peak_mb"] = peak_mb()
        return merge(*args, **kwargs)

    runner.merge_parts = merge_parts
    rc = main(["predict", "--model.name_or_path", model_dir, "--data.path", data, "--data.batch_size", "16",
               "--data.source_column", "source", "--model.max_new_tokens", "{new_tokens}", "--model.capture", "stats",
               "--output_dir", out, "--trainer.accelerator", "cpu"])
    assert rc in (0, None), rc
else:
    from t5score.api import Predictor
    texts = [json.loads(line)["source"] for line in open(data)]
    records = Predictor.from_pretrained(model_dir).predict_records(texts, batch_size=16, max_new_tokens={new_tokens})
    assert len(records) == len(texts)
print(json.dumps({{"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "wall_s": time.perf_counter() - start, **marks}}))
"""


def measure(mode: str, model_dir: Path, data: Path, out: Path, threads: int, new_tokens: int) -> dict:
    code = CHILD.format(root=str(ROOT), threads=threads, new_tokens=new_tokens)
    proc = subprocess.run(
        [sys.executable, "-c", code, mode, str(model_dir), str(data), str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/memory.json"))
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="1: memory does not depend on it, and on a busy 2-core machine 2 threads run ~4x slower",
    )
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--source-len", type=int, default=64)
    parser.add_argument("--modes", nargs="+", default=["cli", "api"], choices=["cli", "api"])
    args = parser.parse_args(argv)
    at_start = machine()
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="t5score-bench-"))
    model_dir = save_model_dir(build_model(SMALL), tmp / "model")
    g = torch.Generator().manual_seed(5)
    results: dict = {}
    for n in args.rows:
        data = tmp / f"rows-{n}.jsonl"
        with data.open("w") as f:
            for _ in range(n):
                length = int(torch.randint(args.source_len // 2, args.source_len, (1,), generator=g))
                ids = torch.randint(3, SMALL["vocab_size"], (length,), generator=g).tolist()
                f.write(json.dumps({"source": ids_to_text(ids)}) + "\n")
        for mode in args.modes:
            start = time.perf_counter()
            results[f"{mode} {n} rows"] = measure(
                mode, model_dir, data, tmp / f"out-{mode}-{n}", args.threads, args.new_tokens
            )
            print(
                f"{mode} {n} rows: {results[f'{mode} {n} rows']} ({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    growth = {}
    lo, hi = min(args.rows), max(args.rows)
    for mode in args.modes:
        a, b = results[f"{mode} {lo} rows"]["maxrss_mb"], results[f"{mode} {hi} rows"]["maxrss_mb"]
        growth[mode] = (b - a) / a
        if mode == "cli":  # the decoding loop alone, before the final merge of the parts
            a, b = (results[f"cli {n} rows"]["predict_loop_peak_mb"] for n in (lo, hi))
            growth["cli predict loop (before merge)"] = (b - a) / a
    payload = {
        "workload": {
            "rows": args.rows,
            "new_tokens": args.new_tokens,
            "source_len": f"{args.source_len // 2}-{args.source_len}",
            "model": SMALL,
            "batch_size": 16,
            "capture": "stats",
            "threads": args.threads,
        },
        "results": results,
        "growth": growth,
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "command": " ".join(["python", *sys.argv]),
    }
    write_json(args.out, payload)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"growth {lo}->{hi} rows: " + ", ".join(f"{k} {v:+.1%}" for k, v in growth.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
