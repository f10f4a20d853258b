"""Engine options keep parity with Hugging Face: the generic and fast engines, both attention kernels,
the compiled step (opt-in), int8 quantisation (opt-in), and the single-pass ``token_stats``."""

from __future__ import annotations

import os

import pytest
import torch

from t5score.engine.decode import greedy_decode
from t5score.engine.options import DecodeOptions
from t5score.engine.quantize import apply_quantize, quantize_int8
from t5score.engine.stats import token_stats
from t5score.engine.t5 import kernels
from tests.helpers.tiny_models import make_tiny_model


def _inputs(seed: int, vocab: int, batch: int = 6):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, vocab, (batch, 9), generator=g)
    mask = torch.ones_like(input_ids)
    for row, length in enumerate([9, 4, 9, 2, 7, 9][:batch]):
        mask[row, length:] = 0
    return input_ids, mask


def _generate(model, input_ids, mask, steps):
    out = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        do_sample=False,
        num_beams=1,
        max_new_tokens=steps,
        output_logits=True,
        return_dict_in_generate=True,
    )
    return out.sequences[:, 1:], torch.stack(out.logits, dim=1)


def _check_against_generate(model, input_ids, mask, steps, logits_atol=1e-5, **options):
    """Tokens equal generate's, captured logits within ``logits_atol`` of the largest logit (relative)."""
    seq, hf_logits = _generate(model, input_ids, mask, steps)
    captured = torch.zeros_like(hf_logits)

    def sink(step, rows, logits):
        captured[rows, step] = logits

    out = greedy_decode(
        model, input_ids, mask, DecodeOptions(max_new_tokens=steps, **options), logits_sink=sink
    )
    eos = model.config.eos_token_id
    for b in range(input_ids.shape[0]):
        n = int(out.num_tokens[b])
        hf = seq[b].tolist()
        assert n == (hf.index(eos) + 1 if eos in hf else len(hf))
        assert out.token_ids[b, :n].tolist() == hf[:n]
        scale = hf_logits[b, :n].abs().max()
        torch.testing.assert_close(
            captured[b, :n] / scale, hf_logits[b, :n] / scale, rtol=0, atol=logits_atol
        )
        ref = torch.log_softmax(hf_logits[b, :n].double(), -1).gather(-1, seq[b, :n, None])[:, 0]
        torch.testing.assert_close(out.token_logprobs[b, :n].double(), ref, rtol=1e-5, atol=1e-5)
    return out


@pytest.mark.parametrize("kind", ["t5", "t5v1.1"])
@pytest.mark.parametrize("engine", ["hf", "t5"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_engines_and_attention_kernels_match_generate(kind, engine, attention):
    model = make_tiny_model(kind, seed=0)
    model.set_attn_implementation(attention)
    input_ids, mask = _inputs(1, model.config.vocab_size)
    out = _check_against_generate(model, input_ids, mask, 12, engine=engine)
    assert out.finished.any() and not out.finished.all(), "some rows should stop early"


def test_auto_engine_picks_fast_step_for_t5_only():
    assert kernels.supports(make_tiny_model("t5")) and kernels.supports(make_tiny_model("t5v1.1"))
    assert not kernels.supports(make_tiny_model("bart"))
    assert not kernels.supports(make_tiny_model("t5").train()), "dropout: training mode keeps the HF forward"


def test_fast_engine_drop_finished_matches_generate():
    model = make_tiny_model("t5", seed=5, init_scale=2.0)
    input_ids, mask = _inputs(4, model.config.vocab_size)
    ref = greedy_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=14, engine="hf"))
    assert ref.finished.any() and not ref.finished.all()
    options = DecodeOptions(max_new_tokens=14, engine="t5", drop_finished=True, eos_check_every=2)
    got = greedy_decode(model, input_ids, mask, options)
    assert torch.equal(ref.token_ids, got.token_ids) and torch.equal(ref.num_tokens, got.num_tokens)
    torch.testing.assert_close(ref.token_logprobs, got.token_logprobs, atol=1e-4, rtol=0)
    torch.testing.assert_close(ref.entropies, got.entropies, atol=1e-4, rtol=0)


def test_bad_engine_options_raise():
    bart = make_tiny_model("bart")
    input_ids, mask = _inputs(1, bart.config.vocab_size)
    with pytest.raises(ValueError, match="engine='t5' needs a T5/mT5 model"):
        greedy_decode(bart, input_ids, mask, DecodeOptions(engine="t5"))
    with pytest.raises(ValueError, match="engine must be one of"):
        DecodeOptions(engine="fast")
    with pytest.raises(ValueError, match="compile"):
        greedy_decode(bart, input_ids, mask, DecodeOptions(compile=True))
    with pytest.raises(ValueError, match="eos_check_every"):
        DecodeOptions(eos_check_every=0)
    with pytest.raises(ValueError, match="capture"):
        DecodeOptions(capture="all")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 2, "temperature": 0.0}, "temperature must be > 0"),
        ({"num_samples": 2, "top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"temperature": -1.0}, "temperature must be > 0"),  # greedy: a bad value is still a mistake
        ({"num_samples": 2, "seed": 2**62}, r"seed must be in \[0, 2\*\*32\)"),
        ({"seed": -1}, "seed must be in"),
        ({"logits_dtype": "int8"}, "logits_dtype must be one of"),
    ],
)
def test_options_are_checked_when_built_not_when_first_sampled(kwargs, match):
    """Sampling settings used to be checked only when the first batch built its ``Sampling``."""
    with pytest.raises(ValueError, match=match):
        DecodeOptions(**kwargs)


def test_the_largest_seed_still_seeds_every_batch_and_sample():
    options = DecodeOptions(num_samples=3, seed=2**32 - 1)
    torch.Generator().manual_seed(options.sampling(batch_index=10**6, sample=2).seed)


def test_compile_is_opt_in(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.compile called without compile=True")

    monkeypatch.setattr(torch, "compile", refuse)
    model = make_tiny_model("t5")
    input_ids, mask = _inputs(2, model.config.vocab_size)
    greedy_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=4))


def test_compiled_static_step_matches_generate():
    """The compile path's static-shape step (all cache slots attended, future ones masked), traced by
    dynamo; ``aot_eager`` skips code generation so the test stays fast (inductor: the slow test below).
    Traced graphs decompose ops (other summation orders, other SIMD paths per CPU): logits within 1e-4 of
    the largest logit, tokens exact."""
    model = make_tiny_model("t5", seed=2)
    input_ids, mask = _inputs(1, model.config.vocab_size)
    _check_against_generate(model, input_ids, mask, 10, logits_atol=1e-4, compile="aot_eager")


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("T5SCORE_SLOW_TESTS") != "1", reason="inductor compile: set T5SCORE_SLOW_TESTS=1"
)
def test_inductor_compiled_step_matches_generate():
    model = make_tiny_model("t5v1.1", seed=2)
    input_ids, mask = _inputs(1, model.config.vocab_size)
    _check_against_generate(model, input_ids, mask, 8, logits_atol=1e-4, compile=True)


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_int8_is_opt_in_and_decodes_like_generate_on_the_quantised_model(kind):
    model = make_tiny_model(kind, seed=3, init_scale=2.0)
    assert apply_quantize(model, "none") is model and apply_quantize(model, None) is model
    quantised = quantize_int8(model)
    assert quantised is not model
    assert type(model.lm_head) is torch.nn.Linear, "the float model is left untouched"
    linears = [m for m in quantised.modules() if isinstance(m, torch.nn.Linear)]
    assert not linears, "every nn.Linear is replaced by its int8 version"
    input_ids, mask = _inputs(5, model.config.vocab_size)
    # the fast engine on the quantised model reproduces generate on the quantised model
    _check_against_generate(quantised, input_ids, mask, 10)


def test_int8_logits_stay_close_to_float():
    """Teacher-forced on the same decoder inputs, int8 logits stay within a few % of the float32 spread.

    (At init scale 1; the saturated tiny models at larger scales amplify quantisation error layer by layer.)
    """
    model = make_tiny_model("t5v1.1", seed=3, init_scale=1.0)
    quantised = quantize_int8(model)
    input_ids, mask = _inputs(5, model.config.vocab_size)
    g = torch.Generator().manual_seed(0)
    dec = torch.randint(4, model.config.vocab_size, (input_ids.shape[0], 7), generator=g)
    with torch.no_grad():
        ref = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = quantised(input_ids=input_ids, attention_mask=mask, decoder_input_ids=dec).logits
    error = (got - ref).abs() / ref.std()
    assert 0 < float(error.mean()) < 0.05 and float(error.max()) < 0.5, (error.mean(), error.max())
    assert float((got.argmax(-1) == ref.argmax(-1)).float().mean()) >= 0.8


def test_int8_refuses_what_it_cannot_quantise():
    with pytest.raises(ValueError, match="float32"):
        quantize_int8(make_tiny_model("t5").to(torch.bfloat16))
    with pytest.raises(ValueError, match="quantize must be one of"):
        apply_quantize(make_tiny_model("t5"), "int4")


def _reference_stats(logits: torch.Tensor, tokens: torch.Tensor, k: int):
    logp = torch.log_softmax(logits.double(), -1)
    p = logp.exp()
    entropy = -(p * torch.where(p > 0, logp, 0.0)).sum(-1)
    top = logp.topk(k, dim=-1)
    return logp.gather(-1, tokens[..., None])[..., 0], entropy, p.max(-1).values, top


@pytest.mark.parametrize("scale", [0.5, 5.0, 40.0])
def test_token_stats_match_float64_softmax(scale):
    g = torch.Generator().manual_seed(int(scale * 10))
    logits = torch.randn(3, 4, 500, generator=g) * scale
    tokens = torch.randint(0, 500, (3, 4), generator=g)
    st = token_stats(logits, tokens=tokens, top_k=4)
    logp, entropy, top1, top = _reference_stats(logits, tokens, 4)
    torch.testing.assert_close(st.token_logprobs.double(), logp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(st.entropies.double(), entropy, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(st.top1_probs.double(), top1, rtol=1e-5, atol=1e-7)
    assert torch.equal(st.top1_ids, logits.argmax(-1))
    assert torch.equal(st.topk_ids, top.indices)
    torch.testing.assert_close(st.topk_logprobs.double(), top.values, rtol=1e-5, atol=1e-5)
    assert not st.nonfinite.any()
    greedy = token_stats(logits, top_k=0)
    best = torch.log_softmax(logits.double(), -1).max(-1).values
    torch.testing.assert_close(greedy.token_logprobs.double(), best, rtol=1e-5, atol=1e-6)
    assert greedy.topk_ids.shape == (3, 4, 0)


def test_token_stats_non_finite_logits():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    logits[1, 3] = float("-inf")  # a zero-probability token: statistics stay finite, the row is flagged
    logits[2, 5] = float("nan")
    logits[3, 7] = float("inf")
    st = token_stats(logits, top_k=3)
    assert st.nonfinite.tolist() == [False, True, True, True]
    finite = logits[1].clone()
    finite[3] = -1e4  # exp underflows to exactly 0 in float64 too
    ref_logp, ref_entropy, _, _ = _reference_stats(finite[None], logits[1:2].argmax(-1), 3)
    torch.testing.assert_close(st.entropies[1:2].double(), ref_entropy, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(st.token_logprobs[1:2].double(), ref_logp, rtol=1e-5, atol=1e-6)
    assert torch.isnan(st.entropies[2]) and torch.isnan(st.token_logprobs[2])


def test_token_stats_ties_pick_the_first_index_like_argmax():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    st = token_stats(logits, top_k=2)
    assert st.top1_ids.tolist() == [1, 0]
    torch.testing.assert_close(st.top1_probs, torch.softmax(logits, -1).max(-1).values)


def test_fast_engine_under_bf16_autocast_matches_hf_forward():
    """bf16-mixed (Lightning's CPU autocast): the fast step defers to autocast like nn.Linear does."""
    model = make_tiny_model("t5", seed=0, init_scale=2.0)
    input_ids, mask = _inputs(3, model.config.vocab_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = greedy_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=8, engine="hf"))
        got = greedy_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=8, engine="t5"))
    assert torch.equal(ref.token_ids, got.token_ids)
    torch.testing.assert_close(ref.token_logprobs, got.token_logprobs, atol=1e-5, rtol=0)
