"""Which rows a report shows as examples, and their token sequences.

Rows are chosen from the run's table: the least and most confident (by mean token log-probability), the
unfinished ones (no EOS within ``max_new_tokens``), the worst by the quality column, and any row asked for
by id. Only these rows' per-token lists are read back (:class:`TokenSource`), so a page for a big run stays
small: it embeds the examples, not every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from t5score.data.values import is_missing
from t5score.reports.blocks import Example, Num, Tokens

PER_GROUP = 5  # examples per kind
CONFIDENCE_COLUMNS = ("mean_logprob", "sum_logprob", "ref_mean_logprob")
EXAMPLE_NUMBERS = (
    "num_tokens",
    "mean_logprob",
    "sum_logprob",
    "mean_entropy",
    "max_entropy",
    "finished",
    "ref_mean_logprob",
    "rouge1",
    "rouge2",
    "rougeL",
    "score",
    "rank",
)
EXAMPLE_TEXTS = ("source", "target", "reference", "prediction", "candidate")


class TokenSource(Protocol):
    """Where the per-token lists of the chosen rows come from (the run's Parquet file)."""

    pieces: Mapping[int, str]  # token id -> its text
    eos_token_ids: Sequence[int]

    def rows(self, indices: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The list columns of these rows (0-based rows of the table), by row."""
        ...


def numeric(df: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(df[column], errors="coerce").astype("float64")


def error_mask(df: pd.DataFrame) -> pd.Series:
    """Rows whose ``error`` is set (a non-blank text)."""
    if "error" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["error"].astype("string").str.strip().fillna("").ne("").astype(bool)


def flag(df: pd.DataFrame, column: str) -> pd.Series:
    """Boolean view of an optional flag column (true, or the number 1); missing column or null -> False."""
    if column not in df.columns:
        return pd.Series(False, index=df.index)
    values = df[column]
    if values.dtype == object:  # mixed: only booleans and numbers count
        values = values.map(lambda v: v if isinstance(v, (bool, np.bool_, int, float, np.number)) else None)
    return pd.to_numeric(values, errors="coerce").eq(1).fillna(False).astype(bool)


def unfinished_mask(df: pd.DataFrame) -> pd.Series:
    if "finished" not in df.columns or "prediction" not in df.columns:
        return pd.Series(False, index=df.index)
    return ~flag(df, "finished") & ~error_mask(df)


def confidence_column(df: pd.DataFrame) -> str | None:
    return next((c for c in CONFIDENCE_COLUMNS if c in df.columns and numeric(df, c).notna().any()), None)


def row_key(df: pd.DataFrame, i: int) -> str:
    """What a row is called: its id (rerank: its group), with its sample or candidate number."""
    row = df.iloc[i]
    name = row.get("id") if "id" in df.columns else row.get("group_id")
    key = str(name) if not is_missing(name) else f"row {i}"
    for column, word in (("sample_index", "sample"), ("candidate_index", "candidate")):
        if column in df.columns and not is_missing(row[column]):
            key += f" {word} {int(row[column])}"
    return key


def rows_by_reason(
    df: pd.DataFrame, quality: str | None, ids: Iterable[str] = (), per_group: int = PER_GROUP
) -> dict[str, list[int]]:
    """Why a row is shown -> the rows (0-based), each list in its own order (least confident first...)."""
    reasons: dict[str, list[int]] = {}
    usable = ~error_mask(df).to_numpy()
    conf = confidence_column(df)
    if conf is not None:
        values = numeric(df, conf).to_numpy()
        ok = np.flatnonzero(usable & np.isfinite(values))
        order = ok[np.argsort(values[ok], kind="stable")]
        reasons["least confident"] = order[:per_group].tolist()
        reasons["most confident"] = order[::-1][:per_group].tolist()
    reasons["unfinished (no EOS)"] = np.flatnonzero(unfinished_mask(df).to_numpy())[:per_group].tolist()
    if quality is not None and quality in df.columns:
        values = numeric(df, quality).to_numpy()
        ok = np.flatnonzero(usable & np.isfinite(values))
        reasons[f"worst {quality}"] = ok[np.argsort(values[ok], kind="stable")][:per_group].tolist()
    wanted = [str(i) for i in ids]
    if wanted:
        names = df["id"].astype(str) if "id" in df.columns else df.get("group_id", pd.Series(dtype=str))
        reasons["asked for by id"] = [
            int(i) for name in wanted for i in np.flatnonzero((names == name).to_numpy())
        ]
    return {reason: [int(i) for i in rows] for reason, rows in reasons.items() if len(rows)}


def choose_rows(
    df: pd.DataFrame, quality: str | None, ids: Iterable[str] = (), per_group: int = PER_GROUP
) -> dict[int, list[str]]:
    """Row -> why it is shown, in page order (each row once, with every reason it has)."""
    chosen: dict[int, list[str]] = {}
    for reason, rows in rows_by_reason(df, quality, ids, per_group).items():
        for i in rows:
            chosen.setdefault(i, []).append(reason)
    return chosen


def _pieces(ids: Sequence[int], pieces: Mapping[int, str]) -> list[str]:
    return [pieces.get(int(t), f"<{int(t)}>") for t in ids]


def _floats(values: Any) -> list[float] | None:
    return None if is_missing(values) else [float(v) for v in values]


def _sequence(
    lists: Mapping[str, Any], prefix: str, label: str, source: TokenSource, row: int, finished: bool
):
    ids, logprobs = lists.get(prefix + "token_ids"), _floats(lists.get(prefix + "token_logprobs"))
    if is_missing(ids) or logprobs is None or len(ids) != len(logprobs) or not len(ids):
        return None
    entropies = _floats(lists.get(prefix + "token_entropies")) if not prefix else None
    alternatives = None
    topk_ids, topk_lps = lists.get("topk_ids"), lists.get("topk_logprobs")
    if not prefix and not is_missing(topk_ids) and not is_missing(topk_lps) and len(topk_ids) == len(ids):
        alternatives = [
            list(zip(_pieces(k_ids, source.pieces), map(float, k_lps), strict=True))
            for k_ids, k_lps in zip(topk_ids, topk_lps, strict=True)
        ]
    processed = _floats(lists.get("token_processed_logprobs")) if not prefix else None
    forced = None
    if processed is not None and len(processed) == len(ids):
        forced = [p == 0.0 and raw != 0.0 for p, raw in zip(processed, logprobs, strict=True)]
    eos_ids = set(source.eos_token_ids)
    eos = (
        [int(t) in eos_ids for t in ids]
        if eos_ids
        else [finished and j == len(ids) - 1 for j in range(len(ids))]
    )
    return Tokens(
        label=label,
        src=f"row:{row}:{prefix}token_logprobs",
        pieces=_pieces(ids, source.pieces),
        logprobs=logprobs,
        entropies=entropies if entropies is not None and len(entropies) == len(ids) else None,
        alternatives=alternatives,
        forced=forced,
        eos=eos,
    )


def build_examples(
    df: pd.DataFrame, chosen: Mapping[int, list[str]], source: TokenSource | None, kind: str
) -> list[Example]:
    """The chosen rows as :class:`Example`\\ s, with token sequences when ``source`` has their lists."""
    lists = source.rows(sorted(chosen)) if source is not None and chosen else {}
    examples = []
    for i, tags in chosen.items():
        row = df.iloc[i]
        numbers = [(c, Num(scalar(row[c]), f"row:{i}:{c}")) for c in EXAMPLE_NUMBERS if c in df.columns]
        texts = [(c, str(row[c])) for c in EXAMPLE_TEXTS if c in df.columns and not is_missing(row[c])]
        example = Example(i, row_key(df, i), list(tags), numbers, texts)
        if i in lists:
            finished = bool(flag(df.iloc[[i]], "finished").iloc[0])
            label = "prediction" if kind == "predict" else "target (teacher-forced)"
            for prefix, name in (("", label), ("ref_", "reference (teacher-forced)")):
                seq = _sequence(lists[i], prefix, name, source, i, finished)
                if seq is not None:
                    example.tokens.append(seq)
        examples.append(example)
    return examples


def scalar(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value) if isinstance(value, (float, np.floating)) else value
