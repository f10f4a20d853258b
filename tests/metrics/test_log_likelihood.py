"""SequenceLogLikelihood over several padded batches against a tiny T5 forward pass and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from t5score.functional import teacher_forced_logprobs
from t5score.metrics import SequenceLogLikelihood
from tests.helpers.tiny_models import make_tiny_model


def test_t5_batches_match_cross_entropy():
    model = make_tiny_model("t5", seed=2)
    gen = torch.Generator().manual_seed(2)
    vocab = model.config.vocab_size
    metric, penalized = SequenceLogLikelihood(), SequenceLogLikelihood(alpha=0.7)
    sums, lengths = [], []
    for batch_lengths in ([4, 1, 3], [2, 6], [5, 5, 1, 2]):
        width = max(batch_lengths)
        input_ids = torch.randint(2, vocab, (len(batch_lengths), 6), generator=gen)
        labels = torch.randint(2, vocab, (len(batch_lengths), width), generator=gen)
        for row, n in enumerate(batch_lengths):
            labels[row, n:] = -100
        with torch.no_grad():
            logits = model(input_ids=input_ids, labels=labels).logits
        lp, mask = teacher_forced_logprobs(logits, labels)
        metric.update(lp, mask)
        penalized.update(lp, mask)
        for row in range(len(batch_lengths)):
            ce = F.cross_entropy(logits[row], labels[row], ignore_index=-100, reduction="sum")
            sums.append(-ce.item())
        lengths.extend(batch_lengths)
    sums, lengths = np.array(sums), np.array(lengths)
    out = metric.compute()
    assert out["sum"].item() == pytest.approx(sums.sum(), rel=1e-5)
    assert out["num_tokens"].item() == lengths.sum() and out["num_sequences"].item() == len(lengths)
    assert out["mean_per_token"].item() == pytest.approx(sums.sum() / lengths.sum(), rel=1e-5)
    assert out["mean_per_sequence"].item() == pytest.approx((sums / lengths).mean(), rel=1e-5)
    assert out["perplexity"].item() == pytest.approx(np.exp(-sums.sum() / lengths.sum()), rel=1e-5)
    assert out["length_penalized"].item() == pytest.approx(
        out["mean_per_sequence"].item(), rel=1e-12
    )  # alpha=1
    pen = penalized.compute()["length_penalized"].item()
    assert pen == pytest.approx((sums / lengths**0.7).mean(), rel=1e-5)


def test_sums_update_equals_token_update():
    rng = np.random.default_rng(3)
    values = -rng.exponential(size=(5, 4))
    mask = np.arange(4)[None, :] < np.array([4, 1, 2, 3, 4])[:, None]
    by_token, by_sum = SequenceLogLikelihood(alpha=0.5), SequenceLogLikelihood(alpha=0.5)
    by_token.update(torch.tensor(values), torch.tensor(mask))
    by_sum.update(
        sum_logprobs=torch.tensor(np.where(mask, values, 0).sum(-1)), num_tokens=torch.tensor(mask.sum(-1))
    )
    a, b = by_token.compute(), by_sum.compute()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-12, atol=0)


def test_forward_returns_batch_dict():
    metric = SequenceLogLikelihood()
    batch = metric(torch.tensor([[-1.0, -3.0]]))
    assert batch["mean_per_token"].item() == -2.0
    metric(torch.tensor([[-4.0, 0.0]]), torch.tensor([[1, 0]]))
    out = metric.compute()
    assert out["sum"].item() == -8.0 and out["num_tokens"].item() == 3
    assert out["mean_per_sequence"].item() == -3.0


def test_gradient_flows_and_flags():
    lp = torch.log_softmax(torch.randn(2, 3, 4), -1)[..., 0].detach().requires_grad_()
    metric = SequenceLogLikelihood()
    metric(lp)["mean_per_token"].backward()  # torchmetrics keeps the graph in forward(), not in update()
    torch.testing.assert_close(lp.grad, torch.full_like(lp, 1 / 6))
    assert SequenceLogLikelihood.higher_is_better is True and SequenceLogLikelihood.full_state_update is False


def test_state_is_fixed_size():
    metric = SequenceLogLikelihood()
    metric.update(-torch.rand(10_000, 100))
    assert sum(s.numel() for s in metric.metric_state.values()) == 5


def test_bad_input_raises():
    with pytest.raises(ValueError, match="alpha.*'x'"):
        SequenceLogLikelihood(alpha="x")
    metric = SequenceLogLikelihood()
    with pytest.raises(ValueError, match="not both"):
        metric.update(torch.zeros(1, 1), sum_logprobs=torch.zeros(1), num_tokens=torch.ones(1))
    with pytest.raises(ValueError, match="both `sum_logprobs` and `num_tokens`"):
        metric.update(sum_logprobs=torch.zeros(1))
    with pytest.raises(ValueError, match="Sequence 0.*0 tokens"):
        metric.update(sum_logprobs=torch.zeros(1), num_tokens=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer.*1.5"):
        metric.update(sum_logprobs=torch.zeros(1), num_tokens=torch.tensor([1.5]))
    with pytest.raises(ValueError, match="<= 0.*2.0"):
        metric.update(sum_logprobs=torch.tensor([2.0]), num_tokens=torch.tensor([1]))
    assert int(metric.num_sequences) == 0  # nothing was accumulated by the failed updates
