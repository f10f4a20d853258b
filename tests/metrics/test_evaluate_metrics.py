"""The Hugging Face `evaluate` scripts load offline by path and match the metric classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from t5score.metrics import (
    BrierScore,
    CalibrationError,
    SequenceLogLikelihood,
    TokenEntropy,
    available_evaluate_metrics,
    evaluate_metric_path,
)

evaluate = pytest.importorskip("evaluate")


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    """``evaluate.load`` with its dynamic-module cache in a temporary folder, network access refused."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path_factory.mktemp("hf_modules"))
        mp.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield evaluate.load


def test_paths_are_inside_the_package():
    assert available_evaluate_metrics() == ["calibration", "sequence_log_likelihood", "token_entropy"]
    package_dir = Path(__import__("t5score").__file__).parent
    for name in available_evaluate_metrics():
        path = Path(evaluate_metric_path(name))
        assert path.is_file() and package_dir in path.parents
        for line in path.read_text().splitlines():  # evaluate's import scanner misreads `import a, b`
            assert not (line.startswith("import ") and "," in line), line
    with pytest.raises(ValueError, match="Unknown evaluate metric 'rouge'.*calibration"):
        evaluate_metric_path("rouge")


def test_calibration_script_matches_classes(load):
    rng = np.random.default_rng(0)
    conf = np.concatenate([rng.uniform(size=500), np.ones(20)])
    correct = (rng.uniform(size=520) < conf).astype(int)
    metric = load(evaluate_metric_path("calibration"))
    for start in range(0, 520, 200):  # several batches
        metric.add_batch(predictions=conf[start : start + 200], references=correct[start : start + 200])
    out = metric.compute(n_bins=12)
    for key, norm in (("ece", "l1"), ("rmsce", "l2"), ("mce", "max")):
        cls = CalibrationError(n_bins=12, norm=norm)
        cls.update(torch.tensor(conf), torch.tensor(correct))
        assert out[key] == cls.compute().item(), key
    brier = BrierScore()
    brier.update(torch.tensor(conf), torch.tensor(correct))
    assert out["brier"] == brier.compute().item() and out["num_tokens"] == 520


def test_token_entropy_script_matches_class(load):
    rng = np.random.default_rng(1)
    rows = [rng.uniform(0, 4, int(n)).tolist() for n in rng.integers(1, 9, 12)]
    metric = load(str(Path(evaluate_metric_path("token_entropy")).parent))  # the folder works too
    out = metric.compute(predictions=rows)
    cls = TokenEntropy()
    for row in rows:
        cls.update(entropies=torch.tensor(row, dtype=torch.float64))
    assert out["mean_token_entropy"] == pytest.approx(cls.compute().item(), rel=1e-12)
    assert out["mean_sequence_entropy"] == pytest.approx(np.mean([np.mean(r) for r in rows]), rel=1e-12)
    assert out["mean_max_entropy"] == pytest.approx(np.mean([np.max(r) for r in rows]), rel=1e-12)
    with pytest.raises(ValueError, match=r"predictions\[1\] is empty"):
        metric.compute(predictions=[[1.0], []])


def test_sequence_log_likelihood_script_matches_class(load):
    rng = np.random.default_rng(2)
    rows = [(-rng.exponential(size=int(n))).tolist() for n in rng.integers(1, 9, 10)]
    metric = load(evaluate_metric_path("sequence_log_likelihood"))
    metric.add_batch(predictions=rows[:4])
    metric.add_batch(predictions=rows[4:])
    out = metric.compute(alpha=0.5)
    cls = SequenceLogLikelihood(alpha=0.5)
    for row in rows:
        cls.update(torch.tensor([row], dtype=torch.float64))
    for key, value in cls.compute().items():
        assert out[key] == pytest.approx(value.item(), rel=1e-12), key


@pytest.mark.parametrize("name", available_evaluate_metrics())
def test_script_examples_pass(load, name):
    """The examples in each script's description, run with what they assume imported (``evaluate``,
    ``t5score``); pytest's ``--doctest-modules`` skips these files (``evaluate.load`` imports them by
    path, not as package modules; see pyproject.toml)."""
    import doctest

    import t5score.metrics

    module = type(load(evaluate_metric_path(name)))
    tests = doctest.DocTestFinder(exclude_empty=True).find(
        module, globs={"evaluate": evaluate, "t5score": t5score}
    )
    examples = [t for t in tests if t.examples]
    assert examples, f"{name}: no example in its description"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in examples:  # evaluate.load inside runs with the fixture's offline cache settings
        runner.run(test)
    result = runner.summarize(verbose=False)
    script = Path(evaluate_metric_path(name)).read_text(encoding="utf-8")
    assert result.failed == 0 and result.attempted == script.count(">>> ")  # every example ran
