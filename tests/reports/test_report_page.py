"""report.html of real runs of the shipped model: every number the page shows is the run's own.

The page is parsed back (tests/helpers/report_page.py, independent of the renderer); each number's source
is read from summary.json, run.json or the Parquet table; each token span's log-probability and entropy
from the Parquet lists; each token's text from the model's own tokenizer.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoTokenizer

from t5score.cli import main
from t5score.engine.modeling import resolve_model_path
from tests.helpers.report_page import NUMBER, Sources, parse_page, same_number, shown

TABLES = {"predict": "predictions.parquet", "score": "scores.parquet", "rerank": "reranked.parquet"}


@pytest.mark.parametrize("kind", ["predict", "score", "rerank"])
def test_every_number_on_the_page_is_the_runs(shipped_runs: dict[str, Path], kind: str) -> None:
    page = parse_page(shipped_runs[kind] / "report.html")
    sources = Sources(shipped_runs[kind], TABLES[kind])
    assert len(page.numbers) > 30
    for span in page.numbers:
        value = sources.value(span.attrs["data-src"])
        assert same_number(span.attrs["data-value"], value), (span.attrs, value)
        assert span.text == shown(value), (span.attrs, span.text, value)
    untagged = [c.text for c in page.cells if NUMBER.match(c.text.strip()) and "has-num" not in c.attrs]
    assert not untagged, f"numbers shown without a source: {untagged[:5]}"


def test_headline_of_the_markdown_page_is_the_same(shipped_runs: dict[str, Path]) -> None:
    """report.md and report.html show the same headline numbers, and the Markdown links to the HTML."""
    md = (shipped_runs["predict"] / "report.md").read_text(encoding="utf-8")
    assert "[report.html](report.html)" in md
    page = parse_page(shipped_runs["predict"] / "report.html")
    sources = Sources(shipped_runs["predict"], TABLES["predict"])
    head = md.split("## Headline", 1)[1].split("\n## ", 1)[0]
    md_rows = {cells[0]: cells[1] for cells in (line.strip("|").split("|") for line in head.splitlines()[4:])}
    md_rows = {k.strip(): v.strip() for k, v in md_rows.items()}
    headline_srcs = [
        "rows:all",
        "rows:unfinished",
        "summary:perplexity",
        "mean:perplexity",
        "summary:rouge.rougeL",
    ]
    labels = {
        "rows:all": "rows",
        "rows:unfinished": "unfinished",
        "summary:perplexity": "perplexity (corpus)",
    }
    labels |= {"mean:perplexity": "perplexity (mean over rows)", "summary:rouge.rougeL": "ROUGE-L"}
    for src in headline_srcs:
        html_text = next(s.text for s in page.numbers if s.attrs["data-src"] == src)
        assert md_rows[labels[src]] == html_text == shown(sources.value(src))
    # the two perplexities differ and each says which it is
    assert sources.value("summary:perplexity") != pytest.approx(sources.value("mean:perplexity"))


def test_token_spans_are_the_parquet_lists(shipped_runs: dict[str, Path]) -> None:
    run = shipped_runs["predict"]
    table = pd.read_parquet(run / TABLES["predict"])
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("default"))
    page = parse_page(run / "report.html")
    assert page.sequences
    seen_reference = False
    for src, spans in page.sequences:
        _, i, column = src.split(":")
        row = table.iloc[int(i)]
        logprobs = row[column]
        assert len(spans) == len(logprobs)
        for j, span in enumerate(spans):
            assert float(span.attrs["data-lp"]) == pytest.approx(logprobs[j], rel=1e-5, abs=1e-9)
            assert span.attrs["title"]
        ids = [int(t) for t in row["ref_token_ids" if column.startswith("ref_") else "token_ids"]]
        eos = [j for j, t in enumerate(ids) if t == tokenizer.eos_token_id]
        assert [j for j, s in enumerate(spans) if "eos" in s.attrs["class"].split()] == eos
        text = "".join(s.text for j, s in enumerate(spans) if j not in eos)
        assert " ".join(text.split()) == " ".join(tokenizer.decode(ids, skip_special_tokens=True).split())
        if column.startswith("ref_"):
            seen_reference = True
            continue
        for j, span in enumerate(spans):
            assert float(span.attrs["data-ent"]) == pytest.approx(
                row["token_entropies"][j], rel=1e-5, abs=1e-9
            )
            top = row["topk_logprobs"][j]
            alts = re.findall(r" (\S+)(?: ·|$)", span.attrs["title"].splitlines()[2])
            assert alts == [f"{math.exp(v):.3g}" for v in top]  # the probabilities, 3 significant digits
    assert seen_reference  # the references are shown, coloured by their teacher-forced probability


def test_examples_are_the_extremes_and_ids_can_be_added(shipped_runs: dict[str, Path], capsys) -> None:
    run = shipped_runs["predict"]
    table = pd.read_parquet(run / TABLES["predict"])
    page = (run / "report.html").read_text(encoding="utf-8")
    ids = re.findall(r'<article class="example" id="row-(\d+)"', page)
    least = table["mean_logprob"].astype(float).nsmallest(5).index
    unfinished = table.index[~table["finished"].astype(bool)][:5]
    assert set(map(str, least)) | set(map(str, unfinished)) <= set(ids)
    assert len(page.encode()) < 2_000_000
    other = next(i for i in table.index if str(i) not in ids)
    assert main(["report", str(run), "--ids", str(table.at[other, "id"])]) == 0
    assert f'id="row-{other}"' in (run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((run / "summary.json").read_text())
    assert all((run / rel).is_file() for rel in summary["figures"].values())
    assert main(["report", str(run), "--ids", "no-such-id"]) == 2
    assert "no row with id 'no-such-id'" in capsys.readouterr().err
