"""The teacher-forced T5 fast path of ``score_pairs`` against Hugging Face forward passes with ``labels``.

Reference per pair: ``model(input_ids, labels=...)``; per-token log-probabilities are ``log_softmax`` of its
logits gathered at the labels (float64), the sequence sum is ``-loss * num_tokens``. Workload: several
candidates per source of different lengths (padding on both sides), a duplicate pair, a source repeated
under another index, and small token budgets that split a source's pairs over several batches.
"""

from __future__ import annotations

import copy

import pytest
import torch

import t5score.engine.forced as scoring
from t5score.engine.engines import forced_decoder
from t5score.engine.forced import score_pairs
from t5score.engine.forced_inputs import plan_windows
from t5score.engine.hf import HFForcedDecoder
from t5score.engine.t5.forced import T5ForcedDecoder
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

INIT = {"t5": 1.0, "t5v1.1": 0.5, "bart": 5.0}  # moderate logits: float32 sums agree within 1e-4
SOURCES = [
    "read the file and return the value",
    "count items",
    "open a new file , write the data and close it if it is not none",
    "count items",
]
TARGETS = [
    "return the value",
    "count the items in the list and return the number",
    "close",
    "return the value",
    "",
    "read file",
    "open the file",
    "write data to the file and close the file then return true",
    "return the value",
    "it",
]
INDEX = [0, 1, 2, 2, 3, 0, 2, 2, 0, 1]  # pairs 0 and 8 are duplicates; sources 1 and 3 share a text


@pytest.fixture(scope="module", params=list(INIT))
def setup(request, tmp_path_factory):
    kind = request.param
    tok = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), kind)
    return kind, make_tiny_model(kind, init_scale=INIT[kind]), tok


def reference(model, tok, src: str, tgt: str) -> dict:
    """One Hugging Face forward pass with labels for one pair (no batching, no padding)."""
    x = tok(src, return_tensors="pt")
    y = tok(text_target=tgt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model(**x, labels=y)
    logp = torch.log_softmax(out.logits[0].double(), -1)
    return {
        "labels": y[0].tolist(),
        "loss_sum": -out.loss.double().item() * y.shape[1],
        "token_logprobs": logp.gather(-1, y[0, :, None])[:, 0],
        "entropies": -(logp.exp() * logp).sum(-1),
        "logp": logp,
    }


@pytest.fixture(scope="module")
def refs(setup):
    _, model, tok = setup
    return [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]


def _engines(kind: str) -> list[str]:
    return ["hf"] if kind == "bart" else ["t5", "hf"]


def _lp(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("budget", [8192, 60, 1])
@pytest.mark.parametrize("reuse", [True, False])
def test_matches_forward_with_labels(setup, refs, reuse, budget):
    kind, model, tok = setup
    for engine in _engines(kind):
        scores = score_pairs(
            model,
            tok,
            SOURCES,
            TARGETS,
            pair_source_index=INDEX,
            reuse_encoder=reuse,
            max_tokens_per_batch=budget,
            engine=engine,
            top_k=3,
        )
        for s, ref in zip(scores, refs, strict=True):
            assert s.token_ids == ref["labels"], engine
            torch.testing.assert_close(_lp(s.token_logprobs), ref["token_logprobs"], atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(_lp(s.token_entropies), ref["entropies"], atol=1e-4, rtol=1e-5)
            assert s.sum_logprob == pytest.approx(ref["loss_sum"], abs=1e-4)
            values, ids = ref["logp"].topk(3, dim=-1)
            assert s.topk_ids == ids.tolist()
            torch.testing.assert_close(_lp(s.topk_logprobs), values, atol=1e-4, rtol=1e-5)
        assert scores[0].token_logprobs == scores[8].token_logprobs  # duplicate pair: scored once


@pytest.mark.parametrize("positions_per_chunk", [1, 7])
def test_output_layer_in_chunks(setup, refs, monkeypatch, positions_per_chunk):
    """Chunks of real positions that cut through pairs and batches give the same statistics."""
    kind, model, tok = setup
    monkeypatch.setattr(scoring, "STATS_FLOATS", positions_per_chunk * model.config.vocab_size)
    for engine in _engines(kind):
        scores = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine=engine, top_k=2)
        for s, ref in zip(scores, refs, strict=True):
            assert s.token_ids == ref["labels"]
            torch.testing.assert_close(_lp(s.token_logprobs), ref["token_logprobs"], atol=1e-4, rtol=1e-5)
            assert s.topk_ids == ref["logp"].topk(2, dim=-1).indices.tolist()


def test_engines_and_reuse_agree(setup):
    """Engine "t5" vs "hf" and reuse vs per-pair give the same numbers (float32 rounding apart)."""
    kind, model, tok = setup
    base = score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="hf", reuse_encoder=False
    )
    for engine in _engines(kind):
        for reuse in (True, False):
            got = score_pairs(
                model,
                tok,
                SOURCES,
                TARGETS,
                pair_source_index=INDEX,
                engine=engine,
                reuse_encoder=reuse,
                max_tokens_per_batch=45,
            )
            for a, b in zip(base, got, strict=True):
                assert a.token_ids == b.token_ids
                torch.testing.assert_close(_lp(b.token_logprobs), _lp(a.token_logprobs), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("include_eos", [True, False])
@pytest.mark.parametrize("include_bos", [True, False])
def test_eos_and_bos_options(setup, refs, include_eos, include_bos):
    kind, model, tok = setup
    for engine in _engines(kind):
        scores = score_pairs(
            model,
            tok,
            SOURCES,
            TARGETS,
            pair_source_index=INDEX,
            engine=engine,
            include_eos=include_eos,
            include_bos=include_bos,
            max_tokens_per_batch=50,
        )
        for s, ref in zip(scores, refs, strict=True):
            lo = 1 if kind == "bart" and not include_bos else 0  # only BART's tokenizer prepends <s>
            hi = len(ref["labels"]) - (0 if include_eos else 1)
            assert s.token_ids == ref["labels"][lo:hi] and s.num_tokens == hi - lo
            expected = ref["token_logprobs"][lo:hi]
            torch.testing.assert_close(_lp(s.token_logprobs), expected, atol=1e-4, rtol=1e-5)
            assert s.sum_logprob == pytest.approx(float(expected.sum()), abs=1e-4)


@pytest.mark.parametrize("kind", ["t5", "t5v1.1"])
def test_eager_attention_and_bf16(kind, tmp_path):
    tok = make_tiny_tokenizer(tmp_path, kind)
    model = make_tiny_model(kind, init_scale=INIT[kind])
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    assert eager.config._attn_implementation == "eager"
    refs = [reference(eager, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    for s, ref in zip(
        score_pairs(eager, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="t5"), refs, strict=True
    ):
        torch.testing.assert_close(_lp(s.token_logprobs), ref["token_logprobs"], atol=1e-4, rtol=1e-5)
    # bfloat16: the fast path against the model's own bfloat16 forward, at a bfloat16 tolerance
    half = copy.deepcopy(model).to(torch.bfloat16)
    refs = [reference(half, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    got = score_pairs(
        half, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="t5", max_tokens_per_batch=60
    )
    for s, ref in zip(got, refs, strict=True):  # (observed differences <= 0.031)
        torch.testing.assert_close(_lp(s.token_logprobs), ref["token_logprobs"], atol=0.05, rtol=0.01)


def test_int8_quantized_model(tmp_path):
    """Dynamically quantised layers (``t5score.engine.quantize``) run through the fast path as modules. Their
    activation scales depend on the batch, so one pair per batch, as the unbatched reference runs."""
    from t5score.engine.quantize import quantize_int8

    tok = make_tiny_tokenizer(tmp_path, "t5v1.1")
    model = quantize_int8(make_tiny_model("t5v1.1", init_scale=INIT["t5v1.1"]))
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    got = score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="t5", max_tokens_per_batch=1
    )
    for s, ref in zip(got, refs, strict=True):
        torch.testing.assert_close(_lp(s.token_logprobs), ref["token_logprobs"], atol=1e-4, rtol=1e-5)


def _count_rows(monkeypatch, name: str) -> list[int]:
    """Rows seen by ``T5ForcedDecoder.<name>`` (its first tensor argument)."""
    rows: list[int] = []
    original = getattr(T5ForcedDecoder, name)

    def counted(self, x, *args):
        rows.append(x.shape[0])
        return original(self, x, *args)

    monkeypatch.setattr(T5ForcedDecoder, name, counted)
    return rows


def test_cross_kv_once_per_source_and_head_on_real_positions(monkeypatch, tmp_path):
    tok = make_tiny_tokenizer(tmp_path, "t5")
    model = make_tiny_model("t5", init_scale=1.0)
    contexts = _count_rows(monkeypatch, "context")
    heads = _count_rows(monkeypatch, "head")
    targets = tok(text_target=TARGETS)["input_ids"]
    distinct = {(SOURCES[s], t) for s, t in zip(INDEX, TARGETS, strict=True)}
    real = sum(len(tok(text_target=t)["input_ids"]) for _, t in distinct)
    score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, max_tokens_per_batch=40)
    assert sum(contexts) == len(set(SOURCES)) and len(contexts) > 1  # several windows, each source once
    assert sum(heads) == real < len(distinct) * max(map(len, targets))  # no padded position
    contexts.clear()
    score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, max_tokens_per_batch=40, reuse_encoder=False
    )
    assert sum(contexts) == len(distinct)  # per-pair baseline: one context per (distinct) pair


def test_engine_choice(setup):
    kind, model, tok = setup
    expected = HFForcedDecoder if kind == "bart" else T5ForcedDecoder
    assert type(forced_decoder(model, "auto")) is expected
    assert type(forced_decoder(model, "hf")) is HFForcedDecoder
    if kind == "bart":
        with pytest.raises(ValueError, match="engine='t5' needs a T5/mT5 model"):
            score_pairs(model, tok, ["a"], ["b"], engine="t5")
    with pytest.raises(ValueError, match="engine must be one of"):
        score_pairs(model, tok, ["a"], ["b"], engine="fast")


@pytest.mark.parametrize("budget", [1, 20, 100, 8192])
def test_plan_covers_every_item_once_within_budget(budget):
    g = torch.Generator().manual_seed(0)
    src_lens = torch.randint(1, 30, (12,), generator=g).tolist()
    item_src = torch.randint(0, 12, (60,), generator=g).tolist()
    tgt_lens = torch.randint(1, 20, (60,), generator=g).tolist()
    windows = plan_windows(src_lens, item_src, tgt_lens, budget)
    seen = [w for _, batches in windows for b in batches for w in b]
    assert sorted(seen) == list(range(60))
    assert sorted(s for window, _ in windows for s in window) == sorted(set(item_src))
    for window, batches in windows:
        width = max(src_lens[s] for s in window)
        assert len(window) == 1 or len(window) * width <= budget
        for b in batches:
            assert all(item_src[w] in window for w in b)
            assert len(b) == 1 or len(b) * (width + max(tgt_lens[w] for w in b)) <= budget
            assert [tgt_lens[w] for w in b] == sorted((tgt_lens[w] for w in b), reverse=True)
