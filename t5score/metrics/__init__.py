"""torchmetrics metrics of captured logits: entropy, calibration and sequence log-likelihood.

Stateless twins live in :mod:`t5score.functional`; Hugging Face ``evaluate`` scripts of the same metrics
ship inside the package, see :func:`evaluate_metric_path`.
"""

from __future__ import annotations

from pathlib import Path

from t5score.metrics.brier import BrierScore
from t5score.metrics.calibration import (
    CalibrationError,
    FreeRunningCalibrationError,
    TeacherForcedCalibrationError,
)
from t5score.metrics.entropy import TokenEntropy
from t5score.metrics.log_likelihood import SequenceLogLikelihood

EVALUATE_METRICS_DIR = Path(__file__).resolve().parent.parent / "evaluate_metrics"


def available_evaluate_metrics() -> list[str]:
    """Names of the ``evaluate`` metric scripts shipped with t5score.

    Example:
        >>> available_evaluate_metrics()
        ['calibration', 'sequence_log_likelihood', 'token_entropy']
    """
    return sorted(p.parent.name for p in EVALUATE_METRICS_DIR.glob("*/*.py") if p.stem == p.parent.name)


def evaluate_metric_path(name: str) -> str:
    """Path of the ``evaluate`` module script ``name`` inside the installed package, for ``evaluate.load``.

    Loading by path works offline: ``evaluate.load(evaluate_metric_path("calibration"))``.

    Example:
        >>> evaluate_metric_path("calibration").endswith("evaluate_metrics/calibration/calibration.py")
        True
    """
    names = available_evaluate_metrics()
    if name not in names:
        raise ValueError(f"Unknown evaluate metric {name!r}; available: {names}")
    return str(EVALUATE_METRICS_DIR / name / f"{name}.py")


__all__ = [
    "BrierScore",
    "CalibrationError",
    "FreeRunningCalibrationError",
    "SequenceLogLikelihood",
    "TeacherForcedCalibrationError",
    "TokenEntropy",
    "available_evaluate_metrics",
    "evaluate_metric_path",
]
