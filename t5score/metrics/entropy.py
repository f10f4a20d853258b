"""Mean predictive entropy per token over a corpus, with a fixed-size state."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from t5score.functional.entropy import _token_entropy_update


class TokenEntropy(Metric):
    """Mean entropy (nats) of the next-token distribution per token, over every unmasked token seen.

    ``update`` takes either ``logits`` ``[..., V]`` (entropies from ``log_softmax``, see
    :func:`~t5score.functional.entropy_from_logits`) or precomputed per-token ``entropies`` ``[...]``,
    with an optional ``mask`` ``[...]`` (True at real tokens). State: a float64 sum and an int64 count.
    :meth:`compute` returns NaN before any token. Per-sequence mean and max are
    :func:`~t5score.functional.sequence_entropy`.

    Example:
        >>> import torch
        >>> metric = TokenEntropy()
        >>> metric.update(torch.zeros(1, 2, 4), mask=torch.tensor([[1, 0]]))  # one uniform 4-way token
        >>> metric.update(entropies=torch.tensor([0.0, 0.5]))
        >>> metric.compute()
        tensor(0.6288, dtype=torch.float64)
    """

    is_differentiable = True
    higher_is_better = None
    full_state_update = False

    sum_entropy: Tensor
    num_tokens: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("sum_entropy", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_tokens", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self, logits: Tensor | None = None, mask: Tensor | None = None, *, entropies: Tensor | None = None
    ) -> None:
        """Add the tokens of one batch: pass ``logits`` or ``entropies`` (keyword), and optionally ``mask``."""
        total, count = _token_entropy_update(logits, mask, entropies)
        self.sum_entropy = self.sum_entropy + total.to(self.sum_entropy.dtype)
        self.num_tokens += count

    def compute(self) -> Tensor:
        """Mean entropy per token (nats) over all processes."""
        return self.sum_entropy / self.num_tokens
