"""The rerank report's own sections: the result of reranking first, then the candidates of each group.

The headline is what reranking is for: ROUGE of the top-ranked candidate against the first candidate
(what you would get without reranking) and the oracle (the best candidate the group has), from
``summary.json``. Then, per group, its candidates with rank, score, ROUGE and text: the groups where
reranking gained most and lost most over the first candidate, and a table of every group (capped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from t5score.reports.blocks import Block, Heading, Num, Para, Table
from t5score.reports.examples import numeric, scalar

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
CHOICES = {
    "top": "the candidate the model ranks first (rank 1): what reranking picks",
    "first": "the first candidate of each group (candidate 0): the result without reranking",
    "oracle": "the group's best candidate by mean ROUGE-1/2/L: the most reranking could pick",
}
GROUPS_SHOWN = 5  # groups with the largest gain, and with the largest loss
GROUPS_LISTED = 200  # rows of the every-group table


def rerank_headline(summary: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Reranking result", anchor="reranking")]
    rouge = summary.get("rouge") or {}
    choices = [c for c in CHOICES if isinstance(rouge.get(c), Mapping)]
    if not choices:
        return blocks + [Para(["No reference: ROUGE of the top, first and oracle candidates needs one."])]
    keys = [k for k in ROUGE_KEYS if all(k in rouge[c] for c in choices)]
    rows = [[c, *[Num(rouge[c][k], f"summary:rouge.{c}.{k}") for k in keys], CHOICES[c]] for c in choices]
    by = summary.get("rank_by")
    score = summary.get("score")
    groups = Num(rouge["groups"], "summary:rouge.groups") if "groups" in rouge else "the"
    blocks.append(
        Para(
            [
                f"Candidates ranked by `{by}` (`{score}`), higher first. Mean over ",
                groups,
                " groups of the ROUGE F1 against the reference of the candidate each row picks:",
            ]
        )
    )
    blocks.append(Table(["candidate", *keys, "meaning"], rows, sortable=False))
    corr = summary.get("correlation") or {}
    rows = [
        [
            name,
            *[
                Num(c.get(f), f"summary:correlation.{name}.{f}")
                for f in ("kendall_tau", "spearman", "groups")
            ],
        ]
        for name, c in corr.items()
        if isinstance(c, Mapping)
    ]
    if rows:
        blocks.append(
            Para(["Within-group rank correlation of the score with each quality, averaged over groups:"])
        )
        blocks.append(Table(["quality", "Kendall tau", "Spearman", "groups"], rows, sortable=False))
    return blocks


def _group_rows(df: pd.DataFrame, quality: str) -> pd.DataFrame:
    """Per group: the rows (0-based) of its top, first and oracle candidates and their quality."""
    ok = df[df["candidate_index"].notna()].copy()
    ok["_row"] = ok.index
    ok["_q"] = numeric(ok, quality)
    parts = [c for c in ("rouge1", "rouge2", "rougeL") if c in ok.columns]
    ok["_oracle"] = ok[parts].apply(pd.to_numeric, errors="coerce").mean(axis=1) if parts else ok["_q"]
    out = []
    for group, part in ok.groupby("group_id", sort=False, dropna=False):
        top = part[numeric(part, "rank") == 1]
        first = part.sort_values("candidate_index", kind="stable").iloc[0]
        oracle = part.loc[part["_oracle"].fillna(-np.inf).idxmax()]
        out.append(
            {
                "group": group,
                "top": int(top["_row"].iloc[0]) if len(top) else None,
                "first": int(first["_row"]),
                "oracle": int(oracle["_row"]),
                "gain": (float(top["_q"].iloc[0]) - float(first["_q"])) if len(top) else np.nan,
            }
        )
    return pd.DataFrame(out)


def _candidates_table(df: pd.DataFrame, group: pd.Series, quality: str) -> Table:
    part = df[(df["group_id"] == group["group"]) & df["candidate_index"].notna()]
    part = part.sort_values("rank", kind="stable", na_position="last")
    columns = [c for c in ("rank", "candidate_index", "score", quality, "num_tokens") if c in df.columns]
    rows = []
    for i, row in part.iterrows():
        marks = [m for m in ("top", "first", "oracle") if pd.notna(group[m]) and int(group[m]) == i]
        rows.append(
            [*[Num(scalar(row[c]), f"row:{i}:{c}") for c in columns], ", ".join(marks), row.get("candidate")]
        )
    return Table([*columns, "is", "candidate"], rows)


def rerank_groups(df: pd.DataFrame, quality: str | None) -> list[Block]:
    blocks: list[Block] = [Heading("Candidates by group", anchor="groups")]
    needed = {"group_id", "candidate_index", "rank"}
    if quality is None or quality not in df.columns or not needed <= set(df.columns):
        return blocks + [Para(["(no reference: groups are listed in the Parquet file with their ranks)"])]
    groups = _group_rows(df, quality)
    if groups.empty:
        return blocks + [Para(["(no candidate was scored)"])]
    blocks.append(
        Para(
            [
                f"Gain = `{quality}` of the top candidate - `{quality}` of the first. "
                "`is` marks the top (rank 1), first (candidate 0) and oracle candidates."
            ]
        )
    )
    scored = groups.dropna(subset=["gain"]).sort_values("gain", kind="stable")
    picks = [("gained most", scored.iloc[::-1].head(GROUPS_SHOWN)), ("lost most", scored.head(GROUPS_SHOWN))]
    for title, part in picks:
        part = part[part["gain"] > 0] if title == "gained most" else part[part["gain"] < 0]
        blocks.append(Heading(f"Groups where reranking {title}", level=3))
        if part.empty:
            blocks.append(Para(["(none)"]))
        for _, group in part.iterrows():
            blocks.append(Para([f"Group `{group['group']}`:"]))
            blocks.append(_candidates_table(df, group, quality))
    blocks.append(Heading("Every group", level=3))
    rows = []
    for _, g in groups.head(GROUPS_LISTED).iterrows():
        picked = {
            m: int(g[m]) for m in ("top", "first", "oracle") if pd.notna(g[m])
        }  # a group may lack a top
        cells = [
            Num(scalar(df.at[picked[m], quality]), f"row:{picked[m]}:{quality}") if m in picked else None
            for m in ("top", "first", "oracle")
        ]
        rows.append(
            [g["group"], *cells, df.at[g["first"], "reference"] if "reference" in df.columns else None]
        )
    blocks.append(
        Table(["group", f"top {quality}", f"first {quality}", f"oracle {quality}", "reference"], rows)
    )
    if len(groups) > GROUPS_LISTED:
        blocks.append(Para([f"The first {GROUPS_LISTED} groups are listed; the Parquet file has them all."]))
    return blocks
