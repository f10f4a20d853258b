"""The fast T5 kernels on every T5 variant they admit (T5, T5 v1.1 / Flan-T5, mT5), against ``engine="hf"``
and the model's own forward, in scoring (the teacher-forced decoder) and decoding (the one-token step); and
the variants they must refuse (UMT5, LongT5, SwitchTransformers: other decoders or encoders).

mT5 is the case that once went wrong: ``MT5Config`` forces ``tie_word_embeddings=True`` while the mT5
forward never rescales the decoder output, so a rule read from the config rescaled it (up to 2 nats off).
"""

from __future__ import annotations

import pytest
import torch

from t5score.engine.decode import greedy_decode
from t5score.engine.forced import score_pairs
from t5score.engine.options import DecodeOptions
from t5score.engine.t5 import kernels
from tests.engine.test_families_scoring import INDEX, SOURCES, TARGETS, reference
from tests.helpers.families import FAMILIES, make_family, processor_free

FAST = ("t5", "flan-t5", "mt5")
STEPS = 10


@pytest.fixture(scope="module", params=FAST)
def variant(request):
    model, tok = make_family(request.param)
    return request.param, model, tok


def test_fast_kernels_admit_exactly_the_tested_variants():
    admitted = {name for name in FAMILIES if kernels.supports(make_family(name)[0])}
    assert admitted == set(FAST)


def test_output_scaling_follows_each_forward():
    """T5 rescales, T5 v1.1 / Flan-T5 (``tie_word_embeddings: false``) and mT5 do not, whatever the config."""
    scales = {name: kernels.scales_output(make_family(name)[0]) for name in FAST}
    assert scales == {"t5": True, "flan-t5": False, "mt5": False}
    mt5 = make_family("mt5")[0]
    assert mt5.config.tie_word_embeddings  # the config says "tied", the forward never rescales
    with pytest.raises(ValueError, match="UMT5ForConditionalGeneration"):
        kernels.scales_output(make_family("umt5")[0])


def test_scoring_fast_equals_hf_and_forward(variant):
    name, model, tok = variant
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    fast = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="t5")
    slow = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="hf")
    for f, s, (labels, logps) in zip(fast, slow, refs, strict=True):
        assert f.token_ids == s.token_ids == labels
        for got in (f, s):
            torch.testing.assert_close(
                torch.tensor(got.token_logprobs, dtype=torch.float64), logps, atol=1e-4, rtol=1e-5
            )
            assert got.sum_logprob == pytest.approx(float(logps.sum()), rel=1e-4, abs=1e-6), name
        torch.testing.assert_close(f.token_entropies, s.token_entropies, atol=1e-4, rtol=1e-5)


def test_decoding_fast_equals_hf_and_generate(variant):
    """Processor-free decoding: the fast step, the model's forward and ``generate`` give the same tokens;
    log-probabilities and entropies are those of ``generate``'s ``output_logits``."""
    name, model, tok = variant
    plain = processor_free(model)
    batch = tok(SOURCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = plain.generate(
            **batch,
            do_sample=False,
            num_beams=1,
            max_new_tokens=STEPS,
            output_logits=True,
            return_dict_in_generate=True,
        )
    logp = torch.log_softmax(torch.stack(ref.logits, 1).double(), -1)  # [B, T, V]
    tokens = ref.sequences[:, 1:]
    for engine in ("t5", "hf"):
        opts = DecodeOptions(max_new_tokens=STEPS, engine=engine, use_generation_config=False)
        out = greedy_decode(model, batch.input_ids, batch.attention_mask, opts)
        for row in range(len(SOURCES)):
            n = int(out.num_tokens[row])
            assert out.token_ids[row, :n].tolist() == tokens[row, :n].tolist(), (name, engine, row)
            want = logp[row, :n].gather(-1, tokens[row, :n, None])[:, 0]
            torch.testing.assert_close(out.token_logprobs[row, :n].double(), want, atol=1e-4, rtol=1e-5)
            ent = -(logp[row, :n].exp() * logp[row, :n]).sum(-1)
            torch.testing.assert_close(out.entropies[row, :n].double(), ent, atol=1e-4, rtol=1e-5)
