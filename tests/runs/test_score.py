"""`t5score score`: per-row sums equal the model's own loss on the target; directions add columns."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.cli import main
from tests.helpers.cli import assert_user_error

ROWS = [
    {
        "id": "a",
        "source": "open the file and read the first line",
        "target": "read a line",
        "refs": ["read the first line", "open a file"],
    },
    {
        "id": "b",
        "source": "return the value of the key",
        "target": "get the value of a key in the dict",
        "refs": ["return a value"],
    },
    {"id": "c", "source": "make a new list", "target": "", "refs": None},
    {
        "id": "d",
        "source": "sort the list and return the first item",
        "target": "return the first",
        "refs": ["sort a list"],
    },
]


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def _hf_sum(model, tok, source: str, target: str) -> float:
    enc = tok([source], return_tensors="pt")
    labels = tok([target], return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(**enc, labels=labels).loss
    return -(loss * labels.shape[1]).item()


@pytest.mark.parametrize("engine", ["auto", "hf"])
def test_score_matches_forward_pass_with_labels(t5_dir, input_file, tmp_path, engine):
    out = tmp_path / "run"
    args = [
        "score",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(input_file),
        "--data.id_column",
        "id",
        "--data.target_column",
        "target",
        "--data.batch_size",
        "3",
        "--model.engine",
        engine,
        "--output_dir",
        str(out),
    ]
    assert main(args) == 0
    df = pd.read_parquet(out / "scores.parquet")
    assert df["id"].tolist() == ["a", "b", "c", "d"]
    for col in ("id", "num_tokens", "token_logprobs", "sum_logprob", "mean_logprob", "score_src_hyp"):
        assert col in df.columns
    assert "empty" in df.loc[2, "error"]
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    for i in (0, 1, 3):
        row = df.iloc[i]
        assert row["sum_logprob"] == pytest.approx(
            _hf_sum(model, tok, row["source"], row["target"]), rel=1e-4
        )
        assert row["mean_logprob"] == pytest.approx(row["sum_logprob"] / row["num_tokens"], rel=1e-9)
        assert row["score_src_hyp"] == pytest.approx(row["mean_logprob"], rel=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 4 and summary["rows_with_error"] == 1


def test_score_directions_with_references(t5_dir, input_file, tmp_path):
    out = tmp_path / "run"
    args = [
        "score",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(input_file),
        "--data.target_column",
        "target",
        "--data.reference_column",
        "refs",
        "--model.directions",
        "[src->hyp, ref->hyp, hyp->ref, F]",
        "--model.score",
        "sum_logprob",
        "--model.aggregate",
        "max",
        "--output_dir",
        str(out),
    ]
    assert main(args) == 0
    df = pd.read_parquet(out / "scores.parquet")
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    row, refs = df.iloc[0], ROWS[0]["refs"]
    precision = [_hf_sum(model, tok, r, row["target"]) for r in refs]
    recall = [_hf_sum(model, tok, row["target"], r) for r in refs]
    assert row["score_ref_hyp"] == pytest.approx(max(precision), rel=1e-4)
    assert row["score_hyp_ref"] == pytest.approx(max(recall), rel=1e-4)
    f = max((p + r) / 2 for p, r in zip(precision, recall, strict=True))
    assert row["score_f"] == pytest.approx(f, rel=1e-4)


def test_score_without_target_column_is_a_one_line_error(t5_dir, input_file, tmp_path, capsys):
    code = main(
        [
            "score",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(input_file),
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "target_column" in capsys.readouterr().err


def _hf_logprobs(model, tok, source: str, target: str) -> tuple[list[int], torch.Tensor]:
    """The labels of ``target`` and their log-probabilities given ``source``: one forward pass with labels."""
    labels = tok(text_target=target).input_ids
    with torch.no_grad():
        logits = model(**tok(source, return_tensors="pt"), labels=torch.tensor([labels])).logits[0]
    logp = torch.log_softmax(logits.double(), -1).gather(-1, torch.tensor(labels)[:, None])[:, 0]
    return labels, logp


def _score(model_dir, input_file, out, *options: str) -> pd.DataFrame:
    args = ["score", "--model.name_or_path", str(model_dir), "--data.path", str(input_file)]
    args += ["--data.target_column", "target", "--output_dir", str(out), *options]
    assert main(args) == 0
    return pd.read_parquet(out / "scores.parquet")


def test_hyp_src_harm_f_and_include_bos_from_the_cli(tiny_model_dirs, input_file, tmp_path):
    """BART, <s> left out of the score (--model.include_bos false): hyp->src is the source given the
    target, harm_F BARTScore's P * R / (P + R) of the reference-averaged precision and recall."""
    bart = tiny_model_dirs["bart"]
    df = _score(
        bart,
        input_file,
        tmp_path / "run",
        "--data.reference_column",
        "refs",
        "--model.directions",
        "[hyp->src, ref->hyp, hyp->ref, harm_F]",
        "--model.include_bos",
        "false",
    )
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(bart).eval(), AutoTokenizer.from_pretrained(bart)

    def mean_without_bos(source: str, target: str) -> float:
        labels, logp = _hf_logprobs(model, tok, source, target)
        assert labels[0] == tok.bos_token_id
        return float(logp[1:].mean())

    for i in (0, 1, 3):
        row, refs = df.iloc[i], ROWS[i]["refs"]
        assert list(row["token_ids"])[0] != tok.bos_token_id
        assert row["score_src_hyp"] == pytest.approx(mean_without_bos(row["source"], row["target"]), rel=1e-5)
        assert row["score_hyp_src"] == pytest.approx(mean_without_bos(row["target"], row["source"]), rel=1e-5)
        p = sum(mean_without_bos(r, row["target"]) for r in refs) / len(refs)
        r = sum(mean_without_bos(row["target"], ref) for ref in refs) / len(refs)
        assert row["score_ref_hyp"] == pytest.approx(p, rel=1e-5)
        assert row["score_harm_f"] == pytest.approx(p * r / (p + r), rel=1e-5)
    assert "score_f" not in df.columns  # not asked for: a direction column only when computed
    assert df.loc[2, "error"] is not None and pd.isna(df.loc[2, "score_hyp_src"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["mean_score_harm_f"] == pytest.approx(df["score_harm_f"].dropna().mean(), rel=1e-9)


def test_lm_eval_convention_from_the_cli(tiny_model_dirs, input_file, tmp_path):
    """--model.strip_bos true --model.include_eos false: the continuation's tokens without <s> and </s>,
    the decoder starting from decoder_start_token_id alone, as lm-evaluation-harness scores seq2seq models."""
    bart = tiny_model_dirs["bart"]
    df = _score(
        bart,
        input_file,
        tmp_path / "run",
        "--model.strip_bos",
        "true",
        "--model.include_eos",
        "false",
        "--model.score",
        "sum_logprob",
    )
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(bart).eval(), AutoTokenizer.from_pretrained(bart)
    for i in (0, 1, 3):
        row = df.iloc[i]
        cont = tok.encode(row["target"], add_special_tokens=False)
        inp = torch.tensor([tok.encode(row["source"])])
        with torch.no_grad():
            logits = model(
                input_ids=inp, attention_mask=torch.ones_like(inp), labels=torch.tensor([cont])
            ).logits
        expected = float(
            torch.log_softmax(logits[0].double(), -1).gather(-1, torch.tensor(cont)[:, None]).sum()
        )
        assert list(row["token_ids"]) == cont
        assert row["sum_logprob"] == pytest.approx(expected, rel=1e-5)
        assert row["score_src_hyp"] == row["sum_logprob"]


def test_prompts_from_the_cli(t5_dir, input_file, tmp_path):
    """--model.encoder_prompt / --model.decoder_prompt: BARTScore's "<source> <prompt>," and
    "<prompt>, <target>"; --model.score_decoder_prompt false scores the target's own tokens only."""
    df = _score(
        t5_dir,
        input_file,
        tmp_path / "run",
        "--model.encoder_prompt",
        "in other words",
        "--model.decoder_prompt",
        "that is",
        "--model.score_decoder_prompt",
        "false",
    )
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval(), AutoTokenizer.from_pretrained(t5_dir)
    n_prompt = len(tok("that is,", add_special_tokens=False).input_ids)
    for i in (0, 1, 3):
        row = df.iloc[i]
        labels, logp = _hf_logprobs(
            model, tok, row["source"] + " in other words,", "that is, " + row["target"]
        )
        assert list(row["token_ids"]) == labels[n_prompt:]
        assert row["score_src_hyp"] == pytest.approx(float(logp[n_prompt:].mean()), rel=1e-5)
        assert row["source"] == ROWS[i]["source"] and row["target"] == ROWS[i]["target"]  # texts as given


def test_empty_prompt_is_a_one_line_error(t5_dir, input_file, tmp_path, capsys):
    args = ["score", "--model.name_or_path", str(t5_dir), "--data.path", str(input_file)]
    args += [
        "--data.target_column",
        "target",
        "--model.decoder_prompt",
        " ",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    assert_user_error(capsys, args, "decoder_prompt must be a non-empty text")
    assert not (tmp_path / "o").exists()
