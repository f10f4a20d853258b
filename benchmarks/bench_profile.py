"""Where the time of a decode step goes (fast T5 step, batch 16), against this machine's roofline.

Workload: a random t5-small-shaped model (``common.build_model``, seeded, EOS unreachable), batch 16,
128-token sources, 64 greedy steps with ``token_stats`` (top-5), float32 on CPU; steady state = steps 8-55.

1. Rounds (``--rounds``), each at ``--threads`` and at 1 thread: the real ``greedy_decode`` with its
   stepper and ``token_stats`` wrapped by timers (step-to-step interval, decoder step, statistics pass,
   the loop's rest); a replica of the step (the engine's own kernels in the engine's order, its logits
   checked against the engine's step) with a timer after each piece: self-attention, cross-attention,
   feed-forward (each split into weight products, attention kernel, norm/residual/cache work), output
   projection, statistics pass; a machine probe (read bandwidth over a buffer of one step's traffic,
   best of ``sum`` and a matrix-vector product; a 2048^3 float32 matmul). Best round per quantity.
2. The roofline per thread count: bytes a step must stream (decoder weights incl. the 512 x 32,128 output
   layer, the key/value caches read, the logits; float32) / read bandwidth, FLOPs / matmul throughput;
   per piece likewise. Bound = the larger of the two (perfect overlap) and their sum (none).
3. Experiments: the statistics pass by operation and with a chunked top-k (same statistics), the
   attention kernel (SDPA vs eager matmul) on the real tensors, ``torch.profiler`` on one decode by
   operator; then the machine table: read bandwidth (step-sized and 1 GiB buffers, copy) and the step's
   product shapes through the engine's ``kernels.Linear`` (oneDNN prepacked), weight hot and streamed.

    python benchmarks/bench_profile.py --out reports/bench/profile.json   # ~1.5 min idle, more when busy
    python benchmarks/bench_profile.py --quick --out /tmp/profile.json     # smoke run: 1 round

Benchmarks, not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from common import build_model, machine, make_inputs, versions, write_json

import t5score.engine.decode as decode_mod
from t5score.engine.decode import greedy_decode
from t5score.engine.options import DecodeOptions
from t5score.engine.stats import token_stats
from t5score.engine.t5.kernels import Linear, attend, feed_forward, norm
from t5score.engine.t5.step import T5Stepper

F32 = 4  # bytes
KEYS = ("interval", "step", "stats")
PIECES = ("self-attention", "cross-attention", "feed-forward", "output projection", "statistics pass")


def best(fn, n: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bandwidth(step_bytes: int, n: int) -> dict:
    """Read bandwidth GB/s (best of ``n``) over a buffer of one step's traffic and over 1 GiB."""
    out = {}
    for label, size in (("step-sized", step_bytes), ("1 GiB", 2**30)):
        x = torch.ones(size // F32 // 512 * 512)
        m, v, y = x.view(-1, 512), torch.ones(512), torch.empty_like(x)
        gb = x.numel() * F32 / 1e9
        out[label] = {
            "MB": round(gb * 1e3, 1),
            "sum GB/s": gb / best(x.sum, n),
            "matrix-vector GB/s": gb / best(lambda m=m, v=v: torch.mv(m, v), n),
            "copy GB/s (read + write)": 2 * gb / best(lambda x=x, y=y: y.copy_(x), n),
        }
        del x, m, y
    for r in out.values():
        r["best read GB/s"] = max(r["sum GB/s"], r["matrix-vector GB/s"])
    return out


def matmuls(shapes: dict, batch: int, stream_bytes: int, n: int) -> dict:
    """GFLOP/s of ``[batch, in] x [in, out]`` through ``kernels.Linear``, weight hot and streamed."""
    out = {}
    for name, (d_in, d_out) in shapes.items():
        x = torch.randn(batch, d_in)
        flops = 2 * batch * d_in * d_out
        hot = Linear(torch.randn(d_out, d_in))
        copies = max(1, -(-stream_bytes // (d_in * d_out * F32)))
        many = [Linear(torch.randn(d_out, d_in)) for _ in range(copies)]
        t_hot = best(lambda h=hot, x=x: [h(x) for _ in range(8)], n) / 8
        t_str = best(lambda ms=many, x=x: [m(x) for m in ms], n) / copies
        out[name] = {
            "shape": f"[{batch}, {d_in}] x [{d_in}, {d_out}]",
            "hot GFLOP/s": flops / t_hot / 1e9,
            "streamed GFLOP/s": flops / t_str / 1e9,
            "streamed weight GB/s": d_in * d_out * F32 / t_str / 1e9,
            "streamed copies": copies,
        }
        del many
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out["square 2048^3"] = {
        "shape": "[2048, 2048] x [2048, 2048]",
        "GFLOP/s": 2 * 2048**3 / best(lambda: a @ b, n) / 1e9,
    }
    return out


def measure_machine(threads: int, step_bytes: int, shapes: dict, batch: int, n: int) -> dict:
    torch.set_num_threads(threads)
    return {
        "threads": threads,
        "bandwidth": bandwidth(step_bytes, n),
        "matmul": matmuls(shapes, batch, step_bytes, n),
    }


class Timer:
    """Accumulates ``perf_counter`` laps into named pieces."""

    def __init__(self):
        self.acc: dict[str, float] = defaultdict(float)
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.acc[name] += now - self.last
        self.last = now


def replica_step(st: T5Stepper, ids: torch.Tensor, tm: Timer) -> torch.Tensor:
    """``t5score.engine.t5.step.decoder_step`` (eager) piece by piece, with a lap after each piece."""
    p, t = st.p, st.t
    st.t += 1
    rows, heads, d_kv, eps = ids.shape[0], p["heads"], p["d_kv"], p["eps"]
    bias = st.self_bias[t, :, :, : t + 1].unsqueeze(0)
    tm.last = time.perf_counter()
    hidden = p["embed"](ids[:, None])
    tm.lap("embedding")
    for i, w in enumerate(p["layers"]):
        x = norm(hidden, w["ln_self"], eps)
        tm.lap("self-attention: norm/residual/cache")
        qkv = w["qkv"](x).view(rows, 1, 3, heads, d_kv)
        tm.lap("self-attention: products")
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        st.self_k[i][:, :, t : t + 1] = k
        st.self_v[i][:, :, t : t + 1] = v
        keys, values = st.self_k[i][:, :, : t + 1], st.self_v[i][:, :, : t + 1]
        tm.lap("self-attention: norm/residual/cache")
        att = attend(p, q, keys, values, bias).transpose(1, 2).reshape(rows, 1, heads * d_kv)
        tm.lap("self-attention: attention kernel")
        out = w["o"](att)
        tm.lap("self-attention: products")
        hidden = hidden + out
        tm.lap("self-attention: norm/residual/cache")
        x = norm(hidden, w["ln_cross"], eps)
        tm.lap("cross-attention: norm/residual")
        q = w["cross_q"](x).view(rows, 1, heads, d_kv).transpose(1, 2)
        tm.lap("cross-attention: products")
        att = attend(p, q, st.cross_k[i], st.cross_v[i], st.cross_bias)
        att = att.transpose(1, 2).reshape(rows, 1, heads * d_kv)
        tm.lap("cross-attention: attention kernel")
        out = w["cross_o"](att)
        tm.lap("cross-attention: products")
        hidden = hidden + out
        tm.lap("cross-attention: norm/residual")
        x = norm(hidden, w["ln_ff"], eps)
        tm.lap("feed-forward: norm/residual")
        out = feed_forward(w, x)
        tm.lap("feed-forward: products + activation")
        hidden = hidden + out
        tm.lap("feed-forward: norm/residual")
    h = norm(hidden[:, 0], p["final_norm"], eps)
    h = h * p["scale"] if p["scale"] is not None else h
    tm.lap("output projection: final norm")
    logits = p["lm_head"](h)
    tm.lap("output projection: product")
    return logits


def stats_ops(logits: torch.Tensor, top_k: int, n: int) -> dict:
    """ms per call of each operation of ``token_stats`` on real logits (best of ``n``)."""
    x = logits.float()
    top1 = x.max(dim=-1).values
    z = x - top1.unsqueeze(-1)
    e = z.exp()
    ops = {
        "max (top-1)": lambda: x.max(dim=-1),
        "amin (non-finite check)": lambda: x.amin(dim=-1),
        "subtract max": lambda: x - top1.unsqueeze(-1),
        "topk": lambda: z.topk(top_k, dim=-1),
        "exp": lambda: z.exp(),
        "sum": lambda: e.sum(dim=-1),
        "z * exp(z), nansum": lambda: (z * e).nansum(dim=-1),
    }
    return {k: best(fn, n) * 1e3 for k, fn in ops.items()}


def run_decode(model, ids, mask, steps: int, top_k: int) -> dict:
    """The real ``greedy_decode``, its stepper and ``token_stats`` wrapped by timers (per step)."""
    enter, step_s, stats_s = [], [], []
    real_stepper, real_stats = decode_mod.decoder_stepper, decode_mod.token_stats

    def stepper(*a, **kw):
        inner = real_stepper(*a, **kw)
        real_step = inner.step

        def step(next_ids):
            enter.append(time.perf_counter())
            logits = real_step(next_ids)
            step_s.append(time.perf_counter() - enter[-1])
            return logits

        inner.step = step
        return inner

    def stats(*a, **kw):
        start = time.perf_counter()
        result = real_stats(*a, **kw)
        stats_s.append(time.perf_counter() - start)
        return result

    decode_mod.decoder_stepper, decode_mod.token_stats = stepper, stats
    try:
        start = time.perf_counter()
        out = greedy_decode(model, ids, mask, DecodeOptions(max_new_tokens=steps, top_k=top_k))
        total = time.perf_counter() - start
    finally:
        decode_mod.decoder_stepper, decode_mod.token_stats = real_stepper, real_stats
    interval = [b - a for a, b in zip(enter, enter[1:], strict=False)] + [None]
    return {"total_s": total, "interval": interval, "step": step_s, "stats": stats_s, "tokens": out.token_ids}


def traffic(model, batch: int, source_len: int, keys: float) -> dict:
    """Bytes that must stream and FLOPs of one step per piece (float32), ``keys`` self-attention keys."""
    cfg = model.config
    heads, d_kv, vocab = cfg.num_heads, cfg.d_kv, cfg.vocab_size
    numel = lambda *mods: sum(m.weight.numel() for m in mods)  # noqa: E731
    out = {k: {"weight bytes": 0, "cache bytes": 0, "flops": 0} for k in PIECES}
    for block in model.decoder.block:
        sa, ca, ff = block.layer[0], block.layer[1], block.layer[2]
        att, cross, dense = sa.SelfAttention, ca.EncDecAttention, ff.DenseReluDense
        gated = hasattr(dense, "wi_0")
        for piece, weights, norm_w, cache_len in (
            ("self-attention", numel(att.q, att.k, att.v, att.o), sa.layer_norm, keys),
            ("cross-attention", numel(cross.q, cross.o), ca.layer_norm, source_len),
            (
                "feed-forward",
                numel(*((dense.wi_0, dense.wi_1) if gated else (dense.wi,)), dense.wo),
                ff.layer_norm,
                0,
            ),
        ):
            o = out[piece]
            o["weight bytes"] += (weights + norm_w.weight.numel()) * F32
            o["cache bytes"] += 2 * batch * heads * cache_len * d_kv * F32
            o["flops"] += 2 * batch * weights + 2 * 2 * batch * heads * cache_len * d_kv
    head = model.lm_head.weight.numel()
    out["output projection"].update({"weight bytes": (head + cfg.d_model) * F32, "flops": 2 * batch * head})
    out["statistics pass"]["cache bytes"] = batch * vocab * F32  # the logits, read once
    return out


def roofline(pieces: dict, read_gbs: float, gflops: float) -> dict:
    for o in pieces.values():
        o["bytes"] = o["weight bytes"] + o["cache bytes"]
        o["memory bound ms"] = o["bytes"] / read_gbs / 1e6
        o["compute bound ms"] = o["flops"] / gflops / 1e6
        o["bound ms"] = max(o["memory bound ms"], o["compute bound ms"])
    total = {k: sum(o[k] for o in pieces.values()) for k in ("weight bytes", "cache bytes", "bytes", "flops")}
    total["memory bound ms"] = total["bytes"] / read_gbs / 1e6
    total["compute bound ms"] = total["flops"] / gflops / 1e6
    total["bound ms (max)"] = max(total["memory bound ms"], total["compute bound ms"])
    total["bound ms (sum)"] = total["memory bound ms"] + total["compute bound ms"]
    return {"pieces": pieces, "step": total, "read GB/s": read_gbs, "GFLOP/s": gflops}


def steady(values: list, lo: int, hi: int) -> float:
    return statistics.median(v for v in values[lo:hi] if v is not None) * 1e3  # ms


def decode_steady(work: dict, args) -> dict:
    """One real decode: steady-state medians (ms) of the loop step, the decoder step, the statistics."""
    d = run_decode(work["model"], work["ids"], work["mask"], args.steps, args.top_k)
    lo, hi = 8, args.steps - 8
    out = {
        "loop step (interval between steps)": steady(d["interval"], lo, hi),
        "decoder step (stepper.step)": steady(d["step"], lo, hi),
        "statistics pass (token_stats)": steady(d["stats"], lo, hi),
    }
    rest = [i - a - b if i is not None else None for i, a, b in zip(*(d[k] for k in KEYS), strict=True)]
    out["rest of the loop (choice, buffer writes, EOS)"] = steady(rest, lo, hi)
    return {"ms": out, "total_s": d["total_s"], "tokens": d["tokens"]}


def replica_decode(work: dict, args, check: bool = False) -> tuple[dict, float, torch.Tensor]:
    """64 greedy steps through :func:`replica_step` (+ ``token_stats``): steady-state median ms per lap,
    the largest logit gap to the engine's own step (``check``: both steppers fed the same tokens), the
    last logits."""
    model, mask, hidden = work["model"], work["mask"], work["hidden"]
    lo, hi = 8, args.steps - 8
    rows, diff = [], 0.0
    with torch.inference_mode():
        mine = T5Stepper(model, hidden, mask, args.steps)
        ref = T5Stepper(model, hidden, mask, args.steps) if check else None
        token = torch.zeros(hidden.shape[0], dtype=torch.long)
        for _ in range(args.steps):
            tm = Timer()
            logits = replica_step(mine, token, tm)
            start = time.perf_counter()
            stats = token_stats(logits, top_k=args.top_k)
            tm.acc["statistics pass"] = time.perf_counter() - start
            rows.append(dict(tm.acc))
            if ref is not None:
                diff = max(diff, float((ref.step(token) - logits).abs().max()))
            token = stats.top1_ids
    laps = {k: statistics.median(r[k] for r in rows[lo:hi]) * 1e3 for k in rows[0]}
    return laps, diff, logits


def probe(step_bytes: int, n: int) -> dict:
    """Quick machine probe beside each round: read GB/s over a step-sized buffer, square-matmul GFLOP/s."""
    x = torch.ones(step_bytes // F32 // 512 * 512)
    m, v = x.view(-1, 512), torch.ones(512)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gb = x.numel() * F32 / 1e9
    return {
        "read GB/s": max(gb / best(x.sum, n), gb / best(lambda: torch.mv(m, v), n)),
        "square GFLOP/s": 2 * 2048**3 / best(lambda: a @ b, n) / 1e9,
    }


def chunked_topk(x: torch.Tensor, k: int, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` of ``x`` ``[B, V]`` in two small passes: the maximum of each ``chunk`` (``amax``, no
    indices), the ``k`` best chunks, then top-``k`` of their ``k * chunk`` values. Exact: a chunk holding
    one of the ``k`` largest values has a maximum at least the ``k``-th largest, and at most ``k`` chunks
    do (ties apart)."""
    rows, vocab = x.shape
    pad = (-vocab) % chunk
    xp = torch.nn.functional.pad(x, (0, pad), value=float("-inf")) if pad else x
    chunks = xp.view(rows, -1, chunk)
    best_chunks = chunks.amax(-1).topk(k, dim=-1).indices  # [B, k]
    cand = chunks.gather(1, best_chunks[:, :, None].expand(rows, k, chunk)).reshape(rows, k * chunk)
    vals, pos = cand.topk(k, dim=-1)
    return vals, best_chunks.gather(1, pos // chunk) * chunk + pos % chunk


def stats_variants(logits: torch.Tensor, top_k: int, n: int) -> dict:
    """ms per call of ``token_stats`` and of the same statistics with a chunked top-k (no ``max`` with
    indices, no ``topk`` over the vocabulary) and without the ``amin`` pass; ``log_softmax`` for scale."""
    x = logits.float()

    def chunked():
        vals, ids = chunked_topk(x, top_k)
        z = x - vals[:, :1]
        e = z.exp()
        total = e.sum(-1)
        log_total = total.log()
        return vals, ids, log_total, log_total - z.mul_(e).nansum(-1) / total

    ref, got = token_stats(logits, top_k=top_k), chunked()
    same = torch.equal(ref.topk_ids, got[1]) and torch.equal(ref.top1_ids, got[1][:, 0])
    gap = float(((ref.entropies - got[3]).abs() / ref.entropies.abs().clamp_min(1e-12)).max())
    return {
        "token_stats": best(lambda: token_stats(logits, top_k=top_k), n) * 1e3,
        "chunked top-k, no amin pass (same statistics)": best(chunked, n) * 1e3,
        "chunked top-k alone": best(lambda: chunked_topk(x, top_k), n) * 1e3,
        "log_softmax alone (for scale)": best(lambda: torch.log_softmax(x, -1), n) * 1e3,
        "chunked: top-k ids equal token_stats' (1 = yes)": float(same),
        "chunked: largest relative entropy gap": gap,
    }


def attention_variants(work: dict, args, n: int) -> dict:
    """ms per call of one layer's attention kernel on the real tensors (cross: the encoder keys/values of
    layer 0; self: a cache at the mean steady step): the configured SDPA vs the eager matmul-softmax-matmul
    (the same arithmetic in another summation order)."""
    st = T5Stepper(work["model"], work["hidden"], work["mask"], args.steps)
    p, t = st.p, args.steps // 2
    q = torch.randn(work["hidden"].shape[0], p["heads"], 1, p["d_kv"])
    kv = torch.randn(work["hidden"].shape[0], p["heads"], t + 1, p["d_kv"])
    cases = {
        "cross-attention": (st.cross_k[0], st.cross_v[0], st.cross_bias),
        f"self-attention ({t + 1} keys)": (kv, kv, st.self_bias[t, :, :, : t + 1].unsqueeze(0)),
    }
    out = {}
    for name, (k, v, bias) in cases.items():
        for kind, sdpa in (("sdpa", True), ("eager matmul", False)):
            out[f"{name}, {kind}"] = (
                best(lambda k=k, v=v, b=bias, s=sdpa: attend({"sdpa": s}, q, k, v, b), n) * 1e3
            )
    return out


def product_variants(work: dict, n: int) -> dict:
    """ms per call of the output-layer product streamed (4 distinct copies in turn): the engine's float32
    ``kernels.Linear`` vs the same weights in bfloat16 prepacked for oneDNN (AMX where the CPU has it;
    other numbers: bfloat16 rounding), for scale of what float32 leaves on the table."""
    weight = work["model"].lm_head.weight.detach()
    x = torch.randn(work["ids"].shape[0], weight.shape[1])
    out = {}
    f32 = [Linear(weight.clone()) for _ in range(4)]
    out["output projection, float32 prepacked"] = best(lambda ms=f32: [m(x) for m in ms], n) / 4 * 1e3
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        xb, pack = x.bfloat16(), torch.ops.mkldnn._reorder_linear_weight
        bf = [pack(weight.bfloat16().clone(), x.shape[0]) for _ in range(4)]
        run = lambda: [torch.ops.mkldnn._linear_pointwise(xb, w, None, "none", [], "") for w in bf]  # noqa: E731
        out["output projection, bfloat16 prepacked (other numbers)"] = best(run, n) / 4 * 1e3
    return out


def torch_profile(work: dict, args) -> list:
    """Self CPU time per operator over one ``greedy_decode`` (all steps), top 12, ms per step."""
    from torch.profiler import ProfilerActivity, profile

    opts = DecodeOptions(max_new_tokens=args.steps, top_k=args.top_k)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        greedy_decode(work["model"], work["ids"], work["mask"], opts)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    return [
        {
            "op": e.key,
            "calls per step": e.count / args.steps,
            "self ms per step": e.self_cpu_time_total / 1e3 / args.steps,
        }
        for e in rows
    ]


def piece_of(lap: str) -> str:
    return "embedding" if lap == "embedding" else lap.split(":")[0]


def thread_counts(args) -> list[int]:
    return list(dict.fromkeys((args.threads, 1)))


def summarise(rounds: list, pieces: dict) -> dict:
    """Best round per quantity (least disturbed): min of each time, max of each rate; the roofline."""
    pick = lambda key, sub, f: f(x[key][sub] for x in rounds)  # noqa: E731
    decode_ms = {k: pick("decode_ms", k, min) for k in rounds[0]["decode_ms"]}
    replica_ms = {k: pick("replica_ms", k, min) for k in rounds[0]["replica_ms"]}
    roof = roofline(
        {k: dict(v) for k, v in pieces.items()},
        pick("probe", "read GB/s", max),
        pick("probe", "square GFLOP/s", max),
    )
    by_piece: dict[str, float] = defaultdict(float)
    for lap, ms in replica_ms.items():
        by_piece[piece_of(lap)] += ms
    loop = decode_ms["loop step (interval between steps)"]
    return {
        "rounds": rounds,
        "decode_ms": decode_ms,
        "replica_ms": replica_ms,
        "replica_by_piece_ms": dict(by_piece),
        "roofline": roof,
        "ratio": {
            "loop step / bound (max)": loop / roof["step"]["bound ms (max)"],
            "loop step / bound (sum)": loop / roof["step"]["bound ms (sum)"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/profile.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of decode + replica + probe per thread count"
    )
    parser.add_argument("--best-of", type=int, default=3, help="repetitions of each machine measurement")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, best of 2")
    parser.add_argument("--decode-only", action="store_true", help=argparse.SUPPRESS)  # the subprocess below
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.best_of = 1, 2
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    if args.decode_only:  # a warm-up decode, then the best of two: steady ms as one JSON line
        model = build_model()
        ids, mask = make_inputs(args.batch, args.source_len, model.config.vocab_size)
        work = {"model": model, "ids": ids, "mask": mask}
        runs = [decode_steady(work, args)["ms"] for _ in range(3)][1:]
        print(json.dumps({k: min(r[k] for r in runs) for k in runs[0]}))
        return 0
    at_start = machine()
    model = build_model()
    cfg = model.config
    ids, mask = make_inputs(args.batch, args.source_len, cfg.vocab_size)
    keys = args.steps / 2 + 0.5  # mean keys attended over the steady steps 8..steps-9
    pieces = traffic(model, args.batch, args.source_len, keys)
    step_bytes = int(sum(o["weight bytes"] + o["cache bytes"] for o in pieces.values()))
    with torch.inference_mode():
        hidden = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    work = {"model": model, "ids": ids, "mask": mask, "hidden": hidden}
    # warm-up (packing, allocations) and the replica's check against the engine's step
    _, diff, _ = replica_decode(work, args, check=True)
    decode_steady(work, args)
    # rounds: per thread count a real decode, a replica decode and a machine probe, side by side, so a
    # burst of load from elsewhere hits all of them
    rounds: dict[str, list] = {str(n): [] for n in thread_counts(args)}
    for r in range(args.rounds):
        for n in thread_counts(args):
            torch.set_num_threads(n)
            load = [round(x, 2) for x in os.getloadavg()]
            d = decode_steady(work, args)
            laps, _, logits = replica_decode(work, args)
            row = {"load_average": load, "decode_ms": d["ms"], "decode_total_s": d["total_s"]}
            row.update({"replica_ms": laps, "probe": probe(step_bytes, args.best_of)})
            rounds[str(n)].append(row)
            print(f"round {r + 1}, {n} thread(s): {row['probe']}, {d['ms']}", flush=True)
    results = {n: summarise(rs, pieces) for n, rs in rounds.items()}
    experiments = {}
    for n in thread_counts(args):
        torch.set_num_threads(n)
        experiments[f"{n} thread(s)"] = {
            "statistics ops ms": stats_ops(logits, args.top_k, 10),
            "statistics variants ms": stats_variants(logits, args.top_k, 10),
            "attention kernel ms per layer": attention_variants(work, args, 10),
            "products ms per call": product_variants(work, 5),
        }
    torch.set_num_threads(args.threads)
    # the wait policy the t5score command sets (t5score/threads.py) must be set before torch loads
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    cmd = [
        sys.executable,
        __file__,
        "--decode-only",
        "--threads",
        str(args.threads),
        "--steps",
        str(args.steps),
    ]
    cmd += ["--batch", str(args.batch), "--source-len", str(args.source_len), "--top-k", str(args.top_k)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    experiments[f"decode at {args.threads} threads, OMP_WAIT_POLICY=PASSIVE (subprocess), steady ms"] = (
        json.loads(done.stdout.strip().splitlines()[-1])
        if done.returncode == 0
        else {"error": done.stderr[-300:]}
    )
    ops = torch_profile(work, args)
    inner = cfg.num_heads * cfg.d_kv
    shapes = {
        "self-attention q/k/v": (cfg.d_model, 3 * inner),
        "attention out, cross q": (inner, cfg.d_model),
        "feed-forward in": (cfg.d_model, cfg.d_ff),
        "feed-forward out": (cfg.d_ff, cfg.d_model),
        "output projection": (cfg.d_model, cfg.vocab_size),
    }
    machines = {
        str(n): measure_machine(n, step_bytes, shapes, args.batch, args.best_of) for n in thread_counts(args)
    }
    torch.set_num_threads(args.threads)
    payload = {
        "workload": {
            "batch": args.batch,
            "source_len": args.source_len,
            "steps": args.steps,
            "steady_steps": [8, args.steps - 9],
            "mean_self_attention_keys": keys,
            "top_k": args.top_k,
            "threads": args.threads,
            "rounds": args.rounds,
            "best_of": args.best_of,
            "model": "random T5ForConditionalGeneration of t5-small's shape (benchmarks/common.py), seed 0",
        },
        "machine": at_start,
        "versions": versions(),
        "command": " ".join(["python", *sys.argv]),
        "replica_max_abs_logit_diff_vs_engine": diff,
        "by_threads": results,
        "experiments": experiments,
        "torch_profiler_top_ops": ops,
        "machine_measurements": machines,
        "wall_s": time.perf_counter() - started,
        "machine_at_end": machine(),
    }
    write_json(args.out, payload)
    for n, r in results.items():
        loop = r["decode_ms"]["loop step (interval between steps)"]
        print(f"{n} thread(s): step {loop:.2f} ms, {r['ratio']['loop step / bound (max)']:.2f}x the bound")
    print(f"wrote {args.out} in {payload['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
