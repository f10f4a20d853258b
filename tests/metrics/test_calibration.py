"""CalibrationError / BrierScore classes over several batches against torchmetrics and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError

from t5score.functional import teacher_forced_confidences
from t5score.metrics import (
    BrierScore,
    CalibrationError,
    FreeRunningCalibrationError,
    TeacherForcedCalibrationError,
)
from tests.helpers.metrics_reference import np_brier, np_calibration
from tests.helpers.tiny_models import make_tiny_model

NORMS = ("l1", "l2", "max")


def _state_numel(metric) -> int:
    return sum(state.numel() for state in metric.metric_state.values())


@pytest.mark.parametrize("norm", NORMS)
def test_class_over_batches_matches_torchmetrics(norm):
    gen = torch.Generator().manual_seed(0)
    ours, ref = CalibrationError(n_bins=12, norm=norm), BinaryCalibrationError(n_bins=12, norm=norm)
    for size in (100, 1, 257, 0, 64):
        conf = torch.rand(size, generator=gen) * 0.999
        correct = torch.rand(size, generator=gen) < conf**2
        ours.update(conf, correct)
        ref.update(conf, correct.long())
    torch.testing.assert_close(ours.compute(), ref.compute().double(), atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def t5_teacher_forced():
    """Three batches of (logits, labels with -100 padding) from a tiny T5 forward pass."""
    model = make_tiny_model("t5", seed=1)
    gen = torch.Generator().manual_seed(1)
    vocab = model.config.vocab_size
    batches = []
    for b in range(3):
        input_ids = torch.randint(2, vocab, (3, 7), generator=gen)
        labels = torch.full((3, 8), 2)
        with torch.no_grad():  # greedy output as references (top-1 correct: k passes fix k positions)
            for _ in range(8):
                labels = model(input_ids=input_ids, labels=labels).logits.argmax(-1)
        corrupt = torch.rand(labels.shape, generator=gen) < 0.3
        labels[corrupt] = torch.randint(2, vocab, (int(corrupt.sum()),), generator=gen)
        labels[b % 3, 3:] = -100
        labels[(b + 1) % 3, 6:] = -100
        with torch.no_grad():
            logits = model(input_ids=input_ids, labels=labels).logits
        batches.append((logits, labels))
    return batches


@pytest.mark.parametrize("norm", NORMS)
def test_teacher_forced_matches_torchmetrics_multiclass(t5_teacher_forced, norm):
    """Top-1 token calibration on references equals torchmetrics' multiclass (top-label) calibration error.

    The tiny model saturates (top-1 probability exactly 1.0 in float32), where the two differ by design, so
    its logits are scaled down here; the saturated case is checked against numpy below.
    """
    vocab = t5_teacher_forced[0][0].shape[-1]
    ours = TeacherForcedCalibrationError(norm=norm)
    ref = MulticlassCalibrationError(num_classes=vocab, n_bins=15, norm=norm, ignore_index=-100)
    plain = CalibrationError(norm=norm)
    for logits, labels in t5_teacher_forced:
        logits = logits / 8
        ours.update(logits, labels)
        ref.update(logits.softmax(-1).flatten(0, 1), labels.flatten())
        conf, correct = teacher_forced_confidences(logits, labels)
        assert conf.max() < 1.0
        plain.update(conf, correct)
    assert int(ours.count.sum()) == sum(int((labels != -100).sum()) for _, labels in t5_teacher_forced)
    assert 0 < int(ours.correct_sum.sum()) < int(ours.count.sum())  # both outcomes occur
    torch.testing.assert_close(ours.compute(), ref.compute().double(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(plain.compute(), ours.compute(), atol=0, rtol=0)


@pytest.mark.parametrize("norm", NORMS)
def test_teacher_forced_saturated_matches_numpy(t5_teacher_forced, norm):
    """Raw tiny-T5 logits give top-1 probabilities of exactly 1.0: they count in the last bin."""
    ours = TeacherForcedCalibrationError(norm=norm)
    confs, corrects = [], []
    for logits, labels in t5_teacher_forced:
        ours.update(logits, labels)
        x = logits.double().numpy()
        probs = np.exp(x - x.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        keep = labels.numpy() != -100
        confs.append(np.exp(np.log(probs.max(-1)).astype(np.float32))[keep])  # float32 like the logits
        corrects.append((probs.argmax(-1) == labels.numpy())[keep])
    conf = np.concatenate(confs)
    assert (conf == 1.0).sum() > 0
    expected = np_calibration(conf, np.concatenate(corrects), 15)
    assert ours.compute().item() == pytest.approx(expected[norm], abs=1e-6)
    assert ours.reliability().count.tolist() == expected["count"].tolist()


def test_free_running_matches_numpy():
    rng = np.random.default_rng(2)
    ours = FreeRunningCalibrationError(n_bins=10, norm="l2")
    all_conf, all_correct = [], []
    for _ in range(3):
        lengths = rng.integers(1, 6, 4)
        probs = rng.uniform(0.05, 1.0, (4, 6))
        mask = np.arange(6)[None, :] < lengths[:, None]
        labels = rng.integers(0, 2, 4)
        ours.update(torch.tensor(np.log(probs)), torch.tensor(labels), torch.tensor(mask))
        all_conf.append(probs[mask])
        all_correct.append(np.repeat(labels, lengths))
    expected = np_calibration(np.concatenate(all_conf), np.concatenate(all_correct), 10)
    assert ours.compute().item() == pytest.approx(expected["l2"], rel=1e-10)


def test_reliability_and_one_in_last_bin_over_batches():
    rng = np.random.default_rng(3)
    metric = CalibrationError(n_bins=5)
    confs, corrects = [], []
    for _ in range(4):
        conf = np.concatenate([rng.uniform(0, 0.99, 50), np.ones(10)])
        correct = rng.uniform(size=60) < 0.6
        metric.update(torch.tensor(conf), torch.tensor(correct))
        confs.append(conf)
        corrects.append(correct)
    expected = np_calibration(np.concatenate(confs), np.concatenate(corrects), 5)
    bins = metric.reliability()
    assert bins.count.tolist() == expected["count"].tolist()
    np.testing.assert_allclose(bins.accuracy.numpy(), expected["accuracy"], rtol=1e-12)
    np.testing.assert_allclose(bins.confidence.numpy(), expected["confidence"], rtol=1e-12)
    assert metric.compute().item() == pytest.approx(expected["l1"], rel=1e-12)


def test_brier_class_over_batches_matches_numpy():
    rng = np.random.default_rng(4)
    metric = BrierScore()
    confs, corrects = [], []
    for size in (10, 0, 333, 1):
        conf, correct = rng.uniform(size=size), rng.integers(0, 2, size).astype(bool)
        metric.update(torch.tensor(conf), torch.tensor(correct))
        confs.append(conf)
        corrects.append(correct)
    assert metric.compute().item() == pytest.approx(np_brier(np.concatenate(confs), np.concatenate(corrects)))


def test_forward_returns_batch_value_and_accumulates():
    metric = CalibrationError(n_bins=3)
    a = (torch.tensor([0.9, 0.2]), torch.tensor([1, 1]))
    b = (torch.tensor([0.5, 0.7]), torch.tensor([0, 1]))
    batch_value = metric(*a)
    assert batch_value.item() == pytest.approx(np_calibration(*[x.numpy() for x in a], 3)["l1"])
    metric(*b)
    both = [np.concatenate([x.numpy(), y.numpy()]) for x, y in zip(a, b, strict=True)]
    assert metric.compute().item() == pytest.approx(np_calibration(*both, 3)["l1"])
    metric.reset()
    assert int(metric.count.sum()) == 0


def test_state_size_does_not_grow_with_tokens():
    """Memory is O(n_bins): the same number of state elements after 1e3 and 1e6 tokens."""
    gen = torch.Generator().manual_seed(5)
    small, large = CalibrationError(), CalibrationError()
    small.update(torch.rand(1000, generator=gen), torch.ones(1000, dtype=torch.bool))
    for _ in range(4):
        large.update(torch.rand(250_000, generator=gen), torch.rand(250_000, generator=gen) < 0.5)
    assert int(large.count.sum()) == 1_000_000
    assert _state_numel(small) == _state_numel(large) == 3 * 15
    brier_small, brier_large = BrierScore(), BrierScore()
    brier_small.update(torch.rand(1000, generator=gen), torch.ones(1000))
    brier_large.update(torch.rand(1_000_000, generator=gen), torch.zeros(1_000_000))
    assert _state_numel(brier_small) == _state_numel(brier_large) == 2


def test_class_flags_and_argument_errors():
    assert CalibrationError.full_state_update is False and CalibrationError.higher_is_better is False
    assert CalibrationError.is_differentiable is False and BrierScore.higher_is_better is False
    with pytest.raises(ValueError, match="n_bins.*0"):
        CalibrationError(n_bins=0)
    with pytest.raises(ValueError, match="norm.*'L1'"):
        CalibrationError(norm="L1")
    metric = CalibrationError()
    with pytest.raises(ValueError, match=r"\[0, 1\].*1.25"):
        metric.update(torch.tensor([0.5, 1.25]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"shape.*\(2,\).*\(3,\)"):
        metric.update(torch.tensor([0.5, 0.25]), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\].*-0.5"):
        BrierScore().update(torch.tensor([-0.5]), torch.tensor([1]))


def test_brier_gradient_matches_analytic():
    conf = torch.tensor([0.9, 0.2, 0.6], dtype=torch.float64, requires_grad=True)
    correct = torch.tensor([1, 1, 0])
    BrierScore()(conf, correct).backward()  # torchmetrics keeps the graph in forward()
    torch.testing.assert_close(conf.grad, 2 * (conf.detach() - correct) / 3)
