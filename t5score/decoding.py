"""The decoding engine: greedy (or sampled) decoding with raw-logit capture, pure torch.

The encoder runs once; every decoder step feeds one token per row and reuses the model's key/value
cache. Each step's raw logits are reduced at once to per-token statistics (``t5score.stats``), so memory
does not grow with the vocabulary times the generation length; ``logits_sink`` receives the raw logits
of each step when they must be kept (capture ``full``). Rows stop at their own EOS; finished rows are
dropped from the batch (the cache is compacted) and padded in the output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache

from t5score.modeling import special_tokens
from t5score.stats import token_stats

# sink(step, row_index [A], logits [A, V]): raw logits of the rows still decoding at this step
LogitsSink = Callable[[int, torch.Tensor, torch.Tensor], None]


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
) -> DecodeOutput:
    """Decode ``input_ids`` (``[B, S]``) greedily, capturing per-token statistics of the raw logits.

    The result matches ``model.generate(do_sample=False, num_beams=1)`` token for token when the model's
    generation config adds no logits processors; ``sampling`` switches to seeded ancestral sampling.
    ``eos_check_every`` trades a host sync per step for a few wasted steps at the end.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    ids = special_tokens(model)
    device = input_ids.device
    batch = input_ids.shape[0]
    k = top_k
    gen = torch.Generator().manual_seed(sampling.seed) if sampling is not None else None

    # Outputs, preallocated for the whole batch; rows are written through row_index.
    token_ids = torch.full((batch, max_new_tokens), ids.pad_token_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(batch, max_new_tokens, device=device)
    entropies = torch.zeros(batch, max_new_tokens, device=device)
    top1 = torch.zeros(batch, max_new_tokens, device=device)
    topk_ids = torch.zeros(batch, max_new_tokens, k, dtype=torch.long, device=device)
    topk_lp = torch.zeros(batch, max_new_tokens, k, device=device)
    num_tokens = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    nonfinite = torch.zeros(batch, dtype=torch.bool, device=device)

    encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    row_index = torch.arange(batch, device=device)  # [A] original row of each active row
    active_done = torch.zeros(batch, dtype=torch.bool, device=device)  # [A] EOS seen among active rows
    next_ids = torch.full((batch, 1), ids.decoder_start_token_id, dtype=torch.long, device=device)  # [A, 1]
    mask = attention_mask

    for step in range(max_new_tokens):
        out = model(
            encoder_outputs=encoder_outputs,
            attention_mask=mask,
            decoder_input_ids=next_ids,
            cache=cache,
            use_cache=True,
        )
        cache = out.cache
        logits = out.logits[:, -1, :]  # [A, V]
        stats = token_stats(logits, top_k=k)
        token = _choose(logits, stats.top1_ids, sampling, gen)  # [A]
        if sampling is not None:
            stats.token_logprobs = torch.log_softmax(logits.float(), -1).gather(-1, token[:, None])[:, 0]
        live = ~active_done  # [A] rows that emit a token at this step
        rows = row_index[live]
        if logits_sink is not None:
            logits_sink(step, rows, logits[live])
        token_ids[rows, step] = token[live]
        logprobs[rows, step] = stats.token_logprobs[live]
        entropies[rows, step] = stats.entropies[live]
        top1[rows, step] = stats.top1_probs[live]
        topk_ids[rows, step] = stats.topk_ids[live]
        topk_lp[rows, step] = stats.topk_logprobs[live]
        num_tokens[rows] += 1
        nonfinite[rows] |= stats.nonfinite[live]
        active_done = active_done | (token == ids.eos_token_id)
        next_ids = token.masked_fill(active_done, ids.pad_token_id)[:, None]

        if (step + 1) % eos_check_every == 0 or step == max_new_tokens - 1:
            if bool(active_done.all()):
                break
            if drop_finished and bool(active_done.any()):
                keep = (~active_done).nonzero().squeeze(-1)  # [A']
                cache.batch_select_indices(keep)
                encoder_outputs.last_hidden_state = encoder_outputs.last_hidden_state[keep]
                mask = mask[keep]
                finished[row_index[active_done]] = True
                row_index, next_ids = row_index[keep], next_ids[keep]
                active_done = active_done[keep]
    finished[row_index[active_done]] = True

    longest = int(num_tokens.max()) if batch else 0
    return DecodeOutput(
        token_ids=token_ids[:, :longest],
        token_logprobs=logprobs[:, :longest],
        entropies=entropies[:, :longest],
        top1_probs=top1[:, :longest],
        topk_ids=topk_ids[:, :longest],
        topk_logprobs=topk_lp[:, :longest],
        num_tokens=num_tokens,
        finished=finished,
        nonfinite=nonfinite,
    )
