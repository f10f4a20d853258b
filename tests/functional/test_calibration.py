"""Functional calibration error / Brier score against torchmetrics and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from t5score.functional import (
    brier_score,
    calibration_error,
    free_running_confidences,
    teacher_forced_confidences,
)
from tests.helpers.metrics_reference import np_brier, np_calibration, off_boundary

NORMS = ("l1", "l2", "max")


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_matches_torchmetrics_binary_without_ones(norm, n_bins):
    gen = torch.Generator().manual_seed(n_bins)
    conf = torch.rand(3000, generator=gen) * 0.999  # float32, no 1.0
    correct = torch.rand(3000, generator=gen) < conf  # roughly calibrated, with noise
    ours = calibration_error(conf, correct, n_bins=n_bins, norm=norm)
    ref = binary_calibration_error(conf, correct.long(), n_bins=n_bins, norm=norm)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref.double(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("norm", NORMS)
def test_matches_torchmetrics_multiclass_top1(norm):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2000, 11, generator=gen) * 3
    target = torch.randint(0, 11, (2000,), generator=gen)
    probs = logits.softmax(-1)
    conf, pred = probs.max(-1)
    ours = calibration_error(conf, pred == target, norm=norm)
    ref = multiclass_calibration_error(probs, target, num_classes=11, n_bins=15, norm=norm)
    torch.testing.assert_close(ours, ref.double(), atol=1e-6, rtol=1e-5)


def test_exact_bin_edges_follow_torchmetrics():
    """Confidences exactly on float32 bin edges land in the same bins as in torchmetrics."""
    edges = torch.linspace(0, 1, 16)[:-1]  # all edges below 1.0, float32
    conf = torch.cat([edges, edges + 1e-3])
    correct = torch.arange(conf.numel()) % 3 == 0
    for norm in NORMS:
        ref = binary_calibration_error(conf, correct.long(), n_bins=15, norm=norm)
        torch.testing.assert_close(
            calibration_error(conf, correct, norm=norm), ref.double(), atol=1e-6, rtol=0
        )


@pytest.mark.parametrize("norm", NORMS)
def test_confidence_one_goes_to_last_bin(norm):
    """1.0 is counted in the last bin (numpy reference); torchmetrics gives it an extra bin of its own."""
    rng = np.random.default_rng(3)
    below = off_boundary(rng.uniform(0, 1, 500), 15)
    conf = np.concatenate([below, np.ones(200)])
    # Tokens of [14/15, 1) all correct (under-confident), tokens at 1.0 70% correct (over-confident): merging the
    # two changes the last bin's gap, so the two layouts give different values.
    correct = np.concatenate(
        [(rng.uniform(size=500) < below) | (below >= 14 / 15), rng.uniform(size=200) < 0.7]
    )
    ours, bins = calibration_error(torch.tensor(conf), torch.tensor(correct), norm=norm, return_bins=True)
    expected = np_calibration(conf, correct, 15, one_in_last_bin=True)
    assert ours.item() == pytest.approx(expected[norm], abs=1e-12)
    assert bins.count.tolist() == expected["count"].tolist()
    assert bins.count[-1] >= 200
    # torchmetrics: 1.0 in its own (n_bins + 1)-th bin, which our numpy reference reproduces with a 16th bin.
    ref = binary_calibration_error(torch.tensor(conf), torch.tensor(correct).long(), n_bins=15, norm=norm)
    tm_layout = np_calibration(conf, correct, 15, one_in_last_bin=False)
    assert ref.item() == pytest.approx(tm_layout[norm], abs=1e-6)
    assert ours.item() != pytest.approx(ref.item(), abs=1e-4)


def test_reliability_bins_match_numpy():
    rng = np.random.default_rng(4)
    conf = off_boundary(rng.uniform(0.2, 1, 1000), 10)
    correct = rng.uniform(size=1000) < conf
    _, bins = calibration_error(torch.tensor(conf), torch.tensor(correct), n_bins=10, return_bins=True)
    expected = np_calibration(conf, correct, 10)
    np.testing.assert_array_equal(bins.count.numpy(), expected["count"])
    np.testing.assert_allclose(bins.confidence.numpy(), expected["confidence"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(bins.accuracy.numpy(), expected["accuracy"], rtol=1e-12, equal_nan=True)
    assert bool(bins.confidence[:2].isnan().all())  # [0, 0.2) is empty
    np.testing.assert_allclose(bins.lower.numpy(), np.arange(10) / 10, atol=1e-12)
    np.testing.assert_allclose(bins.upper.numpy(), np.arange(1, 11) / 10, atol=1e-12)


def test_brier_matches_numpy():
    rng = np.random.default_rng(5)
    conf = rng.uniform(size=777)
    correct = rng.integers(0, 2, 777)
    assert brier_score(torch.tensor(conf), torch.tensor(correct)).item() == pytest.approx(
        np_brier(conf, correct), rel=1e-12
    )


def test_empty_input_gives_nan():
    assert calibration_error(torch.zeros(0), torch.zeros(0)).isnan()
    assert brier_score(torch.zeros(0), torch.zeros(0, dtype=torch.bool)).isnan()


@pytest.mark.parametrize(
    "kwargs, conf, correct, match",
    [
        ({"n_bins": 0}, [0.5], [1], "n_bins.*0"),
        ({"n_bins": 2.5}, [0.5], [1], "n_bins.*2.5"),
        ({"norm": "l3"}, [0.5], [1], "norm.*'l3'"),
        ({}, [1.5], [1], r"\[0, 1\].*1.5"),
        ({}, [-0.1], [1], r"\[0, 1\].*-0.1"),
        ({}, [float("nan")], [1], r"\[0, 1\].*nan"),
        ({}, [0.5, 0.4], [1], r"shape.*\(2,\).*\(1,\)"),
        ({}, [0.5], [2], "0/1.*2"),
    ],
)
def test_bad_arguments_raise(kwargs, conf, correct, match):
    with pytest.raises(ValueError, match=match):
        calibration_error(torch.tensor(conf), torch.tensor(correct), **kwargs)


def test_non_1d_and_integer_confidences_raise():
    with pytest.raises(ValueError, match="1-D.*\\(2, 2\\)"):
        calibration_error(torch.rand(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="floating.*int64"):
        brier_score(torch.tensor([1]), torch.tensor([1]))


def test_teacher_forced_confidences_match_numpy_softmax():
    gen = torch.Generator().manual_seed(6)
    logits = torch.randn(3, 5, 13, generator=gen, dtype=torch.float64) * 4
    labels = torch.randint(0, 13, (3, 5), generator=gen)
    labels[1, 3:] = -100
    labels[2, 0] = -100
    conf, correct = teacher_forced_confidences(logits, labels)
    x = logits.numpy()
    probs = np.exp(x - x.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    keep = labels.numpy() != -100
    np.testing.assert_allclose(conf.numpy(), probs.max(-1)[keep], rtol=1e-12)
    np.testing.assert_array_equal(correct.numpy(), (probs.argmax(-1) == labels.numpy())[keep])
    assert conf.numel() == 15 - 3


def test_teacher_forced_confidence_saturates_at_one_not_above():
    logits = torch.tensor([[[0.0, -200.0, -300.0]]])  # softmax underflows: top-1 prob exactly 1.0 in float32
    conf, correct = teacher_forced_confidences(logits, torch.tensor([[0]]))
    assert conf.item() == 1.0 and bool(correct.item())
    _, bins = calibration_error(conf, correct, return_bins=True)
    assert bins.count[-1].item() == 1


def test_teacher_forced_bad_labels_raise():
    with pytest.raises(ValueError, match=r"\[0, 3\).*7"):
        teacher_forced_confidences(torch.zeros(1, 2, 3), torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match=r"labels.*\(1, 2\).*\(1, 3\)"):
        teacher_forced_confidences(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 2]]))


def test_free_running_per_sequence_label_broadcasts():
    lp = torch.log(torch.tensor([[0.9, 0.5, 0.3], [0.8, 0.7, 0.2]]))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    conf, correct = free_running_confidences(lp, torch.tensor([True, False]), mask)
    np.testing.assert_allclose(conf.numpy(), [0.9, 0.5, 0.8, 0.7, 0.2], rtol=1e-6)
    assert correct.tolist() == [True, True, False, False, False]
    per_token = torch.tensor([[1, 0, 1], [0, 1, 1]])
    _, correct = free_running_confidences(lp, per_token, mask)
    assert correct.tolist() == [True, False, False, True, True]
    with pytest.raises(ValueError, match=r"correct.*\(2,\).*\(2, 3\).*\(3,\)"):
        free_running_confidences(lp, torch.tensor([1, 0, 1]), mask)
    with pytest.raises(ValueError, match="<= 0.*0.5"):
        free_running_confidences(torch.tensor([[0.5]]), torch.tensor([1]))
