"""Argument and tensor checks shared by the functional metrics (private)."""

from __future__ import annotations

import torch
from torch import Tensor

NORMS = ("l1", "l2", "max")


def check_n_bins(n_bins: int) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"Expected `n_bins` to be an integer >= 1, but got {n_bins!r}")


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"Expected `norm` to be one of {NORMS}, but got {norm!r}")


def check_alpha(alpha: float) -> None:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not (0.0 <= float(alpha) < float("inf"))
    ):
        raise ValueError(f"Expected `alpha` to be a finite number >= 0, but got {alpha!r}")


def check_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"Expected `{name}` to be a torch.Tensor, but got {type(value).__name__}")
    return value


def as_mask(mask: Tensor | None, shape: torch.Size, device: torch.device, name: str = "mask") -> Tensor:
    """A boolean mask of ``shape``: all True when ``mask`` is None, else ``mask`` checked to hold only 0/1."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    check_tensor(name, mask)
    if mask.shape != shape:
        raise ValueError(f"Expected `{name}` to have shape {tuple(shape)}, but got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        return mask
    bad = (mask != 0) & (mask != 1)
    if bool(bad.any()):
        raise ValueError(f"Expected `{name}` to hold only 0/1 or bool, but got value {mask[bad][0].item()!r}")
    return mask != 0


def check_confidences_correct(confidences: Tensor, correct: Tensor) -> Tensor:
    """Validate the inputs of a calibration metric; return ``correct`` as a bool tensor."""
    check_tensor("confidences", confidences)
    check_tensor("correct", correct)
    if confidences.ndim != 1:
        raise ValueError(f"Expected `confidences` to be 1-D, but got shape {tuple(confidences.shape)}")
    if correct.shape != confidences.shape:
        raise ValueError(
            f"Expected `correct` to have the shape of `confidences` {tuple(confidences.shape)}, "
            f"but got {tuple(correct.shape)}"
        )
    if not confidences.is_floating_point():
        raise ValueError(f"Expected `confidences` to be a floating tensor, but got dtype {confidences.dtype}")
    bad = ~((confidences >= 0) & (confidences <= 1))  # also catches NaN
    if bool(bad.any()):
        raise ValueError(f"Expected `confidences` in [0, 1], but got value {confidences[bad][0].item()!r}")
    return as_mask(correct, correct.shape, correct.device, name="correct")
