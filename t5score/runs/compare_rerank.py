"""Rerank runs in ``t5score compare``: candidates joined on ``(group_id, candidate_index)``, groups on ``group_id``.

A row of ``reranked.parquet`` is one candidate of one group, not one example, so two rerank runs (other
models, other ``rank_by`` or ``score`` settings, over the same candidates) are compared at two levels:

* Per candidate, joined on ``(group_id, candidate_index)``: what the run's model says about the same
  candidate text, ``score_*``, ``sum_logprob``, ``mean_logprob``, ``penalised_logprob``, ``num_tokens``,
  and ``score`` (the ranked-by score) only when every run ranks by the same direction and statistic
  (``summary.json``'s ``rank_by`` and ``score``; otherwise ``score`` holds different quantities and is left
  out, with a note). Left out as metrics: what does not depend on the run (the candidate's ``rouge*``,
  ``human_score``, ``line`` and positions) and ``rank`` (the ranks of a group always sum to the same total,
  so their mean difference says nothing).
* Per group, joined on ``group_id``: the top-ranked (rank 1) candidate's ``rouge1/2/L`` and
  ``human_score``, as ``top_rouge1``, ``top_rouge2``, ``top_rougeL``, ``top_human_score``: whether one run
  chooses better candidates than another. A group without a top candidate (flagged, or no candidate with a
  finite score) has no value and is left out of the pairs, as a missing value is for any metric. The
  bootstrap resamples groups here, candidates above.

Rows without a group id or candidate index (flagged input rows, never scored) cannot be joined and are not
compared; the page says how many. Their group is still a group (without a top candidate).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

KEY = ["group_id", "candidate_index"]
GROUP_KEY = ["group_id"]
#: columns of ``reranked.parquet`` that are no per-candidate metric of a rerank run
# (t5score.scoring.rouge.ROUGE_KEYS, spelled out here: importing scoring would load torch into compare)
ROUGE_COLUMNS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
NOT_METRICS = {"position", "group_position", "line", "rank", "human_score", *ROUGE_COLUMNS}
TOP_OF = (*ROUGE_COLUMNS, "human_score")  # the chosen candidate's values, per group
GROUP_METRIC_ORDER = ("top_rougeL", "top_human_score", "top_rouge1", "top_rouge2", "top_rougeLsum")


def candidate_frame(frame: pd.DataFrame, found: str) -> tuple[pd.DataFrame, int]:
    """The rows that have a key, ``group_id`` as text and ``candidate_index`` as int; and how many have none."""
    missing = [c for c in (*KEY, "rank") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{found} has no {', '.join(repr(c) for c in missing)} column; columns are: {', '.join(frame.columns)}"
        )
    keyed = frame["group_id"].notna() & frame["candidate_index"].notna()
    out = frame[keyed].copy()
    out["group_id"] = out["group_id"].astype(str)
    out["candidate_index"] = out["candidate_index"].astype("int64")
    return out, int((~keyed).sum())


def group_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per group id (in order of appearance): its top candidate's index, text and ``top_*`` values."""
    rows = frame[frame["group_id"].notna()].assign(group_id=lambda f: f["group_id"].astype(str))
    groups = pd.Index(rows["group_id"].drop_duplicates(), name="group_id")
    top = rows[rows["rank"] == 1].drop_duplicates("group_id").set_index("group_id").reindex(groups)
    out = pd.DataFrame(index=groups)
    out["top_candidate_index"] = top["candidate_index"].astype("Int64")
    if "candidate" in top:
        out["top_candidate"] = top["candidate"]
    for column in TOP_OF:
        if column in top and rows[column].notna().any():
            out[f"top_{column}"] = pd.to_numeric(top[column], errors="coerce").astype("float64")
    return out


def score_note(runs: list[Any]) -> str | None:
    """Why ``score`` is not compared (runs ranking by different scores), or None when it can be."""
    settings = [(r.summary.get("rank_by"), r.summary.get("score")) for r in runs]
    known = {s for s in settings if s != (None, None)}
    if len(known) <= 1:
        return None
    said = ", ".join(f"{r.label}: {d} / {s}" for r, (d, s) in zip(runs, settings, strict=True))
    return (
        f"`score` is not compared: the runs rank by different scores ({said}); "
        "the score_* columns they share are."
    )


def unkeyed_note(runs: list[Any]) -> str | None:
    """How many rows of each run could not be joined (no group id or candidate index), or None."""
    unkeyed = [f"{r.label}: {r.unkeyed}" for r in runs if r.unkeyed]
    if not unkeyed:
        return None
    return f"Rows without group id or candidate index (flagged, unscored) are not compared ({', '.join(unkeyed)})."


def not_metrics(runs: list[Any]) -> set[str]:
    """What is no per-candidate metric for these rerank runs (see the module docstring)."""
    return NOT_METRICS | ({"score"} if score_note(runs) else set())


def chosen_changed(runs: list[Any], groups: pd.Index) -> dict[str, int]:
    """Per run after the first: in how many of ``groups`` its top candidate differs from the first run's."""
    base = runs[0].groups.loc[groups, "top_candidate_index"]
    out = {}
    for run in runs[1:]:
        other = run.groups.loc[groups, "top_candidate_index"]
        same = (other == base).fillna(False) | (other.isna() & base.isna())
        out[run.label] = int((~same).sum())
    return out
