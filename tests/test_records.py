"""Records: each output file's column order is pinned (and checked against the README's output contract),
and the one copy from a teacher-forced ``PairScore`` into a record fills exactly what it should."""

from __future__ import annotations

import math
import re
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from t5score.engine.forced import PairScore
from t5score.records import (
    COLUMNS,
    REFERENCE_COLUMNS,
    CandidateRow,
    PredictionRecord,
    RerankRecord,
    ScoreRecord,
    SourceRow,
    fill_from_pair,
)
from t5score.scoring.directions import DIRECTIONS, direction_column
from t5score.scoring.rouge import ROUGE_KEYS

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")

#: The columns as the files had them before the records were declared from shared column specs (plus the
#: generation-config columns after ``topk_logprobs``).
PREDICTION_COLUMNS = [
    "position",
    "id",
    "source",
    "prediction",
    "token_ids",
    "token_logprobs",
    "token_entropies",
    "top1_probs",
    "topk_ids",
    "topk_logprobs",
    "token_processed_logprobs",
    "processor_changed_steps",
    "num_tokens",
    "sum_logprob",
    "mean_logprob",
    "mean_entropy",
    "max_entropy",
    "finished",
    "truncated",
    "error",
    "target",
    "ref_num_tokens",
    "ref_logprob",
    "ref_mean_logprob",
    "ref_token_ids",
    "ref_token_logprobs",
    "ref_top1_probs",
    "ref_top1_correct",
    "sample_index",
    "candidate_index",
    "sequence_score",
]
SCORE_COLUMNS = [
    "position",
    "id",
    "source",
    "target",
    "token_ids",
    "token_logprobs",
    "token_entropies",
    "top1_probs",
    "num_tokens",
    "sum_logprob",
    "mean_logprob",
    "penalised_logprob",
    "mean_entropy",
    "truncated",
    "error",
    "score_src_hyp",
    "score_hyp_src",
    "score_ref_hyp",
    "score_hyp_ref",
    "score_f",
    "score_harm_f",
]
RERANK_COLUMNS = [
    "position",
    "group_id",
    "group_position",
    "line",
    "candidate_index",
    "source",
    "candidate",
    "reference",
    "human_score",
    "error",
    "num_tokens",
    "sum_logprob",
    "mean_logprob",
    "penalised_logprob",
    "token_logprobs",
    "nonfinite",
    "score_src_hyp",
    "score_hyp_src",
    "score_ref_hyp",
    "score_hyp_ref",
    "score_f",
    "score_harm_f",
    "score",
    "rank",
]


def _names(text: str) -> list[str]:
    """The backticked column names of a README passage, in order, leaving out remarks in parentheses
    (``sum_logprob`` (equals ``-(loss * num_tokens)`` ... with ``labels``)) and expressions."""
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    return [n for n in re.findall(r"`([^`]+)`", text) if re.fullmatch(r"[a-z][A-Za-z0-9_]*", n)]


def _between(start: str, end: str) -> str:
    begin = README.index(start)
    return README[begin : README.index(end, begin)]


@pytest.mark.parametrize(
    ("record", "columns"),
    [(PredictionRecord, PREDICTION_COLUMNS), (ScoreRecord, SCORE_COLUMNS), (RerankRecord, RERANK_COLUMNS)],
)
def test_column_order_is_pinned(record, columns):
    assert record.column_names() == columns
    assert [f.name for f in fields(record)] == columns  # the writer's schema follows the dataclass fields


def test_predictions_columns_are_the_readme_contract():
    table = _between("`<output_dir>/predictions.parquet`", "Also written")
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    readme = [name for cell in rows for name in _names(cell)]
    written = [c for c in PredictionRecord.column_names() if c != "position"] + list(ROUGE_KEYS)
    assert sorted(readme) == sorted(written)


def test_scores_columns_are_the_readme_contract_in_order():
    passage = _between("`<output_dir>/scores.parquet`", "holding the")
    readme = _names(passage.split("in input order:", 1)[1])
    assert readme == [c for c in ScoreRecord.column_names() if c != "position"]


def test_reranked_columns_named_by_the_readme_exist():
    readme = _names(_between("`reranked.parquet`:", "`summary.json`"))
    assert readme and set(readme) <= set(RerankRecord.column_names())
    assert {"group_id", "candidate_index", "candidate", "reference", "human_score", "score", "rank"} <= set(
        readme
    )


def test_shared_columns_are_declared_once():
    hints = {
        record: typing.get_type_hints(record) for record in (PredictionRecord, ScoreRecord, RerankRecord)
    }
    for name, (hint, _) in COLUMNS.items():
        users = [record for record in hints if name in hints[record]]
        same = [record for record in users if hints[record][name] == hint]
        assert same or name in CandidateRow.column_names(), name
    assert {direction_column(d) for d in DIRECTIONS} == {c for c in SCORE_COLUMNS if c.startswith("score_")}
    assert RerankRecord.column_names()[: len(fields(CandidateRow))] == CandidateRow.column_names()
    # a fresh list per record, never shared
    a, b = ScoreRecord(0, "a", "s"), ScoreRecord(1, "b", "s")
    a.token_ids.append(1)
    assert b.token_ids == [] and RerankRecord(0, "g", 0, 1).num_tokens is None
    assert SourceRow(0, "a", "s").references is None


def _pair(**changes) -> PairScore:
    values = dict(
        pair_index=0,
        source_index=0,
        token_ids=[5, 7, 1],
        token_logprobs=[-0.5, -1.5, -0.25],
        token_entropies=[1.0, 2.0, 0.5],
        top1_probs=[0.6, 0.3, 0.8],
        topk_ids=[[5], [9], [1]],
        topk_logprobs=[[-0.5], [-1.0], [-0.25]],
        num_tokens=3,
        sum_logprob=-2.25,
        mean_logprob=-0.75,
        penalised_logprob=-1.125,
        nonfinite=False,
        source_truncated=False,
        target_truncated=True,
    )
    return PairScore(**(values | changes))


def test_fill_from_pair_into_each_record():
    pair = _pair()
    score = ScoreRecord(0, "a", "src", "tgt")
    fill_from_pair(score, pair)
    assert (score.token_ids, score.token_logprobs, score.token_entropies, score.top1_probs) == (
        pair.token_ids,
        pair.token_logprobs,
        pair.token_entropies,
        pair.top1_probs,
    )
    assert (score.num_tokens, score.sum_logprob, score.mean_logprob, score.penalised_logprob) == (
        3,
        -2.25,
        -0.75,
        -1.125,
    )
    assert score.mean_entropy == pytest.approx(3.5 / 3) and score.truncated is True
    assert score.error is None and score.score_src_hyp is None  # not the copy's business

    rerank = RerankRecord(0, "g", 0, 1, candidate_index=0)
    fill_from_pair(rerank, _pair(nonfinite=True))
    assert (rerank.num_tokens, rerank.sum_logprob, rerank.token_logprobs, rerank.nonfinite) == (
        3,
        -2.25,
        pair.token_logprobs,
        True,
    )

    prediction = PredictionRecord(0, "a", "src", token_ids=[42], num_tokens=1)
    fill_from_pair(prediction, pair, REFERENCE_COLUMNS)
    assert (prediction.ref_num_tokens, prediction.ref_logprob, prediction.ref_mean_logprob) == (
        3,
        -2.25,
        -0.75,
    )
    assert prediction.ref_top1_probs == pair.top1_probs
    assert (prediction.ref_token_ids, prediction.ref_token_logprobs) == (pair.token_ids, pair.token_logprobs)
    assert prediction.ref_top1_correct == [True, False, True]  # top-1 id == reference id, per token
    assert prediction.token_ids == [42] and prediction.num_tokens == 1  # the decoded columns stay


def test_fill_from_pair_of_an_empty_pair():
    record = ScoreRecord(0, "a", "src", "tgt")
    fill_from_pair(record, _pair(token_ids=[], token_logprobs=[], token_entropies=[], num_tokens=0))
    assert record.mean_entropy is None and record.num_tokens == 0
    assert not math.isnan(record.sum_logprob)
