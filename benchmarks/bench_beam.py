"""Beam search with per-candidate statistics: t5score's engine beside ``generate``, in one run.

Workload: a random model of t5-small's shape (as bench_decode.py), batch 4, 128-token sources, 32 new
tokens forced (EOS unreachable), 4 and 8 beams, every beam returned. Every contender ends with the same
numbers per candidate: tokens, the raw log-probability, entropy, top-1 probability and top-5 of each token
under its own beam, the processed transition score and the sequence score. ``generate`` gets them from
``output_logits`` / ``output_scores`` (``compute_transition_scores`` with ``beam_indices``, ``token_stats``
on the logits gathered along ``beam_indices``). Contenders run round-robin, in a rotated order each
repetition.

    python benchmarks/bench_beam.py --out reports/bench/beam.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from common import build_model, machine, make_inputs, median, timed, versions, write_json

from t5score.engine.beam import beam_search
from t5score.engine.options import DecodeOptions
from t5score.engine.stats import token_stats


class Workload:
    def __init__(self, args):
        self.model = build_model()
        self.input_ids, self.mask = make_inputs(args.batch, args.source_len, 32128)
        self.steps = args.new_tokens

    def engine(self, beams: int, engine: str = "auto") -> torch.Tensor:
        opts = DecodeOptions(self.steps, num_beams=beams, num_return_sequences=beams, engine=engine)
        return beam_search(self.model, self.input_ids, self.mask, opts).token_ids

    def generate(self, beams: int) -> torch.Tensor:
        out = self.model.generate(
            input_ids=self.input_ids,
            attention_mask=self.mask,
            do_sample=False,
            num_beams=beams,
            num_return_sequences=beams,
            max_new_tokens=self.steps,
            min_new_tokens=self.steps,
            output_logits=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
        self.model.compute_transition_scores(out.sequences, out.scores, out.beam_indices)
        index = out.beam_indices.clamp_min(0)  # [R, T] the beam row of each candidate's step
        logits = torch.stack([out.logits[t][index[:, t]] for t in range(index.shape[1])], dim=1)  # [R, T, V]
        token_stats(logits, tokens=out.sequences[:, 1:], top_k=5)
        return out.sequences[:, 1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench/beam.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--beams", type=int, nargs="*", default=[4, 8])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    at_start = machine()
    work = Workload(args)
    rows = {}
    with torch.inference_mode():
        for beams in args.beams:
            contenders = {
                "t5score beam_search capture=stats": lambda b=beams: work.engine(b),
                "t5score beam_search, engine=hf": lambda b=beams: work.engine(b, "hf"),
                "HF generate + transition scores + token_stats": lambda b=beams: work.generate(b),
            }
            times = {name: [] for name in contenders}
            tokens = {}
            names = list(contenders)
            for rep in range(args.reps):
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    seconds, ids = timed(contenders[name])
                    times[name].append(seconds)
                    tokens[name] = ids
            ref = tokens["HF generate + transition scores + token_stats"]
            for name in names:
                rows[f"{beams} beams: {name}"] = {
                    "median_s": median(times[name]),
                    "times_s": times[name],
                    "candidates_equal_generate": bool(torch.equal(tokens[name], ref)),
                }
    payload = {
        "benchmark": "beam",
        "workload": vars(args) | {"out": str(args.out)},
        "machine_at_start": at_start,
        "machine_at_end": machine(),
        "versions": versions(),
        "results": rows,
    }
    write_json(args.out, payload)
    for name, row in rows.items():
        print(f"{name:70s} {row['median_s']:8.3f} s  equal={row['candidates_equal_generate']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
