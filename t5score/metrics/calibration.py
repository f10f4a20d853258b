"""Token-level calibration error with fixed-size (per-bin) states, and its two decoding settings."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from t5score.functional._checks import check_confidences_correct, check_n_bins, check_norm
from t5score.functional.calibration import (
    ReliabilityBins,
    _calibration_compute,
    _calibration_update,
    _reliability_compute,
)
from t5score.functional.from_logits import free_running_confidences, teacher_forced_confidences


class CalibrationError(Metric):
    r"""Top-1 calibration error (ECE for ``norm="l1"``, RMS for ``"l2"``, MCE for ``"max"``) over tokens.

    ``update(confidences, correct)`` takes two 1-D tensors: float confidences in [0, 1] and 0/1 or bool
    correctness. The state is three ``[n_bins]`` tensors (token count, confidence sum and correct sum per bin),
    summed across processes, so memory does not grow with the number of tokens (``torchmetrics``' own
    ``CalibrationError`` keeps every confidence). Bins are uniform over [0, 1] as in ``torchmetrics`` and give
    identical values, except that a confidence of exactly 1.0 is counted in the last bin (``torchmetrics``
    puts it in an extra bin of its own). :meth:`compute` returns the float64 scalar (NaN before any token);
    :meth:`reliability` returns the per-bin mean confidence, accuracy and count for a reliability diagram.

    Args:
        n_bins: number of uniform bins (default 15).
        norm: ``"l1"``, ``"l2"`` or ``"max"``.
        validate_args: check input values (a device sync on GPU); shapes and dtypes are always checked.

    Example:
        >>> import torch
        >>> metric = CalibrationError(n_bins=2)
        >>> metric.update(torch.tensor([0.9, 0.8]), torch.tensor([1, 1]))
        >>> metric.update(torch.tensor([0.6, 0.3]), torch.tensor([False, False]))
        >>> metric.compute()
        tensor(0.1500, dtype=torch.float64)
        >>> metric.reliability().accuracy
        tensor([0.0000, 0.6667], dtype=torch.float64)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    count: Tensor
    conf_sum: Tensor
    correct_sum: Tensor

    def __init__(self, n_bins: int = 15, norm: str = "l1", validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_n_bins(n_bins)
        check_norm(norm)
        self.n_bins = n_bins
        self.norm = norm
        self.validate_args = validate_args
        self.add_state("count", torch.zeros(n_bins, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("conf_sum", torch.zeros(n_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct_sum", torch.zeros(n_bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, confidences: Tensor, correct: Tensor) -> None:
        """Add a batch of 1-D confidences and their 0/1 correctness to the per-bin sums."""
        if self.validate_args:
            correct = check_confidences_correct(confidences, correct)
        else:
            correct = correct.bool()
        count, conf_sum, correct_sum = _calibration_update(confidences, correct, self.n_bins)
        self.count += count
        self.conf_sum += conf_sum.to(self.conf_sum.dtype)
        self.correct_sum += correct_sum.to(self.correct_sum.dtype)

    def compute(self) -> Tensor:
        """The calibration error under ``norm`` of everything seen so far (all processes)."""
        return _calibration_compute(self.count, self.conf_sum, self.correct_sum, self.norm)

    def reliability(self) -> ReliabilityBins:
        """Per-bin edges, mean confidence, accuracy (NaN where empty) and count, synced across processes.

        Example:
            >>> import torch
            >>> metric = CalibrationError(n_bins=4)
            >>> metric.update(torch.tensor([0.9, 1.0, 0.1]), torch.tensor([1, 0, 0]))
            >>> bins = metric.reliability()
            >>> bins.count, bins.confidence
            (tensor([1, 0, 0, 2]), tensor([0.1000,    nan,    nan, 0.9500], dtype=torch.float64))
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            return _reliability_compute(self.count, self.conf_sum, self.correct_sum)


class TeacherForcedCalibrationError(CalibrationError):
    """:class:`CalibrationError` fed by a teacher-forced pass over references.

    ``update(logits [B, T, V], labels [B, T])``: at each reference position (label != ``ignore_index``) the
    confidence is the top-1 probability and the token is correct when the top-1 id equals the reference id
    (see :func:`~t5score.functional.teacher_forced_confidences`).

    Example:
        >>> import torch
        >>> metric = TeacherForcedCalibrationError(n_bins=2)
        >>> logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]]))
        >>> metric.update(logits, torch.tensor([[0, 2]]))
        >>> metric.compute()
        tensor(0.1500, dtype=torch.float64)
    """

    def __init__(
        self,
        n_bins: int = 15,
        norm: str = "l1",
        ignore_index: int = -100,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_bins=n_bins, norm=norm, validate_args=validate_args, **kwargs)
        self.ignore_index = ignore_index

    def update(self, logits: Tensor, labels: Tensor) -> None:  # type: ignore[override]
        """Add the top-1 confidences and correctness at the reference positions of one batch."""
        super().update(*teacher_forced_confidences(logits, labels, self.ignore_index))


class FreeRunningCalibrationError(CalibrationError):
    """:class:`CalibrationError` of generated tokens, with correctness supplied by the caller.

    ``update(token_logprobs [B, T], correct, mask=None)``: the confidence is the chosen token's probability;
    ``correct`` is ``[B, T]`` per token or ``[B]`` per sequence (broadcast to the sequence's tokens), see
    :func:`~t5score.functional.free_running_confidences`.

    Example:
        >>> import torch
        >>> metric = FreeRunningCalibrationError(n_bins=2)
        >>> lp = torch.log(torch.tensor([[0.9, 0.8], [0.6, 0.3]]))
        >>> metric.update(lp, correct=torch.tensor([1, 0]))  # per sequence: both tokens of row 0 correct
        >>> metric.compute()
        tensor(0.1500, dtype=torch.float64)
    """

    def update(  # type: ignore[override]
        self, token_logprobs: Tensor, correct: Tensor, mask: Tensor | None = None
    ) -> None:
        """Add the generated tokens of one batch (padding excluded by ``mask``)."""
        super().update(*free_running_confidences(token_logprobs, correct, mask))
