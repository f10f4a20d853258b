"""In-flight batching through the model's own forward (:class:`t5score.engine.hf_slots.HFSlots`).

Every model class of :data:`~t5score.engine.hf_slots.SLOT_CLASSES` decodes rows of mixed source lengths through
fewer slots than rows (slots refilled, the tail compacted) with its checkpoint-like generation config
(BART's n-gram blocking and minimum length, Marian's bad words, ...): each row equals ``greedy_decode`` of
that row alone (tokens exact, statistics within float32 rounding) and Hugging Face ``generate`` (tokens).
"""

from __future__ import annotations

import pytest
import torch

from t5score.engine.hf_slots import SLOT_CLASSES, decoder_probe, supports_slots
from t5score.engine.inflight import inflight_decode, supports_inflight
from t5score.engine.options import DecodeOptions
from tests.engine.test_inflight import LENGTHS, STEPS, _assert_rows_equal, _inputs
from tests.helpers.families import FAMILIES, MISSING, make_family

SLOTTED = sorted(
    f for f in FAMILIES if f not in MISSING and f != "flan-t5" and supports_slots(make_family(f)[0])
)
# the tiny random UMT5 and LongT5: a static batch of these rows already differs from each row alone by
# 1.1e-4 and 5.3e-5 (relative, float32); in-flight by the same
RTOL = {"umt5": 2e-4, "longt5-local": 1e-4}


# the EOS row of the output layer scaled (Marian: its final logits bias raised) so rows end at spread steps
EOS_LIFT = {"mbart": 1.3, "pegasus": 1.6, "blenderbot_small": 1.6, "umt5": 1.3, "blenderbot": 1.6}
EOS_LIFT |= {"m2m100": 3.0, "nllb": 3.0, "bigbird_pegasus": 3.0, "pegasus_x": 3.0}
EOS_BIAS = {"marian": 5.0}


def _spread_model(family: str) -> torch.nn.Module:
    model = make_family(family)[0]
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    with torch.no_grad():
        model.get_output_embeddings().weight[eos] *= EOS_LIFT.get(family, 1.0)
        if family in EOS_BIAS:
            model.final_logits_bias[0, eos] += EOS_BIAS[family]
    return model


def _family_inputs(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources of :data:`LENGTHS` tokens in the family's own ids: words, its EOS last, its pad after."""
    input_ids, mask = _inputs(model.config.vocab_size)
    input_ids = input_ids.clamp(min=8)  # words, not special ids
    for row, length in enumerate(LENGTHS):
        input_ids[row, length - 1] = model.config.eos_token_id
        input_ids[row, length:] = model.config.pad_token_id
    return input_ids, mask


@pytest.mark.filterwarnings("ignore:generation config")  # the checkpoints' beam settings, ignored (greedy)
@pytest.mark.parametrize("family", SLOTTED)
def test_inflight_through_the_models_forward_equals_each_row_alone(family: str) -> None:
    model = _spread_model(family)
    input_ids, mask = _family_inputs(model)
    options = DecodeOptions(max_new_tokens=STEPS, top_k=3, engine="hf")
    assert supports_inflight(model, options)
    out = inflight_decode(model, input_ids, mask, options, slots=4)
    lengths = _assert_rows_equal(out, model, input_ids, mask, options, RTOL.get(family, 1e-5))
    assert len(set(lengths)) > 1 and min(lengths) < STEPS  # rows ended at different steps: slots refilled
    reference = model.generate(
        input_ids=input_ids, attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=STEPS
    )[:, 1:]
    for row, n in enumerate(lengths):
        assert out.token_ids[row, :n].tolist() == reference[row, :n].tolist(), row


@pytest.mark.filterwarnings("ignore:generation config")
def test_bart_inflight_with_its_processors_and_every_steps_logits() -> None:
    """BART's checkpoint config (n-gram blocking, minimum length, forced BOS/EOS) changes choices; with a
    logits sink (capture=full) every row's raw logits of each of its steps arrive once, equal to the row's
    own decoding's."""
    model = _spread_model("bart")
    model.generation_config.forced_bos_token_id = 0
    model.generation_config.forced_eos_token_id = model.config.eos_token_id
    input_ids, mask = _family_inputs(model)
    options = DecodeOptions(max_new_tokens=STEPS, top_k=2)
    captured: dict[tuple[int, int], torch.Tensor] = {}

    def sink(step: int, rows: torch.Tensor, logits: torch.Tensor) -> None:
        for r, lg in zip(rows.tolist(), logits, strict=True):
            assert (r, step) not in captured
            captured[(r, step)] = lg.clone()

    out = inflight_decode(model, input_ids, mask, options, slots=3, logits_sink=sink)
    _assert_rows_equal(out, model, input_ids, mask, options, 1e-5)
    assert out.processor_changed_steps.sum() > 0 and (out.token_ids[:, 0] == 0).all()  # forced BOS
    reference = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        output_logits=True,
        return_dict_in_generate=True,
        max_new_tokens=STEPS,
        num_beams=1,
    )
    for row in range(len(LENGTHS)):
        n = int(out.num_tokens[row])
        assert sorted(s for r, s in captured if r == row) == list(range(n))
        for step in range(n):
            want = reference.logits[step][row]
            torch.testing.assert_close(
                captured[(row, step)], want, rtol=1e-5, atol=1e-5 * float(want.abs().max())
            )


def test_the_probe_finds_each_layers_cross_attention_and_the_position_rows() -> None:
    """BART: one cross-attention module per decoder layer (its ``encoder_attn``), and position rows equal
    to its learned embedding's weights after the offset of 2; T5: relative positions, no rows."""
    bart = make_family("bart")[0]
    probe = decoder_probe(
        bart, 6, bart.config.decoder_start_token_id, bart.config.d_model, torch.device("cpu")
    )
    layers = bart.get_decoder().layers
    assert probe.cross_attention == {i: layer.encoder_attn for i, layer in enumerate(layers)}
    torch.testing.assert_close(probe.positions, bart.get_decoder().embed_positions.weight[2:8])
    t5 = make_family("t5")[0]
    probe = decoder_probe(t5, 6, 0, t5.config.d_model, torch.device("cpu"))
    assert probe.positions is None
    assert probe.cross_attention == {
        i: block.layer[1].EncDecAttention for i, block in enumerate(t5.decoder.block)
    }


def test_only_the_exact_classes_take_slots() -> None:
    """A subclass (or remote code) may change the forward: it decodes in static batches."""
    bart = make_family("bart")[0]
    assert supports_slots(bart) and len(SLOTTED) == len(SLOT_CLASSES) + 2  # + LongT5 tglobal and NLLB
    subclass = type("MyBart", (type(bart),), {})
    bart.__class__ = subclass
    assert not supports_slots(bart)


@pytest.mark.filterwarnings("ignore:generation config")
def test_a_limit_beyond_the_position_embeddings_is_one_clear_error() -> None:
    """The tiny BART has 64 positions: the probe stops there, and a row that would need position 64 gets
    a ValueError naming the limit (static decoding would fail in the embedding lookup)."""
    model = make_family("bart")[0]
    model.generation_config.min_length = 80  # no row ends before the limit
    input_ids, mask = _family_inputs(model)
    with pytest.raises(ValueError, match="beyond the model's 64 position embeddings"):
        inflight_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=70, engine="hf"), slots=4)
