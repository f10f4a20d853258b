"""``report.html``: the blocks of a report as one self-contained page.

Everything is inline (CSS, JavaScript, SVG figures) and a Content-Security-Policy forbids any request, so
the page opens the same on an offline laptop and as a CI artifact. It is readable without JavaScript (every
table and token view is plain HTML; the entropy / log-probability switch is CSS); JavaScript adds sorting
(click or Enter on a column header), a filter box per table and the pick-by-id box of the token views.
Every number is a ``<span class="num" data-src=... data-value=...>`` (see :mod:`t5score.reports.blocks`).
"""

from __future__ import annotations

import re
from html import escape
from importlib.resources import files
from typing import Any

from t5score.reports.blocks import Block, Code, Examples, Figure, Heading, Inline, Link, Num, Para, Table
from t5score.reports.html_numbers import data_value, num
from t5score.reports.token_view import render_examples

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def inline(parts: list[Inline] | str) -> str:
    """Text with `code` spans, and numbers."""
    parts = [parts] if isinstance(parts, str) else parts
    out = []
    for part in parts:
        if isinstance(part, Num):
            out.append(num(part))
        else:
            out.append(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(str(part), quote=False)))
    return "".join(out)


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _cell(value: Any, prose: bool = False) -> str:
    if isinstance(value, Num):
        sort = data_value(value.value)
        return f'<td class="n" data-sort="{sort}">{num(value)}</td>'
    if isinstance(value, Link):
        return f'<td><a href="#row-{value.row}">{escape(value.text)}</a></td>'
    if value is None:
        return "<td></td>"
    text = inline(str(value)) if prose else escape(str(value), quote=False)
    if len(text) > 300:  # long texts (sources) keep every character, in a box that scrolls
        return f'<td class="text"><div class="clip">{text}</div></td>'
    return f'<td class="text">{text}</td>' if len(text) > 40 else f"<td>{text}</td>"


def table(t: Table) -> str:
    head = "".join(f'<th scope="col" aria-sort="none">{inline(h)}</th>' for h in t.header)
    prose = [h in t.wide for h in t.header]
    body = "\n".join(
        "<tr>" + "".join(_cell(v, p) for v, p in zip(row, prose, strict=True)) + "</tr>" for row in t.rows
    )
    cls = ' class="sortable"' if t.sortable else ""
    box = '<input class="filter" type="search" placeholder="filter rows" aria-label="filter rows" hidden>'
    return (
        f'<div class="table">{box if t.sortable and len(t.rows) > 5 else ""}'
        f"<table{cls}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )


def figure(f: Figure) -> str:
    return (
        f'<figure id="fig-{escape(f.key)}">{f.svg}<figcaption><strong>{escape(f.title)}.</strong> '
        f'{inline(f.caption)} (<a href="{escape(f.png)}">PNG</a>)</figcaption></figure>'
    )


def render(block: Block) -> str:
    if isinstance(block, Heading):
        ident = block.anchor or anchor(block.text)
        return f'<h{block.level} id="{ident}">{inline(block.text)}</h{block.level}>'
    if isinstance(block, Para):
        return f"<p>{inline(block.parts)}</p>"
    if isinstance(block, Table):
        return table(block)
    if isinstance(block, Code):
        pre = f"<pre><code>{escape(block.text)}</code></pre>"
        return f"<details><summary>{escape(block.summary)}</summary>{pre}</details>" if block.summary else pre
    if isinstance(block, Figure):
        return figure(block)
    if isinstance(block, Examples):
        return render_examples(block)
    raise TypeError(f"not a report block: {type(block).__name__}")


def page(title: str, blocks: list[Block], links: list[tuple[str, str]] = ()) -> str:
    """The whole page: a header with the table of contents, the blocks, the inline CSS and script."""
    asset = files("t5score.reports")
    css = asset.joinpath("report.css").read_text(encoding="utf-8")
    js = asset.joinpath("report.js").read_text(encoding="utf-8")
    toc = "".join(
        f'<li><a href="#{b.anchor or anchor(b.text)}">{inline(b.text)}</a></li>'
        for b in blocks
        if isinstance(b, Heading) and b.level == 2
    )
    extra = " · ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for text, href in links)
    body = "\n".join(render(b) for b in blocks)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p class="links">{extra}</p><nav><ol>{toc}</ol></nav></header>
<main>
{body}
</main>
<script>
{js}
</script>
</body>
</html>
"""
