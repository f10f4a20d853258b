"""The decoding engine: greedy (or sampled) decoding with raw-logit capture, pure torch.

The encoder runs once; every decoder step feeds one token per row and reuses a key/value cache. Each
step's raw logits are reduced at once to per-token statistics (:mod:`t5score.engine.stats`) written into a
:class:`StepBuffer`, so memory does not grow with the vocabulary times the generation length;
``logits_sink`` receives the raw logits of each step when they must be kept (capture ``full``). Rows stop
at their own EOS and are padded in the output; with ``drop_finished`` they also leave the batch (the cache
is compacted).

T5-family models run through a fast decoder step (:mod:`t5score.engine.t5.step`: preallocated cache, fused
and prepacked weights); other models through their own forward with Hugging Face's dynamic cache
(:mod:`t5score.engine.hf`); :mod:`t5score.engine.engines` chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from t5score.engine.engines import decoder_stepper
from t5score.engine.hf import encoder_output
from t5score.engine.options import DecodeOptions, Sampling
from t5score.engine.processors import Generation, has_per_row_state, resolve_generation
from t5score.engine.stats import TokenStats, token_stats

# sink(step, row_index [A], logits [A, V]): raw logits of the rows still decoding at this step
LogitsSink = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass
class DecodeOutput:
    """Per-row decoding results, padded to the longest row; ``num_tokens`` gives each row's length."""

    token_ids: torch.Tensor  # [B, T] generated ids incl. EOS, pad after
    token_logprobs: torch.Tensor  # [B, T]
    entropies: torch.Tensor  # [B, T]
    top1_probs: torch.Tensor  # [B, T]
    topk_ids: torch.Tensor  # [B, T, k]
    topk_logprobs: torch.Tensor  # [B, T, k]
    num_tokens: torch.Tensor  # [B]
    finished: torch.Tensor  # [B] bool: EOS emitted
    nonfinite: torch.Tensor  # [B] bool: some step's logits held NaN/inf
    # [B, T] log_softmax of the processed scores (generation config) at the chosen token, as
    # compute_transition_scores(normalize_logits=True); equal to token_logprobs without processors
    token_processed_logprobs: torch.Tensor | None = None
    processor_changed_steps: torch.Tensor | None = None  # [B] steps where a processor changed the argmax
    # [B] beam search (t5score.engine.beam): the length-penalised beam score that decided the candidate's
    # rank, generate's sequences_scores; None for greedy and sampled rows
    sequence_scores: torch.Tensor | None = None
    # [B, T] beam search: the beam row (of batch * num_beams) whose logits gave each token, -1 after the
    # candidate's end (generate's beam_indices)
    beam_indices: torch.Tensor | None = None


# the TokenStats fields a decoding keeps per step: name -> (dtype, has a top-k dim)
STEP_FIELDS = {
    "token_logprobs": (torch.float32, False),
    "entropies": (torch.float32, False),
    "top1_probs": (torch.float32, False),
    "topk_ids": (torch.long, True),
    "topk_logprobs": (torch.float32, True),
    "nonfinite": (torch.bool, False),
}


class StepBuffer:
    """The chosen tokens and their :data:`STEP_FIELDS` statistics of a batch, one column per step:
    ``[B, T]`` (``[B, T, k]`` for top-k), written step by step, trimmed and masked by :meth:`finish`."""

    def __init__(
        self, batch: int, steps: int, top_k: int, pad_id: int, device: torch.device, processed: bool = False
    ):
        self.pad_id = pad_id
        self.token_ids = torch.full((batch, steps), pad_id, dtype=torch.long, device=device)
        self.fields = {
            name: torch.zeros(batch, steps, *((top_k,) if topk else ()), dtype=dtype, device=device)
            for name, (dtype, topk) in STEP_FIELDS.items()
        }
        # with logits processors: the processed log-probabilities [B, T] and the changed-choice counts [B]
        self.processed = torch.zeros(batch, steps, device=device) if processed else None
        self.changed = torch.zeros(batch, dtype=torch.long, device=device) if processed else None

    def write(
        self, at: tuple, token: torch.Tensor, stats: TokenStats, processed: torch.Tensor | None = None
    ) -> None:
        """Store step values of the rows ``at`` (``(rows, step)`` index): ``token`` ``[A]`` and ``stats``
        (and the processed log-probabilities ``[A]`` when the buffer keeps them)."""
        self.token_ids[at] = token
        for name, buffer in self.fields.items():
            buffer[at] = getattr(stats, name)
        if processed is not None:
            self.processed[at] = processed

    def finish(self, steps: int, eos_ids: int | tuple[int, ...]) -> DecodeOutput:
        """A row's tokens run up to and including its first EOS (any of ``eos_ids``) within ``steps``; later
        columns are padding."""
        tokens = self.token_ids[:, :steps]
        if isinstance(eos_ids, int) or len(eos_ids) == 1:
            is_eos = tokens == (eos_ids if isinstance(eos_ids, int) else eos_ids[0])  # [B, steps]
        else:
            is_eos = torch.isin(tokens, torch.tensor(eos_ids, device=tokens.device))
        finished = is_eos.any(dim=1)
        num_tokens = torch.where(finished, is_eos.int().argmax(dim=1) + 1, steps)  # [B]
        longest = int(num_tokens.max()) if len(num_tokens) else 0
        valid = torch.arange(longest, device=num_tokens.device)[None, :] < num_tokens[:, None]  # [B, T]
        kept = {name: self.fields[name][:, :longest] for name in STEP_FIELDS}
        masked = {
            name: kept[name].masked_fill(~valid[..., None] if topk else ~valid, 0)
            for name, (_, topk) in STEP_FIELDS.items()
            if name != "nonfinite"
        }
        if self.processed is None:
            processed, changed = masked["token_logprobs"].clone(), torch.zeros_like(num_tokens)
        else:
            processed, changed = self.processed[:, :longest].masked_fill(~valid, 0), self.changed
        return DecodeOutput(
            token_ids=self.token_ids[:, :longest].masked_fill(~valid, self.pad_id),
            **masked,
            num_tokens=num_tokens,
            finished=finished,
            nonfinite=(kept["nonfinite"] & valid).any(dim=1),
            token_processed_logprobs=processed,
            processor_changed_steps=changed,
        )


def _choose(logits: torch.Tensor, greedy_ids: torch.Tensor, sampling: Sampling | None, gen) -> torch.Tensor:
    """Next token per row ``[A]``: argmax, or a draw from the temperature/top-p filtered distribution."""
    if sampling is None:
        return greedy_ids
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)  # [A, V]
    if sampling.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > sampling.top_p  # keep the smallest prefix reaching top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    probs = torch.nan_to_num(probs, nan=0.0).clamp_min(0)
    bad = probs.sum(-1) <= 0
    if bad.any():  # non-finite logits: fall back to argmax, the row is flagged anyway
        probs[bad] = torch.nn.functional.one_hot(greedy_ids[bad], probs.shape[-1]).to(probs.dtype)
    return torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(-1).to(logits.device)


def _processed_step(processors, seqs: torch.Tensor, logits: torch.Tensor, sampling, gen, top_k: int):
    """One step through the generation config's processors, as ``generate`` takes it: the processed
    scores of the float32 logits given the decoder input ids ``seqs`` (``[A, t+1]``) choose the token;
    the statistics stay those of the raw logits at that token. Returns the token ``[A]``, its stats, the
    processed log-probability ``[A]`` and whether a processor changed the argmax ``[A]``."""
    scores = processors(seqs, logits.to(torch.float32, copy=True))  # [A, V]
    best = scores.argmax(dim=-1)  # [A]
    token = _choose(scores, best, sampling, gen)
    stats = token_stats(logits, token, top_k=top_k)
    processed = torch.log_softmax(scores, dim=-1).gather(-1, token[:, None])[:, 0]
    return token, stats, processed, best != stats.top1_ids


@torch.inference_mode()
def greedy_decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    options: DecodeOptions | None = None,
    *,
    logits_sink: LogitsSink | None = None,
    sampling: Sampling | None = None,
    encoder_hidden: torch.Tensor | None = None,
    generation: Generation | None = None,
) -> DecodeOutput:
    """Decode ``input_ids`` (``[B, S]``) greedily, capturing per-token statistics of the raw logits.

    The model's generation config is honoured as ``model.generate(do_sample=False, num_beams=1)`` honours
    it (:mod:`t5score.engine.processors`: its logits processors choose the token, its ``max_new_tokens`` /
    ``max_length`` give the length, any of its EOS ids ends a row): tokens match ``generate`` token for
    token. The statistics (``token_logprobs``, entropies, top-1, top-k) are those of the raw logits at the
    chosen token; ``token_processed_logprobs`` those of the processed scores. ``generation``: the resolved
    settings (default: resolved here from ``options``, warning once about ignored settings).
    ``sampling`` switches to seeded ancestral sampling (the processors first, then temperature / top-p).
    ``options`` (default ``DecodeOptions()``) gives ``max_new_tokens``, ``top_k`` and the engine's options:
    ``eos_check_every`` trades a host sync per step for a few wasted steps at the end; ``drop_finished``
    removes rows that emitted EOS from the batch (later steps then run on fewer rows, so float rounding can
    differ slightly from ``generate``; processors holding per-row state, the encoder-side n-gram and
    repetition penalties, are rebuilt for the remaining rows). ``engine``: ``"auto"`` uses the fast T5
    decoder step for T5-family models and the model's own forward otherwise; ``"hf"`` always the model's
    forward; ``"t5"`` requires the fast step. ``compile=True`` (opt-in) runs the fast step through
    ``torch.compile`` (a string names the backend, default ``"inductor"``): it pays a compilation (tens of
    seconds on CPU) per new batch shape, so it suits fixed-shape batches. ``encoder_hidden``
    (``[B, S, D]``): the encoder's output for ``input_ids`` when the caller already has it (it is shared with
    the samples of a row and with reference scoring); otherwise the encoder runs here.
    """
    opts = options if options is not None else DecodeOptions()
    gen_cfg = generation if generation is not None else resolve_generation(model, opts, warn=True)
    pad, eos_ids = gen_cfg.pad_token_id, gen_cfg.eos_token_ids
    device, batch, steps_max = input_ids.device, input_ids.shape[0], gen_cfg.max_new_tokens
    gen = torch.Generator().manual_seed(sampling.seed) if sampling is not None else None
    processors = gen_cfg.processors(model, input_ids)  # None: the config adds none, nothing to pay
    out = StepBuffer(batch, steps_max, opts.top_k, pad, device, processed=processors is not None)  # [B, T]
    eos = torch.tensor(eos_ids, device=device) if len(eos_ids) > 1 else None  # a list of EOS ids

    if encoder_hidden is None:
        encoder = model.get_encoder()
        encoder_hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    # [B, S, D]; ours, as dropping finished rows replaces it
    encoder_outputs = encoder_output(model, encoder_hidden)
    stepper = decoder_stepper(model, encoder_outputs, attention_mask, steps_max, opts.engine, opts.compile)
    row_index = torch.arange(batch, device=device)  # [A] original row of each active row
    dense = True  # row_index is still arange(batch): write columns without indexing
    active_done = torch.zeros(batch, dtype=torch.bool, device=device)  # [A] EOS seen among active rows
    next_ids = torch.full((batch,), gen_cfg.decoder_start_token_id, dtype=torch.long, device=device)  # [A]
    seqs = None  # [B, T+1] the decoder input ids the processors see: start token, tokens, pad after EOS
    if processors is not None:
        seqs = torch.full((batch, steps_max + 1), pad, dtype=torch.long, device=device)
        seqs[:, 0] = gen_cfg.decoder_start_token_id
    steps = 0

    for step in range(steps_max):
        logits = stepper.step(next_ids)  # [A, V]
        rows = slice(None) if dense else row_index
        processed = None
        if processors is None:
            stats = token_stats(logits, top_k=opts.top_k)  # [A] per field, [A, k] for top-k
            token = _choose(logits, stats.top1_ids, sampling, gen)  # [A]
            if sampling is not None:
                stats.token_logprobs = torch.log_softmax(logits.float(), -1).gather(-1, token[:, None])[:, 0]
        else:
            token, stats, processed, changed = _processed_step(
                processors, seqs[rows, : step + 1], logits, sampling, gen, opts.top_k
            )
            out.changed[rows] += (changed & ~active_done).long()
        if logits_sink is not None:
            live = ~active_done  # rows that emit a token at this step
            logits_sink(step, row_index[live], logits[live])
        out.write((rows, step), token, stats, processed)
        steps = step + 1
        # as generate: a row's EOS is still fed back once, padding only after it
        next_ids = token.masked_fill(active_done, pad)  # [A]
        if seqs is not None:
            seqs[rows, steps] = next_ids
        active_done = active_done | (token == eos_ids[0] if eos is None else torch.isin(token, eos))

        if steps % opts.eos_check_every == 0 and steps < steps_max:
            if bool(active_done.all()):
                break
            if opts.drop_finished and bool(active_done.any()):
                keep = (~active_done).nonzero().squeeze(-1)  # [A']
                stepper.select(keep)
                row_index, next_ids, active_done = row_index[keep], next_ids[keep], active_done[keep]
                dense = False
                if processors is not None and has_per_row_state(processors):
                    processors = gen_cfg.processors(model, input_ids.index_select(0, row_index))

    return out.finish(steps, eos_ids)
