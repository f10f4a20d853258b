"""t5score's scores beside the scorers users bring numbers from, each re-implemented here from its
published code and run on the tiny models (T5, T5 v1.1, BART):

* BARTScore (neulab/BARTScore): ``bart_score.py`` ``BARTScorer.score``; the directions, ``avg_f`` and
  ``harm_f`` of ``SUM/score.py`` (several references: P and R averaged first) and ``D2T/score.py``
  (several references: the best one); the prompt variants of ``SUM/score.py`` (``suffix_prompt`` on the
  encoder side, ``prefix_prompt`` on the decoder side).
* T5Score (qinyiwei/T5Score): ``evaluation/t5_score.py`` ``T5Scorer.score`` (the same computation as
  ``BARTScorer.score``) and ``evaluation/score.py`` ``run_t5score`` (``t5score_ref`` ``ref`` and ``src``).
* lm-evaluation-harness (EleutherAI): ``lm_eval/api/model.py`` ``TemplateLM._encode_pair`` and
  ``loglikelihood``, ``lm_eval/models/huggingface.py`` ``HFLM._loglikelihood_tokens`` (seq2seq backend).
* CTranslate2 ``Translator.score_batch``, the library itself (when installed; T5 only: its converter
  fails on BART configs of transformers 5).

Hugging Face's own loss with labels is the reference of tests/engine/test_forced.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t5score.engine.forced import score_pairs
from t5score.scoring.directions import score_directions
from t5score.scoring.options import ScoreOptions
from tests.helpers.tiny_models import make_tiny_model, make_tiny_model_dir, make_tiny_tokenizer

INIT = {"t5": 1.0, "t5v1.1": 0.5, "bart": 5.0}
SRCS = ["read the file and return the value", "count items in the list", "open a new file"]
HYPS = ["return the value", "count the items", "open the file and write the data"]
REFS = [  # the same number per row, as BARTScore's multi-reference code requires
    ["return a value", "read the value of the file"],
    ["count items", "the number of items in a list"],
    ["open a file", "make a new file"],
]
PROMPT = (
    "that is to say"  # BARTScore's prompts are phrases like this one ("That is to say", "In other words")
)


@pytest.fixture(scope="module", params=list(INIT))
def setup(request, tmp_path_factory):
    kind = request.param
    tok = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), kind)
    return kind, make_tiny_model(kind, init_scale=INIT[kind]), tok


def bartscorer_score(model, tok, srcs: list[str], tgts: list[str], batch_size: int = 4) -> list[float]:
    """neulab/BARTScore ``bart_score.py`` ``BARTScorer.score`` (T5Score's ``T5Scorer.score`` is the same
    code): padded batches of the tokenizer's own encoding of both sides, ``NLLLoss(ignore_index=pad)`` on
    ``LogSoftmax`` of the logits, summed per row and divided by the target's attention-mask length."""
    loss_fct = torch.nn.NLLLoss(reduction="none", ignore_index=model.config.pad_token_id)
    lsm = torch.nn.LogSoftmax(dim=1)
    score_list = []
    for i in range(0, len(srcs), batch_size):
        src_list, tgt_list = srcs[i : i + batch_size], tgts[i : i + batch_size]
        with torch.no_grad():
            encoded_src = tok(src_list, max_length=1024, truncation=True, padding=True, return_tensors="pt")
            encoded_tgt = tok(tgt_list, max_length=1024, truncation=True, padding=True, return_tensors="pt")
            tgt_tokens = encoded_tgt["input_ids"]
            tgt_len = encoded_tgt["attention_mask"].sum(dim=1)
            output = model(
                input_ids=encoded_src["input_ids"],
                attention_mask=encoded_src["attention_mask"],
                labels=tgt_tokens,
            )
            logits = output.logits.view(-1, model.config.vocab_size)
            loss = loss_fct(lsm(logits), tgt_tokens.view(-1)).view(tgt_tokens.shape[0], -1)
            loss = loss.sum(dim=1) / tgt_len
            score_list += [-x.item() for x in loss]
    return score_list


def prefix_prompt(lines: list[str], p: str) -> list[str]:
    """BARTScore ``SUM/score.py``: the decoder-side prompt."""
    return [p + ", " + x for x in lines]


def suffix_prompt(lines: list[str], p: str) -> list[str]:
    """BARTScore ``SUM/score.py``: the encoder-side prompt."""
    return [x + " " + p + "," for x in lines]


def ours(model, tok, **options) -> dict[str, list[float]]:
    directions = ("src->hyp", "hyp->src", "ref->hyp", "hyp->ref", "F", "harm_F")
    out = score_directions(
        model,
        tok,
        HYPS,
        sources=SRCS,
        references=REFS,
        options=ScoreOptions(directions=directions, **options),
    )
    return {d: out[d].scores for d in directions}


def bartscore_sum(model, tok, srcs, refs, hyps) -> dict[str, np.ndarray]:
    """BARTScore ``SUM/score.py`` (multi_ref): ref_hypo and hypo_ref averaged over the references, then
    ``avg_f = (ref_hypo + hypo_ref) / 2`` and ``harm_f = (ref_hypo * hypo_ref) / (ref_hypo + hypo_ref)``."""
    ref_num = len(refs[0])
    src_hypo = np.array(bartscorer_score(model, tok, srcs, hyps))
    ref_hypo, hypo_ref = np.zeros(len(hyps)), np.zeros(len(hyps))
    for i in range(ref_num):
        ref_list = [x[i] for x in refs]
        ref_hypo += np.array(bartscorer_score(model, tok, ref_list, hyps))
        hypo_ref += np.array(bartscorer_score(model, tok, hyps, ref_list))
    ref_hypo, hypo_ref = ref_hypo / ref_num, hypo_ref / ref_num
    avg_f = (ref_hypo + hypo_ref) / 2
    harm_f = (ref_hypo * hypo_ref) / (ref_hypo + hypo_ref)
    return {"src->hyp": src_hypo, "ref->hyp": ref_hypo, "hyp->ref": hypo_ref, "F": avg_f, "harm_F": harm_f}


def test_bartscore_sum_directions_and_harm_f(setup):
    _, model, tok = setup
    expected = bartscore_sum(model, tok, SRCS, REFS, HYPS)
    got = ours(model, tok, aggregate="mean")
    for direction, values in expected.items():
        assert got[direction] == pytest.approx(values.tolist(), rel=1e-5), direction
    # harm_f is P * R / (P + R) as BARTScore computes it: half the harmonic mean, not 2PR / (P + R)
    p, r = np.array(got["ref->hyp"]), np.array(got["hyp->ref"])
    assert got["harm_F"] == pytest.approx((p * r / (p + r)).tolist(), rel=1e-9)
    assert got["harm_F"] != pytest.approx((2 * p * r / (p + r)).tolist(), rel=1e-3)


def test_bartscore_d2t_takes_the_best_reference(setup):
    """BARTScore ``D2T/score.py``: per row, ``ref_hypo = max``, ``hypo_ref = max``, ``avg_f`` and
    ``harm_f`` the max over references of the per-reference values."""
    _, model, tok = setup
    got = ours(model, tok, aggregate="max")
    for i, (hyp, refs) in enumerate(zip(HYPS, REFS, strict=True)):
        ref_hypo_scores = np.array(bartscorer_score(model, tok, refs, [hyp] * len(refs)))
        hypo_ref_scores = np.array(bartscorer_score(model, tok, [hyp] * len(refs), refs))
        avg_f = (0.5 * (ref_hypo_scores + hypo_ref_scores)).max()
        harm_f = (ref_hypo_scores * hypo_ref_scores / (ref_hypo_scores + hypo_ref_scores)).max()
        assert got["ref->hyp"][i] == pytest.approx(ref_hypo_scores.max(), rel=1e-5)
        assert got["hyp->ref"][i] == pytest.approx(hypo_ref_scores.max(), rel=1e-5)
        assert got["F"][i] == pytest.approx(avg_f, rel=1e-5)
        assert got["harm_F"][i] == pytest.approx(harm_f, rel=1e-5)


def test_t5score_ref_and_src_modes(setup):
    """T5Score ``evaluation/score.py`` ``run_t5score(scorer, mt, ref)`` returns ``(score(ref, mt),
    score(mt, ref))`` as (precision, recall); ``t5score_ref="src"`` passes the sources as ``ref``, so its
    recall is ``hyp->src``; ``*_F`` is their mean."""
    _, model, tok = setup
    got = ours(model, tok)
    src_precision = np.array(bartscorer_score(model, tok, SRCS, HYPS))
    src_recall = np.array(bartscorer_score(model, tok, HYPS, SRCS))
    assert got["src->hyp"] == pytest.approx(src_precision.tolist(), rel=1e-5)
    assert got["hyp->src"] == pytest.approx(src_recall.tolist(), rel=1e-5)
    src_f = (np.array(got["src->hyp"]) + np.array(got["hyp->src"])) / 2
    assert src_f.tolist() == pytest.approx(((src_precision + src_recall) / 2).tolist(), rel=1e-5)
    one_ref = [r[0] for r in REFS]
    out = score_directions(
        model, tok, HYPS, references=one_ref, options=ScoreOptions(directions=("ref->hyp", "hyp->ref", "F"))
    )
    ref_precision = np.array(bartscorer_score(model, tok, one_ref, HYPS))
    ref_recall = np.array(bartscorer_score(model, tok, HYPS, one_ref))
    assert out["F"].scores == pytest.approx(((ref_precision + ref_recall) / 2).tolist(), rel=1e-5)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_bartscore_prompt_variants(setup, side):
    """BARTScore ``SUM/score.py`` BARTScore-P: ``*_en`` scores ``suffix_prompt`` sources, ``*_de``
    ``prefix_prompt`` targets, the prompt's tokens counted in the mean; ``harm_f_en/de`` as without."""
    _, model, tok = setup
    got = ours(model, tok, **{f"{side}_prompt": PROMPT})
    if side == "encoder":
        src_hypo = bartscorer_score(model, tok, suffix_prompt(SRCS, PROMPT), HYPS)
        hypo_src = bartscorer_score(model, tok, suffix_prompt(HYPS, PROMPT), SRCS)
    else:
        src_hypo = bartscorer_score(model, tok, SRCS, prefix_prompt(HYPS, PROMPT))
        hypo_src = bartscorer_score(model, tok, HYPS, prefix_prompt(SRCS, PROMPT))
    assert got["src->hyp"] == pytest.approx(src_hypo, rel=1e-5)
    assert got["hyp->src"] == pytest.approx(hypo_src, rel=1e-5)
    ref_hypo, hypo_ref = np.zeros(len(HYPS)), np.zeros(len(HYPS))
    for i in range(len(REFS[0])):
        ref_list = [x[i] for x in REFS]
        if side == "encoder":
            ref_hypo += bartscorer_score(model, tok, suffix_prompt(ref_list, PROMPT), HYPS)
            hypo_ref += bartscorer_score(model, tok, suffix_prompt(HYPS, PROMPT), ref_list)
        else:
            ref_hypo += bartscorer_score(model, tok, ref_list, prefix_prompt(HYPS, PROMPT))
            hypo_ref += bartscorer_score(model, tok, HYPS, prefix_prompt(ref_list, PROMPT))
    ref_hypo, hypo_ref = ref_hypo / len(REFS[0]), hypo_ref / len(REFS[0])
    assert got["F"] == pytest.approx(((ref_hypo + hypo_ref) / 2).tolist(), rel=1e-5)
    assert got["harm_F"] == pytest.approx((ref_hypo * hypo_ref / (ref_hypo + hypo_ref)).tolist(), rel=1e-5)
    assert got["src->hyp"] != pytest.approx(ours(model, tok)["src->hyp"], rel=1e-3)  # the prompt matters


def test_decoder_prompt_left_out_of_the_score(setup):
    """``score_decoder_prompt=False``: the prompt is fed (the hypothesis's tokens are scored in its
    context) but its tokens are not counted: the mean over the positions after ``prompt + ','``."""
    kind, model, tok = setup
    got = ours(model, tok, decoder_prompt=PROMPT, score_decoder_prompt=False)
    n_prompt = len(tok(PROMPT + ",", add_special_tokens=False).input_ids)
    bos = 1 if kind == "bart" else 0
    for i, (src, hyp) in enumerate(zip(SRCS, HYPS, strict=True)):
        labels = tok(text_target=prefix_prompt([hyp], PROMPT)[0]).input_ids
        with torch.no_grad():
            logits = model(**tok(src, return_tensors="pt"), labels=torch.tensor([labels])).logits[0]
        logp = torch.log_softmax(logits.double(), -1).gather(-1, torch.tensor(labels)[:, None])[:, 0]
        keep = [0] * bos + list(range(bos + n_prompt, len(labels)))  # <s> scored (include_bos), prompt not
        assert got["src->hyp"][i] == pytest.approx(float(logp[keep].mean()), rel=1e-5)


def lm_eval_loglikelihood(model, tok, context: str, continuation: str) -> tuple[float, bool]:
    """lm-evaluation-harness, seq2seq backend: ``TemplateLM._encode_pair`` moves the context's trailing
    spaces to the continuation and encodes the context with the tokenizer's special tokens and the
    continuation with ``add_special_tokens=False``; ``HFLM._loglikelihood_tokens`` runs
    ``model(input_ids=context, attention_mask, labels=continuation)`` and sums the log-softmax of the
    continuation tokens (``is_greedy``: every token is the argmax)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    context_enc = tok.encode(context)
    continuation_enc = tok.encode(continuation, add_special_tokens=False)
    inp, cont = torch.tensor([context_enc]), torch.tensor([continuation_enc])
    with torch.no_grad():
        logits = torch.log_softmax(
            model(input_ids=inp, attention_mask=torch.ones_like(inp), labels=cont).logits, -1
        )
    logits = logits[0, : len(continuation_enc)]
    greedy = bool((logits.argmax(-1) == cont[0]).all())
    return float(logits.gather(-1, cont[0, :, None]).sum()), greedy


def test_lm_eval_loglikelihood(setup):
    """lm-eval's seq2seq loglikelihood is ``sum_logprob`` with ``include_eos=False`` and
    ``strip_bos=True`` (BART's ``<s>`` neither fed nor scored; a no-op for T5), given the context
    without its trailing spaces and the continuation with them."""
    kind, model, tok = setup
    pairs = [("read the file and return ", "the value"), ("count items", " in the list"), ("open a", " file")]
    contexts = [c.rstrip() for c, _ in pairs]
    continuations = [c[len(c.rstrip()) :] + x for c, x in pairs]
    got = score_pairs(model, tok, contexts, continuations, include_eos=False, strip_bos=True)
    unstripped = score_pairs(model, tok, contexts, continuations, include_eos=False, include_bos=False)
    for s, u, (context, continuation) in zip(got, unstripped, pairs, strict=True):
        expected, _ = lm_eval_loglikelihood(model, tok, context, continuation)
        assert s.sum_logprob == pytest.approx(expected, rel=1e-5)
        if kind == "bart":  # leaving <s> in the decoder input unscored is another number
            assert u.sum_logprob != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_ctranslate2_score_batch(tmp_path, kind):
    """CTranslate2's ``score_batch`` (source tokens as the tokenizer gives them, target tokens without the
    final EOS, which it appends and scores) gives t5score's per-token log-probabilities by default."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    folder = make_tiny_model_dir(tmp_path / kind, kind)
    try:
        ctranslate2.converters.TransformersConverter(str(folder)).convert(str(tmp_path / "ct2"), force=True)
    except AttributeError as err:  # CTranslate2 4.x reads BART config fields transformers 5 no longer has
        pytest.skip(f"CTranslate2 cannot convert this {kind} model: {err}")
    translator = ctranslate2.Translator(str(tmp_path / "ct2"), intra_threads=1)
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    sources = [tok.convert_ids_to_tokens(tok(s).input_ids) for s in SRCS]
    targets = [tok.convert_ids_to_tokens(tok(text_target=h).input_ids[:-1]) for h in HYPS]
    scored = translator.score_batch(sources, targets)
    got = score_pairs(model, tok, SRCS, HYPS)
    for s, c in zip(got, scored, strict=True):
        assert tok.convert_ids_to_tokens(s.token_ids) == c.tokens
        assert s.token_logprobs == pytest.approx(list(c.log_probs), rel=1e-4, abs=1e-5)
