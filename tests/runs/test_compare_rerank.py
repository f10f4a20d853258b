"""`t5score compare` of rerank runs (issue 15, defect 7): candidates joined on (group_id, candidate_index),
groups on group_id (the top candidate's ROUGE and human score); a rerank run beside a predict run is refused.

The runs are real: two tiny models (T5, T5 v1.1) over the same candidates, the second run's input listing
the groups in reverse order (the join must not be positional), and the T5 again ranking by ``F``. The
reference numbers are computed here with pandas from the two ``reranked.parquet`` files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from t5score.cli import main

GROUPS = [
    ("g0", "read the file and return the value", "return the value of the file",
     ["return the value", "read the file", "the value of the file", "close the file"]),
    ("g1", "count items in the list", "count the items", ["count the items", "list", "count items in the list"]),
    ("g2", "open a new file", "open the file", ["open the file", "a new file", "open it"]),
    ("g3", "sort the list by name", "sort the list", ["sort a list", "sort the list by the name", "name"]),
    ("g4", "make a new list", "make a list", ["make a list", "a new list", "make the new list", "list"]),
    ("g5", "join the path and the name", "join the path", ["join the path", "the name", "join path and name"]),
    ("g6", "get the value of the key", "get a value", ["get the value", "return a value", "the key"]),
    ("g7", "write the text to the file", "write the text", ["write the text", "write a file", "the text"]),
]  # fmt: skip
BAD = ("bad", "make a list", "a list", [])  # an input error: one flagged row without candidate index
PER_CANDIDATE = ["num_tokens", "sum_logprob", "mean_logprob", "penalised_logprob", "score_src_hyp", "score"]
TOP = ["top_rouge1", "top_rouge2", "top_rougeL", "top_rougeLsum", "top_human_score"]


def _write(path: Path, groups) -> Path:
    rows = [
        {"id": g, "source": s, "reference": r, "candidates": c, "human": [float(len(x)) for x in c]}
        for g, s, r, c in groups
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _rerank(model_dir: Path, data: Path, out: Path, *extra: str) -> Path:
    argv = [
        "rerank",
        "--model.name_or_path",
        str(model_dir),
        "--data.path",
        str(data),
        "--data.id_column",
        "id",
    ]
    argv += ["--data.reference_column", "reference", "--data.human_column", "human", "--output_dir", str(out)]
    assert main([*argv, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tiny_model_dirs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rerank-runs")
    forward = _write(root / "forward.jsonl", [*GROUPS, BAD])
    backward = _write(root / "backward.jsonl", [BAD, *GROUPS[::-1]])
    return {
        "t5": _rerank(tiny_model_dirs["t5"], forward, root / "t5"),
        "v11": _rerank(tiny_model_dirs["t5v1.1"], backward, root / "v11"),
        "t5_F": _rerank(
            tiny_model_dirs["t5"], forward, root / "t5_F", "--model.rank_by", "F",
            "--model.directions", "[ref->hyp, hyp->ref]",
        ),
        "root": root,
    }  # fmt: skip


def _compare(*run_dirs: Path, out: Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    argv = ["compare", *map(str, run_dirs), "--output_dir", str(out), "--n-resamples", "200", *extra]
    assert main(argv) == 0
    return pd.read_csv(out / "compare.csv")


def _table(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "reranked.parquet")


def _candidates(run: Path) -> pd.DataFrame:
    df = _table(run)
    return df[df["candidate_index"].notna()].set_index(["group_id", "candidate_index"])


def _tops(run: Path) -> pd.DataFrame:
    df = _table(run)
    top = df[df["rank"] == 1].set_index("group_id")
    return top[["candidate_index", "rouge1", "rouge2", "rougeL", "rougeLsum", "human_score"]].astype(
        "float64"
    )


def _check(rows: pd.DataFrame, label: str, a: pd.Series, b: pd.Series) -> None:
    """The table's numbers for run ``label`` against pandas: means, and the mean of the paired differences."""
    diff = (b - a).dropna()  # pandas aligns on the index (the join key)
    assert rows.loc[label, "mean"] == pytest.approx(b.mean(), rel=1e-9)
    assert rows.loc[label, "n_paired"] == len(diff) > 0
    assert rows.loc[label, "delta"] == pytest.approx(diff.mean(), rel=1e-9, abs=1e-12)
    assert rows.loc[label, "ci_low"] <= rows.loc[label, "delta"] <= rows.loc[label, "ci_high"]


def test_two_models_joined_on_group_and_candidate(runs, tmp_path):
    table = _compare(runs["t5"], runs["v11"], out=tmp_path / "cmp")
    assert table["metric"].drop_duplicates().tolist() == PER_CANDIDATE + TOP
    a, b = _candidates(runs["t5"]), _candidates(runs["v11"])
    assert (a.index.sort_values() == b.index.sort_values()).all() and not (a.index == b.index).all()
    for metric in PER_CANDIDATE:
        rows = table[table["metric"] == metric].set_index("run")
        assert rows.loc["t5", "mean"] == pytest.approx(a[metric].astype(float).mean(), rel=1e-9)
        _check(rows, "v11", a[metric].astype(float), b[metric].astype(float))
        assert rows.loc["v11", "n_paired"] == sum(len(g[3]) for g in GROUPS)
    ta, tb = _tops(runs["t5"]), _tops(runs["v11"])
    assert "bad" not in ta.index and len(ta) == len(GROUPS)
    for metric in TOP:
        rows = table[table["metric"] == metric].set_index("run")
        _check(rows, "v11", ta[metric[4:]], tb[metric[4:]])
        assert rows.loc["v11", "n_paired"] == len(GROUPS) and rows.loc["v11", "n"] == len(GROUPS)
    changed = int((ta["candidate_index"] != tb["candidate_index"].reindex(ta.index)).sum())
    assert changed > 0  # the two models choose differently somewhere: the per-group numbers are not trivial
    page = (tmp_path / "cmp" / "compare.md").read_text()
    assert "## Per-candidate metrics" in page and "## Per-group metrics: the top-ranked candidate" in page
    assert f"| v11 | {changed} | {len(GROUPS) + 1} |" in page  # groups whose top candidate changed
    assert "not compared (t5: 1, v11: 1)" in page  # the flagged row of group "bad"
    assert "## Groups whose `top_rougeL` changed most" in page
    biggest = (tb["rougeL"] - ta["rougeL"]).dropna().abs().sort_values(ascending=False, kind="stable")
    listed = page.split("changed most")[1].split("|---|")[-1].splitlines()[1]
    assert listed.startswith(f"| {biggest.index[0]} |") and "top_candidate (t5)" in page


def test_different_rank_by_leaves_score_out(runs, tmp_path):
    table = _compare(runs["t5"], runs["t5_F"], out=tmp_path / "cmp")
    assert "score" not in set(table["metric"]) and "score_src_hyp" in set(table["metric"])
    same = table[(table["metric"] == "score_src_hyp") & (table["run"] == "t5_F")].iloc[0]
    assert same["delta"] == 0 and same["p_value"] == 1  # the same model scores the same candidates alike
    rows = table[table["metric"] == "top_rougeL"].set_index("run")
    _check(rows, "t5_F", _tops(runs["t5"])["rougeL"], _tops(runs["t5_F"])["rougeL"])
    page = (tmp_path / "cmp" / "compare.md").read_text()
    assert "`score` is not compared: the runs rank by different scores (t5: src->hyp / mean_logprob, " in page


def test_metric_option_picks_group_or_candidate_metrics(runs, tmp_path, capsys):
    table = _compare(
        runs["t5"], runs["v11"], out=tmp_path / "o", extra=("--metric", "top_rougeL", "mean_logprob")
    )
    assert table["metric"].drop_duplicates().tolist() == ["mean_logprob", "top_rougeL"]
    assert (
        main(
            [
                "compare",
                str(runs["t5"]),
                str(runs["v11"]),
                "--output_dir",
                str(tmp_path / "x"),
                "--metric",
                "rank",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "metric(s) rank not shared" in err and "top_rougeL" in err


def test_different_candidates_refused_unless_partial(runs, tmp_path, capsys):
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    df = _table(runs["v11"])
    df[df["group_id"] != "g3"].to_parquet(fewer / "reranked.parquet")
    shutil.copy(runs["v11"] / "summary.json", fewer / "summary.json")
    assert main(["compare", str(runs["t5"]), str(fewer), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "3 candidate(s) are not in every run" in err
    table = _compare(runs["t5"], fewer, out=tmp_path / "p", extra=("--allow-partial",))
    rows = table[table["metric"] == "top_rougeL"].set_index("run")
    assert rows.loc["fewer", "n_paired"] == len(GROUPS) - 1
    page = (tmp_path / "p" / "compare.md").read_text()
    assert "3 candidate(s) missing from at least one run are left out" in page
    assert "1 group(s) missing from at least one run are left out" in page


@pytest.mark.parametrize("rerank_first", [True, False])
def test_rerank_beside_predict_is_refused(runs, t5_dir, capsys, rerank_first):
    predict = runs["root"] / "predict"
    if not predict.exists():
        data = runs["root"] / "sources.jsonl"
        data.write_text("".join(json.dumps({"id": g, "source": s}) + "\n" for g, s, _, _ in GROUPS))
        argv = [
            "predict",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(data),
            "--data.id_column",
            "id",
        ]
        assert main([*argv, "--model.max_new_tokens", "4", "--output_dir", str(predict)]) == 0
    pair = [runs["t5"], predict] if rerank_first else [predict, runs["t5"]]
    out = runs["root"] / f"refused-{rerank_first}"
    capsys.readouterr()
    assert main(["compare", *map(str, pair), "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert (
        "cannot compare a rerank run (t5: reranked.parquet" in err and "with a predict run (predict:" in err
    )
    assert not out.exists()


def test_rouge_columns_are_those_the_runs_write():
    from t5score.runs.compare_rerank import ROUGE_COLUMNS
    from t5score.scoring.rouge import ROUGE_KEYS

    assert ROUGE_COLUMNS == tuple(ROUGE_KEYS)
