"""The generic forced decoder's reuse (:mod:`t5score.engine.hf_reuse`) against the model's own forward.

Reference per pair, alone and unpadded: ``model(input_ids, attention_mask, labels=labels)`` (the model shifts
the labels itself), log-softmax of its logits in float64 gathered at the labels, and its loss times the
number of labels for the sum. ``score_pairs(engine="hf")`` runs several candidates per source, sources and
targets of mixed lengths, under token budgets that give one window or several windows and batches (so
keys/values are cut to a batch's widest source). The BART family's ``final_logits_bias`` is set at random
(the checkpoints carry zeros), so an output layer that drops it fails. Hooks then count what runs: the
cross-attention key projection once per window over its distinct sources (not per pair batch), and the
output layer on the real target positions only.
"""

from __future__ import annotations

import pytest
import torch
import transformers

import t5score.engine.hf as hf
from t5score.engine import hf_reuse
from t5score.engine.forced import score_pairs
from t5score.engine.tokens import tokenize
from tests.helpers.families import FAMILIES, MISSING, make_family

SOURCES = [
    "read the file and return the value",
    "count items",
    "open a new file , write the data and close it if it is not none",
    "sort the list",
]
TARGETS = [
    "return the value",
    "count the items in the list and return the number",
    "close",
    "",
    "read file",
    "write data to the file and close the file then return true",
    "it",
    "sort it",
    "the list is sorted and the first item is the smallest value of the list",
    "open the file",
]
INDEX = [0, 1, 2, 2, 0, 2, 1, 3, 3, 0]  # 2-3 candidates per source
COVERED = [name for name in FAMILIES if name not in MISSING and hf_reuse.reuses_cross(make_family(name)[0])]
# cross-attention key projections by family naming (BART family, T5 family, T5Gemma)
CROSS_K = (".encoder_attn.k_proj", ".EncDecAttention.k", ".cross_attn.k_proj")


def first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def with_random_bias(model: torch.nn.Module) -> torch.nn.Module:
    bias = getattr(model, "final_logits_bias", None)
    if bias is not None:
        with torch.no_grad():
            bias.copy_(torch.randn(bias.shape, generator=torch.Generator().manual_seed(1)))
    return model


def reference(model, tok, src: str, tgt: str) -> tuple[list[int], torch.Tensor, float]:
    """Labels, per-token log-probabilities and summed log-likelihood of one pair from ``model(labels=...)``."""
    eos = first(model.generation_config.eos_token_id)
    (src_ids,), _ = tokenize(tok, [src], eos=eos)
    (labels,), _ = tokenize(tok, [tgt], target=True, eos=eos)
    x, y = torch.tensor([src_ids]), torch.tensor([labels])
    with torch.no_grad():
        out = model(input_ids=x, attention_mask=torch.ones_like(x), labels=y, use_cache=False)
    logp = torch.log_softmax(out.logits[0].double(), -1).gather(-1, y[0, :, None])[:, 0]
    return labels, logp, -float(out.loss) * len(labels)


@pytest.fixture(scope="module", params=COVERED)
def family(request):
    model, tok = make_family(request.param)
    model = with_random_bias(model)
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    return request.param, model, tok, refs


def test_the_tables_name_real_classes():
    """A misspelt class would silently keep the plain path: every name is a transformers class, and the
    families the brief names are covered."""
    for name in hf_reuse.CROSS_CACHE:
        assert isinstance(getattr(transformers, name, None), type), name
    assert set(hf_reuse.OWN_HEAD) <= set(hf_reuse.CROSS_CACHE)
    assert {"bart", "mbart", "marian", "pegasus", "m2m100", "blenderbot"} <= set(COVERED)
    assert not {"fsmt", "prophetnet"} & set(COVERED)


@pytest.mark.parametrize("reuse", [True, False])
@pytest.mark.parametrize("budget", [8192, 60])
def test_equals_forward_with_labels_per_pair(family, budget, reuse):
    name, model, tok, refs = family
    scores = score_pairs(
        model,
        tok,
        SOURCES,
        TARGETS,
        pair_source_index=INDEX,
        engine="hf",
        max_tokens_per_batch=budget,
        reuse_encoder=reuse,
    )
    for s, (labels, logps, total) in zip(scores, refs, strict=True):
        assert s.token_ids == labels, name
        got = torch.tensor(s.token_logprobs, dtype=torch.float64)
        scale = float(logps.abs().max())  # float32 log-softmax rounds relative to the logits' magnitude
        torch.testing.assert_close(got, logps, rtol=1e-5, atol=1e-5 * scale, msg=lambda m: f"{name}: {m}")
        assert s.sum_logprob == pytest.approx(total, rel=1e-5), name


def _hooks(model, calls: dict[str, list[int]]):
    """Rows given to the first decoder layer's cross-attention key projection and to the output layer."""
    key = next(m for n, m in model.named_modules() if n.endswith(CROSS_K) and "decoder" in n)
    head = model.get_output_embeddings()
    return [
        key.register_forward_hook(lambda m, a, out: calls["cross_k"].append(a[0].shape[0])),
        head.register_forward_hook(lambda m, a, out: calls["head"].append(a[0].flatten(0, -2).shape[0])),
    ]


@pytest.mark.parametrize("name", [n for n in ("bart", "mbart", "marian", "t5") if n in COVERED])
def test_cross_keys_values_once_per_source_not_per_pair(name, monkeypatch):
    """The key projection runs once per window over its distinct sources, while the pairs take several
    decoder batches; the output layer (BART family) sees exactly the real target positions."""
    model, tok = make_family(name)
    batches: list[int] = []
    positions = hf.HFForcedDecoder.positions

    def counted(self, ctx, ids):
        batches.append(ids.shape[0])
        return positions(self, ctx, ids)

    monkeypatch.setattr(hf.HFForcedDecoder, "positions", counted)
    calls: dict[str, list[int]] = {"cross_k": [], "head": []}
    handles = _hooks(model, calls)
    try:
        kwargs = dict(pair_source_index=INDEX, engine="hf", max_tokens_per_batch=60)
        score_pairs(model, tok, SOURCES, TARGETS, **kwargs)
    finally:
        for h in handles:
            h.remove()
    assert sum(calls["cross_k"]) == len(SOURCES)  # each source's keys once ...
    assert len(calls["cross_k"]) < len(batches)  # ... per window, not per pair batch
    assert sum(batches) == len(set(zip(INDEX, TARGETS, strict=True)))
    if hf_reuse.output_head(model) is not None:
        eos = first(model.generation_config.eos_token_id)
        real = sum(len(ids) for ids in tokenize(tok, TARGETS, target=True, eos=eos)[0])
        assert sum(calls["head"]) == real  # no padded position, no start-token step
    else:
        assert name == "t5" and sum(calls["head"]) > sum(batches)  # logits of the forward, padding included


def test_subclasses_and_excluded_families_keep_the_plain_forward():
    """Only the exact transformers classes: a subclass may change its forward, FSMT and ProphetNet are left
    out on purpose (see :mod:`t5score.engine.hf_reuse`)."""
    model, _ = make_family("bart")

    class Custom(transformers.BartForConditionalGeneration):
        pass

    assert hf_reuse.reuses_cross(model) and hf_reuse.output_head(model) is not None
    custom = Custom(model.config).eval()
    assert not hf_reuse.reuses_cross(custom) and hf_reuse.output_head(custom) is None
    for name in ("fsmt", "prophetnet"):
        decoder = hf.HFForcedDecoder(make_family(name)[0])
        assert not decoder.reuse_cross and decoder.own_head is None, name


def test_int8_quantized_bart():
    """int8 layers (``t5score.engine.quantize``): the quantised output layer has no ``weight`` tensor (it
    once broke the decoder's set-up). Activation scales depend on the batch, so one pair per batch, as the
    unbatched reference runs (each source's keys/values then come from its own window)."""
    from t5score.engine.quantize import quantize_int8

    model, tok = make_family("bart")
    model = quantize_int8(with_random_bias(model))
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    got = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, max_tokens_per_batch=1)
    for s, (labels, _, total) in zip(got, refs, strict=True):
        assert s.token_ids == labels
        assert s.sum_logprob == pytest.approx(total, rel=1e-5)
