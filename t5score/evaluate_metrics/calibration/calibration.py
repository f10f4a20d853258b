"""Hugging Face `evaluate` module: token-level calibration (ECE, RMSCE, MCE, Brier) of top-1 confidences.

Load it offline by path: `evaluate.load(t5score.metrics.evaluate_metric_path("calibration"))`.
The values are those of t5score.metrics.CalibrationError and t5score.metrics.BrierScore.
"""

import datasets
import evaluate
import torch

from t5score.metrics import BrierScore, CalibrationError

_DESCRIPTION = """
Top-1 calibration of token confidences against 0/1 correctness, with uniform bins over [0, 1]
(a confidence of exactly 1.0 falls into the last bin): expected calibration error (ECE, L1), root mean
square calibration error (RMSCE, L2), maximum calibration error (MCE) and the binary Brier score.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: confidence (probability in [0, 1]) of each token's top-1 or chosen id.
    references: 1 when that id is correct, else 0.
    n_bins: number of uniform bins (default 15).
Returns:
    ece, rmsce, mce, brier: floats; num_tokens: int.
Examples:
    >>> metric = evaluate.load(t5score.metrics.evaluate_metric_path("calibration"))
    >>> out = metric.compute(predictions=[0.9, 0.8, 0.6, 0.3], references=[1, 1, 0, 0], n_bins=2)
    >>> round(out["ece"], 6), out["brier"]
    (0.15, 0.125)
"""

_CITATION = """
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={ICML},
  year={2017}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Calibration(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, n_bins=15):
        confidences = torch.tensor(predictions, dtype=torch.float64)
        correct = torch.tensor(references, dtype=torch.long)
        out = {}
        for key, norm in (("ece", "l1"), ("rmsce", "l2"), ("mce", "max")):
            metric = CalibrationError(n_bins=n_bins, norm=norm)
            metric.update(confidences, correct)
            out[key] = float(metric.compute())
        brier = BrierScore()
        brier.update(confidences, correct)
        out["brier"] = float(brier.compute())
        out["num_tokens"] = int(confidences.numel())
        return out
