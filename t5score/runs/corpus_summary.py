"""Corpus metrics of a predictions table (``predictions.parquet``), computed with the metric classes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torchmetrics import MeanMetric

from t5score.metrics.brier import BrierScore
from t5score.metrics.calibration import CalibrationError
from t5score.metrics.entropy import TokenEntropy
from t5score.metrics.log_likelihood import SequenceLogLikelihood

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 2048  # rows per padded [B, T] update


def _row_label(df: pd.DataFrame, i: int) -> str:
    for key in ("id", "position"):
        if key in df.columns:
            value = df[key].iloc[i]
            return f"row {i} ({key}={value.item() if isinstance(value, np.generic) else value!r})"
    return f"row {i + df.attrs.get('row_offset', 0)}"


def _lists(df: pd.DataFrame, column: str) -> list[np.ndarray]:
    """One float64 array per row (empty for a null cell); ValueError naming the row for a non-list cell."""
    import pandas as pd

    out = []
    for i, cell in enumerate(df[column].tolist()):
        if np.ndim(cell) == 0 and pd.isna(cell):  # None, NaN or pd.NA: no tokens
            out.append(np.zeros(0))
            continue
        try:
            values = np.asarray(cell, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1:
            raise ValueError(f"{_row_label(df, i)}: field {column!r} must be a list of numbers, got {cell!r}")
        out.append(values)
    return out


def _check_values(df: pd.DataFrame, column: str, rows: list[np.ndarray], ok: Any, expected: str) -> None:
    for i, values in enumerate(rows):
        bad = ~ok(values)
        if bad.any():
            raise ValueError(
                f"{_row_label(df, i)}: field {column!r} holds {float(values[bad][0])!r}, expected {expected}"
            )


def _padded(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    values = np.zeros((len(rows), width))
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        values[i, : len(r)] = r
        mask[i, : len(r)] = True
    return torch.from_numpy(values), torch.from_numpy(mask)


def _number(value: torch.Tensor) -> float | None:
    x = float(value)
    return x if math.isfinite(x) else None


def _is_01(v: np.ndarray) -> np.ndarray:
    return (v == 0) | (v == 1)


def _calibration_compute_keys(
    errors: list[CalibrationError], brier: BrierScore, prefix: str
) -> dict[str, Any]:
    """ECE / RMSCE / MCE, Brier score and reliability bins of accumulated calibration metrics."""
    out: dict[str, Any] = {}
    for key, metric in zip(("ece", "rmsce", "mce"), errors, strict=True):
        out[prefix + key] = _number(metric.compute())
    out[prefix + "brier"] = _number(brier.compute())
    bins = errors[0].reliability()
    out[prefix + "reliability"] = {
        "lower": bins.lower.tolist(),
        "upper": bins.upper.tolist(),
        "confidence": [_number(x) for x in bins.confidence],
        "accuracy": [_number(x) for x in bins.accuracy],
        "count": bins.count.tolist(),
    }
    return out


class RecordSummary:
    """Corpus metrics of a predictions table fed chunk by chunk; memory does not grow with the rows.

    ``update(df)`` takes one chunk of rows (a DataFrame with the columns :func:`summarize_records`
    describes; every chunk must have the same optional columns), ``compute()`` returns the dict of
    :func:`summarize_records`. Every number comes from metric states (sums and per-bin counts), so
    ``RecordSummary`` over chunks equals ``summarize_records`` over the whole table.
    """

    def __init__(self, n_bins: int = 15) -> None:
        self.n_bins = n_bins
        self.rows = self.rows_with_tokens = self.tokens = 0
        self.entropy, self.loglik = TokenEntropy(), SequenceLogLikelihood()
        self.top1 = MeanMetric().set_dtype(torch.float64)
        self.ref: dict[str, Any] | None = None  # ref_logprob / ref_num_tokens seen: counts and a metric
        self.calibration: dict[str, tuple] = {}  # prefix ("ref_" or "") -> (3 CalibrationError, BrierScore)

    def _calibration_update(self, prefix: str, conf: list[np.ndarray], correct: list[np.ndarray]) -> None:
        if prefix not in self.calibration:
            norms = ("l1", "l2", "max")
            self.calibration[prefix] = (
                [CalibrationError(n_bins=self.n_bins, norm=n) for n in norms],
                BrierScore(),
            )
        errors, brier = self.calibration[prefix]
        flat_conf = torch.from_numpy(np.concatenate(conf)) if conf else torch.zeros(0, dtype=torch.float64)
        flat_correct = (
            torch.from_numpy(np.concatenate(correct)) if correct else torch.zeros(0, dtype=torch.float64)
        )
        for metric in (*errors, brier):
            metric.update(flat_conf, flat_correct)

    def update(self, df: pd.DataFrame) -> RecordSummary:
        """Add one chunk of rows (row labels in errors use its ``id``/``position`` columns)."""
        missing = [c for c in ("token_logprobs", "token_entropies", "top1_probs") if c not in df.columns]
        if missing:
            raise ValueError(f"Predictions table lacks column(s) {missing}; it has {list(df.columns)}")
        offset, self.rows = self.rows, self.rows + len(df)
        df = df.reset_index(drop=True)
        df.attrs["row_offset"] = offset
        logprobs, entropies, top1 = (
            _lists(df, c) for c in ("token_logprobs", "token_entropies", "top1_probs")
        )
        for column, rows in (("token_entropies", entropies), ("top1_probs", top1)):
            for i, (lp, other) in enumerate(zip(logprobs, rows, strict=True)):
                if len(other) != len(lp):
                    raise ValueError(
                        f"{_row_label(df, i)}: field {column!r} has {len(other)} values but token_logprobs has {len(lp)}"
                    )
        _check_values(df, "token_logprobs", logprobs, lambda v: v <= 1e-4, "log-probabilities <= 0")
        _check_values(
            df, "token_entropies", entropies, lambda v: (v >= -1e-6) & np.isfinite(v), "entropies >= 0"
        )
        _check_values(df, "top1_probs", top1, lambda v: (v >= 0) & (v <= 1), "probabilities in [0, 1]")
        keep = [i for i, lp in enumerate(logprobs) if len(lp) > 0]
        self.rows_with_tokens += len(keep)
        self.tokens += int(sum(len(logprobs[i]) for i in keep))
        for start in range(0, len(keep), CHUNK_ROWS):
            rows = keep[start : start + CHUNK_ROWS]
            lp, mask = _padded([logprobs[i] for i in rows])
            ent, _ = _padded([entropies[i] for i in rows])
            self.loglik.update(lp, mask)
            self.entropy.update(entropies=ent, mask=mask)
            self.top1.update(torch.from_numpy(np.concatenate([top1[i] for i in rows])))
        if "ref_logprob" in df.columns and "ref_num_tokens" in df.columns:
            self.ref = self.ref or {"rows": 0, "metric": SequenceLogLikelihood()}
            _reference_update(df, self.ref)
        if "ref_top1_probs" in df.columns and "ref_top1_correct" in df.columns:
            conf, correct = _lists(df, "ref_top1_probs"), _lists(df, "ref_top1_correct")
            for i, (c, y) in enumerate(zip(conf, correct, strict=True)):
                if len(c) != len(y):
                    raise ValueError(
                        f"{_row_label(df, i)}: 'ref_top1_probs' and 'ref_top1_correct' differ in length"
                    )
            _check_values(
                df, "ref_top1_probs", conf, lambda v: (v >= 0) & (v <= 1), "probabilities in [0, 1]"
            )
            _check_values(df, "ref_top1_correct", correct, _is_01, "0/1 or bool")
            self._calibration_update("ref_", conf, correct)
        if "correct" in df.columns:
            self._calibration_update("", *_free_running(df, [logprobs[i] for i in keep], keep))
        return self

    def compute(self) -> dict[str, Any]:
        """The corpus metrics of every row added so far (keys of :func:`summarize_records`)."""
        some = self.rows_with_tokens > 0
        out: dict[str, Any] = {
            "num_rows": self.rows,
            "num_rows_with_tokens": self.rows_with_tokens,
            "num_rows_without_tokens": self.rows - self.rows_with_tokens,
            "num_tokens": self.tokens,
        }
        ll = self.loglik.compute() if some else {}
        out["mean_token_entropy"] = _number(self.entropy.compute()) if some else None
        out["mean_top1_prob"] = _number(self.top1.compute()) if some else None
        for key, name in (
            ("sum", "sum_logprob"),
            ("mean_per_token", "mean_token_logprob"),
            ("mean_per_sequence", "mean_sequence_logprob"),
            ("perplexity", "perplexity"),
        ):
            out[name] = _number(ll[key]) if some else None
        if self.ref is not None:
            out.update(_reference_compute(self.ref))
        for prefix in ("ref_", ""):
            if prefix in self.calibration:
                out.update(_calibration_compute_keys(*self.calibration[prefix], prefix))
        return out


def summarize_records(df: pd.DataFrame, n_bins: int = 15) -> dict[str, Any]:
    """JSON-serialisable corpus metrics of a predictions DataFrame (one row per decoded sequence; the same
    numbers as :class:`RecordSummary` fed in chunks).

    Required list columns (one value per generated token): ``token_logprobs``, ``token_entropies``,
    ``top1_probs``. Rows whose ``token_logprobs`` is empty or null (e.g. rows with an error) are skipped and
    counted in ``num_rows_without_tokens``. Keys (None where undefined):

    * ``num_rows``, ``num_rows_with_tokens``, ``num_rows_without_tokens``, ``num_tokens``;
    * ``mean_token_entropy`` (nats, :class:`TokenEntropy`), ``mean_top1_prob``;
    * ``sum_logprob``, ``mean_token_logprob`` (corpus: total / tokens), ``mean_sequence_logprob`` (mean of
      per-row means) and ``perplexity`` (``exp(-mean_token_logprob)``) of the predictions
      (:class:`SequenceLogLikelihood`);
    * with per-row ``ref_logprob`` and ``ref_num_tokens`` (rows where they are null are skipped):
      ``ref_num_rows``, ``ref_num_tokens``, ``ref_sum_logprob``, ``ref_mean_token_logprob``,
      ``ref_mean_sequence_logprob``, ``ref_perplexity``;
    * with list columns ``ref_top1_probs`` and ``ref_top1_correct`` (teacher-forced confidences and 0/1
      correctness per reference token): ``ref_ece``, ``ref_rmsce``, ``ref_mce``, ``ref_brier`` and
      ``ref_reliability`` (per-bin lists), with ``n_bins`` bins;
    * with a ``correct`` column (per-row bool, or a per-token list): the free-running ``ece``, ``rmsce``,
      ``mce``, ``brier`` and ``reliability`` of the generated tokens (confidence ``exp(token_logprobs)``).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"token_logprobs": [[-1.0, -2.0], []], "token_entropies": [[0.5, 1.5], []],
        ...                    "top1_probs": [[0.5, 0.25], []]})
        >>> out = summarize_records(df)
        >>> out["num_tokens"], out["mean_token_entropy"], out["mean_token_logprob"]
        (2, 1.0, -1.5)
    """
    return RecordSummary(n_bins).update(df).compute()


def _reference_update(df: pd.DataFrame, state: dict[str, Any]) -> None:
    sums = df["ref_logprob"].to_numpy(dtype=np.float64, na_value=np.nan)
    lengths = df["ref_num_tokens"].to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(sums)
    for i in np.flatnonzero(present & np.isnan(lengths)):
        raise ValueError(f"{_row_label(df, int(i))}: 'ref_logprob' is set but 'ref_num_tokens' is null")
    state["rows"] += int(present.sum())
    if not present.any():
        return
    try:
        state["metric"].update(
            sum_logprobs=torch.from_numpy(sums[present]), num_tokens=torch.from_numpy(lengths[present])
        )
    except ValueError as err:
        raise ValueError(f"Columns 'ref_logprob' / 'ref_num_tokens' (rows with a reference): {err}") from err


def _reference_compute(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ref_num_rows": state["rows"]}
    keys = (
        "ref_num_tokens",
        "ref_sum_logprob",
        "ref_mean_token_logprob",
        "ref_mean_sequence_logprob",
        "ref_perplexity",
    )
    if not state["rows"]:
        return out | dict.fromkeys(keys)
    ll = state["metric"].compute()
    values = (
        int(ll["num_tokens"]),
        ll["sum"],
        ll["mean_per_token"],
        ll["mean_per_sequence"],
        ll["perplexity"],
    )
    return out | {k: v if isinstance(v, int) else _number(v) for k, v in zip(keys, values, strict=True)}


def _free_running(
    df: pd.DataFrame, logprobs: list[np.ndarray], keep: list[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Confidences ``exp(token_logprobs)`` and 0/1 correctness per generated token (from ``correct``)."""
    conf, correct = [], []
    for lp, i in zip(logprobs, keep, strict=True):
        cell = df["correct"].iloc[i]
        try:
            labels = np.asarray(cell, dtype=np.float64)
        except (TypeError, ValueError):
            labels = np.full(lp.shape, np.nan)
        if labels.ndim == 0:
            labels = np.full(lp.shape, labels)
        elif labels.shape != lp.shape:
            raise ValueError(
                f"{_row_label(df, i)}: field 'correct' has {labels.size} values for {lp.size} tokens"
            )
        if not _is_01(labels).all():
            raise ValueError(f"{_row_label(df, i)}: field 'correct' holds {cell!r}, expected 0/1 or bool")
        conf.append(np.minimum(np.exp(lp), 1.0))
        correct.append(labels)
    return conf, correct
