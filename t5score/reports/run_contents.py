"""The sections of a run's report, as blocks: what was run, the headline, uncertainty, examples, problems.

Every number is a :class:`~t5score.reports.blocks.Num` naming its source; nothing here formats text for one
page only, so ``report.md`` and ``report.html`` show the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from t5score.reports.blocks import Block, Code, Heading, Link, Num, Para, Table
from t5score.reports.examples import (
    confidence_column,
    error_mask,
    flag,
    numeric,
    row_key,
    scalar,
    unfinished_mask,
)
from t5score.reports.markdown import flatten_dict, summary_meaning

#: summary.json keys of the headline, in order, with their label and meaning (shown when present)
HEADLINE_SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("rouge.rouge1", "ROUGE-1", "unigram overlap F1 with the reference, mean over rows"),
    ("rouge.rouge2", "ROUGE-2", "bigram overlap F1 with the reference, mean over rows"),
    ("rouge.rougeL", "ROUGE-L", "longest-common-subsequence F1 with the reference, mean over rows"),
    (
        "mean_token_logprob",
        "log-probability per token",
        "total log-probability / total tokens (nats; 0 = sure)",
    ),
    (
        "perplexity",
        "perplexity (corpus)",
        "exp(-total log-probability / total tokens): every token weighs the same",
    ),
    ("mean_token_entropy", "entropy per token", "mean softmax entropy over all generated tokens (nats)"),
    ("mean_top1_prob", "top-1 probability", "mean probability of the most likely next token"),
    ("ece", "ECE", "expected calibration error of the tokens (0 = calibrated)"),
    ("mce", "MCE", "largest calibration error of a bin"),
    ("brier", "Brier score", "token confidence vs correctness (lower is better)"),
    ("ref_perplexity", "reference perplexity", "corpus perplexity of the references, teacher-forced"),
    (
        "ref_ece",
        "ECE (reference tokens)",
        "calibration of the teacher-forced reference tokens (0 = calibrated)",
    ),
    ("ref_mce", "MCE (reference tokens)", "largest calibration error of a bin, reference tokens"),
    (
        "ref_brier",
        "Brier (reference tokens)",
        "reference tokens' confidence vs correctness (lower is better)",
    ),
)
#: per-row columns averaged in the headline: column -> (label, meaning)
HEADLINE_MEANS: dict[str, tuple[str, str]] = {
    "num_tokens": ("output length", "tokens per row, mean over rows"),
    "mean_logprob": ("mean log-probability", "mean over rows of each row's mean token log-probability"),
    "perplexity": (
        "perplexity (mean over rows)",
        "mean over rows of exp(-row mean log-probability); unlike the corpus perplexity, every row weighs the same",
    ),
    "mean_entropy": ("mean entropy", "mean over rows of each row's mean token entropy (nats)"),
    "ref_mean_logprob": (
        "reference log-probability",
        "mean over rows of the reference's mean token log-probability",
    ),
}
UNCERTAINTY_MEANING: dict[str, str] = {
    "msp": "maximum sequence probability: -sum of token log-probabilities",
    "mean_token_entropy": "mean entropy (nats) of the next-token distribution over the output",
    "perplexity": "exp(-mean token log-probability)",
}
MAX_LISTED = 50  # rows listed per problem table


def row_mean(df: pd.DataFrame, column: str) -> float | None:
    """``mean:<column>`` of :mod:`t5score.reports.blocks`: over rows without an error, finite values only."""
    base = "mean_logprob" if column == "perplexity" else column
    if base not in df.columns:
        return None
    values = numeric(df, base)[~error_mask(df)]
    values = np.exp(-values) if column == "perplexity" else values
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def what_was_run(run_info: Mapping[str, Any], kind: str) -> list[Block]:
    blocks: list[Block] = [Heading(f"What was run ({kind})", anchor="run")]
    command = run_info.get("command") or run_info.get("argv")
    if command:
        blocks.append(
            Code(" ".join(map(str, command)) if isinstance(command, (list, tuple)) else str(command))
        )
    rest = {k: v for k, v in run_info.items() if k not in ("config", "command", "argv")}
    rows = []
    for key, value in flatten_dict(rest).items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        rows.append([key, Num(value, f"run:{key}") if number else value])
    if rows:
        blocks.append(Table(["field", "value"], rows, sortable=False))
    if run_info.get("config") is not None:
        text = json.dumps(run_info["config"], indent=2, default=str)
        blocks.append(Code(text, summary="resolved config", language="json"))
    if not command and not rows and run_info.get("config") is None:
        blocks.append(Para(["(no run information was recorded)"]))
    return blocks


def headline(df: pd.DataFrame, summary: Mapping[str, Any], kind: str) -> tuple[list[Block], list[Block]]:
    """The headline table, and the table of every number of ``summary.json`` (for the end of the page)."""
    rows: list[list[Any]] = [
        ["rows", Num(len(df), "rows:all"), "rows in the output file"],
        [
            "errors",
            Num(int(error_mask(df).sum()), "rows:error"),
            "rows that could not be processed (`error` set)",
        ],
        [
            "truncated",
            Num(int(flag(df, "truncated").sum()), "rows:truncated"),
            "input cut at max_source_length",
        ],
    ]
    if kind == "predict" and "finished" in df.columns:
        rows.append(
            [
                "unfinished",
                Num(int(unfinished_mask(df).sum()), "rows:unfinished"),
                "no EOS within max_new_tokens",
            ]
        )
    flat = flatten_dict(summary)
    for key, label, meaning in HEADLINE_SUMMARY:
        if isinstance(flat.get(key), (int, float)) and not isinstance(flat.get(key), bool):
            rows.append([label, Num(flat[key], f"summary:{key}"), meaning])
    for column, (label, meaning) in HEADLINE_MEANS.items():
        value = row_mean(df, column)
        if value is not None:
            rows.append([label, Num(value, f"mean:{column}"), meaning])
    blocks: list[Block] = [
        Heading("Headline", anchor="headline"),
        Table(["metric", "value", "meaning"], rows),
    ]
    numbers = [
        [key, Num(value, f"summary:{key}"), summary_meaning(key)]
        for key, value in flat.items()
        if not key.startswith(("uncertainty.", "figures.")) and isinstance(value, (int, float))
        if not isinstance(value, bool)
    ]
    every: list[Block] = []
    if numbers:
        every = [
            Heading("Every number of summary.json", anchor="summary"),
            Table(["key", "value", "meaning"], numbers),
        ]
    return blocks, every


def uncertainty(summary: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Uncertainty quality", anchor="uncertainty")]
    result = summary.get("uncertainty")
    if result is None:
        text = "No per-row quality column (e.g. `rougeL` against targets): PRR and the risk-coverage curve need one."
        return blocks + [Para([text])]
    blocks.append(
        Para(
            [
                f"How well each uncertainty score ranks rows by `{result['quality_column']}` (LM-Polygraph "
                "conventions). PRR: 1 = ranks like the oracle, 0 = no better than random, < 0 = worse than random. "
                "AURC: area under the risk-coverage curve, risk = 1 - quality, lower is better."
            ]
        )
    )
    header = ["score", "PRR", "AURC", "AURC oracle", "AURC random", "rows", "meaning"]
    rows = []
    for name, s in result["scores"].items():
        src = f"summary:uncertainty.scores.{name}."
        fields = ("prr", "aurc", "aurc_oracle", "aurc_random", "n")
        rows.append([name, *[Num(s[f], src + f) for f in fields], UNCERTAINTY_MEANING.get(name, "")])
    return blocks + ([Table(header, rows)] if rows else [Para(["(no uncertainty column available)"])])


def _texts(df: pd.DataFrame) -> list[str]:
    return [c for c in ("prediction", "target", "candidate", "source") if c in df.columns][:2]


def example_tables(df: pd.DataFrame, reasons: Mapping[str, list[int]], quality: str | None) -> list[Block]:
    """One table per reason (least confident, most confident, unfinished, worst quality, asked for)."""
    blocks: list[Block] = [Heading("Examples", anchor="examples")]
    conf = confidence_column(df)
    if not reasons:
        return blocks + [Para(["(no row to show: no log-probability column, or every row has an error)"])]
    blocks.append(
        Para(
            [
                f"Confidence is `{conf}` (higher = more confident); rows with errors are left out. "
                "Each row's tokens, coloured, are in `report.html`."
            ]
        )
    )
    numbers = [c for c in ("num_tokens", conf, quality, "finished") if c and c in df.columns]
    numbers = list(dict.fromkeys(numbers))
    header = ["row", *numbers, *_texts(df)]
    for tag, indices in reasons.items():
        rows = [
            [Link(row_key(df, i), i)]
            + [Num(scalar(df.iloc[i][c]), f"row:{i}:{c}") for c in numbers]
            + [df.iloc[i][c] for c in _texts(df)]
            for i in indices
        ]
        blocks += [Heading(tag[0].upper() + tag[1:], level=3), Table(header, rows)]
    return blocks


def problems(df: pd.DataFrame, kind: str, embedded: set[int]) -> list[Block]:
    blocks: list[Block] = [Heading("Rows with errors, truncation or no EOS", anchor="problems")]
    errors = error_mask(df)
    groups = [
        ("error", errors, "error", "rows:error"),
        ("truncated input", flag(df, "truncated"), "source", "rows:truncated"),
    ]
    if kind == "predict" and "finished" in df.columns:
        groups.append(("no EOS within max_new_tokens", unfinished_mask(df), "prediction", "rows:unfinished"))
    shown = False
    for title, mask, column, src in groups:
        indices = np.flatnonzero(mask.to_numpy())
        if not len(indices):
            continue
        shown = True
        column = column if column in df.columns else None
        extra = [c for c in ("num_tokens",) if c in df.columns and title.startswith("no EOS")]
        rows = []
        for i in indices[:MAX_LISTED]:
            key = Link(row_key(df, i), int(i)) if int(i) in embedded else row_key(df, i)
            rows.append(
                [key, *[Num(scalar(df.iloc[i][c]), f"row:{i}:{c}") for c in extra]]
                + ([df.iloc[i][column]] if column else [])
            )
        blocks += [Heading(title, level=3), Para([Num(len(indices), src), " row(s)."])]
        blocks.append(Table(["row", *extra, *([column] if column else [])], rows))
        if len(indices) > MAX_LISTED:
            blocks.append(Para([f"The first {MAX_LISTED} are listed; the Parquet file has them all."]))
    return blocks + ([] if shown else [Para(["None: every row was processed in full."])])
