"""Independent numpy references for the metric tests (no t5score code)."""

from __future__ import annotations

import numpy as np


def np_calibration(conf: np.ndarray, correct: np.ndarray, n_bins: int, one_in_last_bin: bool = True) -> dict:
    """ECE / RMSCE / MCE and per-bin stats with uniform bins; 1.0 in the last bin, or in a bin of its own."""
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    index = np.floor(conf * n_bins).astype(int)  # bin i holds [i/n, (i+1)/n)
    size = n_bins if one_in_last_bin else n_bins + 1
    index = np.minimum(index, size - 1)
    count = np.bincount(index, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=size) / count
        accuracy = np.bincount(index, weights=correct, minlength=size) / count
    gap = np.nan_to_num(np.abs(accuracy - mean_conf))
    prop = count / count.sum()
    return {
        "l1": float(np.sum(gap * prop)),
        "l2": float(np.sqrt(np.sum(gap**2 * prop))),
        "max": float(np.max(gap)),
        "count": count.astype(int),
        "confidence": mean_conf,
        "accuracy": accuracy,
    }


def np_brier(conf: np.ndarray, correct: np.ndarray) -> float:
    return float(np.mean((np.asarray(conf, np.float64) - np.asarray(correct, np.float64)) ** 2))


def off_boundary(conf: np.ndarray, n_bins: int, eps: float = 1e-4) -> np.ndarray:
    """Nudge confidences away from bin edges so float32/float64 bin assignment cannot differ."""
    scaled = conf * n_bins
    near = np.abs(scaled - np.round(scaled)) < eps * n_bins
    return np.where(near, np.clip(conf + 2 * eps, 0, 1 - 2 * eps), conf)
