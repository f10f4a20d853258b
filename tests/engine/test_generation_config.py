"""The model's generation config in decoding: tokens equal ``generate(do_sample=False, num_beams=1)``
with real-checkpoint-like configs (BART-large-CNN, Marian, mBART/NLLB, repetition penalty, suppressed
tokens...), raw statistics of ``output_logits``, processed log-probabilities of
``compute_transition_scores``; the options, the warning line, and the CLI's ``generation`` in run.json."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch
from transformers import GenerationConfig

from t5score.api import Predictor
from t5score.cli import main
from t5score.engine.decode import greedy_decode
from t5score.engine.options import DecodeOptions, Sampling
from t5score.engine.processors import resolve_generation
from tests.helpers.tiny_models import make_tiny_model, make_tiny_model_dir

LANG = 7  # a "language token" of the tiny vocabularies, forced first as mBART-50 / NLLB do

#: kind -> generation config settings as real checkpoints carry them (lengths scaled down)
CONFIGS = {
    "bart-large-cnn": (
        "bart",
        dict(
            forced_bos_token_id=0,
            forced_eos_token_id=2,
            no_repeat_ngram_size=3,
            min_length=6,
            max_length=14,
            num_beams=4,
            length_penalty=2.0,
            early_stopping=True,
        ),
    ),
    "marian": ("bart", dict(bad_words_ids=[[1]], max_length=12)),  # opus-mt: never the pad token
    "mbart-nllb": ("bart", dict(forced_bos_token_id=LANG, forced_eos_token_id=2, max_length=12)),
    "t5-repetition": ("t5", dict(repetition_penalty=1.5, no_repeat_ngram_size=2)),
    "t5-suppress": ("t5", dict(suppress_tokens=[5, 6, 7, 8], begin_suppress_tokens=[1], min_new_tokens=3)),
    "t5-encoder-side": ("t5", dict(encoder_no_repeat_ngram_size=2, encoder_repetition_penalty=2.0)),
}


def _inputs(vocab: int, seed: int = 1, batch: int = 6):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, vocab, (batch, 9), generator=g)
    mask = torch.ones_like(input_ids)
    for row, length in enumerate([9, 4, 9, 2, 7, 9][:batch]):
        mask[row, length:] = 0
    return input_ids, mask


def _model(kind: str, settings: dict, seed: int = 0):
    model = make_tiny_model(kind, seed=seed)
    for name, value in settings.items():
        setattr(model.generation_config, name, value)
    if kind == "bart" and "bad_words_ids" in settings:
        with torch.no_grad():  # make the banned pad the raw model's frequent choice, as it is for opus-mt
            model.final_logits_bias[0, 1] += 12.0
    return model


def _generate(model, input_ids, mask, max_new_tokens=None, **kwargs):
    length = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    out = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        do_sample=False,
        num_beams=1,
        output_logits=True,
        output_scores=True,
        return_dict_in_generate=True,
        **length,
        **kwargs,
    )
    transition = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    return out.sequences[:, 1:], torch.stack(out.logits, 1), torch.stack(out.scores, 1), transition


def _check(out, reference, eos_ids) -> int:
    """Every row equals generate's; returns the number of steps where a processor changed the argmax."""
    seq, logits, scores, transition = reference
    changed = 0
    assert out.token_ids.shape[1] <= seq.shape[1]
    for b in range(seq.shape[0]):
        hf = seq[b].tolist()
        ends = [i for i, tok in enumerate(hf) if tok in eos_ids]
        n = ends[0] + 1 if ends else len(hf)
        assert int(out.num_tokens[b]) == n and bool(out.finished[b]) == bool(ends)
        assert out.token_ids[b, :n].tolist() == hf[:n]
        logp = torch.log_softmax(logits[b, :n].double(), -1)
        raw = logp.gather(-1, seq[b, :n, None])[:, 0]
        torch.testing.assert_close(out.token_logprobs[b, :n].double(), raw, rtol=0, atol=1e-4)
        entropy = -(logp.exp() * logp.clamp_min(-1e30)).nansum(-1)
        torch.testing.assert_close(out.entropies[b, :n].double(), entropy, rtol=0, atol=1e-4)
        torch.testing.assert_close(out.token_processed_logprobs[b, :n], transition[b, :n], rtol=0, atol=1e-4)
        row_changed = int((scores[b, :n].argmax(-1) != logits[b, :n].argmax(-1)).sum())
        assert int(out.processor_changed_steps[b]) == row_changed
        changed += row_changed
    return changed


#: (config, engine): both engines for T5 models, the model's forward for the others
CASES = [
    (name, engine)
    for name, (kind, _) in CONFIGS.items()
    for engine in ("hf", "t5")[: 2 if kind == "t5" else 1]
]


@pytest.mark.parametrize("name,engine", CASES)
@pytest.mark.parametrize("drop_finished", [False, True])
def test_decoding_equals_generate_with_the_generation_config(name, engine, drop_finished):
    kind, settings = CONFIGS[name]
    model = _model(kind, settings)
    input_ids, mask = _inputs(model.config.vocab_size)
    steps = None if "max_length" in settings else 10
    reference = _generate(model, input_ids, mask, steps)
    options = DecodeOptions(max_new_tokens=steps, engine=engine, drop_finished=drop_finished)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = greedy_decode(model, input_ids, mask, options)
    changed = _check(out, reference, {model.generation_config.eos_token_id})
    assert changed > 0, "the config's processors should change some choices (else the test proves nothing)"
    if "forced_bos_token_id" in settings:
        assert out.token_ids[:, 0].eq(settings["forced_bos_token_id"]).all()
        assert out.token_processed_logprobs[:, 0].abs().max() < 1e-6  # a forced token: log 1


@pytest.mark.parametrize("engine,eos_check_every", [("t5", 3), ("hf", 1)])
def test_the_logits_sink_keeps_the_raw_logits(engine, eos_check_every):
    model = _model("t5", CONFIGS["t5-suppress"][1] | CONFIGS["t5-repetition"][1])
    input_ids, mask = _inputs(model.config.vocab_size, seed=8)
    reference = _generate(model, input_ids, mask, 10)
    captured = torch.zeros_like(reference[1])

    def sink(step, rows, logits):
        captured[rows, step] = logits

    options = DecodeOptions(10, engine=engine, eos_check_every=eos_check_every, drop_finished=True)
    out = greedy_decode(model, input_ids, mask, options, logits_sink=sink)
    assert _check(out, reference, {1}) > 0
    for b in range(input_ids.shape[0]):
        n = int(out.num_tokens[b])
        scale = reference[1][b, :n].abs().max()
        torch.testing.assert_close(captured[b, :n] / scale, reference[1][b, :n] / scale, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind,engine", [("t5", "t5"), ("t5", "hf"), ("bart", "hf")])
def test_use_generation_config_false_is_generate_without_processors(kind, engine):
    model = _model(kind, CONFIGS["bart-large-cnn"][1] if kind == "bart" else CONFIGS["t5-repetition"][1])
    input_ids, mask = _inputs(model.config.vocab_size, seed=3)
    cfg = model.generation_config
    bare = GenerationConfig(
        decoder_start_token_id=cfg.decoder_start_token_id,
        bos_token_id=cfg.bos_token_id,
        eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id,
    )
    model.generation_config, configured = bare, cfg  # generate fills unset values from the model's own
    reference = _generate(model, input_ids, mask, 9)
    model.generation_config = configured
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the beam-search settings of the BART config
        out = greedy_decode(
            model, input_ids, mask, DecodeOptions(9, engine=engine, use_generation_config=False)
        )
    assert _check(out, reference, {cfg.eos_token_id}) == 0
    assert torch.equal(out.token_processed_logprobs, out.token_logprobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_config = greedy_decode(model, input_ids, mask, DecodeOptions(9, engine=engine))
    assert not torch.equal(with_config.token_ids, out.token_ids)


def test_max_length_only_gives_max_length_minus_one_tokens():
    model = _model("t5", dict(max_length=7))
    with torch.no_grad():
        model.lm_head.weight[1] *= 0.2  # EOS rarer: rows run to the limit
    input_ids, mask = _inputs(model.config.vocab_size, seed=5)
    reference = _generate(model, input_ids, mask)
    out = greedy_decode(model, input_ids, mask, DecodeOptions())
    assert out.token_ids.shape[1] == 6 and not out.finished.all()
    _check(out, reference, {1})
    assert resolve_generation(model, DecodeOptions()).max_new_tokens == 6
    assert resolve_generation(model, DecodeOptions(max_new_tokens=3)).max_new_tokens == 3
    assert resolve_generation(make_tiny_model("t5"), DecodeOptions()).max_new_tokens == 64


@pytest.mark.parametrize("engine", ["t5", "hf"])
def test_eos_list_stops_a_row_at_any_of_them(engine):
    model = make_tiny_model("t5", seed=0)
    input_ids, mask = _inputs(model.config.vocab_size, seed=2)
    plain = greedy_decode(model, input_ids, mask, DecodeOptions(12, engine=engine))
    frequent = int(plain.token_ids[:, 1:][plain.token_ids[:, 1:] > 1].mode().values)
    model.generation_config.eos_token_id = [1, frequent]
    reference = _generate(model, input_ids, mask, 12)
    out = greedy_decode(model, input_ids, mask, DecodeOptions(12, engine=engine))
    _check(out, reference, {1, frequent})
    last = out.token_ids.gather(1, (out.num_tokens - 1)[:, None])[:, 0]
    assert (last == frequent).any() and out.finished.any()


def test_missing_decoder_start_falls_back_to_bos():
    model = make_tiny_model("bart", seed=1)
    model.generation_config.decoder_start_token_id = None
    model.config.decoder_start_token_id = None
    model.generation_config.bos_token_id = 0  # T5Gemma-style: bos, no decoder start
    input_ids, mask = _inputs(model.config.vocab_size, seed=4)
    reference = _generate(model, input_ids, mask, 8)
    out = greedy_decode(model, input_ids, mask, DecodeOptions(8, engine="hf"))
    _check(out, reference, {2})
    assert resolve_generation(model, DecodeOptions()).decoder_start_token_id == 0


def test_sampling_applies_processors_before_temperature():
    model = _model("bart", dict(forced_bos_token_id=LANG, bad_words_ids=[[1]]))
    input_ids, mask = _inputs(model.config.vocab_size, seed=6)
    sampling = Sampling(temperature=1.3, top_p=0.9, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = greedy_decode(model, input_ids, mask, DecodeOptions(10, num_samples=1), sampling=sampling)
    assert out.token_ids[:, 0].eq(LANG).all() and out.token_processed_logprobs[:, 0].abs().max() < 1e-6
    for b in range(out.token_ids.shape[0]):
        assert 1 not in out.token_ids[b, : int(out.num_tokens[b])].tolist()  # the banned pad
    assert (out.token_logprobs[:, 0] < -1e-3).all()  # raw statistics: the forced token was not certain


def test_overrides_forced_bos_and_the_warning_line():
    model = _model("bart", CONFIGS["bart-large-cnn"][1] | {"temperature": 0.7, "max_time": 5.0})
    with pytest.warns(UserWarning) as caught:
        gen = resolve_generation(
            model, DecodeOptions(generation_config={"no_repeat_ngram_size": 0}), warn=True
        )
    lines = [str(w.message) for w in caught]
    assert lines == [
        "generation config: num_beams=4, length_penalty=2.0, early_stopping=True are beam-search settings; "
        "temperature=0.7 is a sampling setting; max_time=5.0 is not supported; t5score decodes greedily, "
        "these are ignored; pass num_beams to decode with beam search"
    ]
    assert "NoRepeatNGramLogitsProcessor" not in gen.processor_names
    assert {"ForcedBOSTokenLogitsProcessor", "MinLengthLogitsProcessor"} <= set(gen.processor_names)
    assert gen.settings["min_length"] == 6 and gen.max_new_tokens == 13
    forced = resolve_generation(model, DecodeOptions(forced_bos_token=LANG))
    assert forced.config.forced_bos_token_id == LANG
    with pytest.raises(ValueError, match="unknown setting"):
        resolve_generation(model, DecodeOptions(generation_config={"no_such_thing": 1}))


def test_predictor_options_and_one_warning_per_call(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "bart", kind="bart")
    predictor = Predictor.from_pretrained(str(folder))
    predictor.model.generation_config.num_beams = 4
    texts = ["return the value", "open a file", "make a new list", "the key of the dict"]
    with pytest.warns(UserWarning, match="num_beams=4") as caught:
        df = predictor.predict(texts, batch_size=2, max_new_tokens=6, forced_bos_token="of")
    assert sum("num_beams=4" in str(w.message) for w in caught) == 1
    of = predictor.tokenizer.convert_tokens_to_ids("of")
    assert all(ids[0] == of for ids in df["token_ids"])
    assert all(lp[0] == 0.0 for lp in df["token_processed_logprobs"])
    assert df["processor_changed_steps"].ge(0).all()
    with pytest.raises(ValueError, match="not a token"):
        predictor.predict(texts, forced_bos_token="fra_Latn")


def test_cli_generation_options_and_run_json(tmp_path, capsys):
    folder = make_tiny_model_dir(tmp_path / "model", kind="bart")
    config = json.loads((folder / "generation_config.json").read_text())
    config |= {"no_repeat_ngram_size": 2, "num_beams": 4}
    (folder / "generation_config.json").write_text(json.dumps(config))
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"source": s}) + "\n" for s in ["return the value", "open a file"]))
    out = tmp_path / "run"
    args = [
        "predict",
        "--model.name_or_path",
        str(folder),
        "--data.path",
        str(data),
        "--output_dir",
        str(out),
    ]
    extra = ["--model.generation_config", '{"no_repeat_ngram_size": 0, "min_length": 3}']
    assert main([*args, *extra, "--model.forced_bos_token", "of", "--model.max_new_tokens", "8"]) == 0
    # one line per run, without the source line Python's warning format adds
    lines = [line for line in capsys.readouterr().err.splitlines() if "generation config:" in line]
    assert len(lines) == 1 and lines[0].startswith("t5score: warning: generation config: num_beams=4 is a")
    frame = pd.read_parquet(out / "predictions.parquet")
    columns = list(frame.columns)
    assert columns.index("token_processed_logprobs") == columns.index("topk_logprobs") + 1
    assert columns.index("processor_changed_steps") == columns.index("topk_logprobs") + 2
    assert all(ids[0] == 4 + 2 for ids in frame["token_ids"])  # "of": the third word after 4 specials
    generation = json.loads((out / "run.json").read_text())["generation"]
    assert generation["max_new_tokens"] == 8 and generation["ignored"] == ["num_beams=4"]
    assert generation["settings"] == {"min_length": 3, "forced_bos_token_id": 6}
    assert "NoRepeatNGramLogitsProcessor" not in generation["processors"]
    assert "ForcedBOSTokenLogitsProcessor" in generation["processors"]
    bad = main([*args[:-1], str(tmp_path / "bad"), "--model.forced_bos_token", "fra_Latn"])
    assert bad == 2  # one error line, no traceback
