"""Beam search and diverse beam search with per-candidate capture, pure torch.

:func:`beam_search` decodes as ``model.generate(num_beams=N, do_sample=False)`` does in transformers 5
(its ``_beam_search``, followed step by step in :mod:`t5score.engine.beam_groups`): each step the
generation config's processors (:mod:`t5score.engine.processors`) take the log-softmax of the raw logits of
every beam (``[B*N, V]``, given the beams' decoder ids ``[B*N, t+1]``), the processed scores are added to
the running beam scores, the best ``2N`` continuations of each source are kept, those ending in EOS among
the first ``N`` enter the finished hypotheses with the score ``sum / length ** length_penalty`` (``length``
= generated tokens including EOS), the best ``N`` others continue, and ``early_stopping`` (True / False /
``"never"``) and the length (``max_new_tokens`` / ``max_length``, resolved as in greedy decoding) end the
search. The encoder runs once per source; its states are expanded to the beams, and the decoder's
self-attention cache is reordered per step (the fast T5 step where it applies, else the model's forward).

With ``num_beam_groups`` G > 1 it is diverse beam search (Vijayakumar et al. 2018, as transformers 4.x's
``_group_beam_search``): the beams form G groups of ``N / G``, decoded in turn within a step; group ``g``'s
log-probabilities are lowered by ``diversity_penalty`` times the number of times each token was chosen by
groups ``0..g-1`` at this step (the tokens of their continuing beams: Hamming diversity) before its
processors run; each group keeps its own
finished hypotheses and the candidates of a source are the best of all groups' finished hypotheses. With
one group it is plain beam search.

Per candidate the output carries the raw-model statistics of each token under its own beam's raw
distribution (``token_logprobs``, entropies, top-1, top-k: reduced per step, never a ``[beams, steps,
vocab]`` tensor), ``token_processed_logprobs`` (the processed transition scores, as
``compute_transition_scores(sequences, scores, beam_indices)`` gives them) and ``sequence_scores`` (the
score that decided the rank, generate's ``sequences_scores``): ``sum(token_processed_logprobs) /
num_tokens ** length_penalty == sequence_scores``.
"""

from __future__ import annotations

import torch

from t5score.engine.beam_groups import BEAM_FIELDS, BeamSettings, GroupState, Hyps
from t5score.engine.beam_logits import StepLogitsStore
from t5score.engine.decode import DecodeOutput, LogitsSink
from t5score.engine.engines import decoder_stepper
from t5score.engine.hf import HFStepper, encoder_output
from t5score.engine.options import DecodeOptions
from t5score.engine.processors import Generation, resolve_generation
from t5score.engine.stats import token_stats
from t5score.engine.t5.step import T5Stepper


def beam_settings(generation: Generation, options: DecodeOptions) -> BeamSettings:
    """The beam settings of ``options``; ``length_penalty`` / ``early_stopping`` ``None`` take the
    generation config's (1.0 / False when it has none)."""
    config = generation.config
    length_penalty = options.length_penalty
    if length_penalty is None:
        length_penalty = config.length_penalty if config.length_penalty is not None else 1.0
    early = options.early_stopping
    if early is None:
        early = config.early_stopping if config.early_stopping is not None else False
    return BeamSettings(
        group_size=options.num_beams // options.num_beam_groups,
        max_length=generation.max_new_tokens + 1,
        eos_ids=torch.tensor(generation.eos_token_ids),
        length_penalty=float(length_penalty),
        early_stopping=early,
    )


def _reorder(stepper, index: torch.Tensor) -> None:
    """Reorder the decoder state to the beams ``index`` (``[B*N]``, rows into the current beams, repeats
    allowed). Beams move only within their source, so the encoder side (identical across a source's beams)
    stays: only the self-attention cache is reordered."""
    if isinstance(stepper, T5Stepper):
        for cache in (stepper.self_k, stepper.self_v):
            cache[:] = [c.index_select(0, index) for c in cache]
    elif isinstance(stepper, HFStepper):
        stepper.cache.self_attention_cache.reorder_cache(index)
    else:
        stepper.select(index)


def _hamming(scores: torch.Tensor, counts: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """Group scores ``[B, n, V]`` lowered by ``penalty`` times the earlier groups' token counts ``[B, V]``."""
    if counts is None or penalty == 0:
        return scores
    return scores - penalty * counts[:, None, :]


@torch.inference_mode()
def beam_search(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    options: DecodeOptions,
    *,
    encoder_hidden: torch.Tensor | None = None,
    generation: Generation | None = None,
    logits_sink: LogitsSink | None = None,
) -> DecodeOutput:
    """Beam search (diverse with ``options.num_beam_groups > 1``) over ``input_ids`` (``[B, S]``).

    Returns ``B * R`` rows, ``R = options.num_return_sequences``: source ``b``'s candidate ``r`` (0 = the
    best) at row ``b * R + r``, with every :class:`~t5score.engine.decode.DecodeOutput` field per candidate
    and ``sequence_scores`` (see the module doc). ``encoder_hidden`` (``[B, S, D]``): the encoder's output
    when the caller has it; ``generation``: the resolved generation settings (default: resolved here,
    warning once about ignored settings). ``logits_sink`` (capture ``full``) receives the raw logits of the
    RETURNED candidates only, as ``sink(step, candidate_rows, logits)`` once decoding is over: every step's
    beam logits wait in a temporary file (never in memory) until the finalists are known, then each
    candidate's steps are read back along its ``beam_indices``. ``engine``, ``compile`` and ``top_k`` are read as in
    :func:`~t5score.engine.decode.greedy_decode`; ``eos_check_every`` and ``drop_finished`` do not apply.
    """
    opts = options
    gen_cfg = generation if generation is not None else resolve_generation(model, opts, warn=True)
    settings = beam_settings(gen_cfg, opts)
    device, batch, steps_max = input_ids.device, input_ids.shape[0], gen_cfg.max_new_tokens
    settings.eos_ids = settings.eos_ids.to(device)
    beams, groups, n = opts.num_beams, opts.num_beam_groups, settings.group_size
    pad, start = gen_cfg.pad_token_id, gen_cfg.decoder_start_token_id
    processors = gen_cfg.processors(model, input_ids)  # per source, as generate builds them

    if encoder_hidden is None:
        encoder = model.get_encoder()
        encoder_hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    outputs = encoder_output(model, encoder_hidden)
    stepper = decoder_stepper(model, outputs, attention_mask, steps_max, opts.engine, opts.compile)
    stepper.select(torch.arange(batch, device=device).repeat_interleave(beams))  # [B*N] beam rows
    states = [GroupState(batch, settings, opts.top_k, start, pad, device) for _ in range(groups)]
    offsets = torch.arange(batch, device=device)[:, None] * beams  # [B, 1] first beam row of a source
    next_ids = torch.full((batch * beams,), start, dtype=torch.long, device=device)
    store = StepLogitsStore(steps_max, batch * beams, model.config.vocab_size) if logits_sink else None

    for step in range(steps_max):
        logits = stepper.step(next_ids)  # [B*N, V]
        raw = torch.log_softmax(logits.to(torch.float32), dim=-1).view(batch, groups, n, -1)
        stats = token_stats(logits, top_k=opts.top_k)
        per_beam = {
            name: getattr(stats, name).view(batch, groups, n, *getattr(stats, name).shape[1:])
            for name in BEAM_FIELDS
            if name not in ("changed", "beam_rows")
        }
        per_beam["beam_rows"] = torch.arange(batch * beams, device=device).view(batch, groups, n)
        if store is not None:
            store.write(step, logits)
        top1 = stats.top1_ids.view(batch, groups, n)
        counts = None  # [B, V] tokens chosen at this step by the groups so far (diverse search)
        sources, tokens, hits = [], [], []
        for g, state in enumerate(states):
            scores = _hamming(raw[:, g], counts, opts.diversity_penalty)  # [B, n, V]
            if processors is not None:
                seqs = state.running.tokens[:, :, : step + 1].reshape(batch * n, step + 1)
                scores = processors(seqs, scores.reshape(batch * n, -1).clone()).view(scores.shape)
            beam_stats = {name: value[:, g] for name, value in per_beam.items()}
            beam_stats["changed"] = scores.argmax(dim=-1) != top1[:, g]
            source, token, hit = state.advance(step, scores, raw[:, g], beam_stats)
            sources.append(source + offsets + g * n)
            tokens.append(token)
            hits.append(hit)
            if groups > 1 and opts.diversity_penalty:
                counts = torch.zeros_like(raw[:, 0, 0]) if counts is None else counts
                counts.scatter_add_(1, token, torch.ones_like(token, dtype=counts.dtype))
        _reorder(stepper, torch.cat(sources, dim=1).reshape(-1))
        next_ids = torch.cat(tokens, dim=1).reshape(-1)
        for state in states:
            state.check_early_stop(step + 2)
        # generate's stopping condition, over every group of every source
        improvable = any(bool(state.unsatisfied.any()) for state in states)
        all_full = all(bool(state.is_finished.all()) for state in states) and settings.early_stopping is True
        if not improvable or all_full or bool(torch.cat(hits, dim=1).all()):
            break

    out = _candidates(states, opts.num_return_sequences, pad)
    if store is not None:
        store.replay(out, logits_sink)
    return out


def _candidates(states: list[GroupState], returned: int, pad: int) -> DecodeOutput:
    """The best ``returned`` finished hypotheses of each source, flattened to ``[B * R]`` rows."""
    pool, scores = states[0].finished, states[0].finished_scores  # [B, n], best first
    for state in states[1:]:
        pool, scores = pool.cat(state.finished), torch.cat((scores, state.finished_scores), dim=1)
    if len(states) > 1:
        order = scores.sort(dim=1, descending=True, stable=True)[1]
    else:
        order = torch.arange(scores.shape[1], device=scores.device).expand_as(scores)
    best = order[:, :returned]
    hyps: Hyps = pool.take(best)
    rows = best.numel()
    length = hyps.length.reshape(rows)
    longest = int(length.max()) if rows else 0
    valid = torch.arange(longest, device=length.device)[None, :] < length[:, None]  # [B*R, T]
    fields = {name: t[:, :, :longest].reshape(rows, longest, *t.shape[3:]) for name, t in hyps.fields.items()}
    masked = {
        name: t.masked_fill(~valid[..., None] if t.dim() == 3 else ~valid, 0)
        for name, t in fields.items()
        if name not in ("nonfinite", "changed", "beam_rows")
    }
    return DecodeOutput(
        token_ids=hyps.tokens[:, :, 1 : longest + 1].reshape(rows, longest).masked_fill(~valid, pad),
        **masked,
        num_tokens=length,
        finished=hyps.eos.reshape(rows),
        nonfinite=(fields["nonfinite"] & valid).any(dim=1),
        processor_changed_steps=(fields["changed"] & valid).sum(dim=1),
        sequence_scores=scores.gather(1, best).reshape(rows),
        beam_indices=fields["beam_rows"].masked_fill(~valid, -1),
    )
