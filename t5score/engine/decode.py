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
from transformers.modeling_outputs import BaseModelOutput

from t5score.engine.engines import decoder_stepper
from t5score.engine.modeling import special_tokens
from t5score.engine.options import DecodeOptions, Sampling
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

    def __init__(self, batch: int, steps: int, top_k: int, pad_id: int, device: torch.device):
        self.pad_id = pad_id
        self.token_ids = torch.full((batch, steps), pad_id, dtype=torch.long, device=device)
        self.fields = {
            name: torch.zeros(batch, steps, *((top_k,) if topk else ()), dtype=dtype, device=device)
            for name, (dtype, topk) in STEP_FIELDS.items()
        }

    def write(self, at: tuple, token: torch.Tensor, stats: TokenStats) -> None:
        """Store step values of the rows ``at`` (``(rows, step)`` index): ``token`` ``[A]`` and ``stats``."""
        self.token_ids[at] = token
        for name, buffer in self.fields.items():
            buffer[at] = getattr(stats, name)

    def finish(self, steps: int, eos_id: int) -> DecodeOutput:
        """A row's tokens run up to and including its first EOS within ``steps``; later columns are padding."""
        is_eos = self.token_ids[:, :steps] == eos_id  # [B, steps]
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
        return DecodeOutput(
            token_ids=self.token_ids[:, :longest].masked_fill(~valid, self.pad_id),
            **masked,
            num_tokens=num_tokens,
            finished=finished,
            nonfinite=(kept["nonfinite"] & valid).any(dim=1),
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
) -> DecodeOutput:
    """Decode ``input_ids`` (``[B, S]``) greedily, capturing per-token statistics of the raw logits.

    The result matches ``model.generate(do_sample=False, num_beams=1)`` token for token when the model's
    generation config adds no logits processors; ``sampling`` switches to seeded ancestral sampling.
    ``options`` (default ``DecodeOptions()``) gives ``max_new_tokens``, ``top_k`` and the engine's options:
    ``eos_check_every`` trades a host sync per step for a few wasted steps at the end; ``drop_finished``
    removes rows that emitted EOS from the batch (later steps then run on fewer rows, so float rounding can
    differ slightly from ``generate``). ``engine``: ``"auto"`` uses the fast T5 decoder step for T5-family
    models and the model's own forward otherwise; ``"hf"`` always the model's forward; ``"t5"`` requires the
    fast step. ``compile=True`` (opt-in) runs the fast step through ``torch.compile`` (a string names the
    backend, default ``"inductor"``): it pays a compilation (tens of seconds on CPU) per new batch shape, so
    it suits fixed-shape batches. ``encoder_hidden`` (``[B, S, D]``): the encoder's output for
    ``input_ids`` when the caller already has it (it is shared with the samples of a row and with reference
    scoring); otherwise the encoder runs here.
    """
    opts = options if options is not None else DecodeOptions()
    ids = special_tokens(model)
    device, batch, steps_max = input_ids.device, input_ids.shape[0], opts.max_new_tokens
    gen = torch.Generator().manual_seed(sampling.seed) if sampling is not None else None
    out = StepBuffer(batch, steps_max, opts.top_k, ids.pad_token_id, device)  # columns [B, T]

    if encoder_hidden is None:
        encoder = model.get_encoder()
        encoder_hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    # [B, S, D]; ours, as dropping finished rows replaces it
    encoder_outputs = BaseModelOutput(last_hidden_state=encoder_hidden)
    stepper = decoder_stepper(model, encoder_outputs, attention_mask, steps_max, opts.engine, opts.compile)
    row_index = torch.arange(batch, device=device)  # [A] original row of each active row
    dense = True  # row_index is still arange(batch): write columns without indexing
    active_done = torch.zeros(batch, dtype=torch.bool, device=device)  # [A] EOS seen among active rows
    next_ids = torch.full((batch,), ids.decoder_start_token_id, dtype=torch.long, device=device)  # [A]
    steps = 0

    for step in range(steps_max):
        logits = stepper.step(next_ids)  # [A, V]
        stats = token_stats(logits, top_k=opts.top_k)  # [A] per field, [A, k] for top-k
        token = _choose(logits, stats.top1_ids, sampling, gen)  # [A]
        if sampling is not None:
            stats.token_logprobs = torch.log_softmax(logits.float(), -1).gather(-1, token[:, None])[:, 0]
        if logits_sink is not None:
            live = ~active_done  # rows that emit a token at this step
            logits_sink(step, row_index[live], logits[live])
        out.write((slice(None), step) if dense else (row_index, step), token, stats)
        steps = step + 1
        # as generate: a row's EOS is still fed back once, padding only after it
        next_ids = token.masked_fill(active_done, ids.pad_token_id)  # [A]
        active_done = active_done | (token == ids.eos_token_id)

        if steps % opts.eos_check_every == 0 and steps < steps_max:
            if bool(active_done.all()):
                break
            if opts.drop_finished and bool(active_done.any()):
                keep = (~active_done).nonzero().squeeze(-1)  # [A']
                stepper.select(keep)
                row_index, next_ids, active_done = row_index[keep], next_ids[keep], active_done[keep]
                dense = False

    return out.finish(steps, ids.eos_token_id)
