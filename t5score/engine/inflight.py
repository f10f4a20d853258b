"""In-flight (continuous) batching: a fixed number of decoder slots, kept busy until the sources run out.

Static batches run until their longest row ends, so the steps after a row's EOS are wasted;
``drop_finished`` shrinks the batch instead. Here a row that ends hands its slot to the next source:

1. The first ``slots`` sources (in the order given: the caller sorts them by length) take the slots.
2. Each step feeds one token per busy slot, each slot at its own position.
3. The generation config's processors choose the token as ``generate`` would for that row alone: they run
   on the slots that share a position together (their decoder input ids have that length), rebuilt for the
   slots' own sources when they hold per-row state (the encoder-side n-gram and repetition penalties).
4. A row that emits an EOS id or reaches ``max_new_tokens`` leaves; the next source takes its slot (its
   cross-attention keys/values written into the slot, its position back to 0).
5. When no source is left, the busy slots are compacted, so the tail runs on the rows still decoding.

Each row's tokens are those of decoding it alone; its statistics too, up to float rounding (the matrix
products run on a different set of rows). Greedy decoding, on the fast T5 engine
(:class:`~t5score.engine.t5.slots.T5Slots`) or through the model's own forward
(:class:`~t5score.engine.hf_slots.HFSlots`, the models of :data:`~t5score.engine.hf_slots.SLOT_CLASSES`);
sampling, beam search, ``compile`` and other families decode in static batches
(:func:`t5score.engine.decode.greedy_decode`).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from t5score.engine.decode import DecodeOutput, LogitsSink, StepBuffer, _processed_step
from t5score.engine.engines import uses_t5_kernels
from t5score.engine.hf_slots import HFSlots, supports_slots
from t5score.engine.options import DecodeOptions
from t5score.engine.processors import Generation, has_per_row_state, resolve_generation
from t5score.engine.stats import token_stats
from t5score.engine.t5.slots import T5Slots


def supports_inflight(model: torch.nn.Module, options: DecodeOptions, sampled: bool = False) -> bool:
    """True when :func:`inflight_decode` can decode with ``options``: greedy, one beam, without
    ``compile``, on the fast T5 engine or on a family the generic engine's slots cover
    (:data:`t5score.engine.hf_slots.SLOT_CLASSES`)."""
    greedy = not sampled and options.num_beams == 1 and not options.num_samples
    return (
        greedy and not options.compile and (uses_t5_kernels(model, options.engine) or supports_slots(model))
    )


def encode_in_parts(
    model: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor, part: int
) -> torch.Tensor:
    """The encoder's output ``[B, S, D]`` of ``input_ids`` run ``part`` rows at a time, each part cut to its
    own longest source (zeros after it, where the mask is 0): rows sorted longest first waste no encoder
    work on the padding of the batch's longest source."""
    encoder = model.get_encoder()
    lengths = mask.sum(dim=1).tolist()
    out = None
    for start in range(0, input_ids.shape[0], part):
        rows = slice(start, start + part)
        width = int(max(lengths[rows], default=0)) or 1
        hidden = encoder(
            input_ids=input_ids[rows, :width], attention_mask=mask[rows, :width]
        ).last_hidden_state
        if out is None:
            out = hidden.new_zeros(input_ids.shape[0], input_ids.shape[1], hidden.shape[-1])
        out[rows, :width] = hidden
    return out


def _by_position(pos: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for slot, p in enumerate(pos):
        groups[p].append(slot)
    return groups


@torch.inference_mode()
def inflight_decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    options: DecodeOptions | None = None,
    *,
    slots: int = 16,
    logits_sink: LogitsSink | None = None,
    encoder_hidden: torch.Tensor | None = None,
    generation: Generation | None = None,
) -> DecodeOutput:
    """Decode ``input_ids`` (``[B, S]``, rows in admission order) greedily with ``slots`` decoder slots.

    The same contract as :func:`t5score.engine.decode.greedy_decode` (its :class:`DecodeOutput`, rows in
    the input's order; ``logits_sink`` called per step with the rows at that step); ``eos_check_every``
    and ``drop_finished`` do not apply (a slot is refilled as soon as its row ends).
    """
    opts = options if options is not None else DecodeOptions()
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    gen_cfg = generation if generation is not None else resolve_generation(model, opts, warn=True)
    pad, eos_ids, steps_max = gen_cfg.pad_token_id, gen_cfg.eos_token_ids, gen_cfg.max_new_tokens
    device, batch = input_ids.device, input_ids.shape[0]
    processors = gen_cfg.processors(model, input_ids)  # None: the config adds none
    per_row = processors is not None and has_per_row_state(processors)
    out = StepBuffer(batch, steps_max, opts.top_k, pad, device, processed=processors is not None)  # [B, T]
    if batch == 0:
        return out.finish(0, eos_ids)
    if encoder_hidden is None:
        encoder_hidden = encode_in_parts(model, input_ids, attention_mask, slots)  # [B, S, D]
    lengths = attention_mask.sum(dim=1).tolist()  # each source's length: the cross-attention width in use
    start = gen_cfg.decoder_start_token_id
    seqs = None  # [B, T+1] each row's decoder input ids, for the processors
    if processors is not None:
        seqs = torch.full((batch, steps_max + 1), pad, dtype=torch.long, device=device)
        seqs[:, 0] = start
    eos = torch.tensor(eos_ids, device=device)

    width = min(slots, batch)
    shape = (model, width, steps_max, input_ids.shape[1], encoder_hidden.dtype, device)
    if uses_t5_kernels(model, opts.engine):
        cache = T5Slots(*shape)
    else:
        cache = HFSlots(*shape, start=start, hidden_size=encoder_hidden.shape[-1])
    cache.admit(torch.arange(width, device=device), encoder_hidden[:width], attention_mask[:width])
    slot_row = list(range(width))  # the row each slot decodes
    pos = [0] * width  # each slot's position (tokens its row has so far)
    ids = torch.full((width,), start, dtype=torch.long, device=device)  # [N] each slot's last token
    waiting = width  # the next row to admit

    while slot_row:
        rows = torch.tensor(slot_row, device=device)  # [N]
        at = torch.tensor(pos, device=device)  # [N]
        width = int(max(lengths[r] for r in slot_row)) or 1
        logits = cache.step(ids, at, max(pos) + 1, width)  # [N, V]
        groups = _by_position(pos) if processors is not None or logits_sink is not None else {}
        processed = None
        if processors is None:
            stats = token_stats(logits, top_k=opts.top_k)  # [N] per field, [N, k] for top-k
            token = stats.top1_ids
        else:
            token = torch.empty_like(ids)
            processed = torch.empty(len(ids), device=device)
            for p, group in groups.items():
                g = torch.tensor(group, device=device)
                procs = gen_cfg.processors(model, input_ids[rows[g]]) if per_row else processors
                tok, _, lp, changed = _processed_step(procs, seqs[rows[g], : p + 1], logits[g], None, None, 1)
                token[g], processed[g] = tok, lp
                out.changed[rows[g]] += changed.long()
            stats = token_stats(logits, token, top_k=opts.top_k)
        if logits_sink is not None:
            for p, group in groups.items():
                g = torch.tensor(group, device=device)
                logits_sink(p, rows[g], logits[g])
        out.write((rows, at), token, stats, processed)
        if seqs is not None:
            seqs[rows, at + 1] = token
        ended = (torch.isin(token, eos) | (at + 1 >= steps_max)).tolist()
        ids = token
        pos = [p + 1 for p in pos]
        free = [s for s, done in enumerate(ended) if done]
        refill = free[: batch - waiting]
        if refill:  # the next sources take the freed slots
            new = torch.arange(waiting, waiting + len(refill), device=device)
            cache.admit(torch.tensor(refill, device=device), encoder_hidden[new], attention_mask[new])
            ids = ids.clone()
            ids[torch.tensor(refill, device=device)] = start
            for s, row in zip(refill, new.tolist(), strict=True):
                slot_row[s], pos[s] = row, 0
            waiting += len(refill)
        idle = free[len(refill) :]
        if idle:  # no source left for these slots: the others go on without them
            keep = [s for s in range(len(slot_row)) if s not in set(idle)]
            if keep:
                cache.select(torch.tensor(keep, device=device))
                ids = ids[torch.tensor(keep, device=device)]
            slot_row, pos = [slot_row[s] for s in keep], [pos[s] for s in keep]
    return out.finish(steps_max, eos_ids)
