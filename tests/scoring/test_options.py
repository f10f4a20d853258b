"""ScoreOptions: one validation, one-line errors, and the modules' CLI defaults taken from it."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from t5score.cli import main
from t5score.engine.forced import SCORE_FIELDS
from t5score.runs.rerank import CandidateReranker
from t5score.runs.score import Seq2SeqScorer
from t5score.scoring.options import AGGREGATES, DIRECTIONS, ScoreOptions


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"directions": ("src->hyp", "hyp->src")}, ["directions must be among", "['hyp->src']"]),
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
        "alpha": 0.5,
        "max_source_length": 11,
        "max_target_length": 7,
        "max_tokens_per_batch": 8192,
        "engine": "hf",
    }
    assert set(DIRECTIONS) == {"src->hyp", "ref->hyp", "hyp->ref", "F"}


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
    path = tmp_path / "in.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n')
    code = main(
        [
            "score",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(path),
            "--data.target_column",
            "target",
            "--model.aggregate",
            "min",
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) >= 1
    assert err[-1].startswith("t5score: error:") and "aggregate must be one of" in err[-1]
    assert not (tmp_path / "out").exists()
