"""One tokenisation for decoding and scoring: :func:`t5score.engine.tokens.tokenize` against the tokenizer's
own ``truncation=True`` output (T5 and BART word-level tokenizers, and the shipped T5 SentencePiece one),
and :func:`pad_right` against ``tokenizer.pad``."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from t5score.engine.modeling import resolve_model_path
from t5score.engine.tokens import pad_right, tokenize
from tests.helpers.tiny_models import make_tiny_tokenizer

TEXTS = [
    "read the file and return the value",
    "count items",
    "",
    "open a new file , write the data and close it if it is not none",
    "def add ( a , b ) : return a + b",
]


@pytest.fixture(scope="module", params=["t5", "bart", "default"])
def tokenizer(request, tmp_path_factory):
    if request.param == "default":
        return AutoTokenizer.from_pretrained(resolve_model_path("default"))
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), request.param)


def _reference(tokenizer, texts, target: bool, max_length: int | None):
    call = {"text_target": texts} if target else {"text": texts}
    full = tokenizer(**call)["input_ids"]
    if max_length is None:
        return full, [False] * len(texts)
    short = tokenizer(**call, truncation=True, max_length=max_length)["input_ids"]
    return short, [len(f) > max_length for f in full]


@pytest.mark.parametrize("target", [False, True])
@pytest.mark.parametrize("max_length", [None, 2, 3, 5, 8, 200])
def test_tokenize_is_the_tokenizers_own_truncation(tokenizer, target, max_length):
    ids, truncated = tokenize(
        tokenizer, TEXTS, target=target, max_length=max_length, eos=tokenizer.eos_token_id
    )
    want_ids, want_truncated = _reference(tokenizer, TEXTS, target, max_length)
    assert ids == [list(x) for x in want_ids]
    assert truncated == want_truncated
    if max_length in (3, 5):
        assert any(truncated) and not all(truncated), "the texts should straddle the limit"
    assert all(x[-1] == tokenizer.eos_token_id for x in ids), "EOS kept at the end"


def test_targets_get_an_eos_when_the_tokenizer_adds_none():
    class NoSpecials:
        def __call__(self, text=None, text_target=None, verbose=True):
            return {"input_ids": [[5, 6, 7] for _ in (text_target or text)]}

    ids, truncated = tokenize(NoSpecials(), ["a", "b"], target=True, max_length=3, eos=1)
    assert ids == [[5, 6, 1], [5, 6, 1]] and truncated == [True, True]
    ids, truncated = tokenize(NoSpecials(), ["a"], target=False, max_length=2, eos=1)
    assert ids == [[5, 6]] and truncated == [True]


def test_pad_right_is_tokenizer_pad(tokenizer):
    rows = tokenizer(TEXTS)["input_ids"]
    ids, mask = pad_right(rows, tokenizer.pad_token_id, "cpu")
    want = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
    assert tokenizer.padding_side == "right"
    assert torch.equal(ids, want["input_ids"]) and torch.equal(mask, want["attention_mask"])
    assert ids.dtype == want["input_ids"].dtype == torch.long
