"""Meta-evaluation of a candidate ranking: ROUGE of the chosen candidate and rank correlations per group.

Works on the per-candidate frame of :func:`t5score.scoring.rerank.score_candidates` (columns ``group_position``,
``candidate_index``, ``candidate``, ``reference``, ``error``, a score column and ``rank``).

* Counts: ``candidates_not_finite``, candidates flagged because a score is not finite (``error`` from
  :func:`not_finite_error`; never ranked); ``groups_without_finite_score``, groups where such candidates
  left no candidate to rank (they have no top candidate); ``candidates_nonfinite``, candidates whose
  ``src->hyp`` logits held NaN or inf (flagged or not).
* ROUGE-1/2/L and ROUGE-Lsum F1 (stemmed, in [0, 1]) against the reference, averaged over the groups that
  have a reference and a ranked candidate, for three choices per group among its ranked candidates only:
  ``top`` (rank 1), ``first`` (the lowest candidate index: the input's own choice, the baseline) and
  ``oracle`` (the best mean of ROUGE-1/2/L; ties to the earlier candidate): an upper bound for any
  reranker of these candidates.
* Summary-level correlation: Kendall's tau-b and Spearman's rho (scipy) between the score and ROUGE-L (and
  the human score) over the candidates of one group, then averaged over groups. A group with fewer than two
  candidates having both values is counted in ``groups_too_few``; one where either side is constant
  (correlation undefined, NaN) in ``groups_constant``; neither enters the average.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from t5score.scoring.rouge import ROUGE_KEYS, add_rouge_columns

ORACLE_KEYS = ("rouge1", "rouge2", "rougeL")  # the oracle: the best mean of these
_NOT_FINITE = re.compile(r"scores? \S.* (is|are) not finite \(")


def not_finite_error(directions: Sequence[str], cause: str) -> str:
    """The ``error`` of a candidate whose score in ``directions`` is not finite.

    >>> not_finite_error(["src->hyp"], "non-finite logits")
    'score src->hyp is not finite (non-finite logits)'
    >>> is_not_finite_error(not_finite_error(["ref->hyp", "F"], "NaN or inf"))
    True
    """
    noun, verb = ("score", "is") if len(directions) == 1 else ("scores", "are")
    return f"{noun} {', '.join(directions)} {verb} not finite ({cause})"


def is_not_finite_error(error: Any) -> bool:
    """Whether ``error`` is one of :func:`not_finite_error`."""
    return isinstance(error, str) and _NOT_FINITE.match(error) is not None


def group_correlations(frame: pd.DataFrame, x: str, y: str, group: str = "group_position") -> dict[str, Any]:
    """Kendall tau-b and Spearman rho of columns ``x`` and ``y`` within each group, averaged over groups.

    >>> df = pd.DataFrame({"g": [0, 0, 0, 1, 1], "s": [1.0, 2, 3, 1, 2], "r": [0.1, 0.3, 0.2, 0.5, 0.5]})
    >>> c = group_correlations(df, "s", "r", group="g")
    >>> round(c["kendall_tau"], 4), c["groups"], c["groups_constant"]
    (0.3333, 1, 1)
    """
    taus, rhos, too_few, constant = [], [], 0, 0
    for _, part in frame.groupby(group, sort=True):
        a = pd.to_numeric(part[x], errors="coerce").astype(float).to_numpy()
        b = pd.to_numeric(part[y], errors="coerce").astype(float).to_numpy()
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        if len(a) < 2:
            too_few += 1
        elif np.unique(a).size < 2 or np.unique(b).size < 2:
            constant += 1
        else:
            taus.append(float(stats.kendalltau(a, b).statistic))
            rhos.append(float(stats.spearmanr(a, b).statistic))
    return {
        "kendall_tau": float(np.mean(taus)) if taus else None,
        "spearman": float(np.mean(rhos)) if rhos else None,
        "groups": len(taus),
        "groups_constant": constant,
        "groups_too_few": too_few,
    }


def _pick(frame: pd.DataFrame, order: list[str], ascending: list[bool]) -> pd.DataFrame:
    """The first row of each group after sorting by ``order``."""
    return (
        frame.sort_values(["group_position", *order], ascending=[True, *ascending], kind="stable")
        .groupby("group_position")
        .head(1)
    )


def meta_evaluate(
    frame: pd.DataFrame, *, score_column: str = "score", human_column: str = "human_score"
) -> dict[str, Any]:
    """Summary of a scored, ranked candidate frame (see the module docstring); JSON-ready (None, not NaN)."""
    candidates = frame[frame["candidate_index"].notna()]
    valid = candidates[candidates["error"].isna()]
    score = pd.to_numeric(valid[score_column], errors="coerce").astype(float)
    not_finite = candidates["error"].map(is_not_finite_error).astype(bool)
    ranked_groups = set(valid.loc[valid["rank"].notna(), "group_position"])
    summary: dict[str, Any] = {
        "groups": int(frame["group_position"].nunique()),
        "candidates": len(candidates),
        "rows_with_error": int(frame["error"].notna().sum()),
        "candidates_scored": int(score.notna().sum()),
        "candidates_nonfinite": int(candidates["nonfinite"].fillna(False).astype(bool).sum())
        if "nonfinite" in candidates
        else 0,
        "candidates_not_finite": int(not_finite.sum()),
        "groups_without_finite_score": len(set(candidates.loc[not_finite, "group_position"]) - ranked_groups),
    }
    valid = valid[valid["rank"].notna()]  # what was ranked: choices and correlations are among these
    if candidates["reference"].notna().any():
        if "rougeL" not in valid:
            valid = add_rouge_columns(valid, "candidate", "reference")
        with_ref = valid[valid["reference"].notna()]
        top = with_ref[with_ref["rank"] == 1]
        groups = set(top["group_position"])
        with_ref = with_ref[with_ref["group_position"].isin(groups)]
        mean_rouge = with_ref[list(ORACLE_KEYS)].astype(float).mean(axis=1)
        picks = {
            "top": top,
            "first": _pick(with_ref, ["candidate_index"], [True]),
            "oracle": _pick(with_ref.assign(_m=mean_rouge), ["_m", "candidate_index"], [False, True]),
        }
        summary["rouge"] = {"groups": len(groups)} | {
            name: {k: float(rows[k].astype(float).mean()) for k in ROUGE_KEYS} if len(rows) else None
            for name, rows in picks.items()
        }
        summary["correlation"] = {"rougeL": group_correlations(with_ref, score_column, "rougeL")}
    if human_column in valid and valid[human_column].notna().any():
        rated = valid[valid[human_column].notna()]
        summary.setdefault("correlation", {})["human"] = group_correlations(rated, score_column, human_column)
    return summary
