"""Turn decoder logits or captured log-probabilities into metric inputs (always via ``log_softmax``).

Two calibration settings are built from these:

* teacher-forced on references (:func:`teacher_forced_confidences`): at each reference position the
  confidence is the model's top-1 probability and the token is correct when the top-1 id equals the reference
  id;
* free-running on the model's own output (:func:`free_running_confidences`): the confidence is the chosen
  token's probability and correctness is a label the caller supplies per token or per sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor

from t5score.functional._checks import as_mask, check_tensor
from t5score.functional.log_likelihood import LOGPROB_TOLERANCE


def _log_softmax(logits: Tensor) -> Tensor:
    check_tensor("logits", logits)
    if logits.ndim != 3 or not logits.is_floating_point():
        raise ValueError(
            f"Expected floating `logits` of shape [B, T, V], but got shape {tuple(logits.shape)} dtype {logits.dtype}"
        )
    return torch.log_softmax(
        logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, -1
    )


def _check_labels(labels: Tensor, logits: Tensor, ignore_index: int) -> Tensor:
    """Validate ``labels`` against ``logits``; return the boolean mask of scored positions."""
    check_tensor("labels", labels)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"Expected `labels` of shape {tuple(logits.shape[:-1])}, but got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"Expected integer `labels`, but got dtype {labels.dtype}")
    keep = labels != ignore_index
    bad = keep & ((labels < 0) | (labels >= logits.shape[-1]))
    if bool(bad.any()):
        raise ValueError(
            f"Expected label ids in [0, {logits.shape[-1]}) or {ignore_index}, but got {labels[bad][0].item()}"
        )
    return keep


def teacher_forced_confidences(
    logits: Tensor, labels: Tensor, ignore_index: int = -100
) -> tuple[Tensor, Tensor]:
    """Top-1 confidences and correctness at the reference positions of a teacher-forced pass.

    Args:
        logits: ``[B, T, V]`` decoder logits of a forward pass with the references as labels.
        labels: ``[B, T]`` reference ids, ``ignore_index`` at padding.
        ignore_index: label value of positions to skip (Hugging Face uses -100).

    Returns:
        ``(confidences, correct)``: 1-D tensors over the scored positions (row-major order), the top-1
        probability ``exp(max log_softmax)`` (at least float32, clamped to 1.0) and whether the top-1 id equals
        the reference id. Feed them to :class:`~t5score.metrics.CalibrationError` or :func:`calibration_error`.

    Example:
        >>> import torch
        >>> logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]]))
        >>> conf, correct = teacher_forced_confidences(logits, torch.tensor([[0, 2, -100]]))
        >>> conf, correct
        (tensor([0.7000, 0.6000]), tensor([ True, False]))
    """
    logp = _log_softmax(logits)
    keep = _check_labels(labels, logits, ignore_index)
    top_logp, top_id = logp.max(-1)
    return top_logp[keep].exp().clamp_(max=1.0), (top_id == labels)[keep]


def teacher_forced_logprobs(
    logits: Tensor, labels: Tensor, ignore_index: int = -100
) -> tuple[Tensor, Tensor]:
    """Log-probabilities of the reference tokens, ``log_softmax(logits).gather(labels)``, and their mask.

    Returns ``(token_logprobs, mask)``, both ``[B, T]``; ``token_logprobs`` is 0 where ``mask`` is False.
    The row sums equal ``-F.cross_entropy(logits, labels, reduction="sum")`` per row; feed them to
    :class:`~t5score.metrics.SequenceLogLikelihood`.

    Example:
        >>> import torch
        >>> logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]]))
        >>> lp, mask = teacher_forced_logprobs(logits, torch.tensor([[1, -100]]))
        >>> lp.exp(), mask
        (tensor([[0.2500, 1.0000]]), tensor([[ True, False]]))
    """
    logp = _log_softmax(logits)
    keep = _check_labels(labels, logits, ignore_index)
    gathered = logp.gather(-1, torch.where(keep, labels, torch.zeros_like(labels)).unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, gathered, torch.zeros_like(gathered)), keep


def free_running_confidences(
    token_logprobs: Tensor, correct: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Confidences and correctness of generated tokens for free-running calibration.

    Args:
        token_logprobs: ``[B, T]`` log-probability of each chosen (generated) token.
        correct: ``[B, T]`` per-token labels, or ``[B]`` per-sequence labels broadcast to every token of the
            sequence; bool or 0/1.
        mask: ``[B, T]`` True at real (non-padding) tokens; None means all.

    Returns:
        ``(confidences, correct)``: 1-D tensors over the unmasked tokens, ``exp(token_logprobs)`` clamped to 1.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[0.9, 0.5], [0.8, 1.0]]))
        >>> conf, correct = free_running_confidences(lp, torch.tensor([1, 0]), mask=torch.tensor([[1, 1], [1, 0]]))
        >>> conf, correct
        (tensor([0.9000, 0.5000, 0.8000]), tensor([ True,  True, False]))
    """
    check_tensor("token_logprobs", token_logprobs)
    check_tensor("correct", correct)
    if token_logprobs.ndim != 2 or not token_logprobs.is_floating_point():
        raise ValueError(
            "Expected `token_logprobs` to be a floating [B, T] tensor, but got "
            f"shape {tuple(token_logprobs.shape)} dtype {token_logprobs.dtype}"
        )
    keep = as_mask(mask, token_logprobs.shape, token_logprobs.device)
    if correct.shape == token_logprobs.shape[:1]:
        correct = correct.unsqueeze(-1).expand(token_logprobs.shape)
    elif correct.shape != token_logprobs.shape:
        raise ValueError(
            f"Expected `correct` of shape {tuple(token_logprobs.shape[:1])} (per sequence) or "
            f"{tuple(token_logprobs.shape)} (per token), but got {tuple(correct.shape)}"
        )
    correct = as_mask(correct, token_logprobs.shape, token_logprobs.device, name="correct")
    values = token_logprobs[keep]
    bad = ~(values <= LOGPROB_TOLERANCE)
    if bool(bad.any()):
        raise ValueError(f"Expected log-probabilities <= 0, but got value {values[bad][0].item()!r}")
    return values.exp().clamp_(max=1.0), correct[keep]
