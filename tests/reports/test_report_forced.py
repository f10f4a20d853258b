"""The token view marks what the generation config forced: a BART checkpoint's forced BOS (and EOS).

Reference: Hugging Face ``generate`` on the same checkpoint, whose processed scores at a forced step leave
one finite value (the forced token); the page must mark exactly those tokens, and EOS where it was emitted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from t5score.cli import main
from tests.helpers.families import make_family
from tests.helpers.report_page import parse_page

SOURCES = ["return the value of the key", "count the items in the list", "open the file and read it"]


def test_forced_and_eos_tokens_are_marked(tmp_path: Path) -> None:
    model, tokenizer = make_family("bart")  # the bart-large-cnn generation config: forced BOS 0, EOS 2
    folder = tmp_path / "bart"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "source": s}) + "\n" for i, s in enumerate(SOURCES)))
    out = tmp_path / "run"
    args = [
        "predict",
        "--model.name_or_path",
        str(folder),
        "--data.path",
        str(data),
        "--model.num_beams",
        "1",
    ]
    assert main([*args, "--model.max_new_tokens", "8", "--model.top_k", "2", "--output_dir", str(out)]) == 0
    table = pd.read_parquet(out / "predictions.parquet")
    page = parse_page(out / "report.html")
    checked = 0
    for src, spans in page.sequences:
        row = int(src.split(":")[1])
        enc = tokenizer([table.at[row, "source"]], return_tensors="pt")
        with torch.no_grad():
            ref = model.generate(
                **enc,
                do_sample=False,
                num_beams=1,
                max_new_tokens=8,
                output_scores=True,
                return_dict_in_generate=True,
            )
        forced = [bool(torch.isfinite(step[0]).sum() == 1) for step in ref.scores]
        generated = ref.sequences[0, 1:].tolist()
        assert [int(t) for t in table.at[row, "token_ids"]] == generated[: len(spans)]
        assert [("forced" in s.attrs["class"].split()) for s in spans] == forced[: len(spans)]
        eos = [t == model.generation_config.eos_token_id for t in generated[: len(spans)]]
        assert [("eos" in s.attrs["class"].split()) for s in spans] == eos
        assert forced[0] and "forced by the generation config" in spans[0].attrs["title"]
        checked += 1
    assert checked == len(SOURCES)
