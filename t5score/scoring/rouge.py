"""ROUGE-1/2/L and ROUGE-Lsum F1 through Google's ``rouge_score`` package (offline; Porter stemming on).

``rouge_score``'s default tokenizer lowercases and keeps only ``[a-z0-9]`` runs, so text in other scripts
scores 0 against anything; numbers are F1 in [0, 1], not percentages. ``rougeL`` is sentence-level LCS
over the whole text; ``rougeLsum`` is summary-level LCS over its sentences, which are its lines:
``rouge_score`` splits both texts on newlines (its default, ``split_summaries=False``), as Hugging Face's
``evaluate`` ROUGE does; put one sentence per line (Hugging Face's summarization examples join
``nltk.sent_tokenize`` with newlines) to get sentence-level ``rougeLsum``. On one-line texts it equals
``rougeL``. :func:`add_rouge_columns` adds the columns to a run's table (predictions vs targets,
candidates vs references).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import pandas as pd

from t5score.data.values import is_missing

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@lru_cache(maxsize=4)
def _scorer(keys: tuple[str, ...], use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(keys), use_stemmer=use_stemmer)


def rouge_scores(
    predictions: Sequence[str | None],
    references: Sequence[str | None],
    *,
    keys: Sequence[str] = ROUGE_KEYS,
    use_stemmer: bool = True,
) -> list[dict[str, float | None]]:
    """F1 of each prediction against its reference, one dict per pair keyed by ``keys``.

    A pair where either side is missing (``None``, NaN or ``pd.NA``, as pandas gives for an empty cell) gets ``None`` for
    every key; an empty string is a valid text and scores 0.

    >>> [round(v, 3) for v in rouge_scores(["the cats ran"], ["the cat runs"])[0].values()]
    [0.667, 0.5, 0.667, 0.667]
    >>> rouge_scores([None], ["x"], keys=("rouge1", "rougeLsum"))
    [{'rouge1': None, 'rougeLsum': None}]
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    unknown = [k for k in keys if k not in ("rouge1", "rouge2", "rougeL", "rougeLsum")]
    if unknown:
        raise ValueError(f"unknown ROUGE keys {unknown}; use rouge1, rouge2, rougeL or rougeLsum")
    scorer = _scorer(tuple(keys), use_stemmer)
    out: list[dict[str, float | None]] = []
    for i, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        if is_missing(pred) or is_missing(ref):
            out.append(dict.fromkeys(keys))
            continue
        if not isinstance(pred, str) or not isinstance(ref, str):
            raise ValueError(
                f"pair {i}: prediction and reference must be strings, got {type(pred).__name__}, {type(ref).__name__}"
            )
        scores = scorer.score(ref, pred)  # rouge_score's order is (target, prediction)
        out.append({k: float(scores[k].fmeasure) for k in keys})
    return out


def add_rouge_columns(frame: pd.DataFrame, prediction: str, reference: str) -> pd.DataFrame:
    """Copy of ``frame`` with the :data:`ROUGE_KEYS` F1 columns (``Float64``) of column ``prediction``
    against column ``reference``; null where either is missing or the row's ``error`` is set."""
    frame = frame.copy()
    ok = frame["error"].isna()
    scores = rouge_scores(frame[prediction].where(ok, None).tolist(), frame[reference].tolist())
    for key in ROUGE_KEYS:
        frame[key] = pd.Series([s[key] for s in scores], index=frame.index, dtype="Float64")
    return frame
