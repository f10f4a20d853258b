"""Teacher-forced scoring against Hugging Face forward passes with ``labels`` (T5, T5 v1.1, BART)."""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch

from t5score.engine.forced import score_pairs
from t5score.scoring.directions import score_directions
from t5score.scoring.options import DIRECTIONS, ScoreOptions
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

# initializer factors that keep logits moderate (sums of tens of nats) so float32 sums agree within 1e-4
INIT = {"t5": 1.0, "t5v1.1": 0.5, "bart": 5.0}
SOURCES = [
    "read the file and return the value",
    "count items",
    "open a new file , write the data and close it",
    "count items",
]
TARGETS = [
    "return the value",
    "count the items in the list and return the number",
    "close",
    "return the value",
    "",
    "read file",
]
INDEX = [0, 1, 2, 2, 3, 0]


@pytest.fixture(scope="module", params=list(INIT))
def setup(request, tmp_path_factory):
    kind = request.param
    tok = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), kind)
    return kind, make_tiny_model(kind, init_scale=INIT[kind]), tok


def hf_row(model, tok, src: str, tgt: str, src_kwargs: dict | None = None, tgt_kwargs: dict | None = None):
    """Independent reference: one forward pass with labels for one pair."""
    x = tok(src, return_tensors="pt", **(src_kwargs or {}))
    y = tok(text_target=tgt, return_tensors="pt", **(tgt_kwargs or {})).input_ids
    with torch.no_grad():
        out = model(**x, labels=y)
    logp = torch.log_softmax(out.logits[0].double(), -1)
    return {
        "labels": y[0].tolist(),
        "sum": -(out.loss.item() * y.shape[1]),
        "token_logprobs": logp.gather(-1, y[0, :, None])[:, 0],
        "entropies": torch.distributions.Categorical(logits=out.logits[0].double()).entropy(),
        "logits": out.logits[0],
    }


@pytest.fixture(scope="module")
def refs(setup):
    _, model, tok = setup
    return [hf_row(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]


def test_sum_equals_minus_loss_times_tokens(setup, refs):
    kind, model, tok = setup
    scores = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX)
    assert [s.pair_index for s in scores] == list(range(len(TARGETS)))
    assert [s.source_index for s in scores] == INDEX
    for s, ref in zip(scores, refs, strict=True):
        assert s.token_ids == ref["labels"] and s.num_tokens == len(ref["labels"])
        assert s.token_ids[-1] == model.config.eos_token_id
        assert s.sum_logprob == pytest.approx(ref["sum"], rel=2e-6, abs=1e-4)
        assert torch.allclose(
            torch.tensor(s.token_logprobs, dtype=torch.float64), ref["token_logprobs"], atol=1e-4
        )
        assert torch.allclose(
            torch.tensor(s.token_entropies, dtype=torch.float64), ref["entropies"], atol=1e-4
        )
        top1 = torch.softmax(ref["logits"].double(), -1).max(-1).values
        assert torch.allclose(torch.tensor(s.top1_probs, dtype=torch.float64), top1, atol=1e-5)
        assert s.mean_logprob == pytest.approx(s.sum_logprob / s.num_tokens)
        assert not s.nonfinite and not s.source_truncated and not s.target_truncated
    if kind == "bart":  # BART's tokenizer prepends <s>; it is part of the labels and of the model's loss
        assert all(s.token_ids[0] == tok.bos_token_id for s in scores)


def test_matches_batched_forward_with_padding(setup):
    """Reference with padding in the batch: labels padded with -100, cross-entropy with reduction none."""
    _, model, tok = setup
    src = [SOURCES[i] for i in INDEX]
    x = tok(src, return_tensors="pt", padding=True)
    y = tok(text_target=TARGETS, return_tensors="pt", padding=True)
    labels = y.input_ids.masked_fill(y.attention_mask == 0, -100)
    assert (labels == -100).any() and (x.attention_mask == 0).any()
    with torch.no_grad():
        logits = model(**x, labels=labels).logits
    nll = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels, reduction="none", ignore_index=-100
    )
    expected = -nll.sum(1)
    scores = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX)
    got = torch.tensor([s.sum_logprob for s in scores])
    assert torch.allclose(got, expected.double().float(), atol=1e-4)
    assert [s.num_tokens for s in scores] == y.attention_mask.sum(1).tolist()


@pytest.fixture(scope="module")
def setup64(setup):
    """The same model in float64: batching and reuse must not change results beyond rounding, so compare
    them without float32 noise (token_stats still reduces in float32)."""
    kind, model, tok = setup
    return kind, copy.deepcopy(model).double(), tok


def test_independent_of_batching_and_encoder_reuse(setup64):
    _, model, tok = setup64
    base = score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, max_tokens_per_batch=1, reuse_encoder=False
    )
    for budget, reuse in ((1, True), (40, True), (40, False), (8192, True)):
        got = score_pairs(
            model,
            tok,
            SOURCES,
            TARGETS,
            pair_source_index=INDEX,
            max_tokens_per_batch=budget,
            reuse_encoder=reuse,
        )
        for x, y in zip(base, got, strict=True):
            assert x.token_ids == y.token_ids, (budget, reuse)
            assert max(abs(u - v) for u, v in zip(x.token_logprobs, y.token_logprobs, strict=True)) < 1e-5
            assert x.sum_logprob == pytest.approx(y.sum_logprob, rel=2e-6, abs=1e-5), (budget, reuse)


def _count_encoder_rows(model):
    rows: list[int] = []

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows.append(ids.shape[0])

    return rows, model.get_encoder().register_forward_pre_hook(hook, with_kwargs=True)


def test_each_distinct_source_is_encoded_once(setup):
    """With reuse, a source is encoded once even when its targets span several batches."""
    _, model, tok = setup
    sources = [
        "read the file and return the value",
        "count items",
        "read the file and return the value",
    ]  # 0 == 2
    targets = [
        "read file",
        "return the first value",
        "close",
        "count the items in the list",
        "it is true",
        "run",
    ]
    index = [0, 0, 0, 1, 2, 2]
    rows, handle = _count_encoder_rows(model)
    decoder_calls: list[int] = []  # the generic engine's decoder forwards (one per batch)
    dh = model.get_decoder().register_forward_pre_hook(lambda *a: decoder_calls.append(1))
    try:
        for engine in ("auto", "hf"):
            rows.clear()
            kwargs = dict(pair_source_index=index, max_tokens_per_batch=20, engine=engine)
            reused = score_pairs(model, tok, sources, targets, **kwargs)
            assert sum(rows) == 2  # 2 distinct texts
            rows.clear()
            per_pair = score_pairs(model, tok, sources, targets, reuse_encoder=False, **kwargs)
            assert sum(rows) == len(targets)
            for a, b in zip(reused, per_pair, strict=True):
                assert a.sum_logprob == pytest.approx(b.sum_logprob, rel=2e-6, abs=1e-5)
        assert len(decoder_calls) > 4  # several batches per call of the "hf" engine
    finally:
        handle.remove()
        dh.remove()


def test_include_eos_false_drops_exactly_the_eos_term(setup):
    _, model, tok = setup
    full = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX)
    no_eos = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, include_eos=False)
    for a, b in zip(full, no_eos, strict=True):
        assert a.token_ids[-1] == model.config.eos_token_id
        assert b.token_ids == a.token_ids[:-1] and b.num_tokens == a.num_tokens - 1
        assert b.token_logprobs == a.token_logprobs[:-1]
        assert b.sum_logprob == pytest.approx(a.sum_logprob - a.token_logprobs[-1], rel=2e-6, abs=1e-5)


def test_include_bos(setup):
    kind, model, tok = setup
    full = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX)
    no_bos = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, include_bos=False)
    for a, b in zip(full, no_bos, strict=True):
        if kind == "bart":
            assert b.token_ids == a.token_ids[1:] and b.token_logprobs == a.token_logprobs[1:]
            assert b.sum_logprob == pytest.approx(a.sum_logprob - a.token_logprobs[0], rel=2e-6, abs=1e-5)
        else:
            assert b == a


def test_empty_target_without_eos_has_no_tokens(setup):
    kind, model, tok = setup
    (s,) = score_pairs(model, tok, ["count items"], [""], include_eos=False, include_bos=False)
    assert (
        s.num_tokens == 0 and s.sum_logprob == 0.0 and s.mean_logprob is None and s.penalised_logprob is None
    )


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, 2.0])
def test_length_penalised_score(setup, refs, alpha):
    _, model, tok = setup
    scores = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, alpha=alpha)
    for s, ref in zip(scores, refs, strict=True):
        assert abs(s.penalised_logprob - ref["sum"] / len(ref["labels"]) ** alpha) < 1e-4
    if alpha == 1.0:
        assert all(s.penalised_logprob == pytest.approx(s.mean_logprob) for s in scores)


def test_truncation_matches_tokenizer_truncation(setup):
    _, model, tok = setup
    src, tgt = SOURCES[2], TARGETS[1]
    (s,) = score_pairs(model, tok, [src], [tgt], max_source_length=4, max_target_length=5)
    ref = hf_row(
        model,
        tok,
        src,
        tgt,
        src_kwargs={"truncation": True, "max_length": 4},
        tgt_kwargs={"truncation": True, "max_length": 5},
    )
    assert s.token_ids == ref["labels"] and len(s.token_ids) == 5
    assert s.sum_logprob == pytest.approx(ref["sum"], rel=2e-6, abs=1e-4)
    assert s.source_truncated and s.target_truncated


def test_top_k_lists(setup):
    _, model, tok = setup
    (s,) = score_pairs(model, tok, [SOURCES[0]], [TARGETS[1]], top_k=3)
    ref = hf_row(model, tok, SOURCES[0], TARGETS[1])
    values, ids = torch.log_softmax(ref["logits"].double(), -1).topk(3, dim=-1)
    assert s.topk_ids == ids.tolist()
    assert torch.allclose(torch.tensor(s.topk_logprobs, dtype=torch.float64), values, atol=1e-5)
    (plain,) = score_pairs(model, tok, [SOURCES[0]], [TARGETS[1]])
    assert plain.topk_ids == [[] for _ in plain.token_ids]


def test_duplicate_pairs_get_identical_scores(setup):
    _, model, tok = setup
    a, b, c = score_pairs(
        model,
        tok,
        ["count items", "count items"],
        ["the list", "the list", "list"],
        pair_source_index=[0, 1, 0],
    )
    assert (a.token_logprobs, a.sum_logprob) == (b.token_logprobs, b.sum_logprob)
    assert (a.pair_index, b.pair_index, b.source_index) == (0, 1, 1)
    assert c.sum_logprob != a.sum_logprob


def test_training_mode_is_restored_and_not_used(setup):
    _, model, tok = setup
    expected = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX)
    model.train()
    try:
        got = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX)  # dropout would change these
        assert model.training
    finally:
        model.eval()
    assert [s.sum_logprob for s in got] == [s.sum_logprob for s in expected]


def test_bad_arguments_are_clear(setup):
    _, model, tok = setup
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        score_pairs(model, tok, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"pair_source_index\[1\] = 5"):
        score_pairs(model, tok, ["a"], ["b", "c"], pair_source_index=[0, 5])
    with pytest.raises(ValueError, match=r"targets\[1\] is NoneType"):
        score_pairs(model, tok, ["a", "b"], ["c", None])
    assert score_pairs(model, tok, [], []) == []


def test_directions_against_forward_passes(setup):
    _, model, tok = setup
    hyps = ["return the value", "count the items in the list", "close"]
    srcs = ["read the file and return the value", "count items", "open a file and close it"]
    refs = [["return a value", "read the value of the file"], "count items", None]

    @functools.cache
    def mean_lp(src: str, tgt: str) -> float:
        ref = hf_row(model, tok, src, tgt)
        return ref["sum"] / len(ref["labels"])

    for agg, reduce in (("mean", lambda v: sum(v) / len(v)), ("max", max)):
        out = score_directions(
            model,
            tok,
            hyps,
            sources=srcs,
            references=refs,
            options=ScoreOptions(directions=DIRECTIONS, aggregate=agg, max_tokens_per_batch=30),
        )
        for i, hyp in enumerate(hyps):
            assert out["src->hyp"].scores[i] == pytest.approx(mean_lp(srcs[i], hyp), abs=1e-5)
            assert out["hyp->src"].scores[i] == pytest.approx(mean_lp(hyp, srcs[i]), abs=1e-5)
            if refs[i] is None:
                assert out["ref->hyp"].scores[i] is None and out["F"].scores[i] is None
                assert out["harm_F"].scores[i] is None
                continue
            rs = [refs[i]] if isinstance(refs[i], str) else refs[i]
            p = [mean_lp(r, hyp) for r in rs]
            r = [mean_lp(hyp, ref) for ref in rs]
            assert out["ref->hyp"].scores[i] == pytest.approx(reduce(p), abs=1e-5)
            assert out["hyp->ref"].scores[i] == pytest.approx(reduce(r), abs=1e-5)
            assert out["F"].scores[i] == pytest.approx(
                reduce([(a + b) / 2 for a, b in zip(p, r, strict=True)]), abs=1e-5
            )
            # harm_F: of the mean P and R (mean), of the best reference (max); BARTScore's P*R/(P+R)
            pm, rm = sum(p) / len(p), sum(r) / len(r)
            harm = (
                pm * rm / (pm + rm)
                if agg == "mean"
                else max(a * b / (a + b) for a, b in zip(p, r, strict=True))
            )
            assert out["harm_F"].scores[i] == pytest.approx(harm, rel=1e-5)
            assert len(out["ref->hyp"].pairs[i]) == len(rs)
    with pytest.raises(ValueError, match="directions must be among"):
        score_directions(model, tok, hyps, sources=srcs, options=ScoreOptions(directions=("hyp->hyp",)))
    with pytest.raises(ValueError, match="need one reference entry"):
        score_directions(model, tok, hyps, sources=srcs, options=ScoreOptions(directions=("F",)))
    assert not math.isnan(out["F"].scores[0])
