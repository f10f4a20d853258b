"""Corpus log-likelihood, perplexity and length-penalised scores, with a fixed-size state."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from t5score.functional._checks import check_alpha
from t5score.functional.log_likelihood import (
    _check_sums_and_lengths,
    _log_likelihood_compute,
    _log_likelihood_update,
    _sums_and_lengths,
)


class SequenceLogLikelihood(Metric):
    """Log-likelihood of sequences from their per-token log-probabilities, accumulated over a corpus.

    ``update(token_logprobs [B, T], mask [B, T])``, or ``update(sum_logprobs=[B], num_tokens=[B])`` when only
    per-sequence sums are known (e.g. ``ref_logprob`` / ``ref_num_tokens`` columns). Every sequence needs at
    least one token. :meth:`compute` returns a dict of tensors:

    * ``sum``: total log-probability; ``num_tokens``, ``num_sequences``: counts;
    * ``mean_per_token``: corpus mean, ``sum / num_tokens`` (long sequences weigh more);
    * ``mean_per_sequence``: mean over sequences of each sequence's mean log-probability per token;
    * ``perplexity``: ``exp(-mean_per_token)``;
    * ``length_penalized``: mean over sequences of ``sequence sum / sequence length ** alpha``.

    ``higher_is_better`` refers to the log-likelihood values (perplexity is lower-is-better).

    Args:
        alpha: length-penalty exponent (>= 0; default 1.0, which makes ``length_penalized`` equal
            ``mean_per_sequence``; 0 gives the mean sequence sum).

    Example:
        >>> import torch
        >>> metric = SequenceLogLikelihood(alpha=0.0)
        >>> metric.update(torch.tensor([[-1.0, -2.0, 0.0]]), mask=torch.tensor([[1, 1, 0]]))
        >>> metric.update(sum_logprobs=torch.tensor([-4.0]), num_tokens=torch.tensor([1]))
        >>> out = metric.compute()
        >>> out["mean_per_token"], out["mean_per_sequence"], out["length_penalized"]
        (tensor(-2.3333, dtype=torch.float64), tensor(-2.7500, dtype=torch.float64), tensor(-3.5000, dtype=torch.float64))
    """

    is_differentiable = True
    higher_is_better = True
    full_state_update = False

    sum_logprob: Tensor
    num_tokens: Tensor
    sum_sequence_mean: Tensor
    sum_length_penalized: Tensor
    num_sequences: Tensor

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_alpha(alpha)
        self.alpha = float(alpha)
        for name in ("sum_logprob", "sum_sequence_mean", "sum_length_penalized"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("num_tokens", "num_sequences"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self,
        token_logprobs: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        sum_logprobs: Tensor | None = None,
        num_tokens: Tensor | None = None,
    ) -> None:
        """Add one batch, as ``token_logprobs`` (+ ``mask``) or as per-sequence ``sum_logprobs`` + ``num_tokens``."""
        if token_logprobs is not None:
            if sum_logprobs is not None or num_tokens is not None:
                raise ValueError(
                    "Pass either `token_logprobs` (+ `mask`) or `sum_logprobs` + `num_tokens`, not both"
                )
            sums, lengths = _sums_and_lengths(token_logprobs, mask)
        elif sum_logprobs is None or num_tokens is None or mask is not None:
            raise ValueError(
                "Pass `token_logprobs` (+ `mask`), or both `sum_logprobs` and `num_tokens` (no mask)"
            )
        else:
            sums, lengths = sum_logprobs, num_tokens
        _check_sums_and_lengths(sums, lengths)
        total, tokens, mean_sum, penalized_sum, sequences = _log_likelihood_update(
            sums.to(self.sum_logprob.dtype), lengths, self.alpha
        )
        self.sum_logprob = self.sum_logprob + total
        self.num_tokens += tokens
        self.sum_sequence_mean = self.sum_sequence_mean + mean_sum
        self.sum_length_penalized = self.sum_length_penalized + penalized_sum
        self.num_sequences += sequences

    def compute(self) -> dict[str, Tensor]:
        """The dict of corpus values described in the class docstring (all processes)."""
        return _log_likelihood_compute(
            self.sum_logprob,
            self.num_tokens,
            self.sum_sequence_mean,
            self.sum_length_penalized,
            self.num_sequences,
        )
