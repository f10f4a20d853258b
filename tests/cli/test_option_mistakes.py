"""Option mistakes of ``predict`` and ``score`` are refused in one line (exit 2, no traceback) before the
run starts: nothing is created in --output_dir, and the runner is never reached (it is replaced here by one
that fails the test), so no check can hide behind the runner cleaning up after itself."""

from __future__ import annotations

import json

import pytest
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

from t5score.cli import main
from tests.helpers.cli import assert_user_error

VOCAB = 85  # the tiny test models' vocabulary (tests/helpers/tiny_models.py: WORDS + 4 specials)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "in.jsonl"
    rows = [("a", "open the file and read a line"), ("b", "make a new list")]
    path.write_text(
        "".join(json.dumps({"id": i, "source": s, "target": "return the value"}) + "\n" for i, s in rows)
    )
    return path


@pytest.fixture
def no_run(monkeypatch):
    def run(*args, **kwargs):
        pytest.fail("the run started: the option was not refused before the output folder")

    monkeypatch.setattr("t5score.runs.runner.run", run)
    monkeypatch.setattr("t5score.cli.commands.run", run, raising=False)  # were it imported at the top


def _argv(command, model_dir, data_file, out, *extra):
    argv = [
        command,
        "--model.name_or_path",
        str(model_dir),
        "--data.path",
        str(data_file),
        "--output_dir",
        str(out),
    ]
    if command == "score":
        argv += ["--data.target_column", "target"]
    else:
        argv += ["--model.max_new_tokens", "4"]
    return [*argv, *extra]


def _refused(capsys, tmp_path, command, model_dir, data_file, extra, match) -> str:
    out = tmp_path / "run"
    line = assert_user_error(capsys, _argv(command, model_dir, data_file, out, *extra), match)
    assert not out.exists(), f"{out} was created"
    return line


# -- the Trainer: accelerators this machine lacks, options that decode part of the input -----------------

ACCELERATORS = {
    "gpu": (CUDAAccelerator.is_available() or MPSAccelerator.is_available(), r"no CUDA .*no MPS"),
    "cuda": (CUDAAccelerator.is_available(), r"no CUDA"),
    "mps": (MPSAccelerator.is_available(), r"no MPS"),
}


@pytest.mark.parametrize("command", ["predict", "score"])
@pytest.mark.parametrize("accelerator", sorted(ACCELERATORS))
def test_missing_accelerator(capsys, tmp_path, t5_dir, data_file, no_run, command, accelerator):
    present, match = ACCELERATORS[accelerator]
    if present:
        pytest.skip(f"this machine has a {accelerator} accelerator")
    extra = ["--trainer.accelerator", accelerator]
    line = _refused(capsys, tmp_path, command, t5_dir, data_file, extra, match)
    assert "--trainer.accelerator cpu" in line


PARTIAL_RUNS = {
    "limit_predict_batches 0.5": ["--trainer.limit_predict_batches", "0.5"],
    "limit_predict_batches 1 (one batch)": ["--trainer.limit_predict_batches", "1"],
    "limit_predict_batches 0": ["--trainer.limit_predict_batches", "0"],
    "fast_dev_run true": ["--trainer.fast_dev_run", "true"],
    "fast_dev_run 2": ["--trainer.fast_dev_run", "2"],
}


@pytest.mark.parametrize("case", sorted(PARTIAL_RUNS))
def test_partial_runs_are_refused(capsys, tmp_path, t5_dir, data_file, no_run, case):
    option = PARTIAL_RUNS[case][0].removeprefix("--")
    _refused(
        capsys, tmp_path, "predict", t5_dir, data_file, PARTIAL_RUNS[case], rf"{option}.*every input row"
    )


def test_limit_predict_batches_one_point_zero_is_the_whole_input(tmp_path, t5_dir, data_file):
    out = tmp_path / "run"
    assert main(_argv("predict", t5_dir, data_file, out, "--trainer.limit_predict_batches", "1.0")) == 0
    assert (out / "predictions.parquet").is_file()


# -- predict's options ---------------------------------------------------------------------------------------

PREDICT_MISTAKES = {
    "top_k above the vocabulary": (
        ["--model.top_k", str(VOCAB + 1)],
        rf"top_k \({VOCAB + 1}\).*{VOCAB} tokens",
    ),
    "max_new_tokens 0": (["--model.max_new_tokens", "0"], r"max_new_tokens must be >= 1, got 0"),
    "max_new_tokens -1": (["--model.max_new_tokens", "-1"], r"max_new_tokens must be >= 1, got -1"),
    "sampling at temperature 0": (["--model.num_samples", "2", "--model.temperature", "0"], r"temperature"),
    "sampling with top_p 1.5": (["--model.num_samples", "2", "--model.top_p", "1.5"], r"top_p"),
    "greedy with top_p 0": (["--model.top_p", "0"], r"top_p must be in \(0, 1\]"),
    "seed too large": (["--model.num_samples", "2", "--model.seed", str(2**62)], r"seed must be"),
    "logits_dtype int8": (["--model.logits_dtype", "int8"], r"logits_dtype must be one of"),
    "forced_bos_token id outside the vocabulary": (
        ["--model.forced_bos_token", "99999"],
        rf"forced_bos_token_id 99999 .*{VOCAB} tokens",
    ),
    "forced_bos_token string not a token": (["--model.forced_bos_token", "zzz_x"], r"not a token"),
    "generation_config unknown key": (
        ["--model.generation_config", '{"nosuch": 1}'],
        r"unknown setting.*nosuch",
    ),
    "generation_config max_new_tokens of the wrong type": (
        ["--model.generation_config", '{"max_new_tokens": "x"}'],
        r"generation_config.*max_new_tokens",
    ),
    "generation_config no_repeat_ngram_size of the wrong type": (
        ["--model.generation_config", '{"no_repeat_ngram_size": "x"}'],
        r"generation_config",
    ),
    "generation_config bad_words_ids outside the vocabulary": (
        ["--model.generation_config", '{"bad_words_ids": [[99999]]}'],
        r"generation_config.*99999",
    ),
    "generation_config forced_eos_token_id outside the vocabulary": (
        ["--model.generation_config", '{"forced_eos_token_id": 99999}'],
        rf"forced_eos_token_id 99999 .*{VOCAB} tokens",
    ),
    "generation_config decoder_start_token_id outside the vocabulary": (
        ["--model.generation_config", '{"decoder_start_token_id": 99999}'],
        rf"decoder_start_token_id 99999 .*{VOCAB} tokens",
    ),
    "generation_config eos_token_id outside the vocabulary": (
        ["--model.generation_config", '{"eos_token_id": [1, 99999]}'],
        rf"eos_token_id 99999 .*{VOCAB} tokens",
    ),
    "generation_config max_new_tokens 0": (
        ["--model.generation_config", '{"max_new_tokens": 0}'],
        r"max_new_tokens.*greater than 0",
    ),
}


@pytest.mark.parametrize("case", sorted(PREDICT_MISTAKES))
def test_predict_option_mistakes(capsys, tmp_path, t5_dir, data_file, no_run, case):
    extra, match = PREDICT_MISTAKES[case]
    _refused(capsys, tmp_path, "predict", t5_dir, data_file, extra, match)


ENGINE_MISTAKES = {
    "engine t5 on BART": ("bart", ["--model.engine", "t5"], r"engine='t5' needs a T5/mT5 model"),
    "compile on BART": ("bart", ["--model.compile", "true"], r"compile=True needs the fast T5 engine"),
    "compile with engine hf": (
        "t5",
        ["--model.compile", "true", "--model.engine", "hf"],
        r"compile=True needs",
    ),
}


@pytest.mark.parametrize("case", sorted(ENGINE_MISTAKES))
def test_predict_engine_mistakes(capsys, tmp_path, tiny_model_dirs, data_file, no_run, case):
    kind, extra, match = ENGINE_MISTAKES[case]
    _refused(capsys, tmp_path, "predict", tiny_model_dirs[kind], data_file, extra, match)


def test_top_k_equal_to_the_vocabulary_is_allowed(tmp_path, t5_dir, data_file):
    out = tmp_path / "run"
    assert main(_argv("predict", t5_dir, data_file, out, "--model.top_k", str(VOCAB))) == 0


# -- score's options -----------------------------------------------------------------------------------------

SCORE_MISTAKES = {
    "engine t5 on BART": ("bart", ["--model.engine", "t5"], r"engine='t5' needs a T5/mT5 model"),
    "max_target_length 0": ("t5", ["--model.max_target_length", "0"], r"max_target_length must be >= 1"),
    "max_tokens_per_batch 0": (
        "t5",
        ["--model.max_tokens_per_batch", "0"],
        r"max_tokens_per_batch must be >= 1",
    ),
}


@pytest.mark.parametrize("case", sorted(SCORE_MISTAKES))
def test_score_option_mistakes(capsys, tmp_path, tiny_model_dirs, data_file, no_run, case):
    kind, extra, match = SCORE_MISTAKES[case]
    _refused(capsys, tmp_path, "score", tiny_model_dirs[kind], data_file, extra, match)


# -- the same checks without the command line: at construction or in configure_model ----------------------


def test_predictor_checks_when_built_or_when_its_model_loads(t5_dir, tiny_model_dirs):
    from t5score.runs.predict import Seq2SeqPredictor

    with pytest.raises(ValueError, match="temperature"):
        Seq2SeqPredictor(str(t5_dir), num_samples=2, temperature=0.0)
    for kwargs, match in [
        ({"top_k": VOCAB + 1}, "vocabulary"),
        ({"forced_bos_token": VOCAB}, "forced_bos_token_id"),
        ({"generation_config": {"bad_words_ids": [[99999]]}}, "99999"),
    ]:
        module = Seq2SeqPredictor(str(t5_dir), **kwargs)
        with pytest.raises(ValueError, match=match):
            module.configure_model()
    module = Seq2SeqPredictor(str(tiny_model_dirs["bart"]), engine="t5")
    with pytest.raises(ValueError, match="engine='t5'"):
        module.configure_model()


def test_scorer_checks_when_built_or_when_its_model_loads(tiny_model_dirs):
    from t5score.runs.score import Seq2SeqScorer

    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        Seq2SeqScorer(str(tiny_model_dirs["t5"]), max_tokens_per_batch=0)
    module = Seq2SeqScorer(str(tiny_model_dirs["bart"]), engine="t5")
    with pytest.raises(ValueError, match="engine='t5'"):
        module.configure_model()


def test_max_new_tokens_none_still_comes_from_the_generation_config(t5_dir, tmp_path):
    """Not given, the length is the generation config's max_new_tokens, else its max_length - 1, else 64."""
    import shutil

    from t5score.engine.modeling import load_model_and_tokenizer
    from t5score.engine.options import DecodeOptions
    from t5score.runs.decode_rows import resolve_generation_for

    lengths = {}
    for name, settings in {
        "max_new_tokens": {"max_new_tokens": 3},
        "max_length": {"max_length": 6},
        "none": {},
    }.items():
        folder = tmp_path / name
        shutil.copytree(t5_dir, folder)
        config = json.loads((folder / "generation_config.json").read_text())
        config.pop("max_length", None)
        config.pop("max_new_tokens", None)
        (folder / "generation_config.json").write_text(json.dumps(config | settings))
        model, tokenizer = load_model_and_tokenizer(str(folder))
        lengths[name] = resolve_generation_for(model, tokenizer, DecodeOptions()).max_new_tokens
        assert resolve_generation_for(model, tokenizer, DecodeOptions(max_new_tokens=2)).max_new_tokens == 2
    assert lengths == {"max_new_tokens": 3, "max_length": 5, "none": 64}
