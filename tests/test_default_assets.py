"""The embedded default: shipped JSONL data, the trained tiny T5 and its candidates file.

References: the HF forward pass (manual greedy loop and teacher-forced loss), ``rouge_score``, the
numbers recorded in ``training.json`` at training time, and a rebuild of the data from the stdlib.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5score.assets import default_candidates_path, default_data_path, default_model_path

REPO = Path(__file__).resolve().parents[1]
N_DECODE = 16


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def module_of(row_id: str) -> str:
    return row_id.split(":", 1)[0]


def family_of(row_id: str) -> str:
    return module_of(row_id).split(".", 1)[0].lstrip("_")


@pytest.fixture(scope="module")
def test_rows() -> list[dict]:
    return read_jsonl(default_data_path("test"))


@pytest.fixture(scope="module")
def info() -> dict:
    return json.loads((Path(default_model_path()) / "training.json").read_text())


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(1)
    path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


@pytest.fixture(scope="module")
def greedy(loaded, test_rows, info):
    tokenizer, model = loaded
    enc = tokenizer(
        [r["source"] for r in test_rows[:N_DECODE]],
        max_length=info["arguments"]["max_source_length"],
        truncation=True,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        ids = model.generate(**enc)
    return enc, ids, tokenizer.batch_decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_splits_parse_with_expected_fields(split):
    rows = read_jsonl(default_data_path(split))
    assert 100 <= len(rows) <= 400
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "source", "target"}
        assert ":" in r["id"] and r["source"].strip() and 3 <= len(r["target"].split()) <= 30
        assert "\n" not in r["target"]


def test_no_test_module_in_validation(test_rows):
    val_rows = read_jsonl(default_data_path("validation"))
    assert not {module_of(r["id"]) for r in test_rows} & {module_of(r["id"]) for r in val_rows}
    assert not {family_of(r["id"]) for r in test_rows} & {family_of(r["id"]) for r in val_rows}


@pytest.mark.skipif(
    sys.version_info[:3] != (3, 11, 7) or not Path(sysconfig.get_paths()["stdlib"], "difflib.py").exists(),
    reason="the shipped data was built from the CPython 3.11.7 standard library",
)
def test_builder_reproduces_shipped_splits_and_keeps_train_modules_out(tmp_path, test_rows):
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "build_code_summary_data.py"), "--out-dir", str(tmp_path)]
        + ["--train-dir", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for split in ("test", "validation"):
        shipped = Path(default_data_path(split)).read_text(encoding="utf-8")
        assert (tmp_path / f"code_summary_{split}.jsonl").read_text(encoding="utf-8") == shipped
    train = read_jsonl(tmp_path / "code_summary_train.jsonl")
    held_out = test_rows + read_jsonl(default_data_path("validation"))
    assert not {family_of(r["id"]) for r in train} & {family_of(r["id"]) for r in held_out}
    assert not {r["source"] for r in train} & {r["source"] for r in held_out}


def test_model_is_small_and_configured(loaded, info):
    tokenizer, model = loaded
    files = [p for p in Path(default_model_path()).iterdir() if p.is_file()]
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in files
    }
    assert sum(p.stat().st_size for p in files) < 10 * 2**20
    assert sum(p.numel() for p in model.parameters()) == info["num_parameters"]
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id == 0
    assert model.config.eos_token_id == tokenizer.eos_token_id == 1
    assert model.generation_config.max_new_tokens == info["arguments"]["max_target_length"]
    assert len(tokenizer) == model.config.vocab_size


def test_tokenizer_round_trips_targets(loaded, test_rows):
    tokenizer, _ = loaded
    for r in test_rows[:50]:
        ids = tokenizer(r["target"])["input_ids"]
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == r["target"]
    # sources: whitespace (newlines, indentation) collapses to single spaces, nothing else changes
    source = test_rows[0]["source"]
    decoded = tokenizer.decode(tokenizer(source)["input_ids"], skip_special_tokens=True)
    assert decoded == " ".join(source.split())


def test_greedy_outputs_are_nontrivial(greedy, test_rows):
    _, _, predictions = greedy
    assert len(set(predictions)) >= N_DECODE // 2
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [
        scorer.score(r["target"], p)["rougeL"].fmeasure for r, p in zip(test_rows, predictions, strict=False)
    ]
    assert sum(s > 0 for s in scores) >= N_DECODE // 4
    assert sum(s == 1.0 for s in scores) < N_DECODE  # partly wrong, too


def test_generate_matches_manual_greedy_loop(loaded, greedy):
    """``model.generate`` with the shipped generation config equals argmax decoding with the forward pass."""
    tokenizer, model = loaded
    enc, ids, _ = greedy
    for row in (0, 5):
        src = enc["input_ids"][row : row + 1, : int(enc["attention_mask"][row].sum())]
        out = torch.tensor([[model.config.decoder_start_token_id]])
        with torch.no_grad():
            for _ in range(model.generation_config.max_new_tokens):
                logits = model(input_ids=src, decoder_input_ids=out).logits
                out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
                if out[0, -1] == tokenizer.eos_token_id:
                    break
        expected = tokenizer.decode(out[0], skip_special_tokens=True)
        assert tokenizer.decode(ids[row], skip_special_tokens=True) == expected


def test_recorded_validation_loss_matches_shipped_weights(loaded, info):
    tokenizer, model = loaded
    rows = read_jsonl(default_data_path("validation"))
    args = info["arguments"]
    total, tokens = 0.0, 0
    with torch.no_grad():
        for r in rows:
            enc = tokenizer(
                r["source"], max_length=args["max_source_length"], truncation=True, return_tensors="pt"
            )
            labels = tokenizer(
                r["target"], max_length=args["max_target_length"], truncation=True, return_tensors="pt"
            )
            n = labels["input_ids"].shape[1]
            total += float(model(**enc, labels=labels["input_ids"]).loss) * n
            tokens += n
    assert total / tokens == pytest.approx(info["validation"]["loss"], abs=2e-3)


def test_model_uses_its_source(loaded, info):
    """Teacher-forced loss is lower with the true source than with another row's source."""
    tokenizer, model = loaded
    rows = read_jsonl(default_data_path("validation"))[:60]
    args = info["arguments"]

    def mean_loss(sources: list[str]) -> float:
        total, tokens = 0.0, 0
        with torch.no_grad():
            for source, row in zip(sources, rows, strict=True):
                enc = tokenizer(
                    source, max_length=args["max_source_length"], truncation=True, return_tensors="pt"
                )
                labels = tokenizer(row["target"], return_tensors="pt")["input_ids"]
                total += float(model(**enc, labels=labels).loss) * labels.shape[1]
                tokens += labels.shape[1]
        return total / tokens

    true_loss = mean_loss([r["source"] for r in rows])
    rotated = mean_loss([rows[(i + 37) % len(rows)]["source"] for i in range(len(rows))])
    assert true_loss < rotated - 0.05


def test_training_record_and_examples(info, greedy):
    assert info["seed"] == info["arguments"]["seed"]
    assert info["train_wall_seconds"] > 0 and info["optimizer_steps"] > 0
    assert 0.0 < info["validation"]["rougeL_f"] < 1.0 and info["validation"]["loss"] > 0
    assert info["data"]["test"] == len(read_jsonl(default_data_path("test")))
    _, _, predictions = greedy
    recorded = [e["prediction"] for e in info["examples"]]
    # recorded in a batch of 32 at training time; allow a rare argmax tie flip from a different batch shape
    assert sum(a == b for a, b in zip(recorded, predictions, strict=False)) >= len(recorded) - 1


def test_candidates_file(test_rows, greedy):
    records = read_jsonl(default_candidates_path())
    assert 30 <= len(records) <= 100
    for rec, row in zip(records, test_rows, strict=False):
        assert set(rec) == {"id", "source", "reference", "candidates"}
        assert (rec["id"], rec["source"], rec["reference"]) == (row["id"], row["source"], row["target"])
        assert 4 <= len(rec["candidates"]) <= 8
        assert all(isinstance(c, str) for c in rec["candidates"])
    _, _, predictions = greedy
    firsts = [rec["candidates"][0] for rec in records[:N_DECODE]]
    assert sum(a == b for a, b in zip(firsts, predictions, strict=True)) >= N_DECODE - 1


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="split must be one of"):
        default_data_path("train")
