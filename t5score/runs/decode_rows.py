"""Rows in, records out: tokenisation, the decoding engine, and per-row bookkeeping.

Shared by the LightningModule (``t5score predict``) and the Python API, so both produce the same
:class:`~t5score.records.PredictionRecord` s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from t5score.engine.decode import Sampling, greedy_decode
from t5score.engine.logits_store import BatchLogitsWriter
from t5score.records import PredictionRecord, SourceRow

CAPTURE_MODES = ("stats", "full")


@dataclass
class DecodeOptions:
    """How to decode; the fields are the ``--model.*`` options of ``t5score predict``."""

    max_new_tokens: int = 64
    top_k: int = 5
    capture: str = "stats"
    logits_dtype: str = "float16"
    num_samples: int = 0  # 0: greedy; N > 0: N sampled candidates per source
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    eos_check_every: int = 1
    drop_finished: bool = False
    engine: str = "auto"  # see t5score.engine.decode.greedy_decode
    compile: bool = False

    def __post_init__(self) -> None:
        from t5score.engine.decode import ENGINES

        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.capture not in CAPTURE_MODES:
            raise ValueError(f"capture must be one of {CAPTURE_MODES}, got {self.capture!r}")
        if self.top_k < 0 or self.max_new_tokens < 1 or self.num_samples < 0 or self.eos_check_every < 1:
            raise ValueError(
                f"need top_k >= 0, max_new_tokens >= 1, num_samples >= 0, eos_check_every >= 1; got {self}"
            )
        if self.capture == "full" and self.num_samples > 1:
            raise ValueError("capture='full' keeps one logits array per row: use it with num_samples 0 or 1")


def tokenize_sources(tokenizer, texts: list[str], max_length: int | None, device: torch.device):
    """Token ids ``[B, S]``, attention mask ``[B, S]`` and per-row ``truncated`` flags.

    Truncation is the tokenizer's own (``truncation=True``), so special tokens such as EOS stay.
    """
    full = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    truncated = [max_length is not None and len(ids) > max_length for ids in full]
    if any(truncated):
        short = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        full = [s if t else f for f, s, t in zip(full, short, truncated, strict=True)]
    batch = tokenizer.pad({"input_ids": full}, padding=True, return_tensors="pt")
    return batch["input_ids"].to(device), batch["attention_mask"].to(device), truncated


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _record(row: SourceRow, out, b: int, tokenizer, truncated: bool, sample: int | None) -> PredictionRecord:
    n = int(out.num_tokens[b])
    ids = out.token_ids[b, :n].tolist()
    logprobs = out.token_logprobs[b, :n].tolist()
    entropies = out.entropies[b, :n].tolist()
    error = None
    if bool(out.nonfinite[b]) or not all(map(math.isfinite, logprobs)):
        error = "non-finite logits (NaN or inf) while decoding; try float32 precision"
    return PredictionRecord(
        position=row.position,
        id=row.id,
        source=row.source,
        target=row.target,
        prediction=tokenizer.decode(ids, skip_special_tokens=True),
        token_ids=ids,
        token_logprobs=logprobs,
        token_entropies=entropies,
        top1_probs=out.top1_probs[b, :n].tolist(),
        topk_ids=out.topk_ids[b, :n].tolist(),
        topk_logprobs=out.topk_logprobs[b, :n].tolist(),
        num_tokens=n,
        sum_logprob=sum(logprobs),
        mean_logprob=_mean(logprobs),
        mean_entropy=_mean(entropies),
        max_entropy=max(entropies) if entropies else None,
        finished=bool(out.finished[b]),
        truncated=truncated,
        error=error,
        sample_index=sample,
    )


@torch.inference_mode()
def decode_rows(
    model: torch.nn.Module,
    tokenizer,
    rows: list[SourceRow],
    options: DecodeOptions,
    max_source_length: int | None = None,
    logits_dir: Path | None = None,
    batch_index: int = 0,
    score_references: bool = False,
) -> list[PredictionRecord]:
    """Decode ``rows`` as one batch; rows with ``error`` set are kept, undecoded, with that error.

    The encoder runs once per batch: its output serves every sample and, with ``score_references`` (greedy
    decoding only), the teacher-forced scores of the rows' targets (``ref_*`` fields).
    """
    device = next(model.parameters()).device
    records: list[PredictionRecord] = []
    good = [r for r in rows if r.error is None]
    samples = max(options.num_samples, 1)
    for r in rows:
        if r.error is not None:
            for s in range(samples):
                sample = s if options.num_samples else None
                records.append(
                    PredictionRecord(
                        r.position, r.id, r.source, target=r.target, error=r.error, sample_index=sample
                    )
                )
    if good:
        input_ids, mask, truncated = tokenize_sources(
            tokenizer, [r.source for r in good], max_source_length, device
        )
        hidden = model.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state  # [G, S, D]
        for s in range(samples):
            sampling = None
            if options.num_samples:
                seed = options.seed * 1_000_003 + batch_index * 1009 + s  # reproducible per batch and sample
                sampling = Sampling(options.temperature, options.top_p, seed)
            sink = None
            if options.capture == "full":
                sink = BatchLogitsWriter(
                    logits_dir,
                    batch_index,
                    len(good),
                    options.max_new_tokens,
                    model.config.vocab_size,
                    options.logits_dtype,
                )
            out = greedy_decode(
                model,
                input_ids,
                mask,
                max_new_tokens=options.max_new_tokens,
                top_k=options.top_k,
                logits_sink=sink,
                eos_check_every=options.eos_check_every,
                drop_finished=options.drop_finished,
                sampling=sampling,
                engine=options.engine,
                compile=options.compile,
                encoder_hidden=hidden,
            )
            sample = s if options.num_samples else None
            for b, row in enumerate(good):
                records.append(_record(row, out, b, tokenizer, truncated[b], sample))
            if sink is not None:
                sink.close([r.id for r in good], out.num_tokens.tolist(), list(range(len(good))))
        if score_references and not options.num_samples:
            add_reference_scores(model, tokenizer, records[-len(good) :], hidden, mask)
    records.sort(key=lambda rec: (rec.position, rec.sample_index or 0))
    return records


def add_reference_scores(
    model, tokenizer, records: list[PredictionRecord], hidden: torch.Tensor, mask: torch.Tensor
) -> None:
    """Teacher-forced scores of the targets (``ref_*`` fields) of ``records``, whose sources' encoder
    output is ``hidden`` / ``mask`` (row ``i`` for record ``i``); rows without a target are left as they are."""
    from t5score.engine.forced import score_pairs

    todo = [i for i, r in enumerate(records) if r.error is None and r.target and r.target.strip()]
    if not todo:
        return
    index = torch.tensor(todo, device=hidden.device)
    scores = score_pairs(
        model,
        tokenizer,
        [records[i].source for i in todo],
        [records[i].target for i in todo],
        top_k=1,
        encoder_states=(hidden.index_select(0, index), mask.index_select(0, index)),
    )
    for i, sc in zip(todo, scores, strict=True):
        rec = records[i]
        if sc.nonfinite:  # keep the row, flag it, and keep NaN out of the reference columns
            rec.error = rec.error or "non-finite logits (NaN or inf) while scoring the reference; try float32"
            continue
        rec.ref_num_tokens, rec.ref_logprob, rec.ref_mean_logprob = (
            sc.num_tokens,
            sc.sum_logprob,
            sc.mean_logprob,
        )
        rec.ref_top1_probs = sc.top1_probs
        rec.ref_top1_correct = [top[0] == tok for top, tok in zip(sc.topk_ids, sc.token_ids, strict=True)]
