"""Pieces of ``bench_scorers.py`` kept apart from it: one model's part rerun into an existing JSON, and where
the decoder's cross-attention keys/values and output layer ran (what the report says about them).

``--merge``: ``bench_scorers.py --models bart --merge --out reports/bench/scorers.json`` replaces the BART
part of that JSON and keeps the others; the part carries its own run (load at its start and end, threads,
wall time, command), which the report names, since it is not the run the section's first paragraph
describes. A T5 part run with the `t5score score` timing replaces that line too.
"""

from __future__ import annotations

import json
from pathlib import Path

#: the first decoder layer's cross-attention key projection (T5 and BART names)
FIRST_CROSS_K = ("decoder.block.0.layer.1.EncDecAttention.k", "decoder.layers.0.encoder_attn.k_proj")


def count_cross_k_rows(model, calls: list[int]) -> list:
    """A forward hook appending the rows (batch size) each call of the first decoder layer's cross-attention
    key projection gets; returns the handles. (The fast T5 decoder projects with the weights directly: no
    call is seen there.)"""
    found = [m for n, m in model.named_modules() if n.endswith(FIRST_CROSS_K)]
    return [m.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0])) for m in found]


def kv_once_per_source(m: dict) -> bool:
    """Whether t5score's decoder projected each source's cross-attention keys/values once (fast T5 decoder,
    or the generic decoder's keys/values from one step per distinct source)."""
    rows = m["t5score_breakdown"].get("cross_kv_rows")
    return m["engine"] == "T5ForcedDecoder" or (rows is not None and 0 < sum(rows) <= m["distinct_sources"])


def inside_text(m: dict) -> str:
    """What the instrumented call says about the model's own output layer and key/value projections."""
    b = m["t5score_breakdown"]
    head, kv, rows = b.get("lm_head_s", 0), b.get("per_pair_cross_kv_s", 0), b.get("cross_kv_rows")
    if not (head or kv):
        return ""
    if kv_once_per_source(m):
        return (
            f"; the model's output layer {head:.2f} s (within `output layer`, on the real positions only) and "
            f"its cross-attention key/value projections {kv:.2f} s (within `cross-attention keys/values`: "
            f"{len(rows)} call{'s' if len(rows) != 1 else ''} over {sum(rows)} rows, each of the {m['distinct_sources']} distinct sources "
            "once per window)"
        )
    return (
        f"; within the decoder forward, the model's output layer (on every position) {head:.2f} s and its "
        f"cross-attention key/value projections (per pair, over the batch's widest source) {kv:.2f} s"
    )


def calls_text(work: dict) -> str:
    """How many decoder forwards and encoder calls the instrumented call ran (nothing for an older JSON)."""
    if "decoder_batches" not in work:
        return ""
    return (
        f" in {work['decoder_batches']} decoder batches; encoder tokens {work['encoder_tokens']} "
        f"(padding included) in {work.get('encoder_calls', 0)} encoder calls"
    )


def part_note(m: dict) -> list[str]:
    """A line naming the separate run a merged part comes from (nothing for a part of the main run)."""
    run = m.get("run")
    if not run:
        return []
    load0, load1 = run["machine"].get("load_average"), run["machine_at_end"].get("load_average")
    return [
        f"This part comes from its own run (`{run['command']}`, {run['threads']} threads, {run['reps']} "
        f"repetitions): load (1/5/15 min) {load0} at its start, {load1} at its end; {run['wall_s']:.0f} s.",
        "",
    ]


def merge(out: Path, payload: dict) -> dict:
    """``payload``'s models written into the JSON at ``out`` (kept otherwise), each with its run's facts."""
    old = json.loads(out.read_text()) if out.exists() else None
    if old is None:
        return payload
    w = payload["workload"]
    for kind, m in payload["models"].items():
        m["run"] = {
            "machine": payload["machine"],
            "machine_at_end": payload["machine_at_end"],
            "wall_s": payload["wall_s"],
            "command": payload["command"],
            "threads": w["threads"],
            "reps": w["reps"],
            "omp_wait": w["omp_wait"],
            "versions": payload["versions"],
        }
        old["models"][kind] = m
        old["workload"]["sources"][kind] = m["distinct_sources"]
    if payload.get("cli") is not None:  # `t5score score` ran with this T5 part: its line is this run's too
        old["cli"] = payload["cli"]
    return old
