"""Run every benchmark (decode, scoring, memory, int8 quality, busy machine) and render ``reports/benchmarks.md``.

    python benchmarks/run_all.py                 # CPU, 2 threads: the figures in reports/benchmarks.md
    python benchmarks/run_all.py --only decode   # one part; the others' earlier JSON is reused
    python benchmarks/run_all.py --device cuda --dtype bf16   # GPU figures (decode part only)

Each part runs in its own process and writes ``reports/bench/<part>.json``; all of them take about
40 minutes on 2 busy cores (decode about 12, scoring 9, memory 4, int8 5, beam 1, the two extra decode runs 6),
plus the busy-machine part (the main job beside other processes, 18 runs: 30-60 minutes, mostly its
legacy runs; it sets its own threads, so --threads does not apply). Benchmarks, not tests: nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = (
    "decode",
    "scoring",
    "memory",
    "int8",
    "beam",
    "decode-1thread",
    "decode-ct2mkl",
    "busy",
    "report",
    "scorers",
    "profile",
    "inflight",
)
EXTRA = {  # further decode runs: one thread (no spin-waiting on a shared machine), CTranslate2 with MKL forced
    "decode-1thread": ["--threads", "1", "--skip", "compile", "naive", "levers"],
    "decode-ct2mkl": ["--ct2-mkl", "--skip", "compile", "naive", "levers", "int8", "full", "engine=hf"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--bench-dir", type=Path, default=Path("reports/bench"))
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks.md"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args(argv)
    for part in args.only:
        script = HERE / f"bench_{part.split('-')[0]}.py"
        cmd = [sys.executable, str(script), "--out", str(args.bench_dir / f"{part}.json")]
        if part in (
            "decode",
            "scoring",
            "beam",
            "decode-ct2mkl",
            "scorers",
            "profile",
            "inflight",
        ):  # memory and int8 effects do not depend on threads
            cmd += ["--threads", str(args.threads)]
        if part.startswith("decode"):
            cmd += ["--device", args.device, "--dtype", args.dtype] + EXTRA.get(part, [])
        start = time.perf_counter()
        print(f"== {part}: {' '.join(cmd)}", flush=True)
        rc = subprocess.call(cmd)
        print(f"== {part}: exit {rc} after {time.perf_counter() - start:.0f}s", flush=True)
        if rc != 0:
            return rc
    command = "python benchmarks/run_all.py" + ("" if args.threads == 2 else f" --threads {args.threads}")
    return subprocess.call(
        [
            sys.executable,
            str(HERE / "report.py"),
            "--bench-dir",
            str(args.bench_dir),
            "--out",
            str(args.out),
            "--command",
            command,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
