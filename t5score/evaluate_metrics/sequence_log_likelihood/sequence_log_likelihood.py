"""Hugging Face `evaluate` module: sequence log-likelihood, perplexity and length-penalised score.

Load it offline by path: `evaluate.load(t5score.metrics.evaluate_metric_path("sequence_log_likelihood"))`.
The values are those of t5score.metrics.SequenceLogLikelihood.
"""

import datasets
import evaluate
import torch

from t5score.metrics import SequenceLogLikelihood

_DESCRIPTION = """
Log-likelihood of sequences from their per-token log-probabilities (e.g. the token_logprobs column of
t5score's predictions.parquet): total, mean per token over the corpus, mean of per-sequence means,
perplexity exp(-mean per token) and the mean length-penalised score sum / length ** alpha.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of per-token log-probabilities (<= 0) per sequence; each needs >= 1 value.
    alpha: length-penalty exponent (default 1.0).
Returns:
    sum, mean_per_token, mean_per_sequence, perplexity, length_penalized: floats;
    num_tokens, num_sequences: ints.
Examples:
    >>> metric = evaluate.load(t5score.metrics.evaluate_metric_path("sequence_log_likelihood"))
    >>> metric.compute(predictions=[[-1.0, -2.0], [-4.0]])["mean_per_token"]
    -2.3333333333333335
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SequenceLogLikelihoodMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64"))}),
        )

    def _compute(self, predictions, alpha=1.0):
        width = max((len(row) for row in predictions), default=0)
        values = torch.zeros(len(predictions), width, dtype=torch.float64)
        mask = torch.zeros(len(predictions), width, dtype=torch.bool)
        for i, row in enumerate(predictions):
            values[i, : len(row)] = torch.tensor(row, dtype=torch.float64)
            mask[i, : len(row)] = True
        metric = SequenceLogLikelihood(alpha=alpha)
        metric.update(values, mask)
        out = metric.compute()
        return {key: int(value) if key.startswith("num_") else float(value) for key, value in out.items()}
