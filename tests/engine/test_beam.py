"""``beam_search`` against ``generate(num_beams=N, do_sample=False)`` on tiny random T5, T5 v1.1 and BART.

The reference is ``generate(num_beams=N, num_return_sequences=N, output_scores=True, output_logits=True,
return_dict_in_generate=True)``: the same candidates in the same order; ``sequence_scores`` equal to its
``sequences_scores``; ``token_processed_logprobs`` equal to ``compute_transition_scores(sequences, scores,
beam_indices)``; the raw statistics (``token_logprobs``, entropies, top-1, top-k) those of
``log_softmax(output_logits)`` at each step's beam (``beam_indices``). Per-token values within 1e-4, sums
within 1e-4 relative; several ``length_penalty`` values and every ``early_stopping`` setting, both
engines (fast T5 and the model's forward), a BART with a real-style generation config (processors, its own
length penalty and early stopping), and batch invariance.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from t5score.engine.beam import beam_search
from t5score.engine.decode import greedy_decode
from t5score.engine.options import DecodeOptions
from tests.helpers.families import make_family
from tests.helpers.tiny_models import make_tiny_model

STEPS = 9
SETTINGS = [(1.0, False), (2.0, True), (0.5, "never"), (-1.0, False), (1.5, "never"), (0.0, True)]
CASES = [("t5", "t5"), ("t5", "hf"), ("t5v1.1", "t5"), ("t5v1.1", "hf"), ("bart", "hf")]


def tiny(kind: str, seed: int = 0) -> torch.nn.Module:
    """A tiny model whose beams often end (EOS lifted a bit more than the decoding tests need); the tiny
    T5 of the family zoo, as the tied random T5 of ``make_tiny_model`` rarely ends its beams."""
    if kind == "t5":
        return make_family("t5", seed=seed)[0]
    model = make_tiny_model(kind, seed=seed, init_scale=2.0)
    with torch.no_grad():
        if kind == "bart":
            model.final_logits_bias[0, 2] += 2.0
        else:
            model.lm_head.weight[1] *= 2.0
    return model


def inputs(vocab: int, batch: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, vocab, (batch, 8), generator=g)
    mask = torch.ones_like(input_ids)
    for row, length in enumerate([8, 3, 6, 8, 5][:batch]):
        mask[row, length:] = 0
    return input_ids, mask


def reference(model, input_ids, mask, beams: int, returned: int, **kwargs):
    with torch.no_grad():
        return model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=False,
            num_beams=beams,
            num_return_sequences=returned,
            output_scores=True,
            output_logits=True,
            return_dict_in_generate=True,
            **kwargs,
        )


def assert_matches(model, out, ref, length_penalty: float) -> None:
    """Candidates, scores, transition scores and raw statistics of ``out`` equal ``ref``'s."""
    transition = model.compute_transition_scores(ref.sequences, ref.scores, ref.beam_indices)
    assert out.token_ids.shape[0] == ref.sequences.shape[0]
    torch.testing.assert_close(out.sequence_scores, ref.sequences_scores, atol=1e-4, rtol=1e-4)
    for row in range(out.token_ids.shape[0]):
        n = int(out.num_tokens[row])
        generated = ref.beam_indices[row].ge(0).sum()
        assert n == int(generated), row
        assert out.token_ids[row, :n].tolist() == ref.sequences[row, 1 : n + 1].tolist(), row
        beams = ref.beam_indices[row, :n]
        raw = torch.stack([torch.log_softmax(ref.logits[t][beams[t]], -1) for t in range(n)])  # [n, V]
        tokens = out.token_ids[row, :n]
        torch.testing.assert_close(
            out.token_logprobs[row, :n], raw.gather(1, tokens[:, None])[:, 0], atol=1e-4, rtol=0
        )
        entropy = -(raw.exp() * raw).sum(-1)
        torch.testing.assert_close(out.entropies[row, :n], entropy, atol=1e-4, rtol=0)
        torch.testing.assert_close(out.top1_probs[row, :n], raw.max(-1).values.exp(), atol=1e-4, rtol=0)
        k = out.topk_logprobs.shape[-1]
        torch.testing.assert_close(out.topk_logprobs[row, :n], raw.topk(k, -1).values, atol=1e-4, rtol=0)
        processed = out.token_processed_logprobs[row, :n]
        torch.testing.assert_close(processed, transition[row, :n], atol=1e-4, rtol=0)
        # the documented relation: sum of transition scores / length ** length_penalty == sequence_score
        total = float(processed.double().sum()) / n**length_penalty
        assert total == pytest.approx(float(out.sequence_scores[row]), rel=1e-4, abs=1e-6)
        assert bool(out.finished[row]) == (int(tokens[-1]) == model.generation_config.eos_token_id)


@pytest.mark.parametrize("kind,engine", CASES)
def test_beam_search_equals_generate(kind, engine):
    model = tiny(kind)
    input_ids, mask = inputs(model.config.vocab_size)
    ended = 0
    for length_penalty, early_stopping in SETTINGS:
        opts = DecodeOptions(
            STEPS,
            engine=engine,
            num_beams=4,
            num_return_sequences=4,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        out = beam_search(model, input_ids, mask, opts)
        ref = reference(
            model,
            input_ids,
            mask,
            4,
            4,
            max_new_tokens=STEPS,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        assert_matches(model, out, ref, length_penalty)
        ended += int(out.finished.sum())
    assert 0 < ended < len(SETTINGS) * out.finished.numel()  # some candidates end at EOS, some at the length


def test_fewer_returned_than_beams_and_batch_invariance():
    model = tiny("bart")
    input_ids, mask = inputs(model.config.vocab_size, batch=4)
    opts = DecodeOptions(STEPS, num_beams=6, num_return_sequences=3, length_penalty=0.7)
    out = beam_search(model, input_ids, mask, opts)
    assert out.token_ids.shape[0] == 12
    ref = reference(model, input_ids, mask, 6, 3, max_new_tokens=STEPS, length_penalty=0.7)
    assert_matches(model, out, ref, 0.7)
    for b in range(4):  # each source alone: the same candidates and numbers
        width = int(mask[b].sum())
        alone = beam_search(model, input_ids[b : b + 1, :width], mask[b : b + 1, :width], opts)
        for r in range(3):
            row = b * 3 + r
            n = int(out.num_tokens[row])
            assert int(alone.num_tokens[r]) == n
            assert alone.token_ids[r, :n].tolist() == out.token_ids[row, :n].tolist()
            torch.testing.assert_close(
                alone.token_logprobs[r, :n], out.token_logprobs[row, :n], atol=1e-4, rtol=0
            )
            torch.testing.assert_close(
                alone.sequence_scores[r], out.sequence_scores[row], atol=1e-4, rtol=1e-4
            )


def test_real_style_generation_config():
    """The tiny BART of the family zoo carries BART-large-CNN's config: forced BOS/EOS,
    no_repeat_ngram_size 3, min_length, length_penalty 2.0, early_stopping True."""
    model, tokenizer = make_family("bart")
    batch = tokenizer(
        ["read the file and return the value", "count items", "open a new file and write the data"],
        return_tensors="pt",
        padding=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = beam_search(
            model,
            batch["input_ids"],
            batch["attention_mask"],
            DecodeOptions(num_beams=4, num_return_sequences=4),
        )
        ref = reference(model, batch["input_ids"], batch["attention_mask"], 4, 4)
    assert model.generation_config.length_penalty == 2.0
    assert_matches(model, out, ref, 2.0)
    assert (out.processor_changed_steps > 0).any()  # the processors took part


def test_one_beam_is_greedy_and_options_are_checked():
    model = tiny("t5")
    input_ids, mask = inputs(model.config.vocab_size)
    greedy = greedy_decode(model, input_ids, mask, DecodeOptions(STEPS))
    beam = beam_search(model, input_ids, mask, DecodeOptions(STEPS, num_beams=1))
    assert beam.token_ids.tolist() == greedy.token_ids.tolist()
    torch.testing.assert_close(beam.token_logprobs, greedy.token_logprobs, atol=1e-4, rtol=0)
    assert greedy.sequence_scores is None
    for bad, match in [
        (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
        (dict(num_beams=4, num_beam_groups=3), "divisible"),
        (dict(num_beams=4, diversity_penalty=1.0), "num_beam_groups > 1"),
        (dict(num_beams=4, num_samples=2), "cannot be combined"),
        (dict(num_beams=4, early_stopping="sometimes"), "early_stopping"),
    ]:
        with pytest.raises(ValueError, match=match):
            DecodeOptions(**bad)
