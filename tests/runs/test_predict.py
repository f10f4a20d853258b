"""End to end: `t5score predict` writes predictions.parquet, run.json and a report; numbers match HF."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import t5score
from t5score.cli import main

CONTRACT = [
    "id",
    "source",
    "prediction",
    "token_ids",
    "token_logprobs",
    "token_entropies",
    "top1_probs",
    "topk_ids",
    "topk_logprobs",
    "num_tokens",
    "sum_logprob",
    "mean_logprob",
    "finished",
    "truncated",
    "error",
]
SOURCES = [
    "return the data of the file",
    "the value of a key in the dict",
    "   ",
    "open a file and read the first line",
    "make a new list",
    "check if the index is in the list and return true else return false",
    "copy the file to the path",
]


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "in.jsonl"
    with path.open("w") as f:
        for i, src in enumerate(SOURCES):
            f.write(json.dumps({"key": f"ex{i}", "text": src, "ref": "return the value"}) + "\n")
    return path


def _predict(model_dir, input_file, out, *extra):
    args = [
        "predict",
        "--model.name_or_path",
        str(model_dir),
        "--data.path",
        str(input_file),
        "--data.source_column",
        "text",
        "--data.id_column",
        "key",
        "--data.batch_size",
        "3",
        "--model.max_new_tokens",
        "10",
        "--output_dir",
        str(out),
        *extra,
    ]
    assert main(args) == 0
    return pd.read_parquet(out / "predictions.parquet")


def test_predict_end_to_end_matches_generate(t5_dir, input_file, tmp_path):
    out = tmp_path / "run"
    df = _predict(
        t5_dir,
        input_file,
        out,
        "--data.target_column",
        "ref",
        "--model.capture",
        "full",
        "--model.logits_dtype",
        "float32",
    )
    assert [c for c in CONTRACT if c not in df.columns] == []
    assert df["id"].tolist() == [f"ex{i}" for i in range(len(SOURCES))]  # input order, nothing dropped
    assert df["source"].tolist()[0] == SOURCES[0]
    bad = df[df["id"] == "ex2"].iloc[0]
    assert "empty" in bad["error"] and bad["num_tokens"] == 0
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)  # t5score's setting (scoring/rouge.py)
    for _, row in df[df["error"].isna()].iterrows():
        enc = tok([row["source"]], return_tensors="pt")
        g = model.generate(
            **enc,
            do_sample=False,
            num_beams=1,
            max_new_tokens=10,
            output_logits=True,
            return_dict_in_generate=True,
        )
        seq = g.sequences[0, 1:].tolist()
        n = row["num_tokens"]
        assert list(row["token_ids"]) == seq[:n]
        scores = model.compute_transition_scores(g.sequences, g.logits, normalize_logits=True)[0, :n]
        torch.testing.assert_close(
            torch.tensor(list(row["token_logprobs"]), dtype=torch.float32), scores, rtol=1e-5, atol=1e-5
        )
        logits = t5score.load_logits(out, row["id"])
        ref = torch.stack(g.logits, 1)[0, :n]
        assert logits.shape == ref.shape
        torch.testing.assert_close(logits / ref.abs().max(), ref / ref.abs().max(), rtol=0, atol=1e-5)
        # reference log-likelihood vs the model's own loss on the target
        labels = tok(["return the value"], return_tensors="pt").input_ids
        loss = model(**enc, labels=labels).loss
        assert row["ref_logprob"] == pytest.approx(-(loss * labels.shape[1]).item(), rel=1e-4)
        expected_rouge = scorer.score("return the value", row["prediction"])["rougeL"].fmeasure
        assert row["rougeL"] == pytest.approx(expected_rouge, abs=1e-12)
    run = json.loads((out / "run.json").read_text())
    assert run["kind"] == "predict" and run["rows"] == len(SOURCES) and run["model"] == str(t5_dir)
    assert run["data"] == str(input_file) and run["batches_resumed"] == 0
    assert run["config"]["model"]["name_or_path"] == str(t5_dir)
    assert run["config"]["model"]["capture"] == "full" and run["config"]["data"]["target_column"] == "ref"
    assert run["tokens"] == int(df["num_tokens"].sum())
    assert run["wall_time_s"] > 0 and run["tokens_per_s"] == pytest.approx(
        run["tokens"] / run["wall_time_s"], rel=1e-2
    )
    assert run["versions"]["torch"] == torch.__version__
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == len(SOURCES) and summary["rows_with_error"] == 1
    assert summary["ref_ece"] is not None and "rouge" in summary
    # the summary is reproducible from predictions.parquet alone, through independent numpy arithmetic
    ok = df[df["error"].isna()]
    lps = np.concatenate([np.asarray(v) for v in ok["token_logprobs"]])
    assert summary["num_tokens"] == len(lps)
    assert summary["mean_token_logprob"] == pytest.approx(lps.mean(), rel=1e-9)
    ents = np.concatenate([np.asarray(v) for v in ok["token_entropies"]])
    assert summary["mean_token_entropy"] == pytest.approx(ents.mean(), rel=1e-9)
    conf = np.concatenate([np.asarray(v) for v in ok["ref_top1_probs"]])
    hit = np.concatenate([np.asarray(v, dtype=float) for v in ok["ref_top1_correct"]])
    edges = np.linspace(0, 1, 16)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, 14)  # (lo, hi] bins, 1.0 in the last
    ece = sum(
        abs(conf[which == b].mean() - hit[which == b].mean()) * (which == b).sum()
        for b in range(15)
        if (which == b).any()
    ) / len(conf)
    assert summary["ref_ece"] == pytest.approx(ece, abs=1e-9)
    assert summary["ref_brier"] == pytest.approx(((conf - hit) ** 2).mean(), abs=1e-12)
    assert summary["rouge"]["rougeL"] == pytest.approx(ok["rougeL"].astype(float).mean(), rel=1e-9)
    # report.md shows the numbers of summary.json and links the figures summary.json lists
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"```\n{run['command']}\n```" in report and f"| rows | {summary['rows']} |" in report
    for key in ("rows_with_error", "num_tokens"):
        assert f"| {key} | {summary[key]} |" in report
    assert f"| rouge.rougeL | {summary['rouge']['rougeL']:.4g} |" in report
    assert f"| ref_ece | {summary['ref_ece']:.4g} |" in report
    assert summary["uncertainty"]["quality_column"] == "rougeL"
    msp = summary["uncertainty"]["scores"]["msp"]
    assert msp["n"] == len(ok) and msp["aurc_random"] == pytest.approx(1 - ok["rougeL"].astype(float).mean())
    for title, rel in summary["figures"].items():
        assert f"![{title}]({rel})" in report and (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary["figures"].values()) >= {"figures/token_entropy.png", "figures/risk_coverage.png"}


def test_output_folder_refuses_reuse_then_overwrites(t5_dir, input_file, tmp_path):
    out = tmp_path / "run"
    first = _predict(t5_dir, input_file, out)
    assert (
        main(
            [
                "predict",
                "--model.name_or_path",
                str(t5_dir),
                "--data.path",
                str(input_file),
                "--data.source_column",
                "text",
                "--output_dir",
                str(out),
            ]
        )
        == 2
    )
    second = _predict(t5_dir, input_file, out, "--overwrite")
    pd.testing.assert_frame_equal(first, second)


def test_api_matches_cli(t5_dir, input_file, tmp_path):
    df_cli = _predict(t5_dir, input_file, tmp_path / "run")
    predictor = t5score.Predictor.from_pretrained(str(t5_dir))
    frame = pd.read_json(input_file, lines=True)
    df_api = predictor.predict(frame, source_column="text", id_column="key", max_new_tokens=10, batch_size=2)
    assert df_api["id"].tolist() == df_cli["id"].tolist()
    assert df_api["prediction"].tolist() == df_cli["prediction"].tolist()
    ok = df_api["error"].isna()
    a = df_api.loc[ok, "sum_logprob"].to_numpy()
    b = df_cli.loc[ok, "sum_logprob"].to_numpy()
    assert abs(a - b).max() < 1e-4
    texts = predictor.predict(["make a new list"], max_new_tokens=10)
    assert texts["prediction"][0] == df_cli.loc[df_cli["id"] == "ex4", "prediction"].item()


@pytest.mark.parametrize(
    "content,needle",
    [
        (b'{"text": "a"}\n{"text": oops}\n', "line 2: not valid JSON"),
        (b'{"text": "caf\xe9"}\n', "not UTF-8"),
        (b'{"other": "a"}\n', "no column 'text'"),
        (b"", "has no rows"),
    ],
)
def test_bad_input_one_line_error(t5_dir, tmp_path, capsys, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    code = main(
        [
            "predict",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(path),
            "--data.source_column",
            "text",
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("t5score: error:") and needle in err[-1] and str(path) in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_console_script_missing_file_exits_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "t5score.cli",
            "predict",
            "--data.path",
            str(tmp_path / "nope.jsonl"),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_bf16_mixed_precision_runs_and_keeps_float32_statistics(t5_dir, input_file, tmp_path):
    fp32 = _predict(t5_dir, input_file, tmp_path / "fp32")
    bf16 = _predict(t5_dir, input_file, tmp_path / "bf16", "--trainer.precision", "bf16-mixed")
    assert bf16["id"].tolist() == fp32["id"].tolist()
    ok = bf16["error"].isna()
    assert ok.sum() == fp32["error"].isna().sum()
    assert all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in bf16.loc[ok, "token_logprobs"])
    # bf16 rounds the model's activations, yet the first token's log-probability stays close to float32's
    first = [
        abs(a[0] - b[0])
        for a, b in zip(bf16.loc[ok, "token_logprobs"], fp32.loc[ok, "token_logprobs"], strict=True)
    ]
    assert max(first) < 0.5


def test_int8_quantize_is_opt_in_and_keeps_rows(t5_dir, input_file, tmp_path):
    fp32 = _predict(t5_dir, input_file, tmp_path / "fp32")
    int8 = _predict(t5_dir, input_file, tmp_path / "int8", "--model.quantize", "int8")
    assert int8["id"].tolist() == fp32["id"].tolist()
    run = json.loads((tmp_path / "fp32" / "run.json").read_text())
    assert run["config"]["model"]["quantize"] == "none"  # off unless asked for
    ok = fp32["error"].isna()
    # int8 perturbs the logits: the first token's log-probability moves, but stays near float32's
    first = [
        abs(a[0] - b[0])
        for a, b in zip(int8.loc[ok, "token_logprobs"], fp32.loc[ok, "token_logprobs"], strict=True)
    ]
    assert max(first) < 0.5


def test_engine_option_hf_equals_fast_step_and_compile_is_opt_in(t5_dir, input_file, tmp_path, capsys):
    fast = _predict(t5_dir, input_file, tmp_path / "auto")
    plain = _predict(t5_dir, input_file, tmp_path / "hf", "--model.engine", "hf")
    config = json.loads((tmp_path / "auto" / "run.json").read_text())["config"]["model"]
    assert config["engine"] == "auto" and config["compile"] is False  # torch.compile only when asked for
    ok = fast["error"].isna()
    assert [list(v) for v in fast.loc[ok, "token_ids"]] == [list(v) for v in plain.loc[ok, "token_ids"]]
    for a, b in zip(fast.loc[ok, "token_logprobs"], plain.loc[ok, "token_logprobs"], strict=True):
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-4, atol=1e-4)
    code = main(
        [
            "predict",
            "--model.name_or_path",
            str(t5_dir),
            "--data.path",
            str(input_file),
            "--data.source_column",
            "text",
            "--model.engine",
            "fast",
            "--output_dir",
            str(tmp_path / "x"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "engine must be one of" in err[-1] and "Traceback" not in "\n".join(err)


def test_summary_metrics_reach_a_trainer_logger(t5_dir, input_file, tmp_path):
    """``self.log`` is refused in predict hooks; the merged run's metrics go to the configured logger."""
    out, logs = tmp_path / "run", tmp_path / "logs"
    _predict(
        t5_dir,
        input_file,
        out,
        "--data.target_column",
        "ref",
        "--trainer.logger",
        "CSVLogger",
        "--trainer.logger.save_dir",
        str(logs),
    )
    (csv,) = logs.rglob("metrics.csv")
    logged = pd.read_csv(csv).iloc[0]
    summary = json.loads((out / "summary.json").read_text())
    for key, value in (
        ("mean_token_entropy", summary["mean_token_entropy"]),
        ("rows", summary["rows"]),
        ("rouge.rougeL", summary["rouge"]["rougeL"]),
        ("ref_ece", summary["ref_ece"]),
    ):
        assert logged[key] == pytest.approx(value, rel=1e-12), key
