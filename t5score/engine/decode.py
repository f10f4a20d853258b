"""The decoding engine: greedy (or sampled) decoding with raw-logit capture, pure torch.

The encoder runs once; every decoder step feeds one token per row and reuses the model's key/value
cache. Each step's raw logits are reduced at once to per-token statistics (``t5score.engine.stats``), so memory
does not grow with the vocabulary times the generation length; ``logits_sink`` receives the raw logits
of each step when they must be kept (capture ``full``). Rows stop at their own EOS and are padded in
the output; with ``drop_finished`` they also leave the batch (the cache is compacted).

T5-family models run through a fast decoder step (:mod:`t5score.engine.t5.kernels`: preallocated cache, fused and
prepacked weights); other models through their own forward with Hugging Face's dynamic cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from t5score.engine.modeling import special_tokens
from t5score.engine.stats import token_stats
from t5score.engine.t5 import kernels as fast_t5

# sink(step, row_index [A], logits [A, V]): raw logits of the rows still decoding at this step
LogitsSink = Callable[[int, torch.Tensor, torch.Tensor], None]
ENGINES = ("auto", "hf", "t5")


@dataclass
class Sampling:
    """Ancestral sampling instead of greedy choice; statistics still describe the raw model distribution."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


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


def _choose(logits: torch.Tensor, greedy_ids: torch.Tensor, sampling: Sampling | None, gen) -> torch.Tensor:
    """Next token per row: argmax, or a draw from the temperature/top-p filtered distribution."""
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


class HFStepper:
    """Generic decoder steps through the model's own forward and its dynamic key/value cache (any seq2seq)."""

    def __init__(self, model: torch.nn.Module, encoder_outputs, attention_mask: torch.Tensor):
        self.model, self.encoder_outputs, self.mask = model, encoder_outputs, attention_mask
        self.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.model(
            encoder_outputs=self.encoder_outputs,
            attention_mask=self.mask,
            decoder_input_ids=ids[:, None],
            cache=self.cache,
            use_cache=True,
        )
        self.cache = out.cache
        return out.logits[:, -1, :]

    def select(self, keep: torch.Tensor) -> None:
        self.cache.batch_select_indices(keep)
        self.encoder_outputs.last_hidden_state = self.encoder_outputs.last_hidden_state.index_select(0, keep)
        self.mask = self.mask.index_select(0, keep)


def _stepper(model, encoder_outputs, attention_mask, max_new_tokens: int, engine: str, compile: bool | str):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    fast = engine == "t5" or (engine == "auto" and fast_t5.supports(model))
    if engine == "t5" and not fast_t5.supports(model):
        raise ValueError(f"engine='t5' needs a T5/mT5 model in float32/bfloat16, got {type(model).__name__}")
    if compile and not fast:
        raise ValueError("compile=True needs the fast T5 engine (engine='auto' or 't5' on a T5-family model)")
    if fast:
        hidden = encoder_outputs.last_hidden_state
        return fast_t5.T5Stepper(model, hidden, attention_mask, max_new_tokens, compile)
    return HFStepper(model, encoder_outputs, attention_mask)


@torch.inference_mode()
def greedy_decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int = 64,
    top_k: int = 5,
    logits_sink: LogitsSink | None = None,
    eos_check_every: int = 1,
    drop_finished: bool = False,
    sampling: Sampling | None = None,
    engine: str = "auto",
    compile: bool | str = False,
    encoder_hidden: torch.Tensor | None = None,
) -> DecodeOutput:
    """Decode ``input_ids`` (``[B, S]``) greedily, capturing per-token statistics of the raw logits.

    The result matches ``model.generate(do_sample=False, num_beams=1)`` token for token when the model's
    generation config adds no logits processors; ``sampling`` switches to seeded ancestral sampling.
    ``eos_check_every`` trades a host sync per step for a few wasted steps at the end; ``drop_finished``
    removes rows that emitted EOS from the batch (later steps then run on fewer rows, so float rounding can
    differ slightly from ``generate``). ``engine``: ``"auto"`` uses the fast T5 decoder step
    (:mod:`t5score.engine.t5.kernels`) for T5-family models and the model's own forward otherwise; ``"hf"`` always
    the model's forward; ``"t5"`` requires the fast step. ``compile=True`` (opt-in) runs the fast step
    through ``torch.compile`` (a string names the backend, default ``"inductor"``): it pays a compilation
    (tens of seconds on CPU) per new batch shape, so it suits fixed-shape batches. ``encoder_hidden``
    (``[B, S, D]``): the encoder's output for ``input_ids`` when the caller already has it (it is shared
    with the samples of a row and with reference scoring); otherwise the encoder runs here.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if eos_check_every < 1:
        raise ValueError(f"eos_check_every must be >= 1, got {eos_check_every}")
    ids = special_tokens(model)
    device = input_ids.device
    batch = input_ids.shape[0]
    k = top_k
    gen = torch.Generator().manual_seed(sampling.seed) if sampling is not None else None

    # Outputs for the whole batch, one column per step; columns after a row's EOS are cleared at the end.
    token_ids = torch.full((batch, max_new_tokens), ids.pad_token_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(batch, max_new_tokens, device=device)
    entropies = torch.zeros(batch, max_new_tokens, device=device)
    top1 = torch.zeros(batch, max_new_tokens, device=device)
    topk_ids = torch.zeros(batch, max_new_tokens, k, dtype=torch.long, device=device)
    topk_lp = torch.zeros(batch, max_new_tokens, k, device=device)
    bad = torch.zeros(batch, max_new_tokens, dtype=torch.bool, device=device)

    if encoder_hidden is None:
        encoder_hidden = model.get_encoder()(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
    encoder_outputs = BaseModelOutput(last_hidden_state=encoder_hidden)  # (ours: dropping rows replaces it)
    stepper = _stepper(model, encoder_outputs, attention_mask, max_new_tokens, engine, compile)
    row_index = torch.arange(batch, device=device)  # [A] original row of each active row
    dense = True  # row_index is still arange(batch): write columns without indexing
    active_done = torch.zeros(batch, dtype=torch.bool, device=device)  # [A] EOS seen among active rows
    next_ids = torch.full((batch,), ids.decoder_start_token_id, dtype=torch.long, device=device)  # [A]
    steps = 0

    for step in range(max_new_tokens):
        logits = stepper.step(next_ids)  # [A, V]
        stats = token_stats(logits, top_k=k)
        token = _choose(logits, stats.top1_ids, sampling, gen)  # [A]
        if sampling is not None:
            stats.token_logprobs = torch.log_softmax(logits.float(), -1).gather(-1, token[:, None])[:, 0]
        if logits_sink is not None:
            live = ~active_done  # rows that emit a token at this step
            logits_sink(step, row_index[live], logits[live])
        at = (slice(None), step) if dense else (row_index, step)
        token_ids[at] = token
        logprobs[at] = stats.token_logprobs
        entropies[at] = stats.entropies
        top1[at] = stats.top1_probs
        topk_ids[at] = stats.topk_ids
        topk_lp[at] = stats.topk_logprobs
        bad[at] = stats.nonfinite
        steps = step + 1
        # as generate: a row's EOS is still fed back once, padding only after it
        next_ids = token.masked_fill(active_done, ids.pad_token_id)
        active_done = active_done | (token == ids.eos_token_id)

        if steps % eos_check_every == 0 and steps < max_new_tokens:
            if bool(active_done.all()):
                break
            if drop_finished and bool(active_done.any()):
                keep = (~active_done).nonzero().squeeze(-1)  # [A']
                stepper.select(keep)
                row_index, next_ids, active_done = row_index[keep], next_ids[keep], active_done[keep]
                dense = False

    # A row's tokens run up to and including its first EOS; later columns are padding.
    is_eos = token_ids[:, :steps] == ids.eos_token_id
    finished = is_eos.any(dim=1)
    num_tokens = torch.where(finished, is_eos.int().argmax(dim=1) + 1, steps)
    longest = int(num_tokens.max()) if batch else 0
    valid = torch.arange(longest, device=device)[None, :] < num_tokens[:, None]  # [B, T]
    return DecodeOutput(
        token_ids=token_ids[:, :longest].masked_fill(~valid, ids.pad_token_id),
        token_logprobs=logprobs[:, :longest].masked_fill(~valid, 0.0),
        entropies=entropies[:, :longest].masked_fill(~valid, 0.0),
        top1_probs=top1[:, :longest].masked_fill(~valid, 0.0),
        topk_ids=topk_ids[:, :longest].masked_fill(~valid[..., None], 0),
        topk_logprobs=topk_lp[:, :longest].masked_fill(~valid[..., None], 0.0),
        num_tokens=num_tokens,
        finished=finished,
        nonfinite=(bad[:, :longest] & valid).any(dim=1),
    )
