"""Greedy decoding with per-token statistics: t5score's engine beside its alternatives, in one run.

Workload (issue 7): a random model of t5-small's shape, batch 16, 128-token sources, 64 new tokens forced
(EOS unreachable), per-token statistics (log-probability, entropy, top-1 probability, top-5) for every
contender. Contenders run round-robin, in a rotated order each repetition, so load changes hit all alike.

    python benchmarks/bench_decode.py --out reports/bench/decode.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import build_model, machine, make_inputs, median, save_model_dir, versions, write_json

from t5score.engine.decode import greedy_decode
from t5score.engine.logits_store import BatchLogitsWriter
from t5score.engine.options import DecodeOptions
from t5score.engine.quantize import quantize_int8
from t5score.engine.stats import token_stats
from t5score.engine.t5 import kernels


def old_token_stats(logits: torch.Tensor, top_k: int = 5):
    """The first version of t5score.engine.stats.token_stats (log_softmax, exp, mask, isfinite), for the lever table."""
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    top1_logp, top1_ids = logp.max(dim=-1)
    probs = logp.exp()
    entropies = -(probs * logp.masked_fill(probs == 0, 0.0)).sum(dim=-1)
    topk = logp.topk(top_k, dim=-1)
    nonfinite = ~torch.isfinite(logits).all(dim=-1)
    return top1_ids, top1_logp, entropies, top1_logp.exp(), topk, nonfinite


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Workload:
    def __init__(self, args):
        self.args = args
        self.device = torch.device(args.device)
        self.dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
        self.model = build_model().to(self.device, self.dtype)
        self.input_ids, self.mask = (
            t.to(self.device) for t in make_inputs(args.batch, args.source_len, 32128)
        )
        self.steps = args.new_tokens
        self.tmp = Path(tempfile.mkdtemp(prefix="t5score-bench-"))

    # --- contenders: each returns (token ids [B, T] on CPU, step-0 logits [B, V] float32 on CPU or None) ---
    def engine_stats(self, model=None, **options):
        opts = DecodeOptions(max_new_tokens=self.steps, **options)
        out = greedy_decode(model or self.model, self.input_ids, self.mask, opts)
        sync(self.device)
        return out.token_ids.cpu(), None

    def engine_full(self):
        folder = self.tmp / "full"
        writer = BatchLogitsWriter(
            folder, 0, self.input_ids.shape[0], self.steps, self.model.config.vocab_size, "float16"
        )
        opts = DecodeOptions(max_new_tokens=self.steps)
        out = greedy_decode(self.model, self.input_ids, self.mask, opts, logits_sink=writer)
        writer.close(
            [str(i) for i in range(len(out.num_tokens))],
            out.num_tokens.tolist(),
            list(range(len(out.num_tokens))),
        )
        sync(self.device)
        return out.token_ids.cpu(), None

    def generate(self):
        out = self.model.generate(
            input_ids=self.input_ids,
            attention_mask=self.mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=self.steps,
            min_new_tokens=self.steps,
            output_logits=True,
            return_dict_in_generate=True,
        )
        logits = torch.stack(out.logits, dim=1)  # [B, T, V]
        token_stats(logits, tokens=out.sequences[:, 1:], top_k=5)
        sync(self.device)
        return out.sequences[:, 1:].cpu(), out.logits[0].float().cpu()

    def naive(self):
        """The tutorial loop: the whole model (encoder included) on the growing decoder input, no cache."""
        start = self.model.config.decoder_start_token_id
        dec = torch.full((self.input_ids.shape[0], 1), start, dtype=torch.long, device=self.device)
        first = None
        with torch.inference_mode():
            for _ in range(self.steps):
                logits = self.model(
                    input_ids=self.input_ids, attention_mask=self.mask, decoder_input_ids=dec, use_cache=False
                ).logits[:, -1]
                first = logits.float().cpu() if first is None else first
                stats = token_stats(logits, top_k=5)
                dec = torch.cat([dec, stats.top1_ids[:, None]], dim=1)
        sync(self.device)
        return dec[:, 1:].cpu(), first

    def ct2_translator(self, compute_type: str):
        import ctranslate2

        hf_dir = self.tmp / "hf"
        if not (hf_dir / "config.json").exists():
            save_model_dir(build_model(), hf_dir)  # same seed: the same weights as self.model (float32)
        out_dir = self.tmp / f"ct2-{compute_type}"
        quant = None if compute_type == "float32" else compute_type
        ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(
            str(out_dir), quantization=quant, force=True
        )
        device = "cuda" if self.device.type == "cuda" else "cpu"
        return ctranslate2.Translator(
            str(out_dir),
            device=device,
            compute_type=compute_type,
            inter_threads=1,
            intra_threads=torch.get_num_threads(),
        )

    def ct2_tokens_only(self, translator):
        """CTranslate2's own speed: tokens only, no logits out, no statistics (not the same job)."""
        source = [[f"w{i}" if i > 2 else "</s>" for i in row] for row in self.input_ids.tolist()]
        translator.translate_batch(
            source, beam_size=1, max_decoding_length=self.steps, min_decoding_length=self.steps
        )
        return None, None

    def ct2(self, translator):
        import numpy as np

        source = [[f"w{i}" if i > 2 else "</s>" for i in row] for row in self.input_ids.tolist()]
        results = translator.translate_batch(
            source,
            beam_size=1,
            max_decoding_length=self.steps,
            min_decoding_length=self.steps,
            return_logits_vocab=True,
        )
        logits = torch.from_numpy(np.stack([np.stack([np.asarray(s) for s in r.logits[0]]) for r in results]))
        token_stats(logits, top_k=5)  # the same statistics as every other contender
        special = {"<pad>": 0, "</s>": 1, "<unk>": 2}
        ids = torch.tensor(
            [[special[t] if t in special else int(t[1:]) for t in r.hypotheses[0]] for r in results]
        )
        return ids, logits[:, 0].clone()


def agreement(tokens: torch.Tensor, ref: torch.Tensor) -> float:
    n = min(tokens.shape[1], ref.shape[1])
    return float((tokens[:, :n] == ref[:, :n]).float().mean()) if n else float("nan")


def levers(work: Workload, reps: int) -> dict:
    """Single-factor measurements on the same model: prepacking, statistics, EOS handling."""
    out: dict = {}
    logits = torch.randn(work.args.batch, work.model.config.vocab_size, device=work.device) * 5
    for name, fn in (
        ("token_stats (single exp)", lambda: token_stats(logits, top_k=5)),
        ("old token_stats (log_softmax+exp+masks)", lambda: old_token_stats(logits)),
    ):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            for _ in range(work.steps):
                fn()
            sync(work.device)
            times.append(time.perf_counter() - start)
        out[f"{name}, {work.steps} calls [s]"] = median(times)
    # prepacked weights on/off (fast engine), interleaved
    times = {"fast step, prepacked weights": [], "fast step, plain F.linear": []}
    original = kernels.can_pack
    for _ in range(reps):
        for name in times:
            kernels.can_pack = original if "prepacked" in name else (lambda w: False)
            kernels.PACKED.clear()
            work.engine_stats()  # pack (or not) outside the timing
            start = time.perf_counter()
            work.engine_stats()
            times[name].append(time.perf_counter() - start)
    kernels.can_pack = original
    kernels.PACKED.clear()
    out.update({f"{k} [s]": median(v) for k, v in times.items()})
    # EOS handling on a workload where rows stop early (EOS row of the output layer scaled x3.5)
    model = build_model(eos_reachable=True).to(work.device, work.dtype)
    with torch.no_grad():
        model.lm_head.weight[1] *= 3.5
    variants = {
        "eos_check_every=1": {},
        "eos_check_every=4": {"eos_check_every": 4},
        "drop_finished=True": {"drop_finished": True},
        "drop_finished=True, eos_check_every=4": {"drop_finished": True, "eos_check_every": 4},
    }
    times = {k: [] for k in variants}
    lengths = None
    warm_up = DecodeOptions(max_new_tokens=work.steps)
    greedy_decode(model, work.input_ids, work.mask, warm_up)  # (packing)
    for _ in range(reps):
        for name, opts in variants.items():
            start = time.perf_counter()
            options = DecodeOptions(max_new_tokens=work.steps, **opts)
            result = greedy_decode(model, work.input_ids, work.mask, options)
            sync(work.device)
            times[name].append(time.perf_counter() - start)
            lengths = sorted(result.num_tokens.tolist())
    out.update({f"early-EOS workload, {k} [s]": median(v) for k, v in times.items()})
    out["early-EOS workload, row lengths"] = lengths
    out.update(length_sorting(work, reps))
    return out


def length_sorting(work: Workload, reps: int, rows: int = 64) -> dict:
    """Sources of mixed lengths (8 to 2 x source_len tokens) in batches taken in input order vs sorted by
    length, as ``t5score.data.rows.plan_batches`` does: padding costs encoder and cross-attention work."""
    from t5score.data.rows import plan_batches
    from t5score.records import SourceRow

    g = torch.Generator().manual_seed(7)
    lengths = torch.randint(8, 2 * work.args.source_len + 1, (rows,), generator=g).tolist()
    sources = [torch.randint(3, 32128, (n,), generator=g) for n in lengths]
    for ids in sources:
        ids[-1] = 1  # EOS ends every source
    fake = [
        SourceRow(position=i, id=str(i), source="x" * n) for i, n in enumerate(lengths)
    ]  # length = tokens
    plans = {
        "in input order": plan_batches(fake, work.args.batch, sort_by_length=False),
        "sorted by length (t5score)": plan_batches(fake, work.args.batch),
    }
    batches = {}
    for name, plan in plans.items():
        batches[name] = []
        for positions in plan:
            width = max(lengths[p] for p in positions)
            ids = torch.zeros(len(positions), width, dtype=torch.long)
            for r, p in enumerate(positions):
                ids[r, : lengths[p]] = sources[p]
            batches[name].append((ids.to(work.device), (ids != 0).long().to(work.device)))
    times = {name: [] for name in plans}
    for _ in range(reps):
        for name, todo in batches.items():
            start = time.perf_counter()
            for ids, mask in todo:
                greedy_decode(work.model, ids, mask, DecodeOptions(max_new_tokens=work.steps))
            sync(work.device)
            times[name].append(time.perf_counter() - start)
    padded = {name: sum(ids.numel() for ids, _ in todo) / sum(lengths) for name, todo in batches.items()}
    out = {f"mixed-length sources ({rows} rows), batches {k} [s]": median(v) for k, v in times.items()}
    out.update(
        {f"mixed-length sources, padded / real source tokens, {k}": round(v, 2) for k, v in padded.items()}
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/decode.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--naive-reps", type=int, default=1, help="full runs of the (slow) no-cache loop")
    parser.add_argument("--skip", nargs="*", default=[], help="contender names to leave out (e.g. compile)")
    parser.add_argument(
        "--ct2-mkl",
        action="store_true",
        help="CT2_USE_MKL=1: CTranslate2 uses Intel MKL also on non-Intel CPUs (default: oneDNN there)",
    )
    args = parser.parse_args(argv)
    if args.ct2_mkl:
        os.environ["CT2_USE_MKL"] = "1"  # read once, when ctranslate2 first runs
    torch.set_num_threads(args.threads)
    at_start = machine()
    work = Workload(args)
    # a cold inductor cache: the compile time below is what a first run on a fresh machine pays
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work.tmp / "inductor")
    cpu = work.device.type == "cpu" and work.dtype == torch.float32
    contenders = {
        "t5score capture=stats": work.engine_stats,
        "t5score capture=full (float16 to disk)": work.engine_full,
        "t5score capture=stats, engine=hf (plain cached loop)": lambda: work.engine_stats(engine="hf"),
        "HF generate + token_stats": work.generate,
    }
    notes, setup = [], {}
    if cpu:
        start = time.perf_counter()
        int8 = quantize_int8(work.model)
        setup["quantize_int8 [s]"] = time.perf_counter() - start
        contenders["t5score capture=stats, int8 (quantize_int8)"] = lambda: work.engine_stats(model=int8)
    try:
        import ctranslate2  # noqa: F401

        for kind in ("float32", "int8") if cpu else ("bfloat16",):
            start = time.perf_counter()
            translator = work.ct2_translator(kind)
            setup[f"CTranslate2 convert {kind} [s]"] = time.perf_counter() - start
            name = f"CTranslate2 {kind}" + (" (MKL forced)" if args.ct2_mkl else "")
            contenders[f"{name} + token_stats"] = lambda t=translator: work.ct2(t)
            contenders[f"{name}, tokens only (no logits, no statistics)"] = lambda t=translator: (
                work.ct2_tokens_only(t)
            )
    except ImportError:
        notes.append("CTranslate2 not installed (pip install ctranslate2): its rows are missing.")
    if "compile" not in args.skip:
        start = time.perf_counter()
        work.engine_stats(compile=True)  # compiles the static decoder step for this batch shape
        setup["t5score compile=True, first call incl. compilation [s]"] = time.perf_counter() - start
        contenders["t5score capture=stats, compile=True (after warm-up)"] = lambda: work.engine_stats(
            compile=True
        )
    contenders = {k: v for k, v in contenders.items() if not any(s in k for s in args.skip if s != "compile")}

    # warm-up (allocations, packing, one-off imports), then round-robin repetitions
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    tokens: dict[str, torch.Tensor] = {}
    names = list(contenders)
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            start = time.perf_counter()
            ids, _ = contenders[name]()
            times[name].append(time.perf_counter() - start)
            if ids is not None:
                tokens[name] = ids
        print(
            f"rep {rep + 1}/{args.reps}: " + ", ".join(f"{k[:28]}={times[k][-1]:.2f}s" for k in names),
            flush=True,
        )
    naive_name = "naive loop, no cache (encoder re-run every step)"
    if args.naive_reps > 0 and "naive" not in args.skip:
        times[naive_name] = []
        for _ in range(args.naive_reps):
            start = time.perf_counter()
            tokens[naive_name], _ = work.naive()
            times[naive_name].append(time.perf_counter() - start)
        print(f"naive: {times[naive_name]}", flush=True)

    # token agreement with generate (int8 and CTranslate2 differ by design: see bench_int8.py for their effect)
    ref_tokens = tokens["HF generate + token_stats"]
    quality = {
        name: {"token_agreement_with_generate": agreement(ids, ref_tokens)} for name, ids in tokens.items()
    }
    distinct = int(ref_tokens.unique().numel())

    lever = levers(work, args.reps) if "levers" not in args.skip else {}
    tokens_out = args.batch * args.new_tokens
    rows = {
        k: {"median_s": median(v), "runs_s": v, "tokens_per_s": tokens_out / median(v)}
        for k, v in times.items()
    }
    payload = {
        "workload": {
            "batch": args.batch,
            "source_len": args.source_len,
            "new_tokens": args.new_tokens,
            "reps": args.reps,
            "threads": args.threads,
            "device": args.device,
            "dtype": args.dtype,
            "distinct_generated_tokens": distinct,
        },
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "command": " ".join(["python", *sys.argv]),
        "results": rows,
        "quality": quality,
        "setup": setup,
        "levers": lever,
        "notes": notes,
    }
    write_json(args.out, payload)
    with contextlib.suppress(OSError):
        shutil.rmtree(work.tmp)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
