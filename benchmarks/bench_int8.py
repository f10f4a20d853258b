"""What int8 does to the numbers: t5score's ``quantize_int8`` beside CTranslate2 int8, on a trained model.

A random model is a poor judge of quantisation (its activations have no trained structure, and at the
scales that make its outputs vary it amplifies any rounding difference, float32 ones included), so this
uses the small code-summarisation T5 shipped with t5score on its shipped test split. Reference: float32
Hugging Face ``generate``. Reported per contender: greedy token agreement with the reference, whole-output
agreement, and, teacher-forced on the reference tokens, how far each token's log-probability moves.

    python benchmarks/bench_int8.py --out reports/bench/int8.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, machine, versions, write_json

from t5score.engine.decode import greedy_decode
from t5score.engine.modeling import load_model_and_tokenizer
from t5score.engine.options import DecodeOptions
from t5score.engine.quantize import quantize_int8
from t5score.runs.decode_rows import tokenize_sources

DATA = ROOT / "t5score" / "assets" / "data" / "code_summary_test.jsonl"


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def teacher_forced_logprobs(model, input_ids, mask, tokens: list[list[int]], start: int) -> list[list[float]]:
    width = max(len(t) for t in tokens)
    labels = torch.zeros(len(tokens), width, dtype=torch.long)
    for i, t in enumerate(tokens):
        labels[i, : len(t)] = torch.tensor(t)
    dec = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=dec).logits
    logp = torch.log_softmax(logits.float(), -1).gather(-1, labels[..., None])[..., 0]
    return [logp[i, : len(t)].tolist() for i, t in enumerate(tokens)]


def summary(ref_tokens, ref_lp, tokens, lp) -> dict:
    same = sum(a == b for a, b in zip(ref_tokens, tokens, strict=True))
    agree = total = 0
    for a, b in zip(ref_tokens, tokens, strict=True):
        n = max(len(a), len(b))
        agree += sum(x == y for x, y in zip(a, b, strict=False))
        total += n
    deltas = torch.tensor(
        [abs(x - y) for a, b in zip(ref_lp, lp, strict=True) for x, y in zip(a, b, strict=True)]
    )
    return {
        "outputs_identical": same / len(ref_tokens),
        "token_agreement": agree / total,
        "mean_abs_delta_logprob": float(deltas.mean()),
        "p95_abs_delta_logprob": float(deltas.quantile(0.95)),
        "max_abs_delta_logprob": float(deltas.max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/int8.json"))
    parser.add_argument("--rows", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-source-length", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="numbers, not timings: one thread is enough")
    args = parser.parse_args(argv)
    at_start = machine()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model_and_tokenizer("default")
    texts = [json.loads(line)["source"] for line in DATA.read_text().splitlines()[: args.rows]]
    start_id, eos = model.config.decoder_start_token_id, model.config.eos_token_id
    int8 = quantize_int8(model)
    parts = [
        tokenize_sources(tokenizer, texts[s], args.max_source_length, torch.device("cpu"))[:2]
        for s in batches(len(texts), args.batch)
    ]

    def cut(row: list[int]) -> list[int]:
        return row[: row.index(eos) + 1] if eos in row else row

    ref_tokens, ours, ours_lp, ref_lp = [], [], [], []
    fp32, fp32_lp, timing = [], [], {"float32 engine": 0.0, "int8 engine": 0.0}
    for input_ids, mask in parts:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=args.new_tokens,
        )
        ref = [cut(r) for r in out[:, 1:].tolist()]
        ref_tokens += ref
        for name, m in (("float32 engine", model), ("int8 engine", int8)):
            t0 = time.perf_counter()
            got = greedy_decode(m, input_ids, mask, DecodeOptions(max_new_tokens=args.new_tokens))
            timing[name] += time.perf_counter() - t0
            rows = [got.token_ids[b, : int(got.num_tokens[b])].tolist() for b in range(len(ref))]
            if m is int8:
                ours += rows
            else:  # the engine's own log-probabilities, of its own tokens (= the reference's when they agree)
                fp32 += rows
                fp32_lp += [got.token_logprobs[b, : len(r)].tolist() for b, r in enumerate(rows)]
        ref_lp += teacher_forced_logprobs(model, input_ids, mask, ref, start_id)
        ours_lp += teacher_forced_logprobs(int8, input_ids, mask, ref, start_id)
    same = [
        i for i, (a, b) in enumerate(zip(ref_tokens, fp32, strict=True)) if a == b
    ]  # deltas where comparable
    results = {
        "t5score engine float32": {
            **summary(
                [ref_tokens[i] for i in same],
                [ref_lp[i] for i in same],
                [fp32[i] for i in same],
                [fp32_lp[i] for i in same],
            ),
            "outputs_identical": len(same) / len(ref_tokens),
            "token_agreement": summary(ref_tokens, ref_lp, fp32, ref_lp)["token_agreement"],
        },
        "t5score quantize_int8": summary(ref_tokens, ref_lp, ours, ours_lp),
    }
    notes = []
    try:
        import ctranslate2

        sources = [
            tokenizer.convert_ids_to_tokens(ids[m.bool()].tolist())
            for ids, m in ((i, k) for input_ids, mask in parts for i, k in zip(input_ids, mask, strict=True))
        ]
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("float32", "int8"):
                folder = Path(tmp) / kind
                converter = ctranslate2.converters.TransformersConverter(str(model.name_or_path))
                converter.convert(str(folder), quantization=None if kind == "float32" else kind, force=True)
                tr = ctranslate2.Translator(str(folder), compute_type=kind, intra_threads=args.threads)
                hyps = tr.translate_batch(
                    sources,
                    beam_size=1,
                    max_decoding_length=args.new_tokens,
                    max_batch_size=args.batch,
                    return_end_token=True,
                )
                tokens = [cut(tokenizer.convert_tokens_to_ids(h.hypotheses[0])) for h in hyps]
                # score_batch scores the given tokens and appends EOS itself
                targets = [tokenizer.convert_ids_to_tokens([t for t in r if t != eos]) for r in ref_tokens]
                scored = tr.score_batch(sources, targets, max_batch_size=args.batch)
                lp = [list(s.log_probs)[: len(r)] for s, r in zip(scored, ref_tokens, strict=True)]
                results[f"CTranslate2 {kind}"] = summary(ref_tokens, ref_lp, tokens, lp)
    except ImportError:
        notes.append("CTranslate2 not installed: its rows are missing.")
    payload = {
        "model": str(model.name_or_path),
        "rows": len(texts),
        "new_tokens": args.new_tokens,
        "reference": "float32 Hugging Face generate (tokens) and forward pass (log-probabilities)",
        "results": results,
        "engine_seconds": timing,
        "machine": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "command": " ".join(["python", *sys.argv]),
        "notes": notes,
    }
    write_json(args.out, payload)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
