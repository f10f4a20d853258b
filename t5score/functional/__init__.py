"""Stateless twins of :mod:`t5score.metrics`, helpers that turn logits into metric inputs, and PRR/AURC."""

from t5score.functional.calibration import ReliabilityBins, brier_score, calibration_error
from t5score.functional.entropy import entropy_from_logits, sequence_entropy, token_entropy
from t5score.functional.from_logits import (
    free_running_confidences,
    teacher_forced_confidences,
    teacher_forced_logprobs,
)
from t5score.functional.log_likelihood import sequence_log_likelihood, sequence_scores
from t5score.functional.uncertainty import aurc, prr, rejection_curve, risk_coverage_curve

__all__ = [
    "ReliabilityBins",
    "aurc",
    "brier_score",
    "calibration_error",
    "entropy_from_logits",
    "free_running_confidences",
    "prr",
    "rejection_curve",
    "risk_coverage_curve",
    "sequence_entropy",
    "sequence_log_likelihood",
    "sequence_scores",
    "teacher_forced_confidences",
    "teacher_forced_logprobs",
    "token_entropy",
]
