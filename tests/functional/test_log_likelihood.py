"""Functional log-likelihood against a tiny T5 forward pass with labels (cross-entropy) and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from t5score.functional import sequence_log_likelihood, sequence_scores, teacher_forced_logprobs
from tests.helpers.tiny_models import make_tiny_model


@pytest.fixture(scope="module")
def t5_batch():
    """Logits of a teacher-forced forward pass of a tiny T5 over padded references (-100)."""
    model = make_tiny_model("t5", seed=0)
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    input_ids = torch.randint(2, vocab, (4, 9), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 5:] = 0
    labels = torch.randint(2, vocab, (4, 6), generator=gen)
    for row, n in enumerate([6, 2, 4, 1]):
        labels[row, n - 1] = 1  # EOS
        labels[row, n:] = -100
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    return out, labels


def test_reference_logprobs_match_cross_entropy(t5_batch):
    out, labels = t5_batch
    lp, mask = teacher_forced_logprobs(out.logits, labels)
    assert mask.sum(-1).tolist() == [6, 2, 4, 1]
    for row in range(labels.shape[0]):
        ref = -F.cross_entropy(out.logits[row], labels[row], ignore_index=-100, reduction="sum")
        torch.testing.assert_close(lp[row].sum(), ref, rtol=1e-5, atol=1e-5)
    corpus = sequence_log_likelihood(lp, mask)
    total_ref = -F.cross_entropy(out.logits.flatten(0, 1), labels.flatten(), reduction="sum")
    assert corpus["sum"].item() == pytest.approx(total_ref.item(), rel=1e-5)
    assert corpus["mean_per_token"].item() == pytest.approx(
        -out.loss.item(), rel=1e-5
    )  # HF loss: mean per token
    assert corpus["perplexity"].item() == pytest.approx(torch.exp(out.loss).item(), rel=1e-5)
    assert corpus["num_tokens"].item() == 13 and corpus["num_sequences"].item() == 4


def test_log_softmax_not_softmax_log():
    """A reference token far below the top keeps a finite log-probability (softmax().log() gives -inf)."""
    logits = torch.tensor([[[0.0, -200.0, -5.0]]])
    assert torch.isinf(logits.softmax(-1).log()[0, 0, 1])
    lp, _ = teacher_forced_logprobs(logits, torch.tensor([[1]]))
    ref = -F.cross_entropy(logits[0], torch.tensor([1]), reduction="sum")
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp[0, 0], ref)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, 2.0])
def test_sequence_scores_and_corpus_match_numpy(alpha):
    rng = np.random.default_rng(int(alpha * 10))
    lengths = np.array([5, 1, 3, 8])
    values = -rng.exponential(1.0, (4, 8))
    mask = np.arange(8)[None, :] < lengths[:, None]
    scores = sequence_scores(torch.tensor(np.where(mask, values, np.nan)), torch.tensor(mask), alpha=alpha)
    sums = np.array([values[i, :n].sum() for i, n in enumerate(lengths)])
    np.testing.assert_allclose(scores["sum"].numpy(), sums, rtol=1e-12)
    np.testing.assert_array_equal(scores["num_tokens"].numpy(), lengths)
    np.testing.assert_allclose(scores["mean"].numpy(), sums / lengths, rtol=1e-12)
    np.testing.assert_allclose(scores["length_penalized"].numpy(), sums / lengths**alpha, rtol=1e-12)
    corpus = sequence_log_likelihood(torch.tensor(values), torch.tensor(mask), alpha=alpha)
    assert corpus["mean_per_token"].item() == pytest.approx(sums.sum() / lengths.sum(), rel=1e-12)
    assert corpus["mean_per_sequence"].item() == pytest.approx((sums / lengths).mean(), rel=1e-12)
    assert corpus["length_penalized"].item() == pytest.approx((sums / lengths**alpha).mean(), rel=1e-12)
    assert corpus["perplexity"].item() == pytest.approx(np.exp(-sums.sum() / lengths.sum()), rel=1e-12)


def test_log_likelihood_bad_inputs_raise():
    with pytest.raises(ValueError, match="alpha.*-1"):
        sequence_log_likelihood(torch.zeros(1, 1) - 1, alpha=-1)
    with pytest.raises(ValueError, match="Sequence 1.*0 tokens"):
        sequence_log_likelihood(torch.zeros(2, 2) - 1, mask=torch.tensor([[1, 1], [0, 0]]))
    with pytest.raises(ValueError, match="<= 0.*0.5"):
        sequence_log_likelihood(torch.tensor([[-1.0, 0.5]]))
    with pytest.raises(ValueError, match="<= 0.*nan"):
        sequence_log_likelihood(torch.tensor([[-1.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"\[B, T\].*\(3,\)"):
        sequence_scores(torch.zeros(3))
    with pytest.raises(ValueError, match=r"mask.*\(1, 2\).*\(1, 3\)"):
        sequence_scores(torch.zeros(1, 2), mask=torch.ones(1, 3))
