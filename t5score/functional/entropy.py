"""Predictive entropy of next-token distributions, in nats."""

from __future__ import annotations

import torch
from torch import Tensor

from t5score.functional._checks import as_mask, check_tensor
from t5score.functional.calibration import accumulation_dtype

ENTROPY_TOLERANCE = 1e-6  # precomputed entropies may be this far below 0 from rounding


def entropy_from_logits(logits: Tensor) -> Tensor:
    r"""Entropy :math:`-\sum_v p_v \log p_v` (nats) of ``softmax(logits)`` over the last dimension.

    Computed from ``log_softmax`` in at least float32; tokens with probability 0 (logit ``-inf``, e.g. banned
    words) contribute 0. Returns a tensor of shape ``logits.shape[:-1]``.

    Example:
        >>> import torch
        >>> entropy_from_logits(torch.zeros(2, 4))  # uniform over 4 tokens: log(4)
        tensor([1.3863, 1.3863])
        >>> entropy_from_logits(torch.tensor([0.0, float("-inf")]))
        tensor(0.)
    """
    check_tensor("logits", logits)
    if not logits.is_floating_point():
        raise ValueError(f"Expected `logits` to be a floating tensor, but got dtype {logits.dtype}")
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"Expected `logits` of shape [..., V] with V >= 1, but got {tuple(logits.shape)}")
    logp = torch.log_softmax(
        logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, -1
    )
    p = logp.exp()
    return torch.where(p > 0, -p * logp, torch.zeros_like(logp)).sum(-1) + 0.0  # + 0.0 turns -0.0 into 0.0


def _entropies_and_mask(
    logits: Tensor | None, mask: Tensor | None, entropies: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Per-token entropies (0 where masked out) and the boolean mask, from exactly one of logits/entropies."""
    if (logits is None) == (entropies is None):
        raise ValueError(
            "Pass exactly one of `logits` ([..., V]) or `entropies` ([...]), got "
            f"{'both' if logits is not None else 'neither'}"
        )
    if logits is not None:
        values = entropy_from_logits(logits)
    else:
        values = check_tensor("entropies", entropies)
        if not values.is_floating_point():
            raise ValueError(f"Expected `entropies` to be a floating tensor, but got dtype {values.dtype}")
    keep = as_mask(mask, values.shape, values.device)
    values = torch.where(keep, values, torch.zeros_like(values))
    bad = keep & ~((values >= -ENTROPY_TOLERANCE) & (values < float("inf")))  # NaN, inf or negative
    if bool(bad.any()):
        raise ValueError(f"Expected finite entropies >= 0, but got value {values[bad][0].item()!r}")
    return values, keep


def _token_entropy_update(
    logits: Tensor | None, mask: Tensor | None, entropies: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``(sum of entropies, number of tokens)`` over the unmasked positions of one batch."""
    values, keep = _entropies_and_mask(logits, mask, entropies)
    return values.to(accumulation_dtype(values.device)).sum(), keep.sum()


def token_entropy(
    logits: Tensor | None = None, mask: Tensor | None = None, *, entropies: Tensor | None = None
) -> Tensor:
    """Mean entropy per token (nats) over all unmasked positions; NaN when there is none.

    Args:
        logits: ``[..., V]`` next-token logits (entropies are computed with :func:`entropy_from_logits`).
        mask: ``[...]`` bool or 0/1, True where a real token is; None means every position.
        entropies: ``[...]`` precomputed per-token entropies, instead of ``logits``.

    Example:
        >>> import torch
        >>> token_entropy(entropies=torch.tensor([[1.0, 2.0], [3.0, 9.0]]), mask=torch.tensor([[1, 1], [1, 0]]))
        tensor(2., dtype=torch.float64)
    """
    total, count = _token_entropy_update(logits, mask, entropies)
    return total / count


def sequence_entropy(
    logits: Tensor | None = None, mask: Tensor | None = None, *, entropies: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per-sequence mean and max entropy (nats) over the last token axis: two tensors of shape ``[B]``.

    Inputs as in :func:`token_entropy` with a ``[B, T]`` token layout; a sequence with no unmasked token
    gets NaN for both.

    Example:
        >>> import torch
        >>> mean, top = sequence_entropy(entropies=torch.tensor([[1.0, 2.0], [3.0, 9.0]]),
        ...                              mask=torch.tensor([[1, 1], [1, 0]]))
        >>> mean, top
        (tensor([1.5000, 3.0000]), tensor([2., 3.]))
    """
    values, keep = _entropies_and_mask(logits, mask, entropies)
    if values.ndim != 2:
        raise ValueError(f"Expected a [B, T] token layout, but got shape {tuple(values.shape)}")
    count = keep.sum(-1)
    mean = values.sum(-1) / count
    if values.shape[-1] == 0:
        return mean, mean.clone()
    top = torch.where(keep, values, torch.full_like(values, float("-inf"))).amax(-1)
    top = torch.where(count > 0, top, torch.full_like(top, float("nan")))
    return mean, top
