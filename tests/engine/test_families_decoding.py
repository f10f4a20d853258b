"""``greedy_decode`` on every seq2seq family of the zoo against ``generate(do_sample=False, num_beams=1)``.

With the model's own generation config (forced BOS/EOS, ``no_repeat_ngram_size``, ``min_length``,
``bad_words_ids``... as its real checkpoints carry them, :mod:`tests.helpers.families`): the same tokens;
``token_logprobs`` / ``token_entropies`` those of the raw ``output_logits``; ``token_processed_logprobs``
those of ``compute_transition_scores(sequences, scores, normalize_logits=True)``. With the processors
switched off (``use_generation_config=False``): the tokens and statistics of ``generate`` on a copy whose
generation config keeps only the special tokens. Per-token values within 1e-4.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from t5score.engine.decode import greedy_decode
from t5score.engine.options import DecodeOptions
from tests.helpers.families import FAMILIES, MISSING, make_family, processor_free

SOURCES = [
    "read the file and return the value",
    "count items",
    "open a new file , write the data and close it if it is not none",
    "the data of the file",
]
STEPS = 10
BUILT = [name for name in FAMILIES if name not in MISSING]


def generated(model, batch) -> dict:
    """``generate``'s tokens (after the start token), raw log-probabilities, processed ones."""
    with torch.no_grad():
        out = model.generate(
            **batch,
            do_sample=False,
            num_beams=1,
            max_new_tokens=STEPS,
            output_logits=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
        processed = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    return {
        "tokens": out.sequences[:, 1:],
        "logp": torch.log_softmax(torch.stack(out.logits, 1).double(), -1),  # [B, T, V]
        "processed": processed.double(),  # [B, T]
    }


def check(name: str, out, ref: dict, pad: int, processed: bool) -> None:
    """``out`` (``greedy_decode``) against ``ref`` (:func:`generated`): tokens, raw and processed values."""
    tokens, logp = ref["tokens"], ref["logp"]
    for row in range(len(SOURCES)):
        n = int(out.num_tokens[row])
        assert n <= tokens.shape[1], (name, row)
        assert out.token_ids[row, :n].tolist() == tokens[row, :n].tolist(), (name, row)
        if n < tokens.shape[1]:  # t5score stopped at EOS: generate pads from there on (or stopped too)
            assert set(tokens[row, n:].tolist()) <= {pad}, (name, row)
        lp = logp[row, :n]
        want = lp.gather(-1, tokens[row, :n, None])[:, 0]
        torch.testing.assert_close(out.token_logprobs[row, :n].double(), want, atol=1e-4, rtol=1e-5)
        ent = -(lp.exp() * lp).nan_to_num().sum(-1)
        torch.testing.assert_close(out.entropies[row, :n].double(), ent, atol=1e-4, rtol=1e-5)
        if processed:
            got = out.token_processed_logprobs[row, :n].double()
            torch.testing.assert_close(got, ref["processed"][row, :n], atol=1e-4, rtol=1e-5)


@pytest.fixture(scope="module", params=BUILT)
def family(request):
    model, tok = make_family(request.param)
    batch = tok(SOURCES, return_tensors="pt", padding=True)
    return request.param, model, batch


def test_with_the_models_generation_config(family):
    name, model, batch = family
    ref = generated(model, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the one line naming beam settings greedy decoding ignores)
        out = greedy_decode(model, batch.input_ids, batch.attention_mask, DecodeOptions(max_new_tokens=STEPS))
    check(name, out, ref, model.generation_config.pad_token_id, processed=True)


def test_with_processors_switched_off(family):
    name, model, batch = family
    plain = processor_free(model)
    ref = generated(plain, batch)
    opts = DecodeOptions(max_new_tokens=STEPS, use_generation_config=False)
    out = greedy_decode(model, batch.input_ids, batch.attention_mask, opts)
    check(name, out, ref, model.generation_config.pad_token_id, processed=False)
