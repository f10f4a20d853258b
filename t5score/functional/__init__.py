"""Stateless twins of :mod:`t5score.metrics` and helpers that turn logits into metric inputs."""

from t5score.functional.calibration import ReliabilityBins, brier_score, calibration_error
from t5score.functional.entropy import entropy_from_logits, sequence_entropy, token_entropy
from t5score.functional.from_logits import (
    free_running_confidences,
    teacher_forced_confidences,
    teacher_forced_logprobs,
)
from t5score.functional.log_likelihood import sequence_log_likelihood, sequence_scores

__all__ = [
    "ReliabilityBins",
    "brier_score",
    "calibration_error",
    "entropy_from_logits",
    "free_running_confidences",
    "sequence_entropy",
    "sequence_log_likelihood",
    "sequence_scores",
    "teacher_forced_confidences",
    "teacher_forced_logprobs",
    "token_entropy",
]
