"""score_pairs' ``strip_bos`` and ``unscored_prefix`` against Hugging Face forward passes with labels.

``strip_bos`` is lm-evaluation-harness's target format for seq2seq models (no ``<s>`` fed or scored);
``unscored_prefix`` a decoder-side prompt fed to the decoder but left out of the score.
"""

from __future__ import annotations

import pytest
import torch

from t5score.engine.forced import score_pairs
from t5score.engine.forced_inputs import prefix_lengths
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

INIT = {"t5": 1.0, "t5v1.1": 0.5, "bart": 5.0}
SOURCES = ["read the file and return the value", "count items"]
PROMPT = "that is,"
TARGETS = ["that is, return the value", "that is, count the items in the list", "that is,"]
INDEX = [0, 1, 1]


@pytest.fixture(scope="module", params=list(INIT))
def setup(request, tmp_path_factory):
    kind = request.param
    tok = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), kind)
    return kind, make_tiny_model(kind, init_scale=INIT[kind]), tok


def forward(model, tok, src: str, labels: list[int]) -> torch.Tensor:
    """Log-probability of each label given ``src``: one forward pass with these labels (float64)."""
    x = tok(src, return_tensors="pt")
    y = torch.tensor([labels])
    with torch.no_grad():
        logits = model(**x, labels=y).logits[0].double()
    return torch.log_softmax(logits, -1).gather(-1, y[0, :, None])[:, 0]


@pytest.mark.parametrize("include_eos", [True, False])
def test_strip_bos_removes_bos_from_the_decoder_input(setup, include_eos):
    kind, model, tok = setup
    got = score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, strip_bos=True, include_eos=include_eos
    )
    kept = score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, include_bos=False, include_eos=include_eos
    )
    for s, k, src, tgt in zip(got, kept, (SOURCES[i] for i in INDEX), TARGETS, strict=True):
        labels = tok(text_target=tgt).input_ids
        if kind == "bart":
            assert labels[0] == tok.bos_token_id
            labels = labels[1:]  # no <s>: the decoder starts from decoder_start_token_id alone
        ref = forward(model, tok, src, labels)
        end = None if include_eos else -1
        assert s.token_ids == labels[:end]
        assert s.sum_logprob == pytest.approx(float(ref[:end].sum()), rel=1e-5, abs=1e-4)
        if kind == "bart":  # not the same as leaving <s> in the input unscored: the context differs
            assert s.token_ids == k.token_ids
            assert abs(s.token_logprobs[0] - k.token_logprobs[0]) > 1e-3
        else:  # no <s> to strip: the same scores
            assert s == k


@pytest.mark.parametrize("include_bos", [True, False])
def test_unscored_prefix_is_fed_but_not_scored(setup, include_bos):
    kind, model, tok = setup
    got = score_pairs(
        model,
        tok,
        SOURCES,
        TARGETS,
        pair_source_index=INDEX,
        unscored_prefix=PROMPT,
        include_bos=include_bos,
    )
    n_prompt = len(tok(PROMPT, add_special_tokens=False).input_ids)
    assert n_prompt == 3
    for s, src, tgt in zip(got, (SOURCES[i] for i in INDEX), TARGETS, strict=True):
        labels = tok(text_target=tgt).input_ids
        ref = forward(model, tok, src, labels)  # the prompt is in the decoder input
        bos = 1 if kind == "bart" else 0
        keep = ([0] if bos and include_bos else []) + list(range(bos + n_prompt, len(labels)))
        assert s.token_ids == [labels[i] for i in keep]
        assert s.num_tokens == len(keep)
        assert s.sum_logprob == pytest.approx(float(ref[keep].sum()), rel=1e-5, abs=1e-4)
        assert s.token_logprobs == pytest.approx(ref[keep].tolist(), rel=1e-4, abs=1e-5)
    assert got[2].token_ids[-1] == model.config.eos_token_id  # a target that is all prompt: EOS only


def test_prefix_lengths_count_the_common_start_only(setup):
    kind, _, tok = setup
    eos, bos = tok.eos_token_id, (tok.bos_token_id if kind == "bart" else None)
    targets = ["that is, read", "that was, read", "read that is,", "that is,"]
    ids = [tok(text_target=t).input_ids for t in targets]
    assert prefix_lengths(tok, PROMPT, ids, bos=bos, eos=eos) == [3, 1, 0, 3]
    assert prefix_lengths(tok, PROMPT, [ids[0][:2] + [eos]], bos=bos, eos=eos) == [2 - (bos is not None)]
