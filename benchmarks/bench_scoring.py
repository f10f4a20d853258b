"""Teacher-forced scoring of many candidates per source: encoder reuse vs re-encoding the source per pair.

Workload (issue 7): the random t5-small-shaped model, 64 sources of 128 tokens, 8 candidates each (16 to 48
tokens), ``t5score.engine.forced.score_pairs`` with ``reuse_encoder=True`` (each source encoded once) and
``False`` (per-pair scorers' way, e.g. BARTScore: the same engine, but every pair re-encodes its source).
Both orders alternate per repetition. ``--engine`` picks the decoder forward (``auto``: the fast T5 one).

    python benchmarks/bench_scoring.py --out reports/bench/scoring.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import build_model, ids_to_text, machine, median, save_model_dir, versions, write_json

from t5score.engine.forced import score_pairs


def predict_with_references(
    model,
    tokenizer,
    reps: int,
    g: torch.Generator,
    rows: int = 16,
    source_len: int = 512,
    new_tokens: int = 64,
) -> dict:
    """``predict`` with references (decode + teacher-forced reference scores) on one batch of long sources:
    the encoder's output shared by both (``decode_rows(score_references=True)``) vs the reference scores
    re-encoding the sources (``score_pairs`` from the texts, as t5score did before)."""
    from t5score.records import SourceRow
    from t5score.runs.decode_rows import DecodeOptions, decode_rows

    vocab = model.config.vocab_size
    batch = [
        SourceRow(
            i,
            str(i),
            ids_to_text(torch.randint(3, vocab, (source_len - 1,), generator=g).tolist()),
            target=ids_to_text(torch.randint(3, vocab, (31,), generator=g).tolist()),
        )
        for i in range(rows)
    ]
    options = DecodeOptions(max_new_tokens=new_tokens)

    def shared():
        return decode_rows(model, tokenizer, batch, options, score_references=True)

    def reencoding():
        decode_rows(model, tokenizer, batch, options, score_references=False)
        score_pairs(model, tokenizer, [r.source for r in batch], [r.target for r in batch], top_k=1)

    modes = {"shared encoder output (t5score)": shared, "references re-encode the sources": reencoding}
    times: dict[str, list[float]] = {k: [] for k in modes}
    shared()  # warm-up (weight packing)
    for rep in range(reps):
        for name in list(modes) if rep % 2 == 0 else list(reversed(modes)):
            start = time.perf_counter()
            modes[name]()
            times[name].append(time.perf_counter() - start)
    return {
        "workload": {"rows": rows, "source_len": source_len, "target_len": 32, "new_tokens": new_tokens},
        "results": {k: {"median_s": median(v), "runs_s": v} for k, v in times.items()},
        "speedup": median(times["references re-encode the sources"])
        / median(times["shared encoder output (t5score)"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/scoring.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sources", type=int, default=64)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--engine", choices=("auto", "hf", "t5"), default="auto")
    args = parser.parse_args(argv)
    at_start = machine()
    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer

    model = build_model()
    tmp = Path(tempfile.mkdtemp(prefix="t5score-bench-"))
    tokenizer = AutoTokenizer.from_pretrained(save_model_dir(model, tmp / "model"))
    g = torch.Generator().manual_seed(3)
    vocab = model.config.vocab_size
    sources = [
        ids_to_text(torch.randint(3, vocab, (args.source_len - 1,), generator=g).tolist())
        for _ in range(args.sources)
    ]
    targets, pair_source = [], []
    for s in range(args.sources):
        for _ in range(args.candidates):
            n = int(torch.randint(16, 49, (1,), generator=g))
            targets.append(ids_to_text(torch.randint(3, vocab, (n - 1,), generator=g).tolist()))
            pair_source.append(s)
    names = {"reuse_encoder=True": True, "reuse_encoder=False": False}
    times: dict[str, list[float]] = {k: [] for k in names}
    scores = {}
    for rep in range(args.reps):
        order = list(names) if rep % 2 == 0 else list(reversed(names))
        for name in order:
            start = time.perf_counter()
            scores[name] = score_pairs(
                model,
                tokenizer,
                sources,
                targets,
                pair_source_index=pair_source,
                reuse_encoder=names[name],
                engine=args.engine,
            )
            times[name].append(time.perf_counter() - start)
        print(f"rep {rep + 1}: " + ", ".join(f"{k}={v[-1]:.1f}s" for k, v in times.items()), flush=True)
    references = predict_with_references(model, tokenizer, args.reps, g)
    a, b = scores["reuse_encoder=True"], scores["reuse_encoder=False"]
    gap = max(
        abs(x.sum_logprob - y.sum_logprob) / max(1.0, abs(y.sum_logprob)) for x, y in zip(a, b, strict=True)
    )
    pairs = len(targets)
    rows = {
        k: {"median_s": median(v), "runs_s": v, "pairs_per_s": pairs / median(v)} for k, v in times.items()
    }
    payload = {
        "workload": {
            "sources": args.sources,
            "candidates_per_source": args.candidates,
            "pairs": pairs,
            "source_len": args.source_len,
            "target_len": "16-48",
            "reps": args.reps,
            "threads": args.threads,
            "engine": args.engine,
        },
        "results": rows,
        "predict_references": references,
        "speedup": median(times["reuse_encoder=False"]) / median(times["reuse_encoder=True"]),
        "max_relative_sum_logprob_gap": gap,
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "command": " ".join(["python", *sys.argv]),
    }
    write_json(args.out, payload)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"speed-up {payload['speedup']:.2f}x, max relative gap {gap:.2e}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
