"""Sequence log-likelihood from per-token log-probabilities: sums, means, perplexity, length penalty."""

from __future__ import annotations

import torch
from torch import Tensor

from t5score.functional._checks import as_mask, check_alpha, check_tensor
from t5score.functional.calibration import accumulation_dtype

LOGPROB_TOLERANCE = 1e-4  # log-probabilities may exceed 0 by this much from rounding


def _sums_and_lengths(token_logprobs: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Per-sequence ``(sum of log-probabilities, number of tokens)`` of a ``[B, T]`` batch."""
    check_tensor("token_logprobs", token_logprobs)
    if token_logprobs.ndim != 2 or not token_logprobs.is_floating_point():
        raise ValueError(
            "Expected `token_logprobs` to be a floating [B, T] tensor, but got "
            f"shape {tuple(token_logprobs.shape)} dtype {token_logprobs.dtype}"
        )
    keep = as_mask(mask, token_logprobs.shape, token_logprobs.device)
    values = torch.where(keep, token_logprobs, torch.zeros_like(token_logprobs))
    bad = keep & ~(values <= LOGPROB_TOLERANCE)  # NaN or a positive log-probability; -inf is allowed
    if bool(bad.any()):
        raise ValueError(f"Expected log-probabilities <= 0, but got value {values[bad][0].item()!r}")
    return values.to(accumulation_dtype(values.device)).sum(-1), keep.sum(-1)


def _check_sums_and_lengths(sums: Tensor, lengths: Tensor) -> None:
    check_tensor("sum_logprobs", sums)
    check_tensor("num_tokens", lengths)
    if sums.ndim != 1 or lengths.shape != sums.shape:
        raise ValueError(
            f"Expected 1-D `sum_logprobs` and `num_tokens` of one shape, but got {tuple(sums.shape)} "
            f"and {tuple(lengths.shape)}"
        )
    if lengths.is_floating_point() and bool((lengths != lengths.round()).any()):
        raise ValueError(
            f"Expected integer `num_tokens`, but got {lengths[lengths != lengths.round()][0].item()!r}"
        )
    empty = lengths < 1
    if bool(empty.any()):
        index = int(empty.nonzero()[0])
        raise ValueError(
            f"Sequence {index} of the batch has {lengths[index].item()} tokens; every sequence needs >= 1"
        )
    bad = ~(sums <= LOGPROB_TOLERANCE * lengths)
    if bool(bad.any()):
        raise ValueError(f"Expected sums of log-probabilities <= 0, but got value {sums[bad][0].item()!r}")


def _per_sequence(sums: Tensor, lengths: Tensor, alpha: float) -> dict[str, Tensor]:
    length = lengths.to(sums.dtype)
    return {
        "sum": sums,
        "num_tokens": lengths.long(),
        "mean": sums / length,
        "length_penalized": sums / length.pow(alpha),
    }


def sequence_scores(
    token_logprobs: Tensor, mask: Tensor | None = None, alpha: float = 1.0
) -> dict[str, Tensor]:
    """Per-sequence scores of a ``[B, T]`` batch, each a ``[B]`` tensor.

    Keys: ``sum`` (total log-probability), ``num_tokens``, ``mean`` (per token) and ``length_penalized``
    (``sum / num_tokens ** alpha``; ``alpha=0`` gives the sum, ``alpha=1`` the mean). Every sequence needs at
    least one unmasked token.

    Example:
        >>> import torch
        >>> lp = torch.tensor([[-1.0, -2.0, 0.0], [-4.0, -99.0, -99.0]])
        >>> scores = sequence_scores(lp, mask=torch.tensor([[1, 1, 1], [1, 0, 0]]), alpha=0.5)
        >>> scores["sum"], scores["num_tokens"]
        (tensor([-3., -4.], dtype=torch.float64), tensor([3, 1]))
        >>> scores["length_penalized"]
        tensor([-1.7321, -4.0000], dtype=torch.float64)
    """
    check_alpha(alpha)
    sums, lengths = _sums_and_lengths(token_logprobs, mask)
    _check_sums_and_lengths(sums, lengths)
    return _per_sequence(sums, lengths, float(alpha))


def _log_likelihood_update(sums: Tensor, lengths: Tensor, alpha: float) -> tuple[Tensor, ...]:
    """``(logprob sum, token count, sum of per-sequence means, sum of penalised scores, sequence count)``."""
    per = _per_sequence(sums, lengths, alpha)
    n_seq = torch.tensor(sums.numel(), dtype=torch.long, device=sums.device)
    return sums.sum(), per["num_tokens"].sum(), per["mean"].sum(), per["length_penalized"].sum(), n_seq


def _log_likelihood_compute(
    total: Tensor, tokens: Tensor, mean_sum: Tensor, penalized_sum: Tensor, sequences: Tensor
) -> dict[str, Tensor]:
    mean_per_token = total / tokens.to(total.dtype)
    return {
        "sum": total.clone(),
        "num_tokens": tokens.clone(),
        "num_sequences": sequences.clone(),
        "mean_per_token": mean_per_token,
        "mean_per_sequence": mean_sum / sequences.to(total.dtype),
        "perplexity": torch.exp(-mean_per_token),
        "length_penalized": penalized_sum / sequences.to(total.dtype),
    }


def sequence_log_likelihood(
    token_logprobs: Tensor, mask: Tensor | None = None, alpha: float = 1.0
) -> dict[str, Tensor]:
    """Corpus log-likelihood of a ``[B, T]`` batch of token log-probabilities, as a dict of tensors.

    * ``sum``: total log-probability of all unmasked tokens; ``num_tokens``, ``num_sequences``: counts.
    * ``mean_per_token``: ``sum / num_tokens`` (the corpus mean, long sequences weigh more).
    * ``mean_per_sequence``: the mean over sequences of each sequence's mean log-probability per token.
    * ``perplexity``: ``exp(-mean_per_token)``.
    * ``length_penalized``: the mean over sequences of ``sequence sum / sequence length ** alpha``.

    Every sequence needs at least one unmasked token; NaN inside the mask raises ``ValueError``.

    Example:
        >>> import torch
        >>> lp = torch.tensor([[-1.0, -2.0, 0.0], [-4.0, -99.0, -99.0]])
        >>> out = sequence_log_likelihood(lp, mask=torch.tensor([[1, 1, 1], [1, 0, 0]]))
        >>> out["sum"], out["mean_per_token"], out["mean_per_sequence"]
        (tensor(-7., dtype=torch.float64), tensor(-1.7500, dtype=torch.float64), tensor(-2.5000, dtype=torch.float64))
        >>> out["perplexity"]
        tensor(5.7546, dtype=torch.float64)
    """
    check_alpha(alpha)
    sums, lengths = _sums_and_lengths(token_logprobs, mask)
    _check_sums_and_lengths(sums, lengths)
    return _log_likelihood_compute(*_log_likelihood_update(sums, lengths, float(alpha)))
