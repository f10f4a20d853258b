"""Hugging Face `evaluate` module: mean predictive entropy per token (nats) over a corpus.

Load it offline by path: `evaluate.load(t5score.metrics.evaluate_metric_path("token_entropy"))`.
The value is that of t5score.metrics.TokenEntropy.
"""

import datasets
import evaluate
import torch

from t5score.functional import sequence_entropy
from t5score.metrics import TokenEntropy

_DESCRIPTION = """
Mean entropy (nats) of the next-token distribution over all tokens of all sequences, from per-token
entropies (e.g. the token_entropies column of t5score's predictions.parquet), plus the mean over
sequences of each sequence's mean and max entropy.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of per-token entropies (nats, >= 0) per sequence; each list needs >= 1 value.
Returns:
    mean_token_entropy: corpus mean per token; mean_sequence_entropy: mean of per-sequence means;
    mean_max_entropy: mean of per-sequence maxima; num_tokens: int.
Examples:
    >>> metric = evaluate.load(t5score.metrics.evaluate_metric_path("token_entropy"))
    >>> metric.compute(predictions=[[1.0, 2.0], [3.0]])["mean_token_entropy"]
    2.0
"""

_CITATION = ""


def _padded(rows):
    width = max(len(r) for r in rows)
    values = torch.zeros(len(rows), width, dtype=torch.float64)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        values[i, : len(row)] = torch.tensor(row, dtype=torch.float64)
        mask[i, : len(row)] = True
    return values, mask


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TokenEntropyMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64"))}),
        )

    def _compute(self, predictions):
        empty = [i for i, row in enumerate(predictions) if len(row) == 0]
        if empty:
            raise ValueError(f"predictions[{empty[0]}] is empty; every sequence needs at least one token")
        values, mask = _padded(predictions)
        metric = TokenEntropy()
        metric.update(entropies=values, mask=mask)
        mean, top = sequence_entropy(entropies=values, mask=mask)
        return {
            "mean_token_entropy": float(metric.compute()),
            "mean_sequence_entropy": float(mean.mean()),
            "mean_max_entropy": float(top.mean()),
            "num_tokens": int(mask.sum()),
        }
