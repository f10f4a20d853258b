"""TokenEntropy class over several batches against scipy.stats.entropy / numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from t5score.metrics import TokenEntropy


def test_logits_over_batches_match_scipy():
    gen = torch.Generator().manual_seed(0)
    metric = TokenEntropy()
    expected = []
    for batch, length in enumerate((5, 1, 9)):
        logits = torch.randn(3, length, 40, generator=gen) * (batch + 1)
        mask = torch.rand(3, length, generator=gen) < 0.7
        metric.update(logits, mask)
        x = logits.double().numpy()
        ent = scipy.stats.entropy(np.exp(x - x.max(-1, keepdims=True)), axis=-1)
        expected.append(ent[mask.numpy()])
    expected = np.concatenate(expected)
    assert int(metric.num_tokens) == expected.size
    assert metric.compute().item() == pytest.approx(expected.mean(), rel=1e-5)


def test_precomputed_entropies_and_mixed_updates_match_numpy():
    rng = np.random.default_rng(1)
    metric = TokenEntropy()
    seen = []
    for _ in range(3):
        values = rng.uniform(0, 5, (4, 6))
        mask = rng.uniform(size=(4, 6)) < 0.5
        metric.update(entropies=torch.tensor(np.where(mask, values, np.inf)), mask=torch.tensor(mask))
        seen.append(values[mask])
    flat = rng.uniform(0, 5, 11)
    metric.update(entropies=torch.tensor(flat))  # 1-D, no mask
    seen.append(flat)
    assert metric.compute().item() == pytest.approx(np.concatenate(seen).mean(), rel=1e-12)


def test_forward_reset_and_empty():
    metric = TokenEntropy()
    batch_value = metric(entropies=torch.tensor([1.0, 3.0]))
    assert batch_value.item() == 2.0
    metric(entropies=torch.tensor([5.0]))
    assert metric.compute().item() == 3.0
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert metric.compute().isnan()


def test_gradient_flows_to_logits():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    metric = TokenEntropy()
    metric(logits).backward()  # torchmetrics keeps the graph in forward(), not in update()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert TokenEntropy.is_differentiable and TokenEntropy.full_state_update is False


def test_state_is_fixed_size():
    metric = TokenEntropy()
    metric.update(entropies=torch.rand(1_000_000))
    assert sum(s.numel() for s in metric.metric_state.values()) == 2


def test_bad_input_raises():
    with pytest.raises(ValueError, match="exactly one"):
        TokenEntropy().update()
    with pytest.raises(ValueError, match=">= 0.*-1.0"):
        TokenEntropy().update(entropies=torch.tensor([[0.5, -1.0]]))
