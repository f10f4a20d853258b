"""In-flight batching on realistic decoding: natural EOS, spread output lengths, mixed source lengths (issue 18).

Two workloads, the same inputs for every contender, per-token statistics (log-probability, entropy, top-1,
top-5 of the raw logits) for every row:

* ``shipped``: the shipped code-summarisation T5 on its 300-row test split, sources cut at 64 tokens,
  ``max_new_tokens`` 64 (its own EOS: most rows end early, some loop to the limit);
* ``spread``: a random model of t5-small's shape (``initializer_factor`` 2.5: rows keep changing instead of
  locking onto one token) whose EOS row of the output layer is scaled (x4.5, tied with the embedding), so
  rows end at their own EOS after 1 to 128 tokens (median ~19) and about a quarter run to the limit (128);
  128 rows, sources of 32-256 random tokens ending with EOS.

Contenders, round-robin with the order rotated each repetition (median): in-flight (``inflight_decode``, 16
slots, all rows at once, longest source first), the same in-flight in 64-row batches (``t5score predict`` decodes data batches
of 128 rows by default), static batches of 16 (``greedy_decode``), static + ``drop_finished``, HF
``generate(output_logits=True, return_dict_in_generate=True)`` on the same batches of 16 + ``token_stats``
of each step's logits, CTranslate2 ``translate_batch(max_batch_size=16, return_logits_vocab=True)`` +
``token_stats``. Every row's tokens are compared with static batching's.

    python benchmarks/bench_inflight.py --out reports/bench/inflight.json          # ~13 min on 2 cores at load ~1.5
    python benchmarks/bench_inflight.py --quick --out /tmp/inflight-quick.json     # smoke run, ~4 min
"""

from __future__ import annotations

import os

# as the t5score command does (t5score.threads): the passive OpenMP wait policy, unless the user chose one
WAIT_POLICY_SET = not any(
    v in os.environ for v in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")
)
if WAIT_POLICY_SET:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from common import ROOT, T5_SMALL, machine, median, save_model_dir, versions, write_json  # noqa: E402
from inflight_bart import bart_workload  # noqa: E402

from t5score.engine.decode import greedy_decode  # noqa: E402
from t5score.engine.inflight import inflight_decode  # noqa: E402
from t5score.engine.options import DecodeOptions  # noqa: E402
from t5score.engine.processors import resolve_generation  # noqa: E402
from t5score.engine.stats import token_stats  # noqa: E402

DATA = ROOT / "t5score" / "assets" / "data" / "code_summary_test.jsonl"
INFLIGHT = "in-flight, 16 slots"
INFLIGHT_64 = "in-flight, 16 slots, in 64-row batches"
STATIC = "static batches of 16"
DROP = "static batches of 16, drop_finished"
GENERATE = "HF generate + token_stats, batches of 16"
CT2 = "CTranslate2 float32 translate_batch(max_batch_size=16) + token_stats"
LENGTH_BINS = (
    1,
    3,
    6,
    12,
    24,
    48,
    96,
)  # histogram of output lengths: [1, 3), [3, 6), ..., [96, limit), limit

# per row: tokens, log-probabilities, entropies; and for the reference (static batching) the top-1 minus top-2
# log-probability at every step (empty otherwise), to tell near-ties from real differences
Rows = tuple[list[list[int]], list[list[float]], list[list[float]], list[list[float]]]


@dataclass
class Workload:
    name: str
    description: str
    model: torch.nn.Module
    ids: torch.Tensor  # [N, S] sources, longest first, right-padded
    mask: torch.Tensor  # [N, S]
    steps: int  # max_new_tokens
    ct2_source: list[list[str]]  # the same sources as tokens for CTranslate2
    ct2_ids: object  # token strings -> id
    hf_dir: Path | None  # a saved copy of the model, for the CTranslate2 converter
    tmp: Path  # scratch folder (the CTranslate2 model), removed at the end
    slots: int = 16
    setup: dict = field(default_factory=dict)

    def parts(self, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Consecutive parts of ``size`` rows, each cut to its own longest source (as t5score's batches)."""
        out = []
        for s in range(0, len(self.ids), size):
            mask = self.mask[s : s + size]
            width = int(mask.sum(1).max())
            out.append((self.ids[s : s + size, :width], mask[:, :width]))
        return out


def shipped_workload(rows: int, tmp: Path) -> Workload:
    from t5score.engine.modeling import load_model_and_tokenizer
    from t5score.runs.decode_rows import tokenize_sources

    model, tok = load_model_and_tokenizer("default")
    texts = [json.loads(line)["source"] for line in DATA.read_text().splitlines()][:rows]
    texts.sort(key=len, reverse=True)  # as t5score.data.rows.plan_batches: longest source first (stable)
    ids, mask, _ = tokenize_sources(tok, texts, 64, torch.device("cpu"))
    ct2 = [tok.convert_ids_to_tokens(r[m.bool()].tolist()) for r, m in zip(ids, mask, strict=True)]
    return Workload(
        "shipped",
        f"the shipped tiny code-summarisation T5 ({model.config.d_model}-d, {model.config.num_layers}+"
        f"{model.config.num_decoder_layers} layers, vocab {model.config.vocab_size}) on its test split: "
        f"{len(texts)} rows, sources cut at 64 tokens, max_new_tokens 64, its own EOS",
        model,
        ids,
        mask,
        64,
        ct2,
        tok.convert_tokens_to_ids,
        Path(model.name_or_path),
        tmp,
    )


def spread_workload(rows: int, steps: int, eos_scale: float, factor: float, tmp: Path) -> Workload:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(**T5_SMALL, initializer_factor=factor)).eval()
    with torch.no_grad():
        model.lm_head.weight[model.config.eos_token_id] *= eos_scale  # tied: the EOS embedding too
    g = torch.Generator().manual_seed(4)
    lengths = sorted(torch.randint(32, 257, (rows,), generator=g).tolist(), reverse=True)
    ids = torch.zeros(rows, lengths[0], dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(3, T5_SMALL["vocab_size"], (n,), generator=g)
        ids[i, n - 1] = 1  # EOS ends every source
    mask = (ids != 0).long()
    names = {0: "<pad>", 1: "</s>", 2: "<unk>"}
    ct2 = [[names.get(i, f"w{i}") for i in r[m.bool()].tolist()] for r, m in zip(ids, mask, strict=True)]
    special = {v: k for k, v in names.items()}

    def to_ids(tokens: list[str]) -> list[int]:
        return [special[t] if t in special else int(t[1:]) for t in tokens]

    return Workload(
        "spread",
        f"random t5-small-shaped T5 (d_model 512, 6+6 layers, 8 heads, d_ff 2048, vocab 32,128, seed 0, "
        f"initializer_factor {factor}), EOS row of the (tied) output layer x{eos_scale}: {rows} rows, sources "
        f"of 32-256 random tokens ending with EOS, max_new_tokens {steps}, natural EOS",
        model,
        ids,
        mask,
        steps,
        ct2,
        to_ids,
        tmp / "spread-hf",
        tmp,
    )


def engine_rows(out, gap: bool = False) -> Rows:
    n = out.num_tokens.tolist()
    top2 = out.topk_logprobs[..., 0] - out.topk_logprobs[..., 1] if gap else None  # [B, T]
    return (
        [out.token_ids[b, : n[b]].tolist() for b in range(len(n))],
        [out.token_logprobs[b, : n[b]].tolist() for b in range(len(n))],
        [out.entropies[b, : n[b]].tolist() for b in range(len(n))],
        [top2[b, : n[b]].tolist() for b in range(len(n))] if gap else [],
    )


def concat(parts: list[Rows]) -> Rows:
    return tuple([r for p in parts for r in p[i]] for i in range(4))  # type: ignore[return-value]


class Contenders:
    def __init__(self, w: Workload, threads: int):
        self.w, self.threads = w, threads
        self.opts = DecodeOptions(max_new_tokens=w.steps, top_k=5)
        self.drop = DecodeOptions(max_new_tokens=w.steps, top_k=5, drop_finished=True)
        self.generation = resolve_generation(w.model, self.opts)  # once per run, as t5score predict does
        self.batches, self.batches64 = w.parts(16), w.parts(64)
        self.translator = None

    def inflight(self, parts=None) -> Rows:
        todo = parts if parts is not None else [(self.w.ids, self.w.mask)]
        return concat(
            [
                engine_rows(
                    inflight_decode(
                        self.w.model, i, m, self.opts, slots=self.w.slots, generation=self.generation
                    )
                )
                for i, m in todo
            ]
        )

    def static(self, drop: bool = False) -> Rows:
        opts = self.drop if drop else self.opts
        return concat(
            [
                engine_rows(greedy_decode(self.w.model, i, m, opts, generation=self.generation), gap=not drop)
                for i, m in self.batches
            ]
        )

    def generate(self) -> Rows:
        eos = self.w.model.config.eos_token_id
        parts = []
        for i, m in self.batches:
            out = self.w.model.generate(
                input_ids=i,
                attention_mask=m,
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.w.steps,
                output_logits=True,
                return_dict_in_generate=True,
            )
            seq = out.sequences[:, 1:]  # [B, T]
            stats = [token_stats(lg, tokens=seq[:, t], top_k=5) for t, lg in enumerate(out.logits)]
            lp = torch.stack([s.token_logprobs for s in stats], 1)  # [B, T]
            ent = torch.stack([s.entropies for s in stats], 1)
            rows = seq.tolist()
            n = [r.index(eos) + 1 if eos in r else len(r) for r in rows]
            parts.append(
                (
                    [r[:k] for r, k in zip(rows, n, strict=True)],
                    [lp[b, :k].tolist() for b, k in enumerate(n)],
                    [ent[b, :k].tolist() for b, k in enumerate(n)],
                    [],
                )
            )
        return concat(parts)

    def ct2_setup(self) -> str | None:
        """Convert the model for CTranslate2; a reason when it cannot run."""
        try:
            import ctranslate2
        except ImportError:
            return "ctranslate2 is not installed (pip install ctranslate2)"
        start = time.perf_counter()
        try:
            if not (self.w.hf_dir / "config.json").exists():
                save_model_dir(self.w.model, self.w.hf_dir)
            out = self.w.tmp / f"{self.w.name}-ct2"
            ctranslate2.converters.TransformersConverter(str(self.w.hf_dir)).convert(str(out), force=True)
            self.translator = ctranslate2.Translator(
                str(out), device="cpu", compute_type="float32", inter_threads=1, intra_threads=self.threads
            )
        except Exception as err:  # noqa: BLE001 - any converter failure: reported, the row is skipped
            return f"CTranslate2 could not convert the model: {type(err).__name__}: {err}"
        self.w.setup["CTranslate2 convert float32 [s]"] = time.perf_counter() - start
        return None

    def ct2(self) -> Rows:
        import numpy as np

        results = self.translator.translate_batch(
            self.w.ct2_source,
            max_batch_size=16,
            beam_size=1,
            max_decoding_length=self.w.steps,
            return_end_token=True,
            return_logits_vocab=True,
        )
        tokens, lps, ents = [], [], []
        for r in results:
            ids = self.w.ct2_ids(r.hypotheses[0])
            logits = torch.from_numpy(np.stack([np.asarray(s) for s in r.logits[0]]))  # [L, V]
            s = token_stats(
                logits, tokens=torch.tensor(ids), top_k=5
            )  # the same statistics as every contender
            tokens.append(ids)
            lps.append(s.token_logprobs.tolist())
            ents.append(s.entropies.tolist())
        return tokens, lps, ents, []


def compare(rows: Rows, ref: Rows) -> dict:
    """Rows whose tokens equal the reference's; for the others the first differing step and the reference's
    top-1 minus top-2 log-probability there; largest statistic differences over the equal rows."""
    equal, mismatches, d_lp, d_ent = 0, [], 0.0, 0.0
    for b, (a, r) in enumerate(zip(rows[0], ref[0], strict=True)):
        if a == r:
            equal += 1
            for x, y in zip(rows[1][b], ref[1][b], strict=True):
                d_lp = max(d_lp, abs(x - y))
            for x, y in zip(rows[2][b], ref[2][b], strict=True):
                d_ent = max(d_ent, abs(x - y))
            continue
        step = next((t for t, (x, y) in enumerate(zip(a, r, strict=False)) if x != y), min(len(a), len(r)))
        gap = ref[3][b][step] if step < len(ref[3][b]) else None
        mismatches.append({"row": b, "first_differing_step": step, "reference_top2_gap": gap})
    return {
        "rows_equal": equal,
        "rows": len(ref[0]),
        "mismatches": mismatches,
        "max_abs_logprob_delta_equal_rows": d_lp,
        "max_abs_entropy_delta_equal_rows": d_ent,
    }


def length_summary(lengths: list[int], limit: int) -> dict:
    q = statistics.quantiles(lengths, n=10) if len(lengths) > 1 else lengths * 9
    bins = [b for b in LENGTH_BINS if b < limit] + [limit]
    hist = {
        f"[{lo}, {hi})": sum(lo <= n < hi for n in lengths) for lo, hi in zip(bins, bins[1:], strict=False)
    }
    hist[f"{limit} (the limit)"] = sum(n >= limit for n in lengths)
    return {
        "mean": statistics.fmean(lengths),
        "median": statistics.median(lengths),
        "min": min(lengths),
        "p10": q[0],
        "p90": q[8],
        "max": max(lengths),
        "at_limit": sum(n >= limit for n in lengths),
        "histogram": hist,
    }


@torch.inference_mode()
def encoder_padding(c: Contenders) -> dict:
    """The encoder alone, once each: all rows padded to the longest source (as one in-flight call runs it),
    in 64-row batches and in 16-row batches, each cut to its own longest source (as static batching)."""
    out = {}
    for label, parts in (
        ("all rows, padded to the longest source", [(c.w.ids, c.w.mask)]),
        ("64-row batches, each cut to its longest", c.batches64),
        ("16-row batches, each cut to its longest", c.batches),
    ):
        start = time.perf_counter()
        for ids, mask in parts:
            c.w.model.get_encoder()(input_ids=ids, attention_mask=mask)
        out[f"encoder, {label} [s]"] = time.perf_counter() - start
        out[f"encoder, {label}: padded source tokens"] = sum(i.numel() for i, _ in parts)
    out["real source tokens"] = int(c.w.mask.sum())
    return out


def table(c: Contenders) -> dict:
    """Every contender of ``c``'s workload: name -> a call returning its :data:`Rows`."""
    return {
        INFLIGHT: c.inflight,
        INFLIGHT_64: lambda: c.inflight(c.batches64),
        STATIC: c.static,
        DROP: lambda: c.static(drop=True),
        GENERATE: c.generate,
        CT2: c.ct2,
    }


def run_workload(w: Workload, args) -> dict:
    c = Contenders(w, args.threads)
    skipped = {}
    reason = "--skip ct2" if "ct2" in args.skip else c.ct2_setup() if w.hf_dir else "not run on this workload"
    if reason is not None:
        skipped[CT2] = reason
    for name in table(c):
        if name not in skipped and any(s in name for s in args.skip if s != "ct2"):
            skipped[name] = "--skip"
    contenders = {k: v for k, v in table(c).items() if k not in skipped}
    # warm-up on the first rows, 4 steps (weight packing, allocations, imports): not timed
    warm = Contenders(
        Workload(**{**w.__dict__, "ids": w.ids[:20], "mask": w.mask[:20], "steps": 4}), args.threads
    )
    warm.w.ct2_source, warm.translator = w.ct2_source[:20], c.translator
    for name, fn in table(warm).items():
        if name in contenders:
            fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    outputs: dict[str, Rows] = {}
    names = list(contenders)
    loads = []
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            start = time.perf_counter()
            outputs[name] = contenders[name]()
            times[name].append(time.perf_counter() - start)
        loads.append([round(x, 2) for x in os.getloadavg()])
        print(
            f"{w.name} rep {rep + 1}: " + ", ".join(f"{k[:22]}={times[k][-1]:.1f}s" for k in names),
            flush=True,
        )
    rows = len(w.ids)
    ref = outputs.get(STATIC)
    results, diagnostics = {}, encoder_padding(c)
    for name, ts in times.items():
        produced = sum(len(r) for r in outputs[name][0])
        results[name] = {
            "median_s": median(ts),
            "runs_s": ts,
            "rows_per_s": rows / median(ts),
            "generated_tokens": produced,
            "tokens_per_s": produced / median(ts),
        }
    agreement = {n: compare(o, ref) for n, o in outputs.items() if n != STATIC} if ref else {}

    def ratio(a: str, b: str) -> float | None:
        return results[b]["median_s"] / results[a]["median_s"] if a in results and b in results else None

    return {
        "description": w.description,
        "rows": rows,
        "max_new_tokens": w.steps,
        "slots": w.slots,
        "source_tokens": length_summary(w.mask.sum(1).tolist(), 10**9) | {"histogram": None},
        "output_lengths": length_summary([len(r) for r in ref[0]], w.steps) if ref else None,
        "results": results,
        "ratios_rows_per_s": {
            "in-flight / static": ratio(INFLIGHT, STATIC),
            "in-flight / drop_finished": ratio(INFLIGHT, DROP),
            "in-flight / generate": ratio(INFLIGHT, GENERATE),
            "in-flight / CTranslate2": ratio(INFLIGHT, CT2),
            "in-flight in 64-row batches / static": ratio(INFLIGHT_64, STATIC),
            "static / generate": ratio(STATIC, GENERATE),
        },
        "agreement_with_static": agreement,
        "diagnostics": diagnostics,
        "skipped": skipped,
        "setup": w.setup,
        "load_after_each_rep": loads,
    }


def targets(d: dict) -> list[tuple]:
    """(name, measured, goal, minimum) rows for the targets table of ``reports/benchmarks.md``."""
    out = []
    for key, label in (("spread", "spread-length workload"), ("shipped", "shipped model on its test split")):
        if key not in d["workloads"]:
            continue
        r = d["workloads"].get(key, {}).get("ratios_rows_per_s", {})
        out.append(
            (f"in-flight vs static batching, rows/s ({label})", r.get("in-flight / static"), ">= 1.5x", 1.5)
        )
        out.append(
            (f"in-flight vs HF generate, rows/s ({label})", r.get("in-flight / generate"), ">= 2.5x", 2.5)
        )
    return out


def section(d: dict) -> list[str]:
    """The ``reports/benchmarks.md`` section for this JSON (``benchmarks/report.py`` renders it)."""
    m, end = d["machine"], d.get("machine_at_end", {})
    lines = [
        "## In-flight batching on spread output lengths",
        "",
        f"`{d['command']}`: {d['threads']} torch threads (CTranslate2 `intra_threads` the same), OpenMP wait "
        f"policy {d['omp_wait_policy']}; {d['reps']} repetitions round-robin, order rotated, median. Every "
        "contender does the same job: the same sources (sorted longest first, as t5score's batches), greedy "
        "decoding to each row's own EOS or the limit, per-token log-probability, entropy, top-1 and top-5 of "
        "the raw logits for every generated token, rows back on the CPU as lists. Static batches and "
        "`generate` run on batches of 16 rows, each cut to its own longest source; in-flight decodes the rows "
        "through 16 decoder slots (a row that ends hands its slot to the next source), all rows in one call, "
        "and, as `t5score predict` does by default, in batches of 64 rows. Load (1/5/15 min) "
        f"{m.get('load_average')} at the start, {end.get('load_average')} at the end (a shared machine).",
        "",
    ]
    for key, w in d["workloads"].items():
        ln, src = w["output_lengths"], w["source_tokens"]
        hist = ", ".join(f"{k}: {v}" for k, v in ln["histogram"].items())
        lines += [
            f"### Workload `{key}`",
            "",
            f"{w['description'][0].upper()}{w['description'][1:]}. Source tokens {src['min']}-{src['max']} "
            f"(median {src['median']:.0f}). Output lengths (static batching's rows, EOS included): mean "
            f"{ln['mean']:.1f}, median {ln['median']:.0f}, min {ln['min']}, p10 {ln['p10']:.0f}, p90 "
            f"{ln['p90']:.0f}, max {ln['max']}, {ln['at_limit']} of {w['rows']} rows at the limit; histogram "
            f"{hist}. Load after each repetition {w['load_after_each_rep']}.",
            "",
            "| contender | median s | runs (s) | rows/s | generated tokens/s | in-flight's speed-up | rows equal "
            "to static's | max abs delta log p (equal rows) |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        res, agree = w["results"], w["agreement_with_static"]
        fast = res.get(INFLIGHT, {}).get("median_s")
        for name, r in res.items():
            a = agree.get(name)
            equal = "(reference)" if name == STATIC else f"{a['rows_equal']}/{a['rows']}" if a else "n/a"
            delta = f"{a['max_abs_logprob_delta_equal_rows']:.1e}" if a else "-"
            speed = f"{r['median_s'] / fast:.2f}x" if fast and name != INFLIGHT else "-"
            runs = ", ".join(f"{x:.2f}" for x in r["runs_s"])
            lines.append(
                f"| {name} | {r['median_s']:.2f} | {runs} | {r['rows_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
                f"{speed} | {equal} | {delta} |"
            )
        for name, why in w["skipped"].items():
            lines.append(f"| {name} | skipped: {why} | | | | | | |")
        lines.append("")
        ratios = w["ratios_rows_per_s"]
        shown = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items() if v is not None)
        goals = [("in-flight / static", 1.5), ("in-flight / generate", 2.5)]
        met = "; ".join(
            f"{k} >= {g}x: "
            + ("not measured" if ratios.get(k) is None else "met" if ratios[k] >= g else "**not met**")
            for k, g in goals
        )
        lines += [f"Rows/s ratios (same rows, same run): {shown}. Targets: {met}.", ""]
        for name, a in agree.items():
            if a["mismatches"]:
                shown = "; ".join(
                    f"row {x['row']} from step {x['first_differing_step']} (static's top-1 - top-2 log p there "
                    f"{x['reference_top2_gap']:.1e})"
                    if x["reference_top2_gap"] is not None
                    else f"row {x['row']} (length)"
                    for x in a["mismatches"][:8]
                )
                more = len(a["mismatches"]) - 8
                lines.append(
                    f"- {name}: {len(a['mismatches'])} row{'s' * (len(a['mismatches']) > 1)} differ"
                    + f"{'s' * (len(a['mismatches']) == 1)} from static's: {shown}"
                    + (f"; {more} more" if more > 0 else "")
                )
        diag = w.get("diagnostics") or {}
        if diag:
            lines.append(
                "- where padding costs: "
                + "; ".join(
                    f"{k.removesuffix(' [s]')} {v:.2f} s" if k.endswith("[s]") else f"{k} {v:,}"
                    for k, v in diag.items()
                )
            )
        if w["setup"]:
            lines.append(
                "- one-off costs, not timed: " + "; ".join(f"{k} {v:.1f}" for k, v in w["setup"].items())
            )
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/inflight.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run: 48 + 32 rows, one repetition")
    parser.add_argument(
        "--only", nargs="+", choices=["shipped", "spread", "bart"], default=["shipped", "spread"]
    )
    parser.add_argument("--shipped-rows", type=int, default=300)
    parser.add_argument("--spread-rows", type=int, default=128)
    parser.add_argument("--spread-steps", type=int, default=128)
    parser.add_argument("--bart-rows", type=int, default=96)
    parser.add_argument("--bart-decay", type=float, default=1.07, help="exponential_decay_length_penalty")
    parser.add_argument("--eos-scale", type=float, default=4.5, help="the spread model's EOS row x this")
    parser.add_argument(
        "--init-factor", type=float, default=2.5, help="the spread model's initializer_factor"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="contenders to leave out: ct2, generate, 64-row"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.shipped_rows, args.spread_rows, args.bart_rows, args.reps = 48, 32, 24, 1
    torch.set_num_threads(args.threads)
    at_start = machine()
    tmp = Path(tempfile.mkdtemp(prefix="t5score-inflight-"))
    workloads = {}
    try:
        for name in args.only:
            start = time.perf_counter()
            if name == "shipped":
                w = shipped_workload(args.shipped_rows, tmp)
            elif name == "bart":
                w = bart_workload(args.bart_rows, args.spread_steps, args.bart_decay, tmp)
            else:
                w = spread_workload(
                    args.spread_rows, args.spread_steps, args.eos_scale, args.init_factor, tmp
                )
            workloads[name] = run_workload(w, args)
            workloads[name]["wall_s"] = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "threads": args.threads,
        "reps": args.reps,
        "omp_wait_policy": "PASSIVE (set by the script, as the t5score command does)"
        if WAIT_POLICY_SET
        else f"the user's ({os.environ.get('OMP_WAIT_POLICY', 'other variables')})",
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "workloads": workloads,
    }
    write_json(args.out, payload)
    for name, w in workloads.items():
        print(name, json.dumps(w["ratios_rows_per_s"]), f"{w['wall_s']:.0f}s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
