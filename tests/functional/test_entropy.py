"""Functional entropy against scipy.stats.entropy and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from t5score.functional import entropy_from_logits, sequence_entropy, token_entropy


def _scipy_entropy(logits: torch.Tensor) -> np.ndarray:
    x = logits.double().numpy()
    probs = np.exp(x - x.max(-1, keepdims=True))
    return scipy.stats.entropy(probs, axis=-1)  # normalises, natural log


def test_entropy_from_logits_matches_scipy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, 50, generator=gen) * 3
    ours = entropy_from_logits(logits)
    assert ours.shape == (4, 6)
    np.testing.assert_allclose(ours.numpy(), _scipy_entropy(logits), rtol=1e-5, atol=1e-6)


def test_entropy_with_minus_inf_logits_and_half_precision():
    logits = torch.tensor(
        [[0.0, 1.0, float("-inf"), 2.0], [5.0, float("-inf"), float("-inf"), float("-inf")]]
    )
    ours = entropy_from_logits(logits)
    assert ours[1].item() == 0.0
    np.testing.assert_allclose(ours[0].item(), _scipy_entropy(logits[:1, [0, 1, 3]])[0], rtol=1e-6)
    half = entropy_from_logits(logits.half())
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    np.testing.assert_allclose(half.numpy(), ours.numpy(), rtol=1e-3)


def test_token_and_sequence_entropy_match_numpy():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 4, (5, 7))
    mask = np.ones((5, 7), dtype=bool)
    lengths = [7, 3, 1, 5, 0]
    for i, n in enumerate(lengths):
        mask[i, n:] = False
    values_with_junk = np.where(mask, values, np.nan)  # padding may hold anything
    mean, top = sequence_entropy(entropies=torch.tensor(values_with_junk), mask=torch.tensor(mask))
    for i, n in enumerate(lengths):
        if n == 0:
            assert mean[i].isnan() and top[i].isnan()
        else:
            assert mean[i].item() == pytest.approx(values[i, :n].mean(), rel=1e-12)
            assert top[i].item() == values[i, :n].max()
    corpus = token_entropy(entropies=torch.tensor(values_with_junk), mask=torch.tensor(mask))
    assert corpus.item() == pytest.approx(values[mask].mean(), rel=1e-12)


def test_token_entropy_from_logits_with_mask_matches_scipy():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 20, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    expected = _scipy_entropy(logits)[mask.numpy().astype(bool)].mean()
    assert token_entropy(logits, mask).item() == pytest.approx(expected, rel=1e-5)
    mean, top = sequence_entropy(logits, mask)
    ref = _scipy_entropy(logits)
    assert mean[1].item() == pytest.approx(ref[1, 0], rel=1e-5)
    assert top[0].item() == pytest.approx(ref[0, :3].max(), rel=1e-5)


def test_entropy_bad_inputs_raise():
    with pytest.raises(ValueError, match="exactly one.*both"):
        token_entropy(torch.zeros(1, 3), entropies=torch.zeros(1))
    with pytest.raises(ValueError, match="exactly one.*neither"):
        token_entropy()
    with pytest.raises(ValueError, match=">= 0.*-0.5"):
        token_entropy(entropies=torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="nan"):
        token_entropy(entropies=torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match=r"mask.*\(2,\).*\(3,\)"):
        token_entropy(entropies=torch.zeros(2), mask=torch.ones(3))
    with pytest.raises(ValueError, match="mask.*0/1.*3"):
        token_entropy(entropies=torch.zeros(2), mask=torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="floating.*int64"):
        entropy_from_logits(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[B, T\].*\(3,\)"):
        sequence_entropy(entropies=torch.zeros(3))
