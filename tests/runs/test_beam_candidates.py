"""`t5score predict --model.num_beams N`: one row per beam candidate, as `generate(num_beams=N)` returns
them (same sequences in the same order, `sequence_score` = `sequences_scores`), straight into `t5score
rerank`; resume gives the same table; bad combinations are refused with one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import t5score.runs.writer
from t5score.cli import main

SOURCES = [
    "open the file and read the first line",
    "return the value of the key",
    "",  # an empty source: kept, flagged, R rows all the same
    "make a new list of names from the data",
    "sort the list",
]
BEAMS, MAX_NEW = 4, 8


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("beams") / "in.jsonl"
    with path.open("w") as f:
        for i, source in enumerate(SOURCES):
            f.write(json.dumps({"id": f"s{i}", "source": source, "target": "return the data"}) + "\n")
    return path


def _args(model_dir, input_file, out, *extra) -> list[str]:
    return [
        "predict",
        "--model.name_or_path",
        str(model_dir),
        "--data.path",
        str(input_file),
        "--data.id_column",
        "id",
        "--data.target_column",
        "target",
        "--data.batch_size",
        "2",
        "--model.max_new_tokens",
        str(MAX_NEW),
        "--model.num_beams",
        str(BEAMS),
        "--model.num_return_sequences",
        str(BEAMS),
        "--output_dir",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def beam_run(t5_dir, input_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("beam-run") / "run"
    assert main(_args(t5_dir, input_file, out)) == 0
    return out


def test_one_row_per_candidate_as_generate_returns_them(t5_dir, beam_run):
    df = pd.read_parquet(beam_run / "predictions.parquet")
    assert len(df) == len(SOURCES) * BEAMS
    assert df["id"].tolist() == [f"s{i}" for i in range(len(SOURCES)) for _ in range(BEAMS)]
    assert df["candidate_index"].tolist() == list(range(BEAMS)) * len(SOURCES)
    assert "sample_index" not in df.columns
    bad = df[df["id"] == "s2"]
    assert bad["error"].str.contains("empty").all() and (bad["num_tokens"] == 0).all()
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    length_penalty = model.generation_config.length_penalty
    length_penalty = 1.0 if length_penalty is None else length_penalty  # generate's default
    compared = 0
    for i, source in enumerate(SOURCES):
        if not source:
            continue
        rows = df[df["id"] == f"s{i}"].sort_values("candidate_index")
        assert rows["sequence_score"].is_monotonic_decreasing  # best first
        g = model.generate(
            **tok([source], return_tensors="pt"),
            do_sample=False,
            num_beams=BEAMS,
            num_return_sequences=BEAMS,
            max_new_tokens=MAX_NEW,
            output_scores=True,
            return_dict_in_generate=True,
        )
        for r, (_, row) in enumerate(rows.iterrows()):
            n = int(row["num_tokens"])
            seq = g.sequences[r, 1:].tolist()  # without the decoder start token
            assert list(row["token_ids"]) == seq[:n], (source, r)
            assert all(t == tok.pad_token_id for t in seq[n:])  # nothing generated after the candidate's end
            assert row["sequence_score"] == pytest.approx(float(g.sequences_scores[r]), abs=1e-4)
            # the documented relation: processed transition scores / length ** length_penalty
            total = sum(row["token_processed_logprobs"])
            assert total / n**length_penalty == pytest.approx(row["sequence_score"], rel=1e-4, abs=1e-5)
            assert row["sum_logprob"] == pytest.approx(sum(row["token_logprobs"]), rel=1e-6, abs=1e-6)
            compared += 1
        # transition scores of generate (with beam_indices) per candidate token
        scores = model.compute_transition_scores(g.sequences, g.scores, g.beam_indices)
        for r, (_, row) in enumerate(rows.iterrows()):
            n = int(row["num_tokens"])
            torch.testing.assert_close(
                torch.tensor(list(row["token_processed_logprobs"]), dtype=torch.float32),
                scores[r, :n],
                rtol=0,
                atol=1e-4,
            )
    assert compared == (len(SOURCES) - 1) * BEAMS
    # each reference is scored once per source: every candidate of a source has the same ref_* values
    ok = df[df["error"].isna()]
    assert ok["ref_logprob"].notna().all()
    assert (ok.groupby("id")["ref_logprob"].nunique() == 1).all()
    summary = json.loads((beam_run / "summary.json").read_text())
    assert summary["rows"] == len(df) and summary["ref_num_rows"] == len(SOURCES) - 1


def test_beam_candidates_feed_rerank(beam_run, t5_dir, tmp_path):
    out = tmp_path / "rerank"
    args = [
        "rerank",
        "--model.name_or_path",
        str(t5_dir),
        "--data.path",
        str(beam_run / "predictions.parquet"),
        "--data.group_column",
        "id",
        "--data.candidate_column",
        "prediction",
        "--data.reference_column",
        "target",
        "--output_dir",
        str(out),
    ]
    assert main(args) == 0
    ranked = pd.read_parquet(out / "reranked.parquet")
    assert len(ranked) == len(SOURCES) * BEAMS
    for gid, group in ranked[ranked["error"].isna()].groupby("group_id"):
        assert sorted(group["rank"].tolist()) == list(range(1, BEAMS + 1)), gid
        assert group["candidate_index"].tolist() == list(range(BEAMS))
    assert ranked["group_id"].nunique() == len(SOURCES)


def test_resume_after_a_crash_gives_the_same_table(beam_run, t5_dir, input_file, tmp_path, monkeypatch):
    crashed = tmp_path / "crashed"
    real_write = t5score.runs.writer.write_part
    calls = []

    def crash_after_one(*args, **kwargs):
        if calls:
            raise RuntimeError("simulated crash after 1 batch")
        calls.append(1)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(t5score.runs.writer, "write_part", crash_after_one)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(_args(t5_dir, input_file, crashed))
    monkeypatch.setattr(t5score.runs.writer, "write_part", real_write)
    assert main(_args(t5_dir, input_file, crashed, "--resume")) == 0
    assert json.loads((crashed / "run.json").read_text())["batches_resumed"] == 1
    full = pd.read_parquet(beam_run / "predictions.parquet")
    again = pd.read_parquet(crashed / "predictions.parquet")
    pd.testing.assert_frame_equal(
        full.drop(columns=["sequence_score"]).map(_plain), again.drop(columns=["sequence_score"]).map(_plain)
    )
    assert again["sequence_score"].fillna(0).tolist() == pytest.approx(
        full["sequence_score"].fillna(0).tolist(), abs=1e-5
    )


def _plain(value):
    """Lists (numpy arrays in a read-back table) as tuples, so frames compare cell by cell."""
    return tuple(map(_plain, value)) if hasattr(value, "__len__") and not isinstance(value, str) else value


def test_greedy_runs_have_no_beam_columns(t5_dir, input_file, tmp_path):
    out = tmp_path / "greedy"
    args = [a for a in _args(t5_dir, input_file, out)]
    cut = args.index("--model.num_beams")
    del args[cut : cut + 4]
    assert main(args) == 0
    df = pd.read_parquet(out / "predictions.parquet")
    assert len(df) == len(SOURCES)
    assert not {"candidate_index", "sequence_score", "sample_index"} & set(df.columns)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--model.num_return_sequences", str(BEAMS + 1)], "num_return_sequences"),
        (["--model.num_samples", "2"], "num_samples"),
        (["--model.num_beam_groups", "3"], "num_beam_groups"),
        (["--model.early_stopping", "sometimes"], "early_stopping"),
    ],
)
def test_bad_combinations_exit_2_with_one_line(t5_dir, input_file, tmp_path, capsys, extra, needle):
    out = tmp_path / "bad"
    assert main(_args(t5_dir, input_file, out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not (out / "predictions.parquet").exists()


def test_api_gives_the_cli_candidates(beam_run, t5_dir):
    import t5score

    cli = pd.read_parquet(beam_run / "predictions.parquet")
    p = t5score.Predictor.from_pretrained(str(t5_dir))
    df = p.predict(
        [SOURCES[0], SOURCES[1]],
        num_beams=BEAMS,
        num_return_sequences=BEAMS,
        max_new_tokens=MAX_NEW,
    )
    assert df["candidate_index"].tolist() == list(range(BEAMS)) * 2
    expected = cli[cli["id"].isin(["s0", "s1"])]
    assert df["prediction"].tolist() == expected["prediction"].tolist()
    assert df["sequence_score"].tolist() == pytest.approx(expected["sequence_score"].tolist(), abs=1e-5)
    with pytest.raises(ValueError, match="num_samples"):
        p.predict([SOURCES[0]], num_beams=2, num_samples=2)


def test_diverse_beam_search_from_the_cli(t5_dir, input_file, tmp_path, beam_run):
    """Two groups with a diversity penalty: R rows per source, best first, not all those of plain beam
    search (the engine's tests compare diverse beam search with a reference implementation)."""
    out = tmp_path / "diverse"
    extra = ["--model.num_beam_groups", "2", "--model.diversity_penalty", "1.0"]
    assert main(_args(t5_dir, input_file, out, *extra)) == 0
    df = pd.read_parquet(out / "predictions.parquet")
    assert df["candidate_index"].tolist() == list(range(BEAMS)) * len(SOURCES)
    for _, group in df[df["error"].isna()].groupby("id"):
        scores = group["sequence_score"].tolist()
        assert scores == sorted(scores, reverse=True)
    plain = pd.read_parquet(beam_run / "predictions.parquet")
    assert (df["prediction"] != plain["prediction"]).any()  # the penalty changed some candidates


def test_the_closing_line_counts_the_rows_written(t5_dir, input_file, tmp_path, capsys):
    """The success line counts the candidate rows in the file (sources * R), not the input rows."""
    out = tmp_path / "count"
    assert main(_args(t5_dir, input_file, out)) == 0
    rows = len(pd.read_parquet(out / "predictions.parquet"))
    assert rows == BEAMS * len(SOURCES)
    assert f"t5score: {rows} rows -> {out / 'predictions.parquet'}" in capsys.readouterr().out


def test_run_json_records_the_beam_settings_in_force(beam_run, t5_dir):
    """length_penalty / early_stopping not given: the model's generation config decides (generate's
    defaults 1.0 / False when it sets none), and run.json says which values ran."""
    config = json.loads((t5_dir / "generation_config.json").read_text())
    beam = json.loads((beam_run / "run.json").read_text())["generation"]["beam_search"]
    assert beam["num_beams"] == beam["num_return_sequences"] == BEAMS
    assert beam["length_penalty"] == config.get("length_penalty", 1.0)
    assert beam["early_stopping"] == config.get("early_stopping", False)
    assert (beam["num_beam_groups"], beam["diversity_penalty"]) == (1, 0.0)


def test_capture_full_keeps_the_raw_logits_of_the_returned_candidates(t5_dir, input_file, tmp_path):
    """capture=full with beams: each returned candidate's logits, read back by (id, candidate_index), equal
    generate's output_logits gathered along its beam_indices (no other beam's logits are kept)."""
    from t5score import load_logits

    out = tmp_path / "full"
    assert (
        main(_args(t5_dir, input_file, out, "--model.capture", "full", "--model.logits_dtype", "float32"))
        == 0
    )
    df = pd.read_parquet(out / "predictions.parquet")
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir).eval()
    tok = AutoTokenizer.from_pretrained(t5_dir)
    checked = 0
    for i, source in enumerate(SOURCES):
        if not source:
            continue
        g = model.generate(
            **tok([source], return_tensors="pt"),
            do_sample=False,
            num_beams=BEAMS,
            num_return_sequences=BEAMS,
            max_new_tokens=MAX_NEW,
            output_logits=True,
            return_dict_in_generate=True,
        )
        for r in range(BEAMS):
            row = df[(df["id"] == f"s{i}") & (df["candidate_index"] == r)].iloc[0]
            n = int(row["num_tokens"])
            kept = load_logits(out, f"s{i}", candidate_index=r)
            assert kept.shape == (n, model.config.vocab_size)
            beams = g.beam_indices[r, :n]
            expected = torch.stack([g.logits[t][beams[t]] for t in range(n)])
            scale = expected.abs().max()
            torch.testing.assert_close(kept / scale, expected / scale, atol=1e-5, rtol=0)
            checked += 1
    assert checked == BEAMS * (len(SOURCES) - 1)
    index = pd.read_parquet(out / "logits" / "index.parquet")
    assert len(index) == len(df) - BEAMS  # every returned candidate of every decoded source, once
