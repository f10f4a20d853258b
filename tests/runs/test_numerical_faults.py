"""Non-finite logits (NaN, inf, float16 overflow) are caught per row (issue 8, item 3).

The faulty rows get ``error`` set ("non-finite logits ..."), the run goes on, every other row equals a run
of the same rows on the intact model, and ``summary.json`` counts the faulty rows in ``rows_nonfinite``.
Faults are made three ways: forward hooks on an in-memory model (NaN or +inf in the rows whose input holds
a marker word: in the logits on the model's own forward, in the encoder states under the fast T5 step, which
calls no decoder module), a saved model with one NaN entry in the encoder's relative position bias (rows long
enough to use that distance go NaN), and a saved float16 model whose logits overflow.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.models.t5.modeling_t5 import T5Attention

import t5score
from t5score.cli import main
from t5score.engine.logits_store import load_logits
from tests.helpers.tiny_models import make_tiny_model, make_tiny_tokenizer

MAX_NEW = 5
NAN_WORD, INF_WORD = "sort", "join"  # marker words: a row whose source holds one gets NaN / +inf logits
SOURCES = [
    "return the data of the file",
    "sort the list by name",
    "open the file and read the first line",
    "join the path and the name",
    "make a new list",
    "the value of a key in the dict",
    "sort and join the names",
]
NONFINITE = "non-finite logits"


def _flagged(errors) -> list[bool]:
    return [isinstance(e, str) and e.startswith(NONFINITE) for e in errors]


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN, also inside lists."""
    if isinstance(a, (list, tuple, np.ndarray)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _fault_hooks(model: torch.nn.Module, tokenizer, where: str = "logits") -> list:
    """Hooks that spoil the rows whose encoder input holds NAN_WORD (NaN) or INF_WORD (+inf).

    ``where="logits"`` writes into every logit of those rows (lm_head output; the batch must keep its rows);
    ``where="encoder"`` writes into their encoder states, which then spoil every logit of the row however
    the batch shrinks (``drop_finished``).
    """
    nan_id, inf_id = tokenizer.convert_tokens_to_ids([NAN_WORD, INF_WORD])
    rows = {}

    def see_input(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows["nan"], rows["inf"] = (ids == nan_id).any(-1), (ids == inf_id).any(-1)

    def spoil(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        tensor[rows["inf"]] = float("inf")
        tensor[rows["nan"]] = float("nan")  # a row with both markers gets NaN
        return tensor

    def spoil_logits(module, args, output):
        return spoil(output)

    def spoil_encoder(module, args, kwargs, output):
        output.last_hidden_state = spoil(output.last_hidden_state)
        return output

    encoder = model.get_encoder()
    if where == "logits":
        return [
            encoder.register_forward_pre_hook(see_input, with_kwargs=True),
            model.lm_head.register_forward_hook(spoil_logits),
        ]
    return [
        encoder.register_forward_pre_hook(see_input, with_kwargs=True),
        encoder.register_forward_hook(spoil_encoder, with_kwargs=True),
    ]


@pytest.fixture(scope="module")
def predictors(tmp_path_factory) -> dict[str, t5score.Predictor]:
    """A tiny T5 (decoded by the fast T5 step) and a tiny BART (decoded by the model's own forward)."""
    out = {}
    for kind in ("t5", "bart"):
        tok = make_tiny_tokenizer(tmp_path_factory.mktemp(kind), kind)
        out[kind] = t5score.Predictor(make_tiny_model(kind, init_scale=2.0), tok)
    return out


def _expected_faults() -> list[bool]:
    return [NAN_WORD in s.split() or INF_WORD in s.split() for s in SOURCES]


@pytest.mark.parametrize(
    "kind,where,options",
    [
        ("t5", "encoder", {}),
        ("t5", "encoder", {"num_samples": 2, "temperature": 0.8, "seed": 3}),
        ("t5", "encoder", {"drop_finished": True, "eos_check_every": 2}),
        ("bart", "encoder", {}),  # in-flight (the slots hold rows in their own order: the encoder is spoiled)
        ("bart", "logits", {"batching": "static"}),  # the logits hook needs the batch's rows in input order
        ("bart", "logits", {"num_samples": 2, "temperature": 0.8, "seed": 3}),
        ("bart", "encoder", {"batching": "static", "drop_finished": True}),
    ],
    ids=[
        "t5-greedy",
        "t5-sampled",
        "t5-drop_finished",
        "bart-greedy",
        "bart-greedy-static",
        "bart-sampled",
        "bart-drop_finished",
    ],
)
def test_hooked_model_flags_only_the_faulty_rows(predictors, kind, where, options):
    predictor = predictors[kind]
    clean = predictor.predict_records(SOURCES, max_new_tokens=MAX_NEW, batch_size=4, **options)
    hooks = _fault_hooks(predictor.model, predictor.tokenizer, where)
    try:
        faulty = predictor.predict_records(SOURCES, max_new_tokens=MAX_NEW, batch_size=4, **options)
    finally:
        for hook in hooks:
            hook.remove()
    samples = max(options.get("num_samples", 0), 1)
    assert [(r.id, r.sample_index) for r in faulty] == [(r.id, r.sample_index) for r in clean]
    assert len(faulty) == len(SOURCES) * samples  # nothing dropped, nothing doubled
    expected = [f for f in _expected_faults() for _ in range(samples)]
    assert _flagged(r.error for r in faulty) == expected
    for got, ref, bad in zip(faulty, clean, expected, strict=True):
        assert ref.error is None
        if bad:
            assert got.num_tokens > 0  # decoded (to max_new_tokens), then flagged
            assert not all(map(math.isfinite, got.token_logprobs))
        else:
            assert _same(asdict(got), asdict(ref))  # the clean rows of the batch are untouched


def test_hooked_model_capture_full_keeps_clean_rows_logits(predictors, tmp_path):
    predictor = predictors["t5"]
    reference = predictor.predict(
        SOURCES,
        max_new_tokens=MAX_NEW,
        batch_size=4,
        capture="full",
        logits_dtype="float32",
        logits_dir=tmp_path / "clean" / "logits",
    )
    hooks = _fault_hooks(predictor.model, predictor.tokenizer, "encoder")
    try:
        df = predictor.predict(
            SOURCES,
            max_new_tokens=MAX_NEW,
            batch_size=4,
            capture="full",
            logits_dtype="float32",
            logits_dir=tmp_path / "faulty" / "logits",
        )
    finally:
        for hook in hooks:
            hook.remove()
    assert df["error"].notna().tolist() == _expected_faults()
    for rid, bad in zip(df["id"], _expected_faults(), strict=True):
        logits = load_logits(tmp_path / "faulty", rid)
        if bad:
            assert not torch.isfinite(logits).all()
        else:
            assert torch.equal(logits, load_logits(tmp_path / "clean", rid))
            assert torch.isfinite(logits).all()
    ok = df["error"].isna()
    assert reference["error"].isna().all()
    pd.testing.assert_frame_equal(df[ok].drop(columns="error"), reference[ok].drop(columns="error"))


def test_float16_overflow_is_flagged(tmp_path):
    """A float16 model whose logits pass 65504 gives inf; every row is flagged and the API still returns all."""
    model = make_tiny_model("t5", init_scale=2.0).half()
    tok = make_tiny_tokenizer(tmp_path, "t5")
    predictor = t5score.Predictor(model, tok)
    sane = predictor.predict(SOURCES[:3], max_new_tokens=MAX_NEW)
    assert sane["error"].isna().all()  # float16 itself is fine
    with torch.no_grad():
        model.decoder.final_layer_norm.weight.mul_(20000.0)
        enc = tok(SOURCES[:3], return_tensors="pt", padding=True)
        start = torch.zeros(3, 1, dtype=torch.long)
        raw = model(**enc, decoder_input_ids=start).logits  # independent check: the overflow is real
    assert torch.isinf(raw).any(-1).all()
    df = predictor.predict(SOURCES[:3], max_new_tokens=MAX_NEW)
    assert df["id"].tolist() == ["0", "1", "2"]
    assert _flagged(df["error"]) == [True] * 3


# --- through the CLI, with a saved broken model ---------------------------------------------------------

DISTANCE = 7  # relative distance whose encoder position bias becomes NaN: rows of > 7 tokens break


def _nan_bias_model(t5_dir: Path, folder: Path) -> Path:
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir)
    cfg = model.config
    bucket = T5Attention._relative_position_bucket(
        torch.tensor(DISTANCE),
        bidirectional=True,
        num_buckets=cfg.relative_attention_num_buckets,
        max_distance=cfg.relative_attention_max_distance,
    )
    with torch.no_grad():
        model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight[bucket, 0] = float("nan")
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (t5_dir / name).exists():
            shutil.copy(t5_dir / name, folder / name)
    return folder


def _run(model_dir, data, out, *extra) -> pd.DataFrame:
    args = [
        "predict",
        "--model.name_or_path",
        str(model_dir),
        "--data.path",
        str(data),
        "--data.id_column",
        "id",
        "--data.target_column",
        "target",
        "--model.max_new_tokens",
        str(MAX_NEW),
        "--output_dir",
        str(out),
        *extra,
    ]
    assert main(args) == 0
    return pd.read_parquet(out / "predictions.parquet")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "in.jsonl"
    rows = [{"id": f"r{i}", "source": s, "target": "return the data"} for i, s in enumerate(SOURCES)]
    rows.insert(3, {"id": "empty", "source": "  ", "target": "x"})  # an input error alongside the faults
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_saved_model_with_nan_flags_rows_and_counts_them(t5_dir, data_file, tmp_path):
    broken = _nan_bias_model(t5_dir, tmp_path / "broken")
    # batch size 1: each row is padded to its own length only, so the fault depends on the row alone
    clean = _run(t5_dir, data_file, tmp_path / "clean", "--data.batch_size", "1")
    df = _run(broken, data_file, tmp_path / "faulty", "--data.batch_size", "1")
    rows = [json.loads(line) for line in data_file.read_text().splitlines()]
    assert df["id"].tolist() == [r["id"] for r in rows]  # none dropped or doubled, input order

    tok = AutoTokenizer.from_pretrained(t5_dir)  # the reference: which rows are longer than DISTANCE tokens
    long = [len(tok(r["source"])["input_ids"]) > DISTANCE and bool(r["source"].strip()) for r in rows]
    assert 0 < sum(long) < len(rows) - 1
    nonfinite = pd.Series(_flagged(df["error"]), index=df.index)
    assert nonfinite.tolist() == long
    assert df.set_index("id").loc["empty", "error"] == "field 'source' is empty"
    assert df.loc[nonfinite, "ref_logprob"].isna().all()  # flagged rows are not scored against the target
    ok = ~nonfinite
    pd.testing.assert_frame_equal(df[ok], clean[ok])  # every other row as on the intact model

    summary = json.loads((tmp_path / "faulty" / "summary.json").read_text())
    assert summary["rows"] == len(rows)
    assert summary["rows_nonfinite"] == sum(long)
    assert summary["rows_with_error"] == sum(long) + 1
    clean_summary = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert clean_summary["rows_nonfinite"] == 0 and clean_summary["rows_with_error"] == 1
    report = (tmp_path / "faulty" / "report.md").read_text(encoding="utf-8")
    assert f"### error\n\n{sum(long) + 1} row(s)." in report  # the flagged rows and the empty source
    for row_id in df.loc[nonfinite, "id"]:
        assert f"| {row_id} | non-finite" in report
    assert f"| rows_nonfinite | {sum(long)} |" in report


def test_cli_float16_overflow_every_row_flagged(data_file, tmp_path):
    model = make_tiny_model("t5", init_scale=2.0).half()
    with torch.no_grad():
        model.decoder.final_layer_norm.weight.mul_(20000.0)
    folder = tmp_path / "fp16"
    model.save_pretrained(folder)
    make_tiny_tokenizer(folder, "t5")
    df = _run(folder, data_file, tmp_path / "out", "--data.batch_size", "3")
    assert len(df) == len(SOURCES) + 1
    decodable = df["source"].str.strip() != ""
    assert _flagged(df.loc[decodable, "error"]) == [True] * len(SOURCES)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows_nonfinite"] == len(SOURCES) and summary["rows_with_error"] == len(SOURCES) + 1


def test_cli_nonfinite_reference_scores_flag_the_row(t5_dir, tmp_path):
    """Decoding is clean (5 steps) but teacher-forcing a long reference hits a NaN decoder position bias."""
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir)
    cfg = model.config
    bucket = T5Attention._relative_position_bucket(
        torch.tensor(-DISTANCE),
        bidirectional=False,
        num_buckets=cfg.relative_attention_num_buckets,
        max_distance=cfg.relative_attention_max_distance,
    )
    with torch.no_grad():
        model.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight[bucket, 0] = float("nan")
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (t5_dir / name).exists():
            shutil.copy(t5_dir / name, folder / name)
    data = tmp_path / "in.jsonl"
    rows = [
        {"id": "short", "source": "make a list", "target": "a new list"},
        {"id": "long", "source": "the data", "target": "return the data of the file and the list"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    df = _run(folder, data, tmp_path / "out", "--data.batch_size", "1")
    assert df["id"].tolist() == ["short", "long"]
    assert _flagged(df["error"]) == [False, True]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows_nonfinite"] == 1
