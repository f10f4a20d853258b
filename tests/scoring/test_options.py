"""ScoreOptions: one validation, one-line errors, and the modules' CLI defaults taken from it."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from t5score.engine.forced import SCORE_FIELDS
from t5score.runs.rerank import CandidateReranker
from t5score.runs.score import Seq2SeqScorer
from t5score.scoring.options import AGGREGATES, DIRECTIONS, ScoreOptions
from tests.helpers.cli import assert_user_error


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"directions": ("src->hyp", "src->ref")}, ["directions must be among", "['src->ref']"]),
        ({"encoder_prompt": " "}, ["encoder_prompt must be a non-empty text", "' '"]),
        ({"decoder_prompt": ""}, ["decoder_prompt must be a non-empty text"]),
        ({"rank_by": "bleu"}, ["rank_by must be one of", "'bleu'"]),
        ({"score": "loss"}, ["score must be one of", str(SCORE_FIELDS), "'loss'"]),
        ({"aggregate": "min"}, ["aggregate must be one of", str(AGGREGATES), "'min'"]),
        ({"engine": "onnx"}, ["engine must be one of", "'onnx'"]),
    ],
)
def test_each_bad_value_is_named_on_one_line(changes, needles):
    with pytest.raises(ValueError) as err:
        ScoreOptions(**changes)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_several_problems_in_one_message():
    with pytest.raises(ValueError, match="score must be one of .*; aggregate must be one of"):
        ScoreOptions(score="x", aggregate="y")


def test_run_directions_and_score_pairs_kwargs():
    assert ScoreOptions().run_directions == ("src->hyp",)
    options = ScoreOptions(directions=("F", "ref->hyp", "F"), rank_by="hyp->ref")
    assert options.directions == ("F", "ref->hyp")  # duplicates dropped, order kept
    assert options.run_directions == ("src->hyp", "F", "ref->hyp", "hyp->ref")
    kwargs = ScoreOptions(alpha=0.5, max_target_length=7, engine="hf").score_pairs_kwargs(11)
    assert kwargs == {
        "include_eos": True,
        "include_bos": True,
        "strip_bos": False,
        "unscored_prefix": None,
        "alpha": 0.5,
        "max_source_length": 11,
        "max_target_length": 7,
        "max_tokens_per_batch": 8192,
        "engine": "hf",
    }
    assert set(DIRECTIONS) == {"src->hyp", "hyp->src", "ref->hyp", "hyp->ref", "F", "harm_F"}


def test_prompts_rewrite_texts_as_bartscore_does():
    """BARTScore's SUM/score.py: ``suffix_prompt`` on the encoder side is ``x + ' ' + p + ','`` and
    ``prefix_prompt`` on the decoder side ``p + ', ' + x``; the decoder prompt is scored unless told."""
    plain = ScoreOptions()
    assert plain.encoder_text("a b") == "a b" and plain.decoder_text("a b") == "a b"
    options = ScoreOptions(encoder_prompt="In other words", decoder_prompt="That is to say")
    assert options.encoder_text("the source") == "the source In other words,"
    assert options.decoder_text("the target") == "That is to say, the target"
    assert options.score_pairs_kwargs()["unscored_prefix"] is None  # BARTScore scores the prompt too
    unscored = ScoreOptions(decoder_prompt="That is to say", score_decoder_prompt=False)
    assert unscored.score_pairs_kwargs()["unscored_prefix"] == "That is to say,"
    lm_eval = ScoreOptions(include_eos=False, include_bos=False, strip_bos=True).score_pairs_kwargs()
    assert (lm_eval["include_eos"], lm_eval["include_bos"], lm_eval["strip_bos"]) == (False, False, True)


@pytest.mark.parametrize("module", [Seq2SeqScorer, CandidateReranker])
def test_module_defaults_are_the_options_defaults(module):
    """The flat --model.* options of score and rerank default to ScoreOptions' fields, and the module's
    options equal ScoreOptions() built from those defaults."""
    defaults = {f.name: f.default for f in fields(ScoreOptions)}
    params = inspect.signature(module.__init__).parameters
    for name, param in params.items():
        if name in defaults and name != "directions":
            assert param.default == defaults[name], name
    built = module().options
    assert built.run_directions == ("src->hyp",)
    for name in defaults:
        if name != "directions":
            assert getattr(built, name) == defaults[name], name
    assert module.__doc__ and "Args:" in module.__doc__  # the CLI help


def test_bad_module_options_fail_before_anything_runs():
    with pytest.raises(ValueError, match="rank_by must be one of"):
        CandidateReranker(rank_by="x")
    with pytest.raises(ValueError, match="directions must be among"):
        Seq2SeqScorer(directions=["nope"])


def test_cli_error_is_one_line(tmp_path, capsys, t5_dir):
    """A bad value is one line naming the option and the value (whether the CLI's early check or
    ScoreOptions catches it), before anything is written."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n')
    args = ["score", "--model.name_or_path", str(t5_dir), "--data.path", str(path)]
    args += ["--data.target_column", "target", "--output_dir", str(tmp_path / "out")]
    assert_user_error(capsys, [*args, "--model.aggregate", "min"], r"aggregate.*'min'")
    assert_user_error(
        capsys, [*args, "--model.encoder_prompt", ""], r"encoder_prompt must be a non-empty text"
    )
    assert not (tmp_path / "out").exists()
