"""The steps of score_directions without a model: pair planning, then aggregation, against hand-made scores.

(The end-to-end numbers against forward passes are in tests/engine/test_forced.py.)
"""

from __future__ import annotations

import pytest

import t5score.scoring.directions as directions_module
from t5score.engine.forced import PairScore
from t5score.scoring.directions import direction_scores, plan_pairs, reference_lists, score_directions
from t5score.scoring.options import ScoreOptions

HYPS = ["h0", "h1", "h2"]
SRCS = ["s0", "s1", "s0"]
REFS = [["r0", "r1"], "h0", None]  # row 1's reference is row 0's hypothesis: one encoded text


def _pairs(plan, value) -> list[PairScore]:
    """A PairScore per planned pair whose mean_logprob is ``value(source, target)``."""
    return [
        PairScore(k, s, mean_logprob=value(plan.sources[s], t))
        for k, (s, t) in enumerate(zip(plan.pair_source_index, plan.targets, strict=True))
    ]


def test_plan_pairs_lists_each_pair_once_and_each_source_text_once():
    refs = reference_lists(REFS, 3, ("src->hyp", "F"))
    assert refs == [["r0", "r1"], ["h0"], []]
    plan = plan_pairs(HYPS, SRCS, refs, ("src->hyp", "F"))
    pairs = [(plan.sources[s], t) for s, t in zip(plan.pair_source_index, plan.targets, strict=True)]
    assert pairs == [
        ("s0", "h0"),
        ("r0", "h0"),
        ("h0", "r0"),
        ("r1", "h0"),
        ("h0", "r1"),
        ("s1", "h1"),
        ("h0", "h1"),
        ("h1", "h0"),
        ("s0", "h2"),
    ]
    assert plan.sources == ["s0", "r0", "h0", "r1", "s1", "h1"]  # distinct, in first-use order
    assert plan.where[("hyp->ref", 1, 0)] == 7
    only_src = plan_pairs(HYPS, SRCS, reference_lists(None, 3, ("src->hyp",)), ("src->hyp",))
    assert only_src.targets == HYPS and only_src.where == {("src->hyp", i, 0): i for i in range(3)}


def test_reference_lists_refuse_what_cannot_be_scored():
    with pytest.raises(ValueError, match="need one reference entry per hypothesis"):
        reference_lists(["a"], 2, ("ref->hyp",))
    with pytest.raises(ValueError, match=r"references\[1\] is an empty list"):
        reference_lists(["a", []], 2, ("F",))
    with pytest.raises(ValueError, match="needs one source per hypothesis"):
        plan_pairs(HYPS, None, [[], [], []], ("src->hyp",))


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_direction_scores_aggregate_references(aggregate):
    refs = reference_lists(REFS, 3, ("src->hyp", "ref->hyp", "hyp->ref", "F"))
    plan = plan_pairs(HYPS, SRCS, refs, ("src->hyp", "ref->hyp", "hyp->ref", "F"))
    value = {("r0", "h0"): -1.0, ("h0", "r0"): -3.0, ("r1", "h0"): -2.0, ("h0", "r1"): -6.0}
    scored = _pairs(plan, lambda s, t: value.get((s, t), -float(len(s + t))))
    reduce = (lambda v: sum(v) / len(v)) if aggregate == "mean" else max
    out = {
        d: direction_scores(d, plan, scored, "mean_logprob", aggregate).scores
        for d in ("src->hyp", "ref->hyp", "hyp->ref", "F")
    }
    assert out["src->hyp"] == [-4.0, -4.0, -4.0]
    assert out["ref->hyp"][0] == reduce([-1.0, -2.0]) and out["hyp->ref"][0] == reduce([-3.0, -6.0])
    assert out["F"][0] == reduce([(-1.0 - 3.0) / 2, (-2.0 - 6.0) / 2])
    assert out["ref->hyp"][2] is None and out["F"][2] is None  # no reference: no score
    # a pair without a score (nothing scored) leaves F undefined for that reference only
    scored[plan.where[("hyp->ref", 0, 1)]].mean_logprob = None
    assert direction_scores("F", plan, scored, "mean_logprob", aggregate).scores[0] == -2.0


def test_score_directions_scores_all_pairs_in_one_call(monkeypatch):
    calls = []

    def fake_score_pairs(model, tokenizer, sources, targets, *, pair_source_index, **kwargs):
        calls.append((list(sources), list(targets), kwargs))
        return [
            PairScore(k, s, mean_logprob=-float(k), sum_logprob=-2.0 * k)
            for k, s in enumerate(pair_source_index)
        ]

    monkeypatch.setattr(directions_module, "score_pairs", fake_score_pairs)
    options = ScoreOptions(directions=("src->hyp", "hyp->ref"), score="sum_logprob", max_tokens_per_batch=9)
    out = score_directions(
        None, None, HYPS, sources=SRCS, references=REFS, options=options, max_source_length=5
    )
    assert (
        len(calls) == 1 and calls[0][2]["max_tokens_per_batch"] == 9 and calls[0][2]["max_source_length"] == 5
    )
    assert list(out) == ["src->hyp", "hyp->ref"]
    assert out["src->hyp"].scores == [0.0, -6.0, -10.0]  # pairs 0, 3, 5 (sum_logprob = -2 k)
    assert out["hyp->ref"].scores == [(-2.0 - 4.0) / 2, -8.0, None]
