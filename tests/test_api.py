"""The Python API returns the CLI's tables: ``Predictor.predict`` the rows of ``predictions.parquet`` and
``Predictor.score`` those of ``scores.parquet``, same columns in the same order, same values.

Each test runs ``t5score`` (in-process) and the API on the same rows and model and compares the frames
column by column (:func:`tests.helpers.frames.assert_same_rows`); the batching is the same, so floats
agree to float32 rounding.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

import t5score
from t5score.assets import default_data_path
from t5score.cli import main
from tests.helpers.frames import assert_same_rows

RTOL = 1e-6
ROWS = [
    {"id": "a", "source": "return the data of the file", "target": "read the file"},
    {"id": "b", "source": "the value of a key in the dict", "target": "get a value"},
    {"id": "c", "source": "   ", "target": "nothing"},  # flagged: empty source
    {"id": "d", "source": "open a file and read the first line", "target": "read a line"},
    {"id": "e", "source": "make a new list", "target": None},
]
PAIRS = [
    {"id": "p", "source": "open the file and read it", "hyp": "read a file", "refs": ["read it", "open it"]},
    {"id": "q", "source": "return the value of the key", "hyp": "get the value", "refs": ["a value"]},
    {"id": "r", "source": "make a new list", "hyp": "", "refs": None},  # flagged: empty target
    {"id": "s", "source": "sort the list", "hyp": "return the first", "refs": None},
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(tmp_path, command: str, *args: str) -> pd.DataFrame:
    out = tmp_path / command
    assert main([command, *args, "--output_dir", str(out)]) == 0
    name = {"predict": "predictions", "score": "scores"}[command]
    return pd.read_parquet(out / f"{name}.parquet")


DECODING = {
    "greedy": ([], {}),
    "sampled": (["--model.num_samples", "2", "--model.seed", "3"], {"num_samples": 2, "seed": 3}),
    "beam": (
        ["--model.num_beams", "3", "--model.num_return_sequences", "2"],
        {"num_beams": 3, "num_return_sequences": 2},
    ),
}


@pytest.mark.parametrize("decoding", DECODING)
def test_predict_returns_the_predictions_table(t5_dir, tmp_path, decoding):
    cli_args, api_options = DECODING[decoding]
    path = _write(tmp_path / "rows.jsonl", ROWS)
    cli = _cli(
        tmp_path,
        "predict",
        *("--model.name_or_path", str(t5_dir), "--data.path", str(path)),
        *("--data.target_column", "target", "--data.batch_size", "2", "--model.max_new_tokens", "6"),
        *cli_args,
    )
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    frame = pd.read_json(path, lines=True, dtype=False)
    api = predictor.predict(frame, target_column="target", batch_size=2, max_new_tokens=6, **api_options)
    assert {"rouge1", "rouge2", "rougeL", "ref_logprob"} <= set(cli.columns)
    assert_same_rows(api, cli, atol=RTOL)


def test_predict_of_texts_with_targets_has_the_rouge_columns(t5_dir, tmp_path):
    rows = [{"source": r["source"], "target": r["target"]} for r in ROWS]
    path = _write(tmp_path / "rows.jsonl", rows)
    cli = _cli(
        tmp_path,
        "predict",
        *("--model.name_or_path", str(t5_dir), "--data.path", str(path), "--data.target_column", "target"),
        "--model.max_new_tokens=6",
    )
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    api = predictor.predict(
        [r["source"] for r in rows], targets=[r["target"] for r in rows], max_new_tokens=6
    )
    assert {"rouge1", "rouge2", "rougeL"} <= set(api.columns)
    assert_same_rows(api, cli, atol=RTOL)


def test_predict_truncates_sources_as_the_cli_does(tmp_path):
    """Default source length: the CLI's (the shipped tokenizer's model_max_length), rows flagged alike."""
    rows = [json.loads(line) for line in open(default_data_path("test"), encoding="utf-8")][:6]
    path = _write(tmp_path / "rows.jsonl", rows)
    cli = _cli(
        tmp_path,
        "predict",
        "--data.path",
        str(path),
        "--data.target_column=target",
        "--model.max_new_tokens=5",
    )
    api = t5score.Predictor.from_pretrained("default").predict(
        pd.DataFrame(rows), target_column="target", max_new_tokens=5
    )
    assert cli["truncated"].any()
    assert_same_rows(api, cli, atol=RTOL)


def test_score_of_two_lists_returns_the_scores_table(t5_dir, tmp_path):
    rows = [{"source": p["source"], "target": p["hyp"]} for p in PAIRS]
    path = _write(tmp_path / "pairs.jsonl", rows)
    cli = _cli(
        tmp_path,
        "score",
        *("--model.name_or_path", str(t5_dir), "--data.path", str(path), "--data.target_column", "target"),
    )
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    api = predictor.score([r["source"] for r in rows], [r["target"] for r in rows])
    assert {"id", "error", "mean_entropy", "score_src_hyp"} <= set(api.columns)
    assert api["error"].notna().tolist() == [False, False, True, False]
    assert_same_rows(api, cli, atol=RTOL)


def test_score_with_references_and_directions_returns_the_scores_table(t5_dir, tmp_path):
    path = _write(tmp_path / "pairs.jsonl", PAIRS)
    cli = _cli(
        tmp_path,
        "score",
        *("--model.name_or_path", str(t5_dir), "--data.path", str(path), "--data.batch_size", "3"),
        *("--data.target_column", "hyp", "--data.reference_column", "refs"),
        *("--model.directions", "[ref->hyp, hyp->ref, F]", "--model.aggregate", "max"),
        *("--model.score", "sum_logprob"),
    )
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    api = predictor.score(
        pd.read_json(path, lines=True, dtype=False),
        target_column="hyp",
        reference_column="refs",
        directions=["ref->hyp", "hyp->ref", "F"],
        aggregate="max",
        score="sum_logprob",
        batch_size=3,
    )
    assert cli.columns[-4:].tolist() == ["score_src_hyp", "score_ref_hyp", "score_hyp_ref", "score_f"]
    assert_same_rows(api, cli, atol=RTOL)


def test_score_refuses_a_single_string(t5_dir):
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    with pytest.raises(TypeError, match="list of texts"):
        predictor.score("a source", ["a target"])
    with pytest.raises(ValueError, match="targets"):
        predictor.score(["a source"])
