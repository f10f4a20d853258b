"""``report.md`` and its figures: one human-readable page per ``predict``, ``score`` or ``rerank`` run.

The page says what was run (command, model, data), the headline numbers with their meaning, the most
and least confident rows, and the rows with errors, truncated inputs or no EOS. It works from the
run's DataFrame and dicts only and copes with missing optional columns (no targets, no calibration, score
runs without ``prediction``): a section whose inputs are absent says so instead of failing. It renders
only: the numbers it shows (uncertainty quality included) are computed before, by the run
(:mod:`t5score.runs.uncertainty`), and it never changes the summary it is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from t5score.reports import figures
from t5score.reports.markdown import ROW_MEANING, flatten_dict, is_missing, md_table, summary_meaning

KINDS = ("predict", "score", "rerank")
#: What each uncertainty score of ``summary["uncertainty"]["scores"]`` is (names of t5score.runs.uncertainty).
UNCERTAINTY_MEANING: dict[str, str] = {
    "msp": "maximum sequence probability: -sum of token log-probabilities",
    "mean_token_entropy": "mean entropy (nats) of the next-token distribution over the output",
    "perplexity": "exp(-mean token log-probability)",
}
TEXT_COLUMNS = ("prediction", "target", "source")  # the first present is shown for each example
MAX_LISTED = 50  # rows listed per problem table
#: summary keys holding reliability bins -> figure title (see :func:`figures.reliability_diagram`).
RELIABILITY_KEYS = {
    "calibration": "Reliability diagram",
    "reliability": "Reliability diagram (generated tokens)",
    "ref_reliability": "Reliability diagram (reference tokens, teacher-forced)",
}


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(df[column], errors="coerce").astype("float64")


def _flag(df: pd.DataFrame, column: str) -> pd.Series:
    """Boolean view of an optional flag column; missing column or null -> False."""
    if column not in df.columns:
        return pd.Series(False, index=df.index)
    return df[column].map(
        lambda v: not is_missing(v) and isinstance(v, (bool, np.bool_, int, float, np.number)) and v == 1
    )


def _error_mask(df: pd.DataFrame) -> pd.Series:
    if "error" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["error"].map(lambda v: not is_missing(v) and str(v).strip() != "")


def _headline(df: pd.DataFrame, summary: Mapping[str, Any], kind: str) -> list[str]:
    errors = _error_mask(df)
    counts = [["rows", len(df), "rows in the output file"]]
    counts.append(["errors", int(errors.sum()), "rows that could not be processed (`error` set)"])
    truncated = int(_flag(df, "truncated").sum())
    counts.append(["truncated", truncated, "rows whose input was cut at max_source_length"])
    if kind == "predict" and "finished" in df.columns:
        unfinished = int((~_flag(df, "finished") & ~errors).sum())
        counts.append(["unfinished", unfinished, "decoded rows that hit max_new_tokens before EOS"])
    for column in ROW_MEANING:
        base = "mean_logprob" if column == "perplexity" else column
        if base in df.columns and np.isfinite(_numeric(df, base)).any():
            values = np.exp(-_numeric(df, base)) if column == "perplexity" else _numeric(df, base)
            counts.append([f"mean {column}", float(values.mean()), "mean over rows: " + ROW_MEANING[column]])
    lines = ["## Headline metrics", "", "From the rows of this run:", ""]
    lines += md_table(["metric", "value", "meaning"], counts) + [""]
    skip = ("uncertainty.", "figures.")
    flat = [
        [k, v, summary_meaning(k)]
        for k, v in flatten_dict(summary).items()
        if not k.startswith(skip) and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    if flat:
        lines += ["From `summary.json`:", ""] + md_table(["metric", "value", "meaning"], flat) + [""]
    return lines


def _run_section(run_info: Mapping[str, Any], kind: str) -> list[str]:
    lines = [f"## What was run ({kind})", ""]
    command = run_info.get("command") or run_info.get("argv")
    if command:
        text = " ".join(map(str, command)) if isinstance(command, (list, tuple)) else str(command)
        lines += ["```", text, "```", ""]
    config = run_info.get("config")
    rest = {k: v for k, v in run_info.items() if k not in ("config", "command", "argv")}
    flat = flatten_dict(rest)
    if flat:
        lines += md_table(["field", "value"], [[k, v] for k, v in flat.items()]) + [""]
    if config is not None:
        text = json.dumps(config, indent=2, default=str)
        lines += ["<details><summary>resolved config</summary>\n\n```json", text, "```\n\n</details>", ""]
    if not command and not flat and config is None:
        lines += ["(no run information was recorded)", ""]
    return lines


def _examples_section(df: pd.DataFrame, quality: str | None) -> list[str]:
    conf_col = next((c for c in ("mean_logprob", "sum_logprob", "ref_mean_logprob") if c in df.columns), None)
    lines = ["## Most and least confident examples", ""]
    if conf_col is None:
        return lines + ["(no log-probability column: nothing to rank)", ""]
    values = _numeric(df, conf_col)
    ok = df[np.isfinite(values) & ~_error_mask(df)].assign(_conf=values)
    text_cols = [c for c in TEXT_COLUMNS if c in df.columns][:2]
    extra = [c for c in ("num_tokens", quality) if c and c in df.columns]
    header = ["id", conf_col, *extra, *text_cols]
    lines.append(f"Ranked by `{conf_col}` (higher = more confident); rows with errors are left out.")
    for title, part in (
        ("5 most confident", ok.nlargest(5, "_conf")),
        ("5 least confident", ok.nsmallest(5, "_conf")),
    ):
        rows = [
            [r.get("id"), r["_conf"], *[r[c] for c in extra], *[r[c] for c in text_cols]]
            for _, r in part.iterrows()
        ]
        lines += ["", f"### {title}", ""] + (md_table(header, rows) if rows else ["(none)"])
    return lines + [""]


def _problems_section(df: pd.DataFrame, kind: str) -> list[str]:
    errors = _error_mask(df)
    lines = ["## Rows with errors or truncation", ""]
    groups = [("error", errors, "error"), ("truncated input", _flag(df, "truncated"), "source")]
    if kind == "predict" and "finished" in df.columns:
        groups.append(("no EOS within max_new_tokens", ~_flag(df, "finished") & ~errors, "num_tokens"))
    any_rows = False
    for title, mask, column in groups:
        part = df[mask.to_numpy()]
        if part.empty:
            continue
        any_rows = True
        column = column if column in df.columns else "id"
        rows = [[r.get("id"), r.get(column)] for _, r in part.head(MAX_LISTED).iterrows()]
        lines += [f"### {title}: {len(part)} row(s)", ""] + md_table(["id", column], rows)
        if len(part) > MAX_LISTED:
            lines.append(f"... and {len(part) - MAX_LISTED} more (see the parquet file).")
        lines.append("")
    return lines + ([] if any_rows else ["None: every row was processed in full.", ""])


def _uncertainty_section(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Uncertainty quality",
        "",
        f"How well each uncertainty score ranks rows by `{result['quality_column']}` "
        "(LM-Polygraph conventions). PRR: 1 = ranks like the oracle, 0 = no better than random, "
        "< 0 = worse than random. AURC: area under the risk-coverage curve, risk = 1 - quality, "
        "lower is better.",
        "",
    ]
    rows = [
        [name, s["prr"], s["aurc"], s["aurc_oracle"], s["aurc_random"], s["n"], UNCERTAINTY_MEANING[name]]
        for name, s in result["scores"].items()
    ]
    header = ["score", "PRR", "AURC", "AURC oracle", "AURC random", "rows", "meaning"]
    return lines + (md_table(header, rows) if rows else ["(no uncertainty column available)"]) + [""]


class WrittenReport(NamedTuple):
    """What :func:`write_report` wrote: the page and its figures (title -> path relative to the page)."""

    path: Path
    figures: dict[str, str]


def write_report(
    output_dir: str | Path,
    predictions: pd.DataFrame,
    summary: Mapping[str, Any],
    run_info: Mapping[str, Any],
    kind: str = "predict",
    uncertainties: Mapping[str, Any] | None = None,
) -> WrittenReport:
    """Write ``report.md`` and its PNG figures (under ``figures/``) into ``output_dir``.

    Renders what it is given and changes none of it. ``summary["uncertainty"]`` (when present, from
    :func:`t5score.runs.uncertainty.uncertainty_summary`) fills the uncertainty section and names the
    quality column; the risk-coverage curve then plots ``uncertainties`` (score name -> per-row values
    aligned with ``predictions``, e.g. :func:`t5score.runs.uncertainty.uncertainty_columns`) against that
    column. Reliability diagrams are drawn from ``summary["calibration"]["bins"]`` (list of
    ``{"confidence", "accuracy", "count"}``) and from ``summary["reliability"]`` /
    ``summary["ref_reliability"]`` (the per-bin lists of ``t5score.runs.corpus_summary.summarize_records``),
    whichever are present. Returns the page's path and the figures (for ``summary.json``'s ``figures``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    out = Path(output_dir)
    fig_dir = out / "figures"
    df = predictions.reset_index(drop=True)
    uncertainty = summary.get("uncertainty")
    quality = uncertainty["quality_column"] if uncertainty is not None else None
    made: dict[str, Path] = {}
    skipped: list[str] = []

    for key, title in RELIABILITY_KEYS.items():
        bins = figures.reliability_bins(summary.get(key))
        if bins:
            made[title] = figures.reliability_diagram(bins, fig_dir / f"{key}.png", title)
    if not any(title in made for title in RELIABILITY_KEYS.values()):
        skipped.append("reliability diagram: the summary has no calibration bins")
    has_entropies = (
        "token_entropies" in df.columns
        and df["token_entropies"].map(lambda v: not is_missing(v) and len(v) > 0).any()
    )
    if has_entropies:
        made["Token entropies"] = figures.token_entropy_histogram(
            df["token_entropies"], fig_dir / "token_entropy.png"
        )
    else:
        skipped.append("token entropy histogram: no `token_entropies` values")
    if "mean_logprob" in df.columns and np.isfinite(_numeric(df, "mean_logprob")).any():
        made["Mean log-probability per sequence"] = figures.mean_logprob_histogram(
            _numeric(df, "mean_logprob"), fig_dir / "mean_logprob.png"
        )
    else:
        skipped.append("mean log-probability histogram: no `mean_logprob` values")
    if quality is not None and uncertainties is not None:
        made["Risk-coverage curve"] = figures.risk_coverage_figure(
            uncertainties, _numeric(df, quality), fig_dir / "risk_coverage.png", quality
        )
    elif quality is not None:
        skipped.append("risk-coverage curve: no per-row uncertainty scores were given")
    else:
        skipped.append("risk-coverage curve: no per-row quality column")
    drawn = {title: path.relative_to(out).as_posix() for title, path in made.items()}

    lines = [f"# t5score {kind} report", ""]
    lines += _run_section(run_info, kind)
    lines += _headline(df, summary, kind)
    if uncertainty is not None:
        lines += _uncertainty_section(uncertainty)
    else:
        lines += [
            "## Uncertainty quality",
            "",
            "No per-row quality column (e.g. `rougeL` against targets): "
            "PRR and the risk-coverage curve need one.",
            "",
        ]
    lines += _examples_section(df, quality)
    lines += _problems_section(df, kind)
    lines += ["## Figures", ""]
    for title, rel in drawn.items():
        lines += [f"### {title}", "", f"![{title}]({rel})", ""]
    if skipped:
        lines += ["Not drawn:", ""] + [f"- {reason}" for reason in skipped] + [""]
    path = out / "report.md"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return WrittenReport(path, drawn)
