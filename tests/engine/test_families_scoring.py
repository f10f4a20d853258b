"""``score_pairs`` on every seq2seq family of the zoo against the model's own forward on each pair alone.

Reference per pair: ``model(input_ids, decoder_input_ids=[start] + labels[:-1], use_cache=False)`` with no
padding (labels as ``score_pairs`` builds them: the tokenizer's target ids, the first EOS appended when
missing), log-softmax in float64 gathered at the labels. ``score_pairs`` runs batches of mixed target
lengths (and mixed source lengths) under several token budgets, with ``engine="auto"`` and ``"hf"``.
Two families cannot be scored by the plain batched forward (FSMT sees future tokens without its
``input_ids``; ProphetNet's values depend on the padded target length): they are scored exactly another
way (:mod:`t5score.engine.hf`), and a test shows the plain way would be wrong, so the guard can fail.
"""

from __future__ import annotations

import pytest
import torch

import t5score.engine.hf as hf
from t5score.engine.forced import score_pairs
from t5score.engine.tokens import tokenize
from tests.helpers.families import FAMILIES, MISSING, make_family

SOURCES = [
    "read the file and return the value",
    "count items",
    "open a new file , write the data and close it if it is not none",
]
TARGETS = [
    "return the value",
    "count the items in the list and return the number",
    "close",
    "",
    "read file",
    "write data to the file and close the file then return true",
    "it",
]
INDEX = [0, 1, 2, 2, 0, 2, 1]
BUILT = [name for name in FAMILIES if name not in MISSING]


def first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def reference(model, tok, src: str, tgt: str) -> tuple[list[int], torch.Tensor]:
    """Labels and per-token log-probabilities of one pair from the model's own forward (no padding)."""
    gen = model.generation_config
    eos = first(gen.eos_token_id)
    start = gen.decoder_start_token_id if gen.decoder_start_token_id is not None else gen.bos_token_id
    (src_ids,), _ = tokenize(tok, [src], eos=eos)
    (labels,), _ = tokenize(tok, [tgt], target=True, eos=eos)
    x = torch.tensor([src_ids])
    y = torch.tensor([labels])
    decoder_input_ids = torch.tensor([[start] + labels[:-1]])
    with torch.no_grad():
        out = model(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
        )
    logp = torch.log_softmax(out.logits[0].double(), -1)
    return labels, logp.gather(-1, y[0, :, None])[:, 0]


@pytest.fixture(scope="module", params=BUILT)
def family(request):
    model, tok = make_family(request.param)
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    return request.param, model, tok, refs


@pytest.mark.parametrize("engine", ["auto", "hf"])
@pytest.mark.parametrize("budget", [8192, 40])
def test_sums_equal_forward_on_each_pair(family, engine, budget):
    name, model, tok, refs = family
    scores = score_pairs(
        model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine=engine, max_tokens_per_batch=budget
    )
    for s, (labels, logps) in zip(scores, refs, strict=True):
        assert s.token_ids == labels, name
        got = torch.tensor(s.token_logprobs, dtype=torch.float64)
        torch.testing.assert_close(got, logps, atol=1e-4, rtol=1e-5, msg=lambda m: f"{name}: {m}")
        total = float(logps.sum())
        assert s.sum_logprob == pytest.approx(total, rel=1e-4, abs=1e-6), name


def test_zoo_is_complete():
    """Every family of the brief is in the zoo and builds with this transformers version."""
    assert not MISSING, MISSING
    assert len(FAMILIES) == 23


@pytest.mark.parametrize(
    "name, guard", [("fsmt", "CAUSAL_FROM_INPUT_IDS"), ("prophetnet", "LENGTH_DEPENDENT")]
)
def test_plain_batched_forward_would_be_wrong(name, guard, monkeypatch):
    """Without its guard in :mod:`t5score.engine.hf`, the family's scores differ from its own forward."""
    model, tok = make_family(name)
    refs = [reference(model, tok, SOURCES[i], t) for i, t in zip(INDEX, TARGETS, strict=True)]
    monkeypatch.setattr(hf, guard, frozenset())
    scores = score_pairs(model, tok, SOURCES, TARGETS, pair_source_index=INDEX, engine="hf")
    worst = max(abs(s.sum_logprob - float(r[1].sum())) for s, r in zip(scores, refs, strict=True))
    assert worst > 0.01, f"{name}: the plain forward is exact now; drop the guard {guard}"


@pytest.mark.parametrize("name", [n for n in BUILT if n not in ("t5", "flan-t5", "mt5")])
def test_fast_engine_refused_for_other_families(name):
    """engine="t5" is refused with one ValueError for every family the fast kernels do not reproduce."""
    model, tok = make_family(name)
    with pytest.raises(ValueError, match=type(model).__name__):
        score_pairs(model, tok, SOURCES[:1], TARGETS[:1], engine="t5")
