"""Rows in, records out: tokenisation, the decoding engine, and per-row bookkeeping.

Shared by the LightningModule (``t5score predict``) and the Python API, so both produce the same
:class:`~t5score.records.PredictionRecord` s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from t5score.engine.decode import greedy_decode
from t5score.engine.engines import uses_t5_kernels
from t5score.engine.hf_slots import SLOT_FAMILIES
from t5score.engine.inflight import encode_in_parts, inflight_decode, supports_inflight
from t5score.engine.logits_store import BatchLogitsWriter
from t5score.engine.modeling import decoder_positions, vocab_size
from t5score.engine.options import DecodeOptions
from t5score.engine.processors import Generation, resolve_generation, with_token_ids
from t5score.engine.tokens import pad_right, tokenize
from t5score.records import PredictionRecord, SourceRow
from t5score.runs.reference_scores import reference_scores_per_source

__all__ = [
    "DecodeOptions",
    "candidates_per_source",
    "check_for_model",
    "decode_rows",
    "resolve_generation_for",
    "tokenize_sources",
]


def tokenize_sources(tokenizer, texts: list[str], max_length: int | None, device: torch.device):
    """Token ids ``[B, S]``, attention mask ``[B, S]`` (right-padded) and per-row ``truncated`` flags.

    Truncation keeps special tokens such as EOS, as the tokenizer's own ``truncation=True`` does
    (:func:`t5score.engine.tokens.tokenize`, shared with teacher-forced scoring).
    """
    ids, truncated = tokenize(tokenizer, texts, max_length=max_length, eos=tokenizer.eos_token_id)
    input_ids, mask = pad_right(ids, tokenizer.pad_token_id, device)
    return input_ids, mask, truncated


@dataclass(frozen=True)
class Chunk:
    """The rows of a batch decoded together: the batch's number, the part of it, and how."""

    batch_index: int
    part: int = 0  # static batching: the batch in parts of ``slots`` rows
    inflight: bool = False  # the whole batch through ``slots`` in-flight decoder slots


def chunks(model, options: DecodeOptions, good: list[SourceRow]) -> list[list[SourceRow]]:
    """The batch's rows as decoded together: all of them through the in-flight slots, or parts of
    ``slots`` rows (static batching), each part padded to its own longest source as a batch of its own."""
    if uses_inflight(model, options):
        return [good]
    return [good[i : i + options.slots] for i in range(0, len(good), options.slots)]


def uses_inflight(model, options: DecodeOptions) -> bool:
    """In-flight batching: ``batching`` "inflight", or "auto" where :func:`supports_inflight` (greedy; the
    fast T5 engine or a model of :data:`t5score.engine.hf_slots.SLOT_CLASSES`)."""
    return options.batching != "static" and supports_inflight(model, options)


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
        token_processed_logprobs=out.token_processed_logprobs[b, :n].tolist(),
        processor_changed_steps=int(out.processor_changed_steps[b]),
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


def candidates_per_source(options: DecodeOptions) -> tuple[str | None, int]:
    """``("sample_index", N)`` when sampling, ``("candidate_index", R)`` with beam search (R returned
    candidates), ``(None, 1)`` for greedy decoding: the column numbering a source's rows and their count."""
    if options.num_beams > 1:
        return "candidate_index", options.num_return_sequences
    if options.num_samples:
        return "sample_index", options.num_samples
    return None, 1


def _beam_records(
    model, tokenizer, good, options, input_ids, mask, hidden, truncated, logits_dir, chunk: Chunk, generation
) -> list[PredictionRecord]:
    """The ``R`` candidates of every source of ``good``, best first: source ``b``'s candidate ``r`` is row
    ``b * R + r`` of :func:`~t5score.engine.beam.beam_search`'s output; with capture ``full`` the raw
    logits of those candidates (and of no other beam) go to the run's logits folder."""
    from t5score.engine.beam import beam_search

    per_source = options.num_return_sequences
    sink = None
    if options.capture == "full":
        rows = len(good) * per_source
        vocab = model.config.vocab_size
        sink = BatchLogitsWriter(
            logits_dir,
            chunk.batch_index,
            rows,
            generation.max_new_tokens,
            vocab,
            options.logits_dtype,
            chunk.part,
        )
    out = beam_search(
        model, input_ids, mask, options, encoder_hidden=hidden, generation=generation, logits_sink=sink
    )
    if sink is not None:
        ids = [row.id for row in good for _ in range(per_source)]
        candidates = list(range(per_source)) * len(good)
        sink.close(ids, out.num_tokens.tolist(), list(range(len(ids))), candidates)
    records = []
    for b, row in enumerate(good):
        for r in range(per_source):
            rec = _record(row, out, b * per_source + r, tokenizer, truncated[b], None)
            rec.candidate_index = r
            rec.sequence_score = float(out.sequence_scores[b * per_source + r])
            records.append(rec)
    return records


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
    generation: Generation | None = None,
) -> list[PredictionRecord]:
    """Decode ``rows`` as one batch; rows with ``error`` set are kept, undecoded, with that error.

    Greedy decoding gives one record per row, sampling ``num_samples`` (``sample_index``), beam search
    (``num_beams > 1``) ``num_return_sequences`` (``candidate_index``, 0 = the best beam, with its
    ``sequence_score``). The encoder runs once per batch: its output serves every sample or beam and, with
    ``score_references`` (greedy decoding and beam search), the teacher-forced scores of the rows' targets
    (``ref_*`` fields; each reference is scored once, and every candidate of its source carries them).
    ``generation``: the generation settings resolved once for the run (:func:`resolve_generation_for`);
    default: resolved here.
    """
    if generation is None:
        generation = resolve_generation_for(model, tokenizer, options)
    device = next(model.parameters()).device
    records: list[PredictionRecord] = []
    good = [r for r in rows if r.error is None]
    column, per_source = candidates_per_source(options)
    for r in rows:
        if r.error is not None:
            for s in range(per_source):
                rec = PredictionRecord(r.position, r.id, r.source, target=r.target, error=r.error)
                if column is not None:
                    setattr(rec, column, s)
                records.append(rec)
    inflight = uses_inflight(model, options)
    for part, rows_part in enumerate(chunks(model, options, good) if good else []):
        input_ids, mask, truncated = tokenize_sources(
            tokenizer, [r.source for r in rows_part], max_source_length, device
        )
        if inflight:  # the encoder in parts of `slots` rows, each cut to its own longest source
            hidden = encode_in_parts(model, input_ids, mask, options.slots)  # [G, S, D]
        else:
            hidden = model.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state
        decode = _beam_records if options.num_beams > 1 else _sampled_records
        chunk = Chunk(batch_index, part, inflight)
        decoded = decode(
            model,
            tokenizer,
            rows_part,
            options,
            input_ids,
            mask,
            hidden,
            truncated,
            logits_dir,
            chunk,
            generation,
        )
        records.extend(decoded)
        if score_references and not options.num_samples:
            reference_scores_per_source(model, tokenizer, rows_part, decoded, hidden, mask, per_source)
    records.sort(key=lambda rec: (rec.position, rec.sample_index or 0, rec.candidate_index or 0))
    return records


def _sampled_records(
    model, tokenizer, good, options, input_ids, mask, hidden, truncated, logits_dir, chunk: Chunk, generation
) -> list[PredictionRecord]:
    """Greedy decoding (one record per source; in-flight when ``chunk.inflight``) or ``num_samples``
    samples per source, sample-major."""
    records = []
    for s in range(max(options.num_samples, 1)):
        sampling = options.sampling(chunk.batch_index, s, chunk.part)  # None when decoding greedily
        sink = None
        if options.capture == "full":
            sink = BatchLogitsWriter(
                logits_dir,
                chunk.batch_index,
                len(good),
                generation.max_new_tokens,
                model.config.vocab_size,
                options.logits_dtype,
                chunk.part,
            )
        if chunk.inflight:
            out = inflight_decode(
                model,
                input_ids,
                mask,
                options,
                slots=options.slots,
                logits_sink=sink,
                encoder_hidden=hidden,
                generation=generation,
            )
        else:
            out = greedy_decode(
                model,
                input_ids,
                mask,
                options,
                logits_sink=sink,
                sampling=sampling,
                encoder_hidden=hidden,
                generation=generation,
            )
        sample = s if options.num_samples else None
        for b, row in enumerate(good):
            records.append(_record(row, out, b, tokenizer, truncated[b], sample))
        if sink is not None:
            sink.close([r.id for r in good], out.num_tokens.tolist(), list(range(len(good))))
    return records


def resolve_generation_for(model, tokenizer, options: DecodeOptions, warn: bool = False) -> Generation:
    """The generation settings of a run (:func:`t5score.engine.processors.resolve_generation`), with a
    ``forced_bos_token`` string looked up in ``tokenizer``; ``warn`` emits the one warning line. The
    options are checked against the model first (:func:`check_for_model`): a run refuses them here, once,
    before its output folder exists, not in its first batch."""
    check_for_model(model, options)
    generation = resolve_generation(model, with_token_ids(options, tokenizer), warn=warn)
    if (limit := decoder_positions(model)) is not None and generation.max_new_tokens > limit:
        raise ValueError(
            f"max_new_tokens ({generation.max_new_tokens}) is more than the model's {limit} decoder positions"
        )
    return generation


def check_for_model(model, options: DecodeOptions) -> None:
    """A ValueError for options ``model`` cannot decode with: engine "t5" or compile without the fast T5
    kernels, ``top_k`` above the vocabulary."""
    fast = uses_t5_kernels(model, options.engine)  # engine "t5" on another model raises here
    if options.compile and not fast:
        raise ValueError("compile=True needs the fast T5 engine (engine='auto' or 't5' on a T5-family model)")
    if options.batching == "inflight" and not supports_inflight(model, options):
        raise ValueError(
            "batching='inflight' needs greedy decoding (num_beams 1, num_samples 0, no compile) of a model "
            f"family it covers ({', '.join(SLOT_FAMILIES)}); use batching 'auto' or 'static'"
        )
    vocab = vocab_size(model)
    if options.top_k > vocab:
        raise ValueError(f"top_k ({options.top_k}) is larger than the model's vocabulary ({vocab} tokens)")
