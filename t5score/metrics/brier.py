"""Top-1 binary Brier score over tokens, with a fixed-size state."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from t5score.functional._checks import check_confidences_correct
from t5score.functional.calibration import _brier_update


class BrierScore(Metric):
    r"""Mean squared error :math:`\frac{1}{N}\sum_i (c_i - y_i)^2` of top-1 confidences against correctness.

    A class of its own (not an output of :class:`CalibrationError`, whose binned state cannot give it).
    ``update(confidences, correct)`` takes the same 1-D inputs as :class:`CalibrationError`, so both can be fed
    from :func:`~t5score.functional.teacher_forced_confidences` or
    :func:`~t5score.functional.free_running_confidences`. This is the binary Brier score of the top-1 token,
    not the multi-class one over the vocabulary. State: a float64 sum and an int64 count. NaN before any token.

    Example:
        >>> import torch
        >>> metric = BrierScore()
        >>> metric.update(torch.tensor([0.9, 0.8]), torch.tensor([1, 1]))
        >>> metric.update(torch.tensor([0.6, 0.3]), torch.tensor([0, 0]))
        >>> metric.compute()
        tensor(0.1250, dtype=torch.float64)
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    sum_squared_error: Tensor
    total: Tensor

    def __init__(self, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_args = validate_args
        self.add_state("sum_squared_error", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, confidences: Tensor, correct: Tensor) -> None:
        """Add a batch of 1-D confidences in [0, 1] and their 0/1 correctness."""
        correct = check_confidences_correct(confidences, correct) if self.validate_args else correct.bool()
        sse, count = _brier_update(confidences, correct)
        self.sum_squared_error = self.sum_squared_error + sse.to(self.sum_squared_error.dtype)
        self.total += count

    def compute(self) -> Tensor:
        """Mean squared error over all tokens seen (all processes)."""
        return self.sum_squared_error / self.total
