"""Reading ``report.html`` back for the tests: its numbers, token spans and table cells, and their sources.

Independent of t5score's renderer: the page is parsed with :mod:`html.parser`, and each number's
``data-src`` is resolved here from ``summary.json``, ``run.json`` and the Parquet table as the
``t5score.reports.blocks`` docstring defines them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Span:
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page:
    numbers: list[Span] = field(default_factory=list)  # span.num
    sequences: list[tuple[str, list[Span]]] = field(default_factory=list)  # (data-src, its span.tok)
    cells: list[Span] = field(default_factory=list)  # td: text, and whether a span.num is inside
    headings: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[tuple[str, Span | None, str]] = []  # (tag, span being collected, role)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        role = ""
        span = None
        if tag == "span" and "num" in classes:
            role, span = "num", Span(a)
            self.page.numbers.append(span)
        elif tag == "span" and "tokens" in classes:
            role = "tokens"
            self.page.sequences.append((a["data-src"], []))
        elif tag == "span" and "tok" in classes:
            role, span = "tok", Span(a)
            self.page.sequences[-1][1].append(span)
        elif tag == "td":
            role, span = "td", Span(a)
            self.page.cells.append(span)
        elif tag in ("h2", "h3"):
            role, span = "heading", Span(a)
        if tag not in ("br", "meta", "input", "img", "hr", "link"):
            self.stack.append((tag, span, role))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            t, span, role = self.stack.pop()
            if role == "heading" and span is not None:
                self.page.headings.append(span.text.strip())
            if role == "num":
                for _, outer, outer_role in self.stack:
                    if outer_role == "td" and outer is not None:
                        outer.attrs["has-num"] = "1"
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, span, role in self.stack:
            if span is not None and role in ("num", "tok", "td", "heading"):
                span.text += data


def parse_page(path: Path) -> Page:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.page


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif not isinstance(d, list):
        out[prefix[:-1]] = d
    return out


class Sources:
    """What each ``data-src`` names, read from the run folder."""

    def __init__(self, run: Path, table: str) -> None:
        self.summary = flatten(json.loads((run / "summary.json").read_text()))
        self.run = flatten(json.loads((run / "run.json").read_text()))
        self.table = pd.read_parquet(run / table)

    def _errors(self) -> np.ndarray:
        if "error" not in self.table:
            return np.zeros(len(self.table), bool)
        return self.table["error"].map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy()

    def value(self, src: str) -> Any:
        kind, _, rest = src.partition(":")
        if kind == "summary":
            return self.summary[rest]
        if kind == "run":
            return self.run[rest]
        if kind == "row":
            i, column = rest.split(":", 1)
            return self.table[column].iloc[int(i)]
        if kind == "rows":
            errors = self._errors()
            if rest == "all":
                return len(self.table)
            if rest == "error":
                return int(errors.sum())
            if rest == "truncated":
                if "truncated" not in self.table:
                    return 0
                return int(self.table["truncated"].fillna(False).astype(bool).sum())
            if rest == "unfinished":
                return int((~self.table["finished"].fillna(False).astype(bool).to_numpy() & ~errors).sum())
        if kind == "mean":
            ok = self.table[~self._errors()]
            if rest == "perplexity":
                values = np.exp(-ok["mean_logprob"].astype(float))
            else:
                values = ok[rest].astype(float)
            values = values[np.isfinite(values)]
            return float(values.mean())
        raise KeyError(f"unknown data-src {src!r}")


def shown(value: Any) -> str:
    """How a number is printed: 4 significant digits, yes / no, en dash when missing (the page's rule)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def same_number(page_value: str, source: Any) -> bool:
    """``data-value`` (exact: repr of a float, str of an int) against the source value."""
    if source is None or (isinstance(source, float) and math.isnan(source)):
        return page_value == ""
    if isinstance(source, (bool, np.bool_)):
        return page_value == ("true" if source else "false")
    if isinstance(source, (int, np.integer)):
        return page_value == str(int(source))
    return math.isclose(float(page_value), float(source), rel_tol=1e-12, abs_tol=0.0)


NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
