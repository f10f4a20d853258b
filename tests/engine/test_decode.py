"""Parity of the decoding engine with Hugging Face ``generate`` on T5, T5 v1.1 and BART configs."""

from __future__ import annotations

import pytest
import torch

from t5score.engine.decode import greedy_decode
from t5score.engine.options import DecodeOptions, Sampling
from tests.helpers.tiny_models import KINDS, make_tiny_model


def _inputs(seed: int = 1, batch: int = 8, vocab: int = 100):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, vocab, (batch, 11), generator=g)
    mask = torch.ones_like(input_ids)
    for row, length in enumerate([11, 7, 3, 11, 9, 5, 11, 2][:batch]):
        mask[row, length:] = 0  # padded rows in the batch
    return input_ids, mask


def _hf_generate(model, input_ids, mask, max_new_tokens):
    out = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        output_logits=True,
        return_dict_in_generate=True,
    )
    logits = torch.stack(out.logits, dim=1)  # [B, T, V]
    transition = model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
    return out.sequences[:, 1:], logits, transition  # drop the decoder start token


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_matches_generate(kind):
    model = make_tiny_model(kind)
    input_ids, mask = _inputs(vocab=model.config.vocab_size)
    seq, hf_logits, hf_scores = _hf_generate(model, input_ids, mask, 16)
    captured = []
    out = greedy_decode(
        model,
        input_ids,
        mask,
        DecodeOptions(max_new_tokens=16),
        logits_sink=lambda s, rows, lg: captured.append((s, rows, lg)),
    )
    eos = model.config.eos_token_id
    assert out.finished.any() and not out.finished.all(), "test model should stop some rows early"
    full = torch.zeros_like(hf_logits)
    for step, rows, logits in captured:
        full[rows, step] = logits
    for b in range(input_ids.shape[0]):
        n = int(out.num_tokens[b])
        hf_tokens = seq[b].tolist()
        hf_n = hf_tokens.index(eos) + 1 if eos in hf_tokens else len(hf_tokens)
        assert n == hf_n
        assert out.token_ids[b, :n].tolist() == hf_tokens[:n]
        assert bool(out.finished[b]) == (eos in hf_tokens)
        scale = hf_logits[b, :n].abs().max()
        torch.testing.assert_close(full[b, :n] / scale, hf_logits[b, :n] / scale, rtol=0, atol=1e-5)
        torch.testing.assert_close(out.token_logprobs[b, :n], hf_scores[b, :n], rtol=1e-5, atol=1e-5)
        # statistics pinned against an independent softmax of HF's logits
        p = torch.softmax(hf_logits[b, :n].double(), -1)
        entropy = -(p * p.clamp_min(1e-300).log()).sum(-1)
        torch.testing.assert_close(out.entropies[b, :n].double(), entropy, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.top1_probs[b, :n].double(), p.max(-1).values, rtol=1e-5, atol=1e-6)
        top = p.log().topk(5, dim=-1)
        assert out.topk_ids[b, :n].tolist() == top.indices.tolist()
        torch.testing.assert_close(out.topk_logprobs[b, :n].double(), top.values, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_batch_invariance(kind):
    model = make_tiny_model(kind, seed=3, init_scale=2.0)
    input_ids, mask = _inputs(seed=2, vocab=model.config.vocab_size)
    together = greedy_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=12))
    assert len({tuple(r) for r in together.token_ids.tolist()}) > 3, "rows should differ"
    for b in range(input_ids.shape[0]):
        keep = mask[b].bool()
        alone = greedy_decode(
            model, input_ids[b : b + 1, keep], mask[b : b + 1, keep], DecodeOptions(max_new_tokens=12)
        )
        n = int(together.num_tokens[b])
        assert int(alone.num_tokens[0]) == n
        assert alone.token_ids[0, :n].tolist() == together.token_ids[b, :n].tolist()
        torch.testing.assert_close(
            alone.token_logprobs[0, :n], together.token_logprobs[b, :n], atol=1e-4, rtol=0
        )
        torch.testing.assert_close(alone.entropies[0, :n], together.entropies[b, :n], atol=1e-4, rtol=0)


@pytest.mark.parametrize("drop_finished,eos_check_every", [(True, 1), (True, 3), (False, 5)])
def test_engine_options_keep_parity(drop_finished, eos_check_every):
    model = make_tiny_model("t5", seed=5)
    input_ids, mask = _inputs(seed=4, vocab=model.config.vocab_size)
    ref = greedy_decode(model, input_ids, mask, DecodeOptions(max_new_tokens=14))
    got = greedy_decode(
        model,
        input_ids,
        mask,
        DecodeOptions(max_new_tokens=14, drop_finished=drop_finished, eos_check_every=eos_check_every),
    )
    assert torch.equal(ref.num_tokens, got.num_tokens) and torch.equal(ref.finished, got.finished)
    assert torch.equal(ref.token_ids, got.token_ids)
    # dropping finished rows changes the batch shape of later steps, hence float32 rounding: batch-invariance tolerance
    torch.testing.assert_close(ref.token_logprobs, got.token_logprobs, atol=1e-4, rtol=0)
    torch.testing.assert_close(ref.entropies, got.entropies, atol=1e-4, rtol=0)


def test_sampling_is_seeded_and_scores_the_drawn_tokens():
    model = make_tiny_model("t5v1.1", seed=1, init_scale=2.0)
    input_ids, mask = _inputs(seed=7, vocab=model.config.vocab_size)
    options, sampling = DecodeOptions(max_new_tokens=10), Sampling(temperature=1.5, top_p=0.9, seed=11)
    a = greedy_decode(model, input_ids, mask, options, sampling=sampling)
    b = greedy_decode(model, input_ids, mask, options, sampling=sampling)
    assert torch.equal(a.token_ids, b.token_ids)
    greedy = greedy_decode(model, input_ids, mask, options)
    assert not torch.equal(a.token_ids, greedy.token_ids)
    # token_logprobs are those of the drawn tokens under the raw model: check with a forward pass with labels
    start = model.config.decoder_start_token_id
    for row in range(input_ids.shape[0]):
        n = int(a.num_tokens[row])
        labels = a.token_ids[row : row + 1, :n]
        dec_in = torch.cat([torch.tensor([[start]]), labels[:, :-1]], dim=1)
        with torch.no_grad():
            logits = model(
                input_ids=input_ids[row : row + 1],
                attention_mask=mask[row : row + 1],
                decoder_input_ids=dec_in,
            ).logits
        ref = torch.log_softmax(logits, -1)[0].gather(-1, labels[0, :, None])[:, 0]
        torch.testing.assert_close(a.token_logprobs[row, :n], ref, atol=1e-4, rtol=1e-4)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_new_tokens"):
        DecodeOptions(max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        Sampling(temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        Sampling(top_p=0)
