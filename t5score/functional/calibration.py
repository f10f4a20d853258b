"""Top-1 calibration of token confidences: binned calibration error (ECE / RMSCE / MCE) and Brier score.

Bins are uniform over [0, 1] exactly as in ``torchmetrics`` (``torch.linspace(0, 1, n_bins + 1)`` in the
confidences' dtype, ``torch.bucketize(..., right=True)``), so bin ``i`` holds ``[i / n, (i + 1) / n)``. The one
difference: a confidence of exactly 1.0 falls into the **last** bin here, whereas ``torchmetrics`` gives it an
extra (n_bins + 1)-th bin of its own. The two agree wherever no confidence equals 1.0.

All sums are kept in float64 (counts in int64), so results are float64 tensors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from t5score.functional._checks import check_confidences_correct, check_n_bins, check_norm


class ReliabilityBins(NamedTuple):
    """Per-bin values of a reliability diagram (all of shape ``[n_bins]``).

    ``confidence`` and ``accuracy`` are the mean confidence and the fraction correct of the tokens in each
    bin (NaN for an empty bin); ``count`` is the number of tokens in the bin.

    Example:
        >>> import torch
        >>> bins = ReliabilityBins(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([0.5]),
        ...                        torch.tensor([1.0]), torch.tensor([2]))
        >>> bins.count
        tensor([2])
    """

    lower: Tensor
    upper: Tensor
    confidence: Tensor
    accuracy: Tensor
    count: Tensor


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64 for the sums everywhere except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _calibration_update(confidences: Tensor, correct: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin ``(count, confidence sum, correct sum)`` of one batch; inputs already validated."""
    conf = confidences if confidences.dtype in (torch.float32, torch.float64) else confidences.float()
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype, device=conf.device)
    # Same assignment as torchmetrics, except that 1.0 (index n_bins there) is folded into the last bin.
    index = (torch.bucketize(conf, boundaries, right=True) - 1).clamp_(0, n_bins - 1)
    acc_dtype = accumulation_dtype(conf.device)
    count = torch.zeros(n_bins, dtype=torch.long, device=conf.device)
    count.scatter_add_(0, index, torch.ones_like(index))
    conf_sum = torch.zeros(n_bins, dtype=acc_dtype, device=conf.device)
    conf_sum.scatter_add_(0, index, conf.to(acc_dtype))
    correct_sum = torch.zeros(n_bins, dtype=acc_dtype, device=conf.device)
    correct_sum.scatter_add_(0, index, correct.to(acc_dtype))
    return count, conf_sum, correct_sum


def _reliability_compute(count: Tensor, conf_sum: Tensor, correct_sum: Tensor) -> ReliabilityBins:
    n_bins = count.numel()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf_sum.dtype, device=conf_sum.device)
    denom = count.to(conf_sum.dtype)
    return ReliabilityBins(edges[:-1], edges[1:], conf_sum / denom, correct_sum / denom, count.clone())


def _calibration_compute(count: Tensor, conf_sum: Tensor, correct_sum: Tensor, norm: str) -> Tensor:
    total = count.sum()
    if int(total) == 0:
        return torch.tensor(float("nan"), dtype=conf_sum.dtype, device=conf_sum.device)
    denom = count.to(conf_sum.dtype)
    nonempty = denom > 0
    conf_mean = torch.where(nonempty, conf_sum / denom.clamp_min(1), 0.0)
    acc_mean = torch.where(nonempty, correct_sum / denom.clamp_min(1), 0.0)
    gap = (acc_mean - conf_mean).abs()
    prop = denom / total.to(conf_sum.dtype)
    if norm == "l1":
        return (gap * prop).sum()
    if norm == "l2":
        return (gap.pow(2) * prop).sum().sqrt()
    return gap.max()  # "max": empty bins have gap 0, as in torchmetrics


def calibration_error(
    confidences: Tensor,
    correct: Tensor,
    n_bins: int = 15,
    norm: str = "l1",
    return_bins: bool = False,
) -> Tensor | tuple[Tensor, ReliabilityBins]:
    r"""Top-1 calibration error of token confidences against 0/1 correctness.

    With :math:`b` the uniform bins, :math:`p_b` the fraction of tokens in bin :math:`b`, :math:`a_b` their
    accuracy and :math:`c_b` their mean confidence: ``"l1"`` gives the ECE :math:`\sum_b p_b |a_b - c_b|`,
    ``"l2"`` the RMS calibration error :math:`\sqrt{\sum_b p_b (a_b - c_b)^2}` and ``"max"`` the MCE
    :math:`\max_b |a_b - c_b|`. A confidence of exactly 1.0 is counted in the last bin. NaN when empty.

    Args:
        confidences: 1-D float tensor of probabilities in [0, 1].
        correct: 1-D tensor of the same shape, bool or 0/1.
        n_bins: number of uniform bins over [0, 1].
        norm: ``"l1"``, ``"l2"`` or ``"max"``.
        return_bins: also return the :class:`ReliabilityBins` for a reliability diagram.

    Example:
        >>> import torch
        >>> conf = torch.tensor([0.9, 0.8, 0.6, 0.3])
        >>> correct = torch.tensor([1, 1, 0, 0])
        >>> calibration_error(conf, correct, n_bins=2)
        tensor(0.1500, dtype=torch.float64)
        >>> ece, bins = calibration_error(conf, correct, n_bins=2, return_bins=True)
        >>> bins.count
        tensor([1, 3])
    """
    check_n_bins(n_bins)
    check_norm(norm)
    correct = check_confidences_correct(confidences, correct)
    states = _calibration_update(confidences, correct, n_bins)
    value = _calibration_compute(*states, norm=norm)
    return (value, _reliability_compute(*states)) if return_bins else value


def _brier_update(confidences: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """``(sum of squared errors, count)`` of one batch; inputs already validated."""
    acc_dtype = accumulation_dtype(confidences.device)
    diff = confidences.to(acc_dtype) - correct.to(acc_dtype)
    return diff.pow(2).sum(), torch.tensor(confidences.numel(), dtype=torch.long, device=confidences.device)


def brier_score(confidences: Tensor, correct: Tensor) -> Tensor:
    r"""Top-1 binary Brier score: :math:`\frac{1}{N}\sum_i (c_i - y_i)^2` over tokens (lower is better).

    ``c_i`` is the confidence of the top-1 (or chosen) token and ``y_i`` whether it is correct; this is the
    binary Brier score of the top-1 prediction, not the multi-class Brier score over the vocabulary.
    NaN when empty.

    Example:
        >>> import torch
        >>> brier_score(torch.tensor([0.9, 0.8, 0.6, 0.3]), torch.tensor([1, 1, 0, 0]))
        tensor(0.1250, dtype=torch.float64)
    """
    correct = check_confidences_correct(confidences, correct)
    total, count = _brier_update(confidences, correct)
    return total / count
