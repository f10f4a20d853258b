"""Markdown pieces of the reports: tables, cells, flattened summaries, and what each number means."""

from __future__ import annotations

from typing import Any

import numpy as np

from t5score.data.values import is_missing
from t5score.reports.blocks import Code, Examples, Figure, Heading, Link, Num, Para, Table

#: Meaning of the per-row columns, averaged over rows in "Headline metrics".
ROW_MEANING: dict[str, str] = {
    "num_tokens": "output tokens per row",
    "mean_logprob": "per-token log-probability of the output (nats; 0 is certain)",
    "sum_logprob": "log-probability of the whole output sequence (nats)",
    "perplexity": "exp(-mean_logprob): effective choices per token",
    "mean_entropy": "per-token softmax entropy (nats)",
    "max_entropy": "largest token entropy of the row (nats)",
    "ref_num_tokens": "reference tokens per row",
    "ref_mean_logprob": "per-token log-probability of the reference (teacher-forced)",
    "ref_logprob": "log-probability of the whole reference (teacher-forced)",
    "rouge1": "unigram overlap F1 with the reference",
    "rouge2": "bigram overlap F1 with the reference",
    "rougeL": "longest-common-subsequence F1 with the reference",
    "rougeLsum": "summary-level ROUGE-L F1 with the reference",
}
#: Meaning of summary.json keys (the last dotted component; ``ref_`` = the teacher-forced reference).
SUMMARY_MEANING: dict[str, str] = {
    "rows": "rows in the run",
    "rows_with_error": "rows that could not be processed (`error` set)",
    "rows_nonfinite": "rows whose logits were not finite (NaN/inf)",
    "rows_truncated": "rows whose input was cut at max_source_length",
    "rows_finished": "rows that emitted EOS within max_new_tokens",
    "rouge_rows": "rows with a reference, averaged for ROUGE",
    "tokens_per_s": "throughput (generated tokens per second)",
    "num_rows": "rows in the run",
    "num_rows_with_tokens": "rows with at least one generated token",
    "num_rows_without_tokens": "rows without tokens (errors, empty output)",
    "num_tokens": "tokens in total",
    "mean_token_entropy": "mean softmax entropy per token (nats)",
    "mean_top1_prob": "mean probability of the most likely next token",
    "sum_logprob": "total log-probability of all tokens (nats)",
    "mean_token_logprob": "total log-probability / tokens (nats; 0 is certain)",
    "mean_sequence_logprob": "mean over rows of the per-row mean token log-probability",
    "perplexity": "exp(-mean_token_logprob): effective choices per token",
    "ece": "expected calibration error: weighted mean |accuracy - confidence| (0 = calibrated)",
    "rmsce": "root-mean-square calibration error over bins",
    "mce": "maximum calibration error over bins",
    "brier": "Brier score of token confidence vs correctness (lower is better)",
    "tokens_per_second": "throughput",
    "wall_time_s": "wall-clock time of the run (seconds)",
    **{k: v for k, v in ROW_MEANING.items() if k.startswith("rouge")},
}


def summary_meaning(key: str) -> str:
    leaf = key.split(".")[-1]
    if leaf in SUMMARY_MEANING:
        return SUMMARY_MEANING[leaf]
    if leaf.startswith("ref_") and leaf[4:] in SUMMARY_MEANING:
        return "reference (teacher-forced): " + SUMMARY_MEANING[leaf[4:]]
    return ""


def flatten_dict(d: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> scalar leaves of a nested dict (lists are skipped)."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten_dict(v, f"{prefix}{k}."))
    elif isinstance(d, (str, int, float, bool, np.generic)) or d is None:
        out[prefix[:-1]] = d.item() if isinstance(d, np.generic) else d
    return out


def md_cell(value: Any, width: int = 80) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return lines


def _md_inline(parts: Any) -> str:
    parts = [parts] if isinstance(parts, str) else parts
    return "".join(md_cell(p.value) if isinstance(p, Num) else str(p) for p in parts)


def _md_value(value: Any, width: int | None) -> str:
    if isinstance(value, Num):
        value = value.value
    elif isinstance(value, Link):
        value = value.text
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    return md_cell(value, width or 10**9)


def render_markdown(blocks: list[Any], html_page: str | None = "report.html") -> str:
    """The blocks as Markdown: the page a terminal or a pull request shows (token views: see the HTML)."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Para):
            lines += [_md_inline(block.parts), ""]
        elif isinstance(block, Table):
            wide = [h in block.wide for h in block.header]
            lines.append("| " + " | ".join(block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            for row in block.rows:
                cells = [_md_value(v, None if w else 80) for v, w in zip(row, wide, strict=True)]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif isinstance(block, Code):
            fence = [f"```{block.language}", block.text, "```"]
            if block.summary:
                lines += [f"<details><summary>{block.summary}</summary>", "", *fence, "", "</details>", ""]
            else:
                lines += [*fence, ""]
        elif isinstance(block, Figure):
            lines += [
                f"### {block.title}",
                "",
                f"![{block.title}]({block.png})",
                "",
                _md_inline(block.caption),
                "",
            ]
        elif isinstance(block, Examples) and html_page:
            n = len(block.examples)
            lines += [
                f"The token views of these {n} rows (coloured by probability or entropy) are in [{html_page}]({html_page}).",
                "",
            ]
    return "\n".join(lines)
