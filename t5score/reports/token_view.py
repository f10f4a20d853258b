"""Token views of ``report.html``: each token of an example coloured by how sure the model was.

A token is a ``<span class="tok">`` whose background is its probability (``--lp``: red = unlikely, green =
likely) or, with the entropy switch, the entropy of the distribution it was drawn from (``--en``: darker =
less sure); its ``title`` (shown on hover, and on focus by the CSS) gives the probability, the entropy and
the top-k alternatives. ``data-lp`` / ``data-ent`` hold the values of the Parquet lists (the tests compare
them). EOS is a small boxed ``EOS``; a token the generation config forced is underlined with dots.
"""

from __future__ import annotations

import math
from html import escape

from t5score.reports.blocks import Example, Examples, Tokens
from t5score.reports.html_numbers import num

ENTROPY_SCALE = 5.0  # nats at which the entropy colour is darkest


def probability_colour(logprob: float) -> str:
    """Background for a token of log-probability ``logprob``: red (p = 0) through yellow to green (p = 1)."""
    p = min(max(math.exp(logprob), 0.0), 1.0) if math.isfinite(logprob) else 0.0
    return f"hsl({120 * p:.0f} {75 - 15 * p:.0f}% {72 + 20 * p:.0f}%)"


def entropy_colour(entropy: float) -> str:
    """Background for a token drawn from a distribution of ``entropy`` nats: white (0) to purple."""
    x = min(max(entropy / ENTROPY_SCALE, 0.0), 1.0) if math.isfinite(entropy) else 1.0
    return f"hsl(270 70% {97 - 35 * x:.0f}%)"


def _value(x: float) -> str:
    return f"{x:.6g}"


def _shown(piece: str) -> str:
    return repr(piece)[1:-1] if piece.strip() == piece and piece else repr(piece)


def token_title(tokens: Tokens, j: int) -> str:
    lp = tokens.logprobs[j]
    lines = [f"{_shown(tokens.pieces[j])}   p = {math.exp(lp):.3g}   (log-prob {lp:.4g})"]
    if tokens.entropies is not None:
        lines.append(f"entropy {tokens.entropies[j]:.3g} nats")
    if tokens.alternatives is not None and tokens.alternatives[j]:
        alts = " · ".join(f"{_shown(piece)} {math.exp(alp):.3g}" for piece, alp in tokens.alternatives[j])
        lines.append(f"top-{len(tokens.alternatives[j])}: {alts}")
    if tokens.forced is not None and tokens.forced[j]:
        lines.append("forced by the generation config")
    if tokens.eos is not None and tokens.eos[j]:
        lines.append("end of sequence (EOS)")
    return "\n".join(lines)


def token_spans(tokens: Tokens) -> str:
    """The sequence as coloured, focusable spans inside ``<span class="tokens" data-src=...>``."""
    spans = []
    for j, (piece, lp) in enumerate(zip(tokens.pieces, tokens.logprobs, strict=True)):
        classes = ["tok"]
        style = f"--lp:{probability_colour(lp)}"
        data = f' data-lp="{_value(lp)}"'
        if tokens.entropies is not None:
            style += f";--en:{entropy_colour(tokens.entropies[j])}"
            data += f' data-ent="{_value(tokens.entropies[j])}"'
        if tokens.forced is not None and tokens.forced[j]:
            classes.append("forced")
        eos = tokens.eos is not None and tokens.eos[j]
        if eos:
            classes.append("eos")
        text = "EOS" if eos else escape(piece, quote=False)
        title = escape(token_title(tokens, j))
        spans.append(
            f'<span class="{" ".join(classes)}" tabindex="0" style="{style}"{data} title="{title}">{text}</span>'
        )
    return f'<span class="tokens" data-src="{escape(tokens.src)}">{"".join(spans)}</span>'


def _example(ex: Example) -> str:
    numbers = " ".join(f'<span class="item">{escape(name)} {num(n)}</span>' for name, n in ex.numbers)
    seqs = "".join(
        f'<div class="seq"><span class="label">{escape(t.label)}</span>{token_spans(t)}</div>'
        for t in ex.tokens
    )
    texts = "".join(
        f"<details><summary>{escape(column)}</summary><pre>{escape(text)}</pre></details>"
        for column, text in ex.texts
    )
    ident = escape(ex.key.split(" ")[0])
    # several runs' sequences side by side: a grid of ex.columns columns (report.css)
    cls, style = (
        ("example side-by-side", f' style="--columns:{ex.columns}"') if ex.columns > 1 else ("example", "")
    )
    return (
        f'<article class="{cls}"{style} id="row-{ex.row}" data-id="{ident}" data-key="{escape(ex.key)}">'
        f'<h3>{escape(ex.key)}</h3><p class="tags">{escape(" · ".join(ex.tags))}</p>'
        f'<p class="numbers">{numbers}</p><div class="seqs">{seqs}</div>{texts}</article>'
    )


def render_examples(block: Examples) -> str:
    """The colour switch, the pick-by-id box, the legend and every example."""
    has_entropy = any(t.entropies is not None for ex in block.examples for t in ex.tokens)
    switch = (
        '<fieldset class="switch"><legend>Colour tokens by</legend>'
        '<label><input type="radio" name="colour" id="colour-lp" checked> probability</label>'
        '<label><input type="radio" name="colour" id="colour-en"> entropy</label></fieldset>'
        if has_entropy
        else ""
    )
    legend = (
        '<span class="legend lp">p = 0 <span class="bar lp"></span> p = 1</span>'
        f'<span class="legend en">0 nats <span class="bar en"></span> ≥ {ENTROPY_SCALE:g} nats</span>'
    )
    pick = (
        f'<form id="pick" data-hint="{escape(block.not_embedded_hint)}" hidden>'
        '<label>Show the row with id <input id="pick-id" type="search" required></label> '
        '<button type="submit">show</button><span id="pick-result" role="status"></span></form>'
    )
    note = (
        '<p class="note">Hover or focus (Tab) a token for its probability, entropy and top-k alternatives. '
        "Dotted underline: forced by the generation config. EOS: the end-of-sequence token. Reference tokens "
        "are coloured by their teacher-forced probability.</p>"
    )
    body = "\n".join(_example(ex) for ex in block.examples) or '<p class="note">(no example to show)</p>'
    return f'<div class="controls">{switch}{legend}{pick}</div>{note}\n{body}'
