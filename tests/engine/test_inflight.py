"""In-flight batching gives each row what decoding it alone gives, and what ``generate`` gives.

Rows of mixed source lengths and output lengths (EOS reached at different steps, some rows at the limit)
decode through fewer slots than rows, so slots are refilled mid-way and the tail is compacted. Each row is
compared with ``greedy_decode`` of that row alone (tokens exact; statistics within float32 rounding) and
with Hugging Face ``generate`` with the same generation config (tokens exact).
"""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig

from t5score.engine.decode import greedy_decode
from t5score.engine.inflight import inflight_decode, supports_inflight
from t5score.engine.options import DecodeOptions
from tests.helpers.families import make_family
from tests.helpers.tiny_models import make_tiny_model

LENGTHS = [11, 7, 3, 11, 9, 5, 11, 2, 8, 6, 10, 4, 1]
STEPS = 14
FIELDS = ("token_logprobs", "entropies", "top1_probs", "topk_logprobs", "token_processed_logprobs")


def _inputs(vocab: int, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, vocab, (len(LENGTHS), max(LENGTHS)), generator=g)
    mask = torch.zeros_like(input_ids)
    for row, length in enumerate(LENGTHS):
        mask[row, :length] = 1
        input_ids[row, length - 1] = 1  # EOS closes the source, as the tokenizer does
        input_ids[row, length:] = 0
    return input_ids, mask


def _alone(model, input_ids, mask, options, row: int):
    n = int(mask[row].sum())
    return greedy_decode(model, input_ids[row : row + 1, :n], mask[row : row + 1, :n], options)


def _assert_rows_equal(out, model, input_ids, mask, options, rtol: float = 1e-5) -> list[int]:
    """Each row of ``out`` equals ``greedy_decode`` of that row alone: tokens, top-k ids, EOS and the
    processors' changes exact; statistics within ``rtol`` (relative to the row's magnitude)."""
    lengths = []
    for row in range(input_ids.shape[0]):
        alone = _alone(model, input_ids, mask, options, row)
        n = int(alone.num_tokens[0])
        lengths.append(n)
        assert int(out.num_tokens[row]) == n and bool(out.finished[row]) == bool(alone.finished[0])
        assert out.token_ids[row, :n].tolist() == alone.token_ids[0, :n].tolist(), row
        assert out.topk_ids[row, :n].tolist() == alone.topk_ids[0, :n].tolist(), row
        for name in FIELDS:
            got, want = getattr(out, name)[row, :n], getattr(alone, name)[0, :n]
            torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * max(1.0, float(want.abs().max())))
        assert int(out.processor_changed_steps[row]) == int(alone.processor_changed_steps[0])
    return lengths


MODELS = {  # tiny models whose rows end at spread lengths (EOS after 1 to 13 tokens, or none)
    "t5": lambda: make_family("t5")[0],
    "t5v1.1": lambda: make_tiny_model("t5v1.1", init_scale=5.0),
    "mt5": lambda: make_family("mt5")[0],
}


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("slots", [1, 4])
def test_inflight_equals_each_row_alone(kind: str, slots: int) -> None:
    model = MODELS[kind]()
    input_ids, mask = _inputs(model.config.vocab_size)
    options = DecodeOptions(max_new_tokens=STEPS, top_k=3)
    assert supports_inflight(model, options)
    out = inflight_decode(model, input_ids, mask, options, slots=slots)
    lengths = _assert_rows_equal(out, model, input_ids, mask, options)
    assert len(set(lengths)) > 2 and STEPS in lengths and min(lengths) < STEPS  # spread: refills happened
    reference = model.generate(
        input_ids=input_ids, attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=STEPS
    )[:, 1:]
    for row, n in enumerate(lengths):
        assert out.token_ids[row, :n].tolist() == reference[row, :n].tolist()


def test_inflight_with_the_generation_config_processors() -> None:
    """A checkpoint-like config: n-gram blocking, a minimum length, a forced EOS, encoder n-gram blocking
    (per-row state): tokens equal generate's and each row's own decoding."""
    model = make_family("t5")[0]
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0,
        eos_token_id=1,
        pad_token_id=0,
        no_repeat_ngram_size=2,
        min_length=3,
        forced_eos_token_id=1,
        max_length=STEPS,
        encoder_no_repeat_ngram_size=3,
    )
    input_ids, mask = _inputs(model.config.vocab_size, seed=5)
    options = DecodeOptions(max_new_tokens=None, top_k=2)
    out = inflight_decode(model, input_ids, mask, options, slots=3)
    lengths = _assert_rows_equal(out, model, input_ids, mask, options)
    reference = model.generate(input_ids=input_ids, attention_mask=mask)[:, 1:]
    for row, n in enumerate(lengths):
        assert out.token_ids[row, :n].tolist() == reference[row, :n].tolist()
    assert out.processor_changed_steps.sum() > 0  # the processors did change some choices


def test_inflight_hands_each_steps_logits_to_the_sink() -> None:
    """capture=full: every row's raw logits of every step reach the sink once, at the row's own step."""
    model = make_family("t5")[0]
    input_ids, mask = _inputs(model.config.vocab_size)
    options = DecodeOptions(max_new_tokens=STEPS)
    captured: dict[tuple[int, int], torch.Tensor] = {}

    def sink(step: int, rows: torch.Tensor, logits: torch.Tensor) -> None:
        for r, lg in zip(rows.tolist(), logits, strict=True):
            assert (r, step) not in captured
            captured[(r, step)] = lg.clone()

    out = inflight_decode(model, input_ids, mask, options, slots=4, logits_sink=sink)
    for row in range(len(LENGTHS)):
        n = int(out.num_tokens[row])
        assert sorted(s for r, s in captured if r == row) == list(range(n))
        logits = torch.stack([captured[(row, s)] for s in range(n)])
        lp = torch.log_softmax(logits, -1).gather(-1, out.token_ids[row, :n, None])[:, 0]
        torch.testing.assert_close(lp, out.token_logprobs[row, :n], rtol=1e-6, atol=1e-6)


def test_models_and_options_without_inflight_say_so() -> None:
    t5 = make_tiny_model("t5")
    for family in ("prophetnet", "fsmt", "nllb_moe", "switch", "led"):  # see t5score.engine.hf_slots
        assert not supports_inflight(make_family(family)[0], DecodeOptions()), family
    assert supports_inflight(make_tiny_model("bart"), DecodeOptions())
    assert supports_inflight(t5, DecodeOptions(engine="hf"))
    assert not supports_inflight(t5, DecodeOptions(compile=True))
    assert not supports_inflight(t5, DecodeOptions(num_beams=2))
    assert not supports_inflight(t5, DecodeOptions(), sampled=True)
    with pytest.raises(ValueError, match="slots must be >= 1"):
        inflight_decode(t5, *_inputs(t5.config.vocab_size), slots=0)


def test_the_encoder_in_parts_equals_the_encoder_on_the_whole_batch() -> None:
    """Each part cut to its own longest source: the real positions are the whole batch's, the rest 0."""
    from t5score.engine.inflight import encode_in_parts

    model = make_family("t5")[0]
    input_ids, mask = _inputs(model.config.vocab_size)
    with torch.inference_mode():
        whole = model.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state
        parts = encode_in_parts(model, input_ids, mask, part=4)
    real = mask.bool()
    torch.testing.assert_close(parts[real], whole[real], rtol=1e-5, atol=1e-5)
    for start in range(0, len(LENGTHS), 4):  # after each part's longest source: nothing was encoded
        width = max(LENGTHS[start : start + 4])
        assert not parts[start : start + 4, width:].any()
