"""Teacher-forced scoring, t5score vs the scorers users would pick instead, on the same pairs (issue 18, 3).

Models: random t5-small-shaped (d_model 512, 6+6 layers, 8 heads, d_ff 2048, vocab 32,128) and
BART-base-shaped (d_model 768, 6+6 layers, 12 heads, ffn 3072, vocab 50,265), seeded, eval, float32.
Inputs: random token ids written as words of an in-memory word-level tokenizer (``w<id>``, one token each,
the model's specials around them: T5 ``... </s>``, BART ``<s> ... </s>``), sources of 64-256 tokens, 8
candidates per source of 16-64 tokens (lengths as tokenized, specials included); 8 sources (64 pairs) on
T5, 4 (32 pairs) on BART by default (a full run: ~5 minutes on 2 quiet cores, twice that at a load of 5).
Every contender takes the texts and returns one number per pair (tokenization included in its time):

* ``t5score``: ``t5score.engine.forced.score_pairs`` (each distinct source encoded once, in runs of similar
  length; its candidates batched against it, sorted by length and cut where padding would cost more than a
  decoder forward; the fast T5 decoder for T5, the model's own forward for BART, with each source's
  cross-attention keys/values projected once and the output layer on real positions only), ``mean_logprob`` =
  BARTScore's number; and with ``include_eos=False, strip_bos=True``, ``sum_logprob`` = lm-eval's number.
* ``BARTScorer``: neulab/BARTScore ``bart_score.py`` ``BARTScorer.score`` (its loop re-implemented as in
  tests/scoring/test_peer_conventions.py): per batch of pairs in input order, tokenize both sides, run
  ``model(input_ids, attention_mask, labels)``, NLL of the log-softmax summed per row / target length,
  negated; every pair's source re-encoded. Batch 4 (its default) and 16.
* ``lm-eval``: lm-evaluation-harness ``HFLM._loglikelihood_tokens`` with the seq2seq backend (after
  ``TemplateLM._encode_pair``: context with special tokens, continuation without): requests sorted by
  descending total length (its ``Collator``), right-padded with zeros, ``model(input_ids, attention_mask,
  labels=continuations).logits``, log-softmax, the continuation's tokens gathered and summed; batch 1 (its
  default) and 16.

Each contender's numbers are checked against t5score's (relative 1e-4 of the magnitude; the script stops
if not). Contenders run round-robin, the order rotated each repetition; medians. Then an instrumented
t5score pass says where its time goes (tokenizing, encoder, cross-attention keys/values, decoder, output
layer, statistics), hooks on the model's modules do the same for ``BARTScorer.score`` batch 4, and
``t5score score`` (the command, a subprocess) scores the T5 pairs once (``--no-cli`` skips it).
OpenMP's wait policy is ``PASSIVE`` unless the caller sets one (as the ``t5score`` command does).

    python benchmarks/bench_scorers.py --out reports/bench/scorers.json   # ~5 min on 2 quiet cores
    python benchmarks/bench_scorers.py --quick --out /tmp/scorers.json    # smoke run, 1-2 min
    python benchmarks/bench_scorers.py --models bart --merge --out reports/bench/scorers.json  # one part again

Benchmarks, not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

#: as the ``t5score`` command does (t5score/threads.py), OpenMP threads sleep instead of spinning while they
#: wait, unless the caller chose a policy: on a shared machine spinning doubled every contender's time
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")
if __name__ == "__main__" and not any(v in os.environ for v in WAIT_VARIABLES):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch loads its OpenMP runtime

import torch  # noqa: E402
from common import T5_SMALL, machine, median, versions, write_json  # noqa: E402
from scorers_parts import (  # noqa: E402
    calls_text,
    count_cross_k_rows,
    inside_text,
    kv_once_per_source,
    merge,
    part_note,
)

BART_BASE = dict(
    vocab_size=50265,
    d_model=768,
    encoder_layers=6,
    decoder_layers=6,
    encoder_attention_heads=12,
    decoder_attention_heads=12,
    encoder_ffn_dim=3072,
    decoder_ffn_dim=3072,
    bos_token_id=0,
    pad_token_id=1,
    eos_token_id=2,
    decoder_start_token_id=2,
    forced_bos_token_id=0,
)
SPECIALS = {"t5": ["<pad>", "</s>", "<unk>"], "bart": ["<s>", "<pad>", "</s>", "<unk>"]}
T5_INIT = 1.5
SOURCES = {"t5": 8, "bart": 4}  # x 8 candidates: a full run in ~5 min on 2 cores
TOL = 1e-4  # relative to the magnitude of t5score's number
OURS, OURS_LM = "t5score score_pairs", "t5score score_pairs (lm-eval options)"
BASE = "BARTScorer.score batch 4"  # its default batch size: the one broken down by phase


def make_model(kind: str, seed: int):
    """The random model of ``kind``. T5 at ``initializer_factor`` 1.5: the decode benchmark's 2 makes the
    random network so sensitive that float32 itself is 1e-3 (relative) off float64 on 256-token sources,
    so no two float32 implementations agree to 1e-4; at 1.5 they agree to ~1e-6 and the scores still
    spread (mean log-probabilities -12 to -14; at the default 1 all lie near -log(vocab))."""
    torch.manual_seed(seed)
    if kind == "t5":
        from transformers import T5Config, T5ForConditionalGeneration

        return T5ForConditionalGeneration(T5Config(**T5_SMALL, initializer_factor=T5_INIT)).eval().float()
    from transformers import BartConfig, BartForConditionalGeneration

    return BartForConditionalGeneration(BartConfig(**BART_BASE)).eval().float()


def make_tokenizer(kind: str, vocab_size: int):
    """A word-level fast tokenizer over ``w<id>`` words with the model family's specials and template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS[kind]
    vocab = {tok: i for i, tok in enumerate(specials)}
    vocab.update({f"w{i}": i for i in range(len(specials), vocab_size)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    eos = ("</s>", vocab["</s>"])
    if kind == "t5":
        core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[eos])
        return PreTrainedTokenizerFast(
            tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
        )
    bos = ("<s>", vocab["<s>"])
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[bos, eos])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def make_pairs(kind: str, vocab: int, n_sources: int, candidates: int, seed: int) -> dict:
    """Sources of 64-256 tokens, ``candidates`` targets of 16-64 tokens each (specials counted)."""
    g = torch.Generator().manual_seed(seed)
    extra, first = (1, 3) if kind == "t5" else (2, 4)

    def text(lo: int, hi: int) -> str:
        n = int(torch.randint(lo, hi + 1, (1,), generator=g)) - extra
        return " ".join(f"w{i}" for i in torch.randint(first, vocab, (n,), generator=g).tolist())

    sources = [text(64, 256) for _ in range(n_sources)]
    index = [s for s in range(n_sources) for _ in range(candidates)]
    targets = [text(16, 64) for _ in index]
    return {"sources": sources, "targets": targets, "index": index}


def t5score_scores(model, tok, w: dict, lm_eval: bool = False) -> tuple[list[float], dict]:
    from t5score.engine.forced import score_pairs

    options = {"include_eos": False, "strip_bos": True} if lm_eval else {}
    got = score_pairs(model, tok, w["sources"], w["targets"], pair_source_index=w["index"], **options)
    return [p.sum_logprob if lm_eval else p.mean_logprob for p in got], {}


def bartscorer_scores(model, tok, w: dict, batch_size: int) -> tuple[list[float], dict]:
    """neulab/BARTScore ``BARTScorer.score(srcs, tgts, batch_size)``, the pairs in input order."""
    srcs, tgts = [w["sources"][s] for s in w["index"]], w["targets"]
    loss_fct = torch.nn.NLLLoss(reduction="none", ignore_index=model.config.pad_token_id)
    lsm = torch.nn.LogSoftmax(dim=1)
    score_list, enc, dec = [], 0, 0
    for i in range(0, len(srcs), batch_size):
        src_list, tgt_list = srcs[i : i + batch_size], tgts[i : i + batch_size]
        with torch.no_grad():
            encoded_src = tok(src_list, max_length=1024, truncation=True, padding=True, return_tensors="pt")
            encoded_tgt = tok(tgt_list, max_length=1024, truncation=True, padding=True, return_tensors="pt")
            tgt_tokens = encoded_tgt["input_ids"]
            tgt_len = encoded_tgt["attention_mask"].sum(dim=1)
            output = model(
                input_ids=encoded_src["input_ids"],
                attention_mask=encoded_src["attention_mask"],
                labels=tgt_tokens,
            )
            logits = output.logits.view(-1, model.config.vocab_size)
            loss = loss_fct(lsm(logits), tgt_tokens.view(-1)).view(tgt_tokens.shape[0], -1)
            loss = loss.sum(dim=1) / tgt_len
            score_list += [-x.item() for x in loss]
        enc, dec = enc + encoded_src["input_ids"].numel(), dec + tgt_tokens.numel()
    return score_list, {"encoder_tokens": enc, "decoder_positions": dec}


def lm_eval_scores(model, tok, w: dict, batch_size: int) -> tuple[list[float], dict]:
    """lm-evaluation-harness seq2seq ``loglikelihood``: ``_encode_pair`` (no trailing spaces here), then
    ``HFLM._loglikelihood_tokens``: sorted by ``-len(context + continuation)``, zero right-padding,
    ``labels=continuation``, ``log_softmax``, ``[:contlen]``, gather, sum; results in request order."""
    requests = [
        (tok.encode(w["sources"][s]), tok.encode(t, add_special_tokens=False))
        for s, t in zip(w["index"], w["targets"], strict=True)
    ]
    toks = [c + x for c, x in requests]
    order = sorted(range(len(requests)), key=lambda i: (-len(toks[i]), tuple(toks[i])))  # its _collate
    res: list[float | None] = [None] * len(requests)
    enc = dec = 0
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            inps = [torch.tensor(requests[i][0], dtype=torch.long) for i in chunk]
            conts = [torch.tensor(requests[i][1], dtype=torch.long) for i in chunk]
            pad_inp, pad_cont = max(len(x) for x in inps), max(len(x) for x in conts)

            def pad(xs, n):
                return torch.stack([torch.cat([x, torch.zeros(n - len(x), dtype=torch.long)]) for x in xs])

            batched_inps, batched_conts = pad(inps, pad_inp), pad(conts, pad_cont)
            mask = pad([torch.ones_like(x) for x in inps], pad_inp)
            logits = model(input_ids=batched_inps, attention_mask=mask, labels=batched_conts).logits
            multi_logits = torch.nn.functional.log_softmax(logits, dim=-1)
            for i, row, cont_toks in zip(chunk, multi_logits, conts, strict=True):
                row = row[: len(cont_toks)].unsqueeze(0)
                greedy = row.argmax(dim=-1)
                bool((greedy == cont_toks.unsqueeze(0)).all())  # is_greedy, computed as lm-eval does
                res[i] = float(torch.gather(row, 2, cont_toks[None, :, None]).squeeze(-1).sum())
            enc, dec = enc + batched_inps.numel(), dec + batched_conts.numel()
    return res, {"encoder_tokens": enc, "decoder_positions": dec}


def contenders(model, tok) -> dict:
    return {
        OURS: lambda w: t5score_scores(model, tok, w),
        OURS_LM: lambda w: t5score_scores(model, tok, w, lm_eval=True),
        "BARTScorer.score batch 4": lambda w: bartscorer_scores(model, tok, w, 4),
        "BARTScorer.score batch 16": lambda w: bartscorer_scores(model, tok, w, 16),
        "lm-eval loglikelihood batch 1": lambda w: lm_eval_scores(model, tok, w, 1),
        "lm-eval loglikelihood batch 16": lambda w: lm_eval_scores(model, tok, w, 16),
    }


def check(name: str, got: list[float], ref: list[float]) -> float:
    """Largest relative gap of ``got`` to ``ref``; exits with an error above :data:`TOL`."""
    gap = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(got, ref, strict=True))
    if not gap <= TOL:
        raise SystemExit(f"bench_scorers: error: {name} differs from t5score by {gap:.2e} (relative) > {TOL}")
    return gap


def hook_times(modules: dict, spent: dict, work: dict | None = None) -> list:
    """Forward hooks adding each module's forward time to ``spent[name]`` (and, with ``work``, the
    ``input_ids`` it was given to ``work["encoder_tokens"]``); returns the handles."""
    handles = []
    for name, module in modules.items():
        starts: list[float] = []

        def pre(m, a, k, starts=starts):
            starts.append(time.perf_counter())
            if work is not None and k.get("input_ids") is not None:
                work["encoder_tokens"] += k["input_ids"].numel()
                work["encoder_calls"] = work.get("encoder_calls", 0) + 1

        def post(m, a, k, out, name=name, starts=starts):
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - starts.pop()

        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    return handles


CROSS_KV = (".EncDecAttention.k", ".EncDecAttention.v", ".encoder_attn.k_proj", ".encoder_attn.v_proj")


def cross_kv_modules(model) -> dict:
    """The decoder's cross-attention key and value projections (T5 and BART names), under one name."""
    found = [m for n, m in model.named_modules() if n.endswith(CROSS_KV)]
    return {f"cross K/V {i}": m for i, m in enumerate(found)}


def summed(spent: dict, prefix: str) -> float:
    return round(sum(v for k, v in spent.items() if k.startswith(prefix)), 4)


def finish(spent: dict, total: float, rest: str, **extra) -> dict:
    phases = {k: round(v, 4) for k, v in spent.items()}
    phases[rest] = round(total - sum(spent.values()), 4)
    return {"total_s": round(total, 4), "phases_s": phases, **extra}


def breakdown(model, tok, w: dict) -> dict:
    """One t5score ``score_pairs`` call with its phases timed (wrappers and encoder hooks; not in the medians).
    On the model's own forward (BART) ``lm_head_s`` is the output layer's time wherever it ran and
    ``per_pair_cross_kv_s`` the time of the decoder's own cross-attention key/value projections, wherever they
    ran (both within the phases above: per pair in the decoder forward, or once per source in the keys/values
    phase); ``cross_kv_rows`` the rows of each call of the first layer's key projection."""
    import t5score.engine.forced as forced

    spent: dict[str, float] = {}
    work = {"encoder_tokens": 0, "decoder_positions": 0, "output_rows": 0, "decoder_batches": 0}

    def timed(name, fn, count=None):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
                if count:
                    work[count] += args[-1].shape[0] if count == "output_rows" else args[-1].numel()
                    work["decoder_batches"] += count == "decoder_positions"

        return wrapper

    real_decoder, real_plan, real_stats = forced.forced_decoder, forced.plan_work, forced.token_stats

    def decoder(*args, **kwargs):
        d = real_decoder(*args, **kwargs)
        d.context, d.select = timed("cross-attention keys/values", d.context), timed("select", d.select)
        d.positions = timed("decoder forward", d.positions, "decoder_positions")
        d.head = timed("output layer", d.head, "output_rows")
        return d

    inner: dict[str, float] = {}
    hooks = hook_times({"encoder": model.get_encoder()}, spent, work)
    hooks += hook_times({"lm_head": model.get_output_embeddings(), **cross_kv_modules(model)}, inner)
    kv_rows: list[int] = []
    hooks += count_cross_k_rows(model, kv_rows)
    forced.forced_decoder, forced.plan_work = decoder, timed("tokenize + plan", real_plan)
    forced.token_stats = timed("token_stats (log-softmax, entropy, top-1)", real_stats)
    try:
        start = time.perf_counter()
        t5score_scores(model, tok, w)
        total = time.perf_counter() - start
    finally:
        forced.forced_decoder, forced.plan_work, forced.token_stats = real_decoder, real_plan, real_stats
        for h in hooks:
            h.remove()
    head, kv = round(inner.get("lm_head", 0.0), 4), summed(inner, "cross K/V")
    rest = "rest (Python, batching, lists)"
    return finish(
        spent, total, rest, work=work, lm_head_s=head, per_pair_cross_kv_s=kv, cross_kv_rows=kv_rows
    )


def baseline_breakdown(model, fn, w: dict) -> dict:
    """One call of a baseline (the model's own forward) with encoder, decoder and output layer timed by hooks."""
    spent: dict[str, float] = {}
    inner: dict[str, float] = {}
    mods = {"encoder": model.get_encoder(), "decoder layers": model.get_decoder()}
    hooks = hook_times({**mods, "output layer": model.get_output_embeddings()}, spent)
    hooks += hook_times(cross_kv_modules(model), inner)
    try:
        start = time.perf_counter()
        fn(w)
        total = time.perf_counter() - start
    finally:
        for h in hooks:
            h.remove()
    rest = "rest (tokenize, log-softmax, loss, Python)"
    return finish(spent, total, rest, per_pair_cross_kv_s=summed(inner, "cross K/V"))


def run_model(kind: str, args) -> dict:
    from t5score.engine.engines import forced_decoder

    model = make_model(kind, seed=0)
    tok = make_tokenizer(kind, model.config.vocab_size)
    w = make_pairs(kind, model.config.vocab_size, args.sources, args.candidates, seed=1)
    fns = contenders(model, tok)
    warm = {"sources": w["sources"][:1], "targets": w["targets"][:2], "index": [0, 0]}
    for fn in fns.values():  # warm-up (allocations, weight preparation), not timed
        fn(warm)
    times: dict[str, list[float]] = {k: [] for k in fns}
    scores, work = {}, {}
    names = list(fns)
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            scores[name], work[name] = fns[name](w)
            times[name].append(time.perf_counter() - start)
        print(
            f"{kind} rep {rep + 1}: " + ", ".join(f"{k}={v[-1]:.1f}s" for k, v in times.items()), flush=True
        )
    gaps = {}
    for name in names:
        ref = scores[OURS_LM] if name.startswith("lm-eval") or name == OURS_LM else scores[OURS]
        gaps[name] = 0.0 if name in (OURS, OURS_LM) else check(f"{kind} {name}", scores[name], ref)
    tgt_tokens = sum(len(tok(text_target=t).input_ids) for t in w["targets"])
    src_tokens = sum(len(tok(w["sources"][s]).input_ids) for s in w["index"])
    pairs = len(w["targets"])
    results = {}
    for name in names:
        m = median(times[name])
        results[name] = {
            "median_s": m,
            "runs_s": times[name],
            "pairs_per_s": pairs / m,
            "target_tokens_per_s": tgt_tokens / m,
            "pair_tokens_per_s": (tgt_tokens + src_tokens) / m,
            "max_relative_gap_to_t5score": gaps[name],
            "work": work[name],
        }
    prof = breakdown(model, tok, w)
    results[OURS]["work"] = prof["work"]
    base = baseline_breakdown(model, fns[BASE], w)

    def ratio(a: str, b: str) -> float:
        return results[b]["median_s"] / results[a]["median_s"]

    return {
        "pairs": pairs,
        "distinct_sources": len(w["sources"]),
        "target_tokens": tgt_tokens,
        "source_tokens_over_pairs": src_tokens,
        "distinct_source_tokens": sum(len(tok(s).input_ids) for s in w["sources"]),
        "results": results,
        "ratios": {
            "t5score / BARTScorer batch 4": ratio(OURS, "BARTScorer.score batch 4"),
            "t5score / BARTScorer batch 16": ratio(OURS, "BARTScorer.score batch 16"),
            "t5score / lm-eval batch 1": ratio(OURS_LM, "lm-eval loglikelihood batch 1"),
            "t5score / lm-eval batch 16": ratio(OURS_LM, "lm-eval loglikelihood batch 16"),
        },
        "t5score_breakdown": prof,
        "baseline_breakdown": {BASE: base},
        "engine": type(forced_decoder(model)).__name__,
    }


def cli_run(args, tmp: Path) -> dict:
    """``t5score score`` on the T5 pairs, once (a subprocess: start-up, model load, Parquet and report.html
    included in its wall time; ``run.json``'s ``wall_time_s`` is the scoring loop); numbers checked."""
    import json
    import subprocess

    import pandas as pd

    model = make_model("t5", seed=0)
    folder = tmp / "t5"
    model.save_pretrained(folder)
    tok = make_tokenizer("t5", model.config.vocab_size)
    tok.save_pretrained(folder)
    w = make_pairs("t5", model.config.vocab_size, args.sources, args.candidates, seed=1)
    ref, _ = t5score_scores(model, tok, w)
    data, out_dir = tmp / "pairs.jsonl", tmp / "run"
    rows = [
        {"id": str(i), "source": w["sources"][s], "target": t}
        for i, (s, t) in enumerate(zip(w["index"], w["targets"], strict=True))
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = "from t5score.cli.main import main; import sys; sys.exit(main(sys.argv[1:]))"
    argv = ["score", "--model.name_or_path", str(folder), "--data.path", str(data), "--data.source_column"]
    argv += [
        "source",
        "--data.target_column",
        "target",
        "--threads",
        str(args.threads),
        "--output_dir",
        str(out_dir),
    ]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", run, *argv], capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench_scorers: error: t5score score failed: {proc.stderr[-2000:]}")
    got = pd.read_parquet(out_dir / "scores.parquet")["score_src_hyp"].tolist()
    loop = json.loads((out_dir / "run.json").read_text())["wall_time_s"]
    return {
        "pairs": len(rows),
        "process_wall_s": wall,
        "scoring_loop_s": loop,
        "pairs_per_s_process": len(rows) / wall,
        "pairs_per_s_loop": len(rows) / loop,
        "max_relative_gap_to_t5score": check("t5score score", got, ref),
        "command": "t5score " + " ".join(argv).replace(str(tmp), "TMP"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/scorers.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sources", type=int, default=None, help=f"default {SOURCES} per model; --quick: 2")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--models", nargs="+", choices=("t5", "bart"), default=["t5", "bart"])
    parser.add_argument("--no-cli", action="store_true", help="skip the `t5score score` subprocess timing")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 sources, 1 repetition, no CLI")
    parser.add_argument("--merge", action="store_true", help="replace only these models' parts in --out")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.no_cli = 1, True
    at_start = machine()
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    models = {}
    for kind in args.models:
        sources = args.sources or (2 if args.quick else SOURCES[kind])
        models[kind] = run_model(kind, argparse.Namespace(**{**vars(args), "sources": sources}))
    cli = None
    if not args.no_cli and "t5" in args.models:
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="t5score-bench-scorers-"))
        try:
            cli = cli_run(argparse.Namespace(**{**vars(args), "sources": args.sources or SOURCES["t5"]}), tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    payload = {
        "workload": {
            "candidates_per_source": args.candidates,
            "sources": {k: m["distinct_sources"] for k, m in models.items()},
            "source_len": "64-256",
            "target_len": "16-64",
            "reps": args.reps,
            "threads": args.threads,
            "torch_threads": torch.get_num_threads(),
            "quick": args.quick,
            "omp_wait": {v: os.environ[v] for v in WAIT_VARIABLES if v in os.environ},
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        },
        "models": models,
        "cli": cli,
        "tolerance": TOL,
        "wall_s": time.perf_counter() - wall,
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "command": " ".join(["python", *sys.argv]),
    }
    write_json(args.out, merge(args.out, payload) if args.merge else payload)
    for kind, m in models.items():
        print(f"{kind}: " + ", ".join(f"{k} {v:.2f}x" for k, v in m["ratios"].items()))
    print(f"wrote {args.out} after {payload['wall_s']:.0f}s")
    return 0


NAMES = {
    "t5": "t5-small-shaped T5 (fast T5 decoder)",
    "bart": "BART-base-shaped BART (the model's own forward, keys/values once per source)",
}
GOAL = 2.0  # issue 18: `t5score score` >= 2x BARTScorer throughput at 8 candidates per source


def reuse_gain(m: dict, bb: dict, c: int) -> str:
    """What sharing a source's work among its ``c`` candidates alone would give, from the baseline's shares:
    its encoder time (and, where t5score's decoder projects them once per source, its per-pair
    cross-attention keys/values) cut to 1/c, the rest as it is; and t5score's extra statistics."""
    kv = bb.get("per_pair_cross_kv_s", 0.0) if kv_once_per_source(m) else 0.0
    shared = bb["phases_s"]["encoder"] + kv
    bound = bb["total_s"] / (bb["total_s"] - shared * (1 - 1 / c))
    b = m["t5score_breakdown"]
    stats = next((v for k, v in b["phases_s"].items() if k.startswith("token_stats")), 0.0)
    what = (
        "encoder and cross-attention keys/values"
        if kv
        else "encoder (the decoder's keys/values stay per pair)"
    )
    return (
        f"Sharing the {what} among {c} candidates and nothing else would make "
        f"t5score **{bound:.2f}x** this baseline; t5score also computes each token's entropy and top-1 probability "
        f"(`token_stats`, {100 * stats / b['total_s']:.0f}% of its time), which BARTScorer does not."
    )


def section(d: dict) -> tuple[list[str], list[tuple]]:
    """The ``reports/benchmarks.md`` section for this JSON and its target rows (``benchmarks/report.py``)."""
    w, m0, m1 = d["workload"], d["machine"], d.get("machine_at_end", {})
    sources = ", ".join(f"{k} {v}" for k, v in w["sources"].items())
    wait = ", ".join(f"{k}={v}" for k, v in (w.get("omp_wait") or {}).items())
    lines = [
        f"## Teacher-forced scoring vs BARTScorer and lm-eval, {w['candidates_per_source']} candidates per source",
        "",
        "The same (source, candidate) pairs through t5score's `score_pairs` (each distinct source encoded once), "
        "BARTScore's `BARTScorer.score` loop (neulab/BARTScore `bart_score.py`: every pair's source re-encoded, "
        "pairs in input order) and lm-evaluation-harness's seq2seq `loglikelihood` (`HFLM._loglikelihood_tokens`: "
        "requests sorted by length, zero-padded, `labels=continuation`), both re-implemented from their published "
        "code; random seeded float32 models on CPU, token ids as words of a word-level tokenizer (tokenizing is "
        f"in every contender's time). Sources {w['source_len']} tokens, candidates {w['target_len']}; sources per "
        f"model {sources}. t5score's numbers are BARTScorer's `mean_logprob` (EOS and `<s>` scored) and, with "
        "`include_eos=False, strip_bos=True`, lm-eval's summed log-likelihood (the `lm-eval options` row); every "
        f"contender's per-pair number equals t5score's within {d['tolerance']:g} relative (the run stops "
        f"otherwise; largest gap in the table). {w['threads']} threads (torch reports {w['torch_threads']}), "
        f"OpenMP wait {wait or 'the runtime default'}, OMP_NUM_THREADS {w.get('omp_num_threads')}; "
        f"{w['reps']} repetitions round-robin with the order rotated, median. Load (1/5/15 min) "
        f"{m0.get('load_average')} at the start, {m1.get('load_average')} at the end "
        f"({m0.get('logical_cores')} shared cores); {d['wall_s']:.0f} s in all. Tokens/s: the workload's target "
        "tokens (specials included) per second, the same count for every contender; src+tgt: with the source "
        "tokens of every pair. Encoder tokens / decoder positions: what each contender ran, padding included.",
        "",
        f"Command: `{d.get('command')}`.",
        "",
    ]
    targets = []
    for kind, m in d["models"].items():
        lines += [
            f"### {NAMES.get(kind, kind)}: {m['pairs']} pairs ({m['distinct_sources']} sources)",
            "",
            "| contender | median s | runs (s) | pairs/s | tokens/s | src+tgt tokens/s | encoder tokens | "
            "decoder positions | largest relative gap |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in m["results"].items():
            runs = ", ".join(f"{x:.2f}" for x in r["runs_s"])
            lines.append(
                f"| {name} | {r['median_s']:.2f} | {runs} | {r['pairs_per_s']:.1f} | {r['target_tokens_per_s']:.0f} | "
                f"{r['pair_tokens_per_s']:.0f} | {r['work'].get('encoder_tokens', '-')} | "
                f"{r['work'].get('decoder_positions', '-')} | {r['max_relative_gap_to_t5score']:.1e} |"
            )
        ratios = "; ".join(f"{k} **{v:.2f}x**" for k, v in m["ratios"].items())
        b = m["t5score_breakdown"]
        phases = ", ".join(f"{k} {v:.2f} s ({100 * v / b['total_s']:.0f}%)" for k, v in b["phases_s"].items())
        base = []
        for name, bb in m.get("baseline_breakdown", {}).items():
            shares = ", ".join(
                f"{k} {v:.2f} s ({100 * v / bb['total_s']:.0f}%)" for k, v in bb["phases_s"].items()
            )
            base += [
                f"The same for `{name}` ({bb['total_s']:.2f} s, hooks on the model's modules): {shares}; "
                f"of its decoder layers, the cross-attention key/value projections of every pair's source "
                f"{bb.get('per_pair_cross_kv_s', 0):.2f} s. {reuse_gain(m, bb, w['candidates_per_source'])}",
                "",
            ]
        inside = inside_text(m)  # where the model's own output layer and key/value projections ran
        lines += [
            "",
            *part_note(m),
            f"Throughput ratios (pairs/s): {ratios}.",
            "",
            f"Where t5score's time goes (one instrumented `score_pairs` call, {b['total_s']:.2f} s, engine "
            f"`{m['engine']}`): {phases}. Output-layer rows {b['work']['output_rows']} of "
            f"{b['work']['decoder_positions']} decoder positions (padding included){calls_text(b['work'])}"
            f"{inside}.",
            "",
            *base,
        ]
        for which in ("batch 4", "batch 16"):
            value = m["ratios"].get(f"t5score / BARTScorer {which}")
            targets.append(
                (
                    f"t5score vs BARTScorer.score {which}, {kind} (8 candidates per source)",
                    value,
                    ">= 2.0x",
                    GOAL,
                )
            )
    cli = d.get("cli")
    if cli:
        lines += [
            f"`{cli['command']}` on the T5 pairs, once: {cli['process_wall_s']:.1f} s for the process "
            f"({cli['pairs_per_s_process']:.1f} pairs/s: start-up, model load, Parquet, report.html included), "
            f"{cli['scoring_loop_s']:.1f} s for its scoring loop ({cli['pairs_per_s_loop']:.1f} pairs/s; "
            f"`OMP_WAIT_POLICY=PASSIVE` set by the command); scores equal `score_pairs`' within "
            f"{cli['max_relative_gap_to_t5score']:.1e}.",
            "",
        ]
    return lines, targets


if __name__ == "__main__":
    sys.exit(main())
