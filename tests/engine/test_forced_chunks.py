"""``score_pairs`` with a window's sources encoded in several runs (each padded to its own longest) and the
output layer in chunks that cut through pairs, on every family of the zoo, against each pair's own forward
(the reference of tests/engine/test_families_scoring.py: no batching, no padding)."""

from __future__ import annotations

import pytest
import torch

import t5score.engine.forced as forced
import t5score.engine.forced_inputs as forced_inputs
from t5score.engine.forced import score_pairs
from t5score.engine.modeling import vocab_size
from tests.engine.test_families_scoring import BUILT, INDEX, SOURCES, TARGETS, reference
from tests.helpers.families import make_family


@pytest.fixture(scope="module", params=BUILT)
def family(request):
    model, tok = make_family(request.param)
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    return request.param, model, tok, refs


def _encoder_masks(model) -> tuple[list[torch.Tensor], object]:
    masks: list[torch.Tensor] = []

    def hook(module, args, kwargs):
        masks.append(kwargs["attention_mask"].clone())

    return masks, model.get_encoder().register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("engine", ["auto", "hf"])
def test_encoder_runs_and_output_chunks_equal_forward_on_each_pair(family, engine, monkeypatch):
    """At no cost per batch every source length is its own encoder run (no padded source position is
    encoded) and every target length its own batch; the output layer takes 5 rows at a time and
    ``token_stats`` 2 of them, so chunks cut through pairs and through each other."""
    name, model, tok, refs = family
    monkeypatch.setattr(forced_inputs, "BATCH_OVERHEAD", 0)
    monkeypatch.setattr(forced, "HEAD_FLOATS", 5 * vocab_size(model))
    monkeypatch.setattr(forced, "STATS_FLOATS", 2 * vocab_size(model))
    masks, handle = _encoder_masks(model)
    try:
        scores = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine=engine)
    finally:
        handle.remove()
    assert len(masks) == len({len(tok(s).input_ids) for s in SOURCES}), name  # one run per source length
    assert all(bool(m.all()) for m in masks), name  # each run padded to its own longest: no padding
    for s, (labels, logps) in zip(scores, refs, strict=True):
        assert s.token_ids == labels, name
        got = torch.tensor(s.token_logprobs, dtype=torch.float64)
        torch.testing.assert_close(got, logps, atol=1e-4, rtol=1e-5, msg=lambda m: f"{name}: {m}")
        assert s.sum_logprob == pytest.approx(float(logps.sum()), rel=1e-4, abs=1e-6), name


def test_runs_skip_a_long_padding_of_short_sources(monkeypatch):
    """At 16 positions per encoder call, a 4-token source beside 30-32-token ones gets a run of its own
    (26+ padded positions would cost more than a call), and the sources 1-2 tokens apart share one."""
    model, tok = make_family("bart")
    monkeypatch.setattr(forced_inputs, "BATCH_OVERHEAD", 16)
    long = " ".join(["read the file and return the value"] * 4)
    sources = [long, long + " now", "count items", long + " now then"]
    masks, handle = _encoder_masks(model)
    try:
        score_pairs(model, tok, sources, ["close"] * 4)
    finally:
        handle.remove()
    rows = sorted(tuple(m.sum(1).tolist()) for m in masks)
    lens = sorted(len(tok(s).input_ids) for s in sources)
    assert lens[0] == 4 and lens[1:] == [30, 31, 32]
    assert rows == [(lens[0],), tuple(sorted(lens[1:], reverse=True))]
