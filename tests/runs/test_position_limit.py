"""``max_new_tokens`` beyond a model's fixed table of decoder positions is refused before the run starts.

BART-family models index a learned (or fixed sinusoidal) table with each decoder position: past its last row
the forward fails with an index error deep in the embedding. The run refuses such a limit in one line; the
last position the table holds still decodes (the limit is not off by one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from t5score.engine.decode import greedy_decode
from t5score.engine.modeling import decoder_positions
from t5score.engine.options import DecodeOptions
from tests.helpers.cli import assert_user_error
from tests.helpers.families import make_family
from tests.helpers.tiny_models import make_tiny_model, make_tiny_model_dir


def test_the_limit_is_the_tables_rows_less_the_offset() -> None:
    bart = make_family("bart")[0]
    assert decoder_positions(bart) == bart.get_decoder().embed_positions.weight.shape[0] - 2 == 64
    assert decoder_positions(make_family("marian")[0]) == 64
    assert decoder_positions(make_family("t5")[0]) is None  # relative positions: no table
    assert decoder_positions(make_family("m2m100")[0]) is None  # its sinusoidal table grows itself


@pytest.mark.filterwarnings("ignore:generation config")
def test_the_last_position_of_the_table_decodes_and_one_more_fails() -> None:
    """The reference: BART's own forward indexes position ``max_new_tokens - 1`` at the last step."""
    model = make_family("bart")[0]
    model.generation_config.min_length = 100  # no EOS: every row runs to the limit
    input_ids = torch.tensor([[0, 9, 10, 11, 2]])
    mask = torch.ones_like(input_ids)
    out = greedy_decode(
        model, input_ids, mask, DecodeOptions(max_new_tokens=64, engine="hf", batching="static")
    )
    assert int(out.num_tokens[0]) == 64
    with pytest.raises(IndexError):
        greedy_decode(
            model, input_ids, mask, DecodeOptions(max_new_tokens=65, engine="hf", batching="static")
        )


def test_predict_refuses_a_limit_past_the_positions_in_one_line(tmp_path: Path, capsys) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "bart", "bart")
    assert decoder_positions(make_tiny_model("bart")) is not None
    limit = json.loads((model_dir / "config.json").read_text())["max_position_embeddings"]
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"id": "a", "source": "hello world"}) + "\n")
    out = tmp_path / "out"
    argv = ["predict", f"--model.name_or_path={model_dir}", f"--data.path={data}", f"--output_dir={out}"]
    argv.append(f"--model.max_new_tokens={limit + 1}")
    assert_user_error(
        capsys, argv, rf"max_new_tokens \({limit + 1}\) is more than the model's {limit} decoder"
    )
    assert not out.exists()
