"""The examples whose key metric changed most between compared runs: both outputs side by side.

For each run after the first, the (at most) ``TOP_CHANGED`` join keys with the largest absolute change of
the comparison's key metric (run − baseline, not 0; ties in the baseline's order) are listed in a table
with both values and both texts; rerank runs list groups (the chosen candidates' texts) or candidates.
For predict and score runs, ``compare.html`` also embeds each listed example with both runs' tokens
coloured by their probability (the runs' own per-token lists, via their ``TokenSource``), or their plain
text, and why, when a run has no ``token_pieces.json`` or its row no token lists. Sources of the numbers:
see :mod:`t5score.reports.compare_page`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from t5score.reports.blocks import Block, Example, Examples, Heading, Link, Num, Para, Table, Tokens
from t5score.reports.examples import build_examples, scalar

TEXT_COLUMNS = ("top_candidate", "candidate", "prediction", "target", "source")
TOP_CHANGED = 10  # examples listed per run pair
OUTPUTS = ("prediction", "candidate")  # the texts that differ between runs (named by run on the page)
ROW_NUMBERS = ("num_tokens", "mean_logprob", "finished")  # shown for both runs in a token view
HINT = (
    "Only the examples that changed most are embedded; `t5score report RUN_DIR --ids ID` shows a run's row."
)


def _name(key: Any) -> str:
    return key if isinstance(key, str) else "/".join(map(str, key))


def _text(value: Any) -> str | None:
    value = scalar(value)
    return None if value is None else str(value)


def _file_order(run: Any) -> pd.DataFrame:
    """The run's compared rows at their positions in its file (row ``r`` is ``iloc[r]``)."""
    frame = run.frame.reset_index().set_axis(run.positions.to_numpy())
    return frame.reindex(range(int(run.positions.max()) + 1)) if len(frame) else frame


def _rows(result: Any, level: str, keys: pd.Index, j: int) -> list[int]:
    """The file rows of ``keys`` in run ``j``: the row itself, or a group's top candidate."""
    run = result.runs[j]
    if level == "row":
        return [int(run.positions.loc[k]) for k in keys]
    top = run.groups.loc[keys, "top_candidate_index"]
    return [int(run.positions.loc[(g, int(c))]) for g, c in top.items()]


def _pair_table(result: Any, i: int, level: str, metric: str) -> tuple[Table, list[tuple]]:
    """Run ``i``'s largest changes against the baseline, and the keys listed with their file rows."""
    runs, labels = result.runs, [r.label for r in result.runs]
    frames = [r.groups for r in runs] if level == "group" else [r.frame for r in runs]
    index = result.group_index if level == "group" else result.index
    column = metric.removeprefix("top_") if level == "group" else metric
    base, other = frames[0].loc[index], frames[i].loc[index]
    change = (other[metric].astype("float64") - base[metric].astype("float64")).dropna()
    change = change[change != 0]  # an unchanged row is no change
    top = change.abs().sort_values(ascending=False, kind="stable").head(TOP_CHANGED).index
    text = next((c for c in TEXT_COLUMNS if c in base.columns and c in other.columns), None)
    header = ["/".join(map(str, index.names)), labels[0], labels[i], "change"]
    header += [f"{text} ({labels[0]})", f"{text} ({labels[i]})"] if text else []
    listed, rows = [], []
    for k, r0, ri in zip(top, _rows(result, level, top, 0), _rows(result, level, top, i), strict=True):
        listed.append((k, r0, ri))
        row = [
            _name(k),
            Num(scalar(base.at[k, metric]), f"runs:0:row:{r0}:{column}"),
            Num(scalar(other.at[k, metric]), f"runs:{i}:row:{ri}:{column}"),
            Num(float(change[k]), f"change:{i}:{column}:{r0}:{ri}"),
        ]
        rows.append(row + ([_text(base.at[k, text]), _text(other.at[k, text])] if text else []))
    return Table(header, rows), listed


def _run_examples(run: Any, j: int, rows: set[int]) -> dict[int, Example]:
    """Run ``j``'s rows as examples, by file row: sources renamed ``runs:<j>:...``, sequences by run."""
    built = build_examples(_file_order(run), {r: [] for r in sorted(rows)}, run.tokens, run.kind)
    who = f"{run.label} (baseline)" if j == 0 else run.label
    for ex in built:
        ex.numbers = [(c, Num(n.value, f"runs:{j}:{n.src}")) for c, n in ex.numbers if c in ROW_NUMBERS]
        ex.tokens = [replace(t, src=f"runs:{j}:{t.src}", label=f"{who}: {t.label}") for t in ex.tokens]
    return {ex.row: ex for ex in built}


def _is_reference(tokens: Tokens) -> bool:
    return tokens.src.endswith(":ref_token_logprobs")


def _pair_example(n: int, key: Any, exs: list[Example], runs: list[Any], head: list) -> Example:
    """One listed example: both runs' numbers, token sequences and texts, the baseline's first."""
    tags = [f"{runs[1].label} vs {runs[0].label} (the baseline)"]
    numbers, texts = list(head), []
    for j, (ex, run) in enumerate(zip(exs, runs, strict=True)):
        numbers += [(f"{c} · {run.label}", num) for c, num in ex.numbers]
        texts += [
            (f"{c} ({run.label})" if c in OUTPUTS else c, t) for c, t in ex.texts if j == 0 or c in OUTPUTS
        ]
        if not [t for t in ex.tokens if not _is_reference(t)]:
            why = "no token_pieces.json in its folder" if run.tokens is None else "no token lists in its row"
            tags.append(f"{run.label}: plain text only ({why})")
    own = [t for ex in exs for t in ex.tokens if not _is_reference(t)]
    refs = [[t for t in ex.tokens if _is_reference(t)] for ex in exs]
    if (
        refs[0]
        and refs[1]
        and (refs[0][0].pieces, refs[0][0].logprobs) == (refs[1][0].pieces, refs[1][0].logprobs)
    ):
        both = f"{runs[0].label} (baseline) and {runs[1].label}: " + refs[0][0].label.split(": ", 1)[1]
        refs = [[replace(refs[0][0], label=both)]]  # the same reference, scored alike: shown once
    return Example(
        n, _name(key), tags, numbers, texts, own + [t for r in refs for t in r], columns=len(own) or 1
    )


def changed_most(result: Any) -> list[Block]:
    """The section: per run pair a table of the largest changes; then (predict, score) their token views."""
    metric = result.key_metric
    if not metric:
        return []
    runs, labels = result.runs, [r.label for r in result.runs]
    rerank = result.group_index is not None
    level = "group" if metric in result.group_metrics else "row"
    what = "Groups" if level == "group" else "Candidates" if rerank else "Examples"
    blocks: list[Block] = [Heading(f"{what} whose `{metric}` changed most", anchor="changed")]
    pairs = []
    for i in range(1, len(runs)):
        table, listed = _pair_table(result, i, level, metric)
        blocks += [Heading(f"{labels[i]} vs {labels[0]}", level=3)]
        blocks += [table] if table.rows else [Para(["(no row changed)"])]
        pairs.append((i, table, listed))
    if rerank:
        return blocks
    wanted: dict[int, set[int]] = {}
    for i, _, listed in pairs:
        wanted.setdefault(0, set()).update(r0 for _, r0, _ in listed)
        wanted.setdefault(i, set()).update(ri for _, _, ri in listed)
    built = {j: _run_examples(runs[j], j, rows) for j, rows in wanted.items()}
    examples, n = [], 0
    for i, table, listed in pairs:
        for row, (key, r0, ri) in zip(table.rows, listed, strict=True):
            head = [
                (f"{metric} · {labels[0]}", row[1]),
                (f"{metric} · {labels[i]}", row[2]),
                ("change", row[3]),
            ]
            pair = [built[0][r0], built[i][ri]]
            examples.append(_pair_example(n, key, pair, [runs[0], runs[i]], head))
            row[0] = Link(row[0], n)  # the key links to its token view
            n += 1
    if not examples:
        return blocks
    blocks.append(Heading("Token views of these examples", anchor="tokens"))
    lacking = [f"`{r.label}`" for r in runs if r.tokens is None]
    if lacking:
        said = ", ".join(lacking)
        blocks.append(
            Para([f"{said}: no token_pieces.json in the run's folder, so its outputs are plain text."])
        )
    return [*blocks, Examples(examples, HINT)]
