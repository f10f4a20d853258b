"""Which rows a report shows, and what it calls them (sampled rows and candidates by their number)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from t5score.reports.examples import choose_rows, row_key, rows_by_reason


def test_rows_are_named_with_their_sample_or_candidate_number() -> None:
    df = pd.DataFrame(
        {"id": ["a", "a", "b"], "sample_index": [0, 1, None], "candidate_index": [None, None, 2]}
    )
    assert [row_key(df, i) for i in range(3)] == ["a sample 0", "a sample 1", "b candidate 2"]
    groups = pd.DataFrame({"group_id": ["g", None], "candidate_index": [3, 0]})
    assert [row_key(groups, i) for i in range(2)] == ["g candidate 3", "row 1 candidate 0"]


def test_the_chosen_rows_are_the_extremes_the_unfinished_and_the_asked_for() -> None:
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "prediction": ["p"] * n,
            "mean_logprob": rng.normal(-1, 0.5, n),
            "rougeL": rng.uniform(0, 1, n),
            "finished": rng.uniform(0, 1, n) > 0.2,
            "error": [None] * (n - 1) + ["empty source"],
        }
    )
    df.loc[n - 1, "mean_logprob"] = -100.0  # an error row is never an example, whatever its numbers
    reasons = rows_by_reason(df, "rougeL", ids=["r7"])
    chosen = choose_rows(df, "rougeL", ids=["r7"])
    ok = df[df["error"].isna()]

    def rows(tag: str) -> list[int]:
        assert sorted(reasons[tag]) == sorted(i for i, tags in chosen.items() if tag in tags)
        return reasons[tag]  # in the reason's own order

    assert rows("least confident") == ok.nsmallest(5, "mean_logprob").index.tolist()
    assert rows("most confident") == ok.nlargest(5, "mean_logprob").index.tolist()
    assert rows("worst rougeL") == ok.nsmallest(5, "rougeL").index.tolist()
    assert rows("unfinished (no EOS)") == ok.index[~ok["finished"]][:5].tolist()
    assert rows("asked for by id") == [7]
    assert n - 1 not in chosen
