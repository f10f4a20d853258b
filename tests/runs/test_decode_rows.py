"""One encoder pass per batch: decoding, its samples and the reference scores share the encoder's output.

References: ``score_pairs`` that tokenizes and encodes the sources itself, and a Hugging Face forward pass
with ``labels`` (through the CLI test of ``ref_logprob``); the number of encoder calls is counted.
"""

from __future__ import annotations

import pytest
import torch

from t5score.engine.forced import score_pairs
from t5score.records import SourceRow
from t5score.runs.decode_rows import DecodeOptions, decode_rows, tokenize_sources
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

SOURCES = [
    "read the file and return the value",
    "count items",
    "open a new file , write the data and close it",
    "count items",
]
TARGETS = ["return the value", "count the items in the list", "close the file", "return the number"]


@pytest.fixture(scope="module", params=["t5", "t5v1.1", "bart"])
def model_and_tokenizer(request, tmp_path_factory):
    model = make_tiny_model(request.param, init_scale=2.0).eval()
    return model, make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), request.param)


def _encode(model, tokenizer, texts):
    ids, mask, _ = tokenize_sources(tokenizer, texts, None, torch.device("cpu"))
    with torch.inference_mode():
        return model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state, mask


def test_given_encoder_states_score_like_encoding_here(model_and_tokenizer):
    model, tok = model_and_tokenizer
    hidden, mask = _encode(model, tok, SOURCES)  # padded to the longest source; a duplicate source text
    want = score_pairs(model, tok, SOURCES, TARGETS, top_k=2)
    got = score_pairs(model, tok, SOURCES, TARGETS, top_k=2, encoder_states=(hidden, mask))
    for a, b in zip(got, want, strict=True):
        assert a.token_ids == b.token_ids and a.num_tokens == b.num_tokens and a.topk_ids == b.topk_ids
        torch.testing.assert_close(
            torch.tensor(a.token_logprobs), torch.tensor(b.token_logprobs), rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            torch.tensor(a.token_entropies), torch.tensor(b.token_entropies), rtol=1e-5, atol=1e-5
        )


def test_given_encoder_states_are_checked(model_and_tokenizer):
    model, tok = model_and_tokenizer
    hidden, mask = _encode(model, tok, SOURCES)
    with pytest.raises(ValueError, match="encoder_states must be"):
        score_pairs(model, tok, SOURCES[:3], TARGETS[:3], encoder_states=(hidden, mask))
    with pytest.raises(ValueError, match="right-padded"):
        score_pairs(model, tok, SOURCES, TARGETS, encoder_states=(hidden, mask.flip(1)))
    with pytest.raises(ValueError, match="reuse_encoder=True"):
        score_pairs(model, tok, SOURCES, TARGETS, encoder_states=(hidden, mask), reuse_encoder=False)


def _count_encoder_calls(model):
    calls = []
    handle = model.get_encoder().register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("num_samples", [0, 3])
def test_decode_rows_runs_the_encoder_once_per_batch(model_and_tokenizer, num_samples):
    model, tok = model_and_tokenizer
    rows = [SourceRow(i, str(i), s, target=t) for i, (s, t) in enumerate(zip(SOURCES, TARGETS, strict=True))]
    options = DecodeOptions(max_new_tokens=6, num_samples=num_samples)
    calls, handle = _count_encoder_calls(model)
    try:
        records = decode_rows(model, tok, rows, options, score_references=True)
    finally:
        handle.remove()
    assert len(calls) == 1  # decoding, every sample and the reference scores: one encoder pass
    assert len(records) == len(rows) * max(num_samples, 1)
    if num_samples == 0:  # the reference scores equal score_pairs encoding the sources itself
        want = score_pairs(model, tok, SOURCES, TARGETS, top_k=1)
        for rec, sc in zip(records, want, strict=True):
            assert rec.ref_num_tokens == sc.num_tokens
            assert rec.ref_logprob == pytest.approx(sc.sum_logprob, rel=1e-5, abs=1e-5)
            assert rec.ref_top1_probs == pytest.approx(sc.top1_probs, rel=1e-5, abs=1e-6)
    else:  # sampling: no reference scores (as before)
        assert all(r.ref_logprob is None for r in records)
