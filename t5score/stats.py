"""Per-token statistics from raw logits: one ``log_softmax`` feeds all of them.

Used by greedy decoding (one step at a time, ``[batch, vocab]``) and by teacher-forced scoring
(``[batch, steps, vocab]`` or chunks of it). Everything is computed in float32 whatever the model's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenStats:
    """Statistics of the chosen (or given) tokens at each position; leading dims match the input's."""

    token_logprobs: torch.Tensor  # [...] log p(token), natural log
    entropies: torch.Tensor  # [...] entropy of the softmax, nats
    top1_probs: torch.Tensor  # [...] probability of the most likely token
    top1_ids: torch.Tensor  # [...] id of the most likely token
    topk_ids: torch.Tensor  # [..., k]
    topk_logprobs: torch.Tensor  # [..., k]
    nonfinite: torch.Tensor  # [...] bool: the logits held NaN or inf


def token_stats(logits: torch.Tensor, tokens: torch.Tensor | None = None, top_k: int = 5) -> TokenStats:
    """Reduce raw logits ``[..., vocab]`` to per-token statistics.

    ``tokens`` (``[...]``) are the tokens whose log-probability is wanted; ``None`` means the argmax
    (greedy decoding). ``top_k`` may be 0 to skip the top-k lists.

    >>> s = token_stats(torch.tensor([[0.0, 0.0]]), top_k=1)
    >>> round(float(s.entropies[0]), 4), round(float(s.top1_probs[0]), 2)
    (0.6931, 0.5)
    """
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)  # [..., V]
    top1_logp, top1_ids = logp.max(dim=-1)  # [...]
    if tokens is None:
        tokens = top1_ids
        token_logp = top1_logp
    else:
        token_logp = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    # entropy = -sum p log p; exp(logp) * logp is 0 * -inf = nan where p underflows to 0, hence xlogy-style guard
    probs = logp.exp()
    entropies = -(probs * logp.masked_fill(probs == 0, 0.0)).sum(dim=-1)
    if top_k > 0:
        topk_logp, topk_ids = logp.topk(min(top_k, logp.shape[-1]), dim=-1)
    else:
        topk_logp = logp.new_empty(*logp.shape[:-1], 0)
        topk_ids = tokens.new_empty(*logp.shape[:-1], 0)
    nonfinite = ~torch.isfinite(logits).all(dim=-1)
    return TokenStats(
        token_logprobs=token_logp,
        entropies=entropies,
        top1_probs=top1_logp.exp(),
        top1_ids=top1_ids,
        topk_ids=topk_ids,
        topk_logprobs=topk_logp,
        nonfinite=nonfinite,
    )
