"""`t5score predict` and `t5score score` end to end on saved checkpoints of several families of the zoo.

The engine-level tests (tests/engine/test_families_*.py) cover every family; these check the whole path a
user takes (a model folder with its generation config, the CLI, the Parquet table): predictions equal
``generate`` with the checkpoint's own generation config, scores equal the model's forward on each pair
alone, and mT5 (whose output layer is never rescaled) gives the same numbers through the fast T5 engine
and through the model's own forward.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from t5score.cli import main
from tests.engine.test_families_scoring import SOURCES, reference
from tests.helpers.families import make_family

FAMILIES = ("mt5", "bart", "marian", "switch", "fsmt")
TARGETS = ["return the value", "count the items in the list and return the number", "close"]
STEPS = 8


def save_family(name: str, folder):
    """The family's model and tokenizer saved in ``folder`` with a small input file beside them."""
    model, tok = make_family(name)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    data = folder / "rows.jsonl"
    rows = [
        {"id": f"r{i}", "source": s, "target": t}
        for i, (s, t) in enumerate(zip(SOURCES, TARGETS, strict=True))
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return name, model, tok, folder, data


@pytest.fixture(scope="module", params=FAMILIES)
def checkpoint(request, tmp_path_factory):
    return save_family(request.param, tmp_path_factory.mktemp(request.param))


def _predict(folder, data, out, *extra) -> pd.DataFrame:
    args = ["predict", "--model.name_or_path", str(folder), "--data.path", str(data)]
    args += ["--model.max_new_tokens", str(STEPS), "--output_dir", str(out), *extra]
    assert main(args) == 0
    return pd.read_parquet(out / "predictions.parquet")


def test_predict_equals_generate_with_the_checkpoint_config(checkpoint, tmp_path):
    name, model, tok, folder, data = checkpoint
    frame = _predict(folder, data, tmp_path / "run")
    for row, source in zip(frame.itertuples(), SOURCES, strict=True):
        enc = tok([source], return_tensors="pt")
        out = model.generate(
            **enc,
            do_sample=False,
            num_beams=1,
            max_new_tokens=STEPS,
            output_logits=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
        n = int(row.num_tokens)
        assert list(row.token_ids) == out.sequences[0, 1 : 1 + n].tolist(), name
        raw = torch.log_softmax(torch.stack(out.logits, 1)[0, :n].double(), -1)
        expected = raw.gather(-1, out.sequences[0, 1 : 1 + n, None])[:, 0]
        torch.testing.assert_close(
            torch.tensor(list(row.token_logprobs)).double(), expected, atol=1e-4, rtol=0
        )
        processed = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0, :n]
        got = torch.tensor(list(row.token_processed_logprobs)).double()
        torch.testing.assert_close(got, processed.double(), atol=1e-4, rtol=0)


def test_score_equals_forward_on_each_pair(checkpoint, tmp_path):
    name, model, tok, folder, data = checkpoint
    out = tmp_path / "score"
    args = ["score", "--model.name_or_path", str(folder), "--data.path", str(data)]
    assert main([*args, "--data.target_column", "target", "--output_dir", str(out)]) == 0
    frame = pd.read_parquet(out / "scores.parquet")
    for row, source, target in zip(frame.itertuples(), SOURCES, TARGETS, strict=True):
        labels, logps = reference(model, tok, source, target)
        assert list(row.token_ids) == labels, name
        assert row.sum_logprob == pytest.approx(float(logps.sum()), rel=1e-4, abs=1e-6), name


def test_mt5_fast_engine_equals_its_own_forward(tmp_path):
    _, _, _, folder, data = save_family("mt5", tmp_path / "mt5")
    fast = _predict(folder, data, tmp_path / "t5", "--model.engine", "t5")
    plain = _predict(folder, data, tmp_path / "hf", "--model.engine", "hf")
    assert fast["token_ids"].map(list).tolist() == plain["token_ids"].map(list).tolist()
    for a, b in zip(fast["token_logprobs"], plain["token_logprobs"], strict=True):
        torch.testing.assert_close(torch.tensor(list(a)), torch.tensor(list(b)), atol=1e-4, rtol=0)
    for a, b in zip(fast["token_entropies"], plain["token_entropies"], strict=True):
        torch.testing.assert_close(torch.tensor(list(a)), torch.tensor(list(b)), atol=1e-4, rtol=0)
