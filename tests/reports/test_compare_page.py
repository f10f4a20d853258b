"""compare.html of real runs of the shipped model: every number is its source, and the page says what changed.

Two predict runs over the same 30 rows (the second with ``--model.max_new_tokens 12``) and two rerank runs
over 8 groups (ranked by two different scores) are compared. The page is parsed back (independently of the
renderer) and checked against compare.csv, the runs' summary.json / run.json and Parquet tables as the
``compare_page`` docstring defines the sources; the configuration diff against the two run.json files, the
verdicts against the brief's direction table, the changed-most rows against pandas.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from t5score.cli import main
from tests.helpers.report_page import NUMBER, Sources, parse_page, same_number, shown

DATA = Path(__file__).resolve().parents[2] / "t5score" / "assets" / "data"
QUIET = ["--trainer.enable_progress_bar", "false"]
IGNORED = {"wall_time_s", "tokens_per_s", "config.output_dir"}  # the page's stated exceptions
HIGHER = {"rouge1", "rouge2", "rougeL", "rougeLsum", "mean_logprob", "sum_logprob", "ref_logprob"}
HIGHER |= {"ref_mean_logprob"}
LOWER = {"mean_entropy", "max_entropy"}
NEITHER = {"num_tokens", "ref_num_tokens"}


def _subset(root: Path, name: str, lines: int, step: int = 1) -> Path:
    """The first ``lines`` rows of a shipped file (``step=-1``: reversed, so rows must be joined by key)."""
    path = root / f"{step}_{name}"
    rows = (DATA / name).read_text(encoding="utf-8").splitlines()[:lines][::step]
    path.write_text("\n".join(rows) + "\n")
    return path


def _compare(*runs: Path, out: Path) -> Path:
    assert main(["compare", *map(str, runs), "--output_dir", str(out), "--n-resamples", "200"]) == 0
    return out


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare_page")
    out = {name: root / name for name in ("a", "b", "r1", "r2")}
    for name, step, extra in (("a", 1, []), ("b", -1, ["--model.max_new_tokens", "12"])):
        rows = _subset(root, "code_summary_test.jsonl", 30, step)
        predict = [
            "predict",
            "--data.path",
            str(rows),
            "--data.target_column",
            "target",
            "--model.top_k",
            "3",
        ]
        assert main([*predict, *QUIET, *extra, "--output_dir", str(out[name])]) == 0
    by_f = ["--model.rank_by", "F", "--model.directions", "[ref->hyp, hyp->ref]"]
    for name, step, extra in (("r1", 1, []), ("r2", -1, by_f)):
        groups = _subset(root, "code_summary_candidates.jsonl", 8, step)
        rerank = ["rerank", "--data.path", str(groups), "--data.reference_column", "reference", *QUIET]
        assert main([*rerank, *extra, "--output_dir", str(out[name])]) == 0
    out["cmp"] = _compare(out["a"], out["b"], out=root / "cmp")
    out["root"] = root
    return out


def _table_name(run: Path) -> str:
    return next(
        n for n in ("reranked.parquet", "scores.parquet", "predictions.parquet") if (run / n).is_file()
    )


class RunSources(Sources):
    def __init__(self, run: Path) -> None:  # run.json may be absent
        self.summary = _flatten(json.loads((run / "summary.json").read_text()), lists=False)
        info = run / "run.json"
        self.run = _flatten(json.loads(info.read_text()), lists=False) if info.is_file() else {}
        self.table = pd.read_parquet(run / _table_name(run))


class CompareSources:
    """The compare page's ``data-src`` grammar (t5score/reports/compare_page.py), resolved from the files."""

    def __init__(self, out: Path, runs: list[Path]) -> None:
        self.csv = pd.read_csv(out / "compare.csv")
        self.runs = [RunSources(r) for r in runs]
        self.labels = [r.name for r in runs]

    def _keys(self, table: pd.DataFrame) -> set:
        if "group_id" in table:
            keyed = table[table["candidate_index"].notna()]
            return set(zip(keyed["group_id"], keyed["candidate_index"].astype(int), strict=True))
        return set(table["id"])

    def value(self, src: str) -> Any:
        kind, _, rest = src.partition(":")
        tables = [r.table for r in self.runs]
        if kind == "compare":
            metric, rest = rest.split(":", 1)
            run, column = rest.rsplit(":", 1)
            row = self.csv[(self.csv["metric"] == metric) & (self.csv["run"] == run)]
            assert len(row) == 1, src
            return row[column].iloc[0].item()
        if kind == "runs":
            i, rest = rest.split(":", 1)
            return self.runs[int(i)].value(rest)
        if kind == "change":
            i, column, r0, ri = rest.split(":")
            return float(tables[int(i)][column].iloc[int(ri)]) - float(tables[0][column].iloc[int(r0)])
        if rest == "rows":
            return len(set.intersection(*(self._keys(t) for t in tables)))
        if rest == "groups":
            return len(set.intersection(*(set(t["group_id"].dropna()) for t in tables)))
        if rest.startswith("top_changed:"):
            tops = [t[t["rank"] == 1].set_index("group_id")["candidate_index"] for t in tables]
            other = tables[self.labels.index(rest.split(":", 1)[1])]
            top = other[other["rank"] == 1].set_index("group_id")["candidate_index"]
            groups = set(tables[0]["group_id"].dropna())
            return sum(str(tops[0].get(g)) != str(top.get(g)) for g in groups)
        raise KeyError(src)


def _flatten(d: Any, prefix: str = "", lists: bool = True) -> dict[str, Any]:
    if isinstance(d, dict) and (d or not prefix):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}.", lists))
        return out
    return {prefix[:-1]: d} if lists or not isinstance(d, list) else {}


class Tables(HTMLParser):
    """Every table of the page under the id of the h2 before it: header texts, rows of cell texts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.section, self.tables, self.cell = "", {}, None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "h2":
            self.section = dict(attrs).get("id", "")
        elif tag == "table":
            self.tables.setdefault(self.section, []).append({"header": [], "rows": []})
        elif tag == "tr" and self.section in self.tables:
            self.tables[self.section][-1]["rows"].append([])
        elif tag in ("td", "th"):
            self.cell = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell:
            table, text = self.tables[self.section][-1], "".join(self.cell[1]).strip()
            (table["header"] if tag == "th" else table["rows"][-1]).append(text)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell:
            self.cell[1].append(data)

    def get(self, section: str, i: int = 0) -> dict:
        table = self.tables[section][i]
        return {"header": table["header"], "rows": [r for r in table["rows"] if r]}


def _check_numbers(page_path: Path, sources: CompareSources) -> int:
    page = parse_page(page_path)
    for span in page.numbers:
        value = sources.value(span.attrs["data-src"])
        assert same_number(span.attrs["data-value"], value), (span.attrs, value)
        assert span.text == shown(value), (span.attrs, span.text, value)
    untagged = [c.text for c in page.cells if NUMBER.match(c.text.strip()) and "has-num" not in c.attrs]
    assert not untagged, f"numbers shown without a source: {untagged[:5]}"
    return len(page.numbers)


def test_every_number_of_the_page_is_its_source(dirs) -> None:
    sources = CompareSources(dirs["cmp"], [dirs["a"], dirs["b"]])
    assert _check_numbers(dirs["cmp"] / "compare.html", sources) > 150
    srcs = {s.attrs["data-src"].split(":")[0] for s in parse_page(dirs["cmp"] / "compare.html").numbers}
    assert srcs == {"compare", "runs", "change", "compared"}


def test_baseline_said_first_and_markdown_is_the_same_page(dirs) -> None:
    md = (dirs["cmp"] / "compare.md").read_text(encoding="utf-8")
    page = (dirs["cmp"] / "compare.html").read_text(encoding="utf-8")
    assert "[compare.html](compare.html)" in md
    assert md.index("Baseline: `a`, the first run given.") < md.index("## Runs")
    main_text = page.split("<main>", 1)[1]
    assert main_text.lstrip().startswith("<p>Baseline: <code>a</code>, the first run given.")
    md_rows = [line for line in md.splitlines() if line.startswith("| mean_logprob | higher | b |")]
    html_row = next(
        r for r in Tables(page).get("metrics")["rows"] if r[:3] == ["mean_logprob", "higher", "b"]
    )
    assert md_rows == ["| " + " | ".join(html_row) + " |"]  # same cells: one set of blocks
    assert "<svg" in page and ">mean_logprob: difference to first run (95% CI)<" in page  # the figure, inline
    assert (dirs["cmp"] / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_config_diff_names_exactly_the_keys_that_differ(dirs) -> None:
    infos = [_flatten(json.loads((dirs[r] / "run.json").read_text())) for r in "ab"]
    keys = set(infos[0]) | set(infos[1])
    expected = {k for k in keys - IGNORED if json.dumps(infos[0].get(k)) != json.dumps(infos[1].get(k))}
    assert "config.model.max_new_tokens" in expected and "config.output_dir" not in expected
    table = Tables((dirs["cmp"] / "compare.html").read_text()).get("config")
    assert table["header"] == ["key", "a (baseline)", "b"]
    assert {row[0] for row in table["rows"]} == expected
    shown_values = {row[0]: row[1:] for row in table["rows"]}
    assert shown_values["config.model.max_new_tokens"] == ["64", "12"]


def _verdict(metric: str, delta: float, p: float) -> str:
    if p >= 0.05:
        return "not significant"
    if metric in NEITHER:
        return ("higher" if delta > 0 else "lower") + " (significant; neither is better)"
    good = delta > 0 if metric in HIGHER else delta < 0
    return "improvement" if good else "regression"


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_direction_and_verdict_of_each_metric(dirs, order) -> None:
    out = dirs["cmp"] if order == "ab" else _compare(dirs["b"], dirs["a"], out=dirs["root"] / "cmp_ba")
    csv = pd.read_csv(out / "compare.csv").set_index(["metric", "run"])
    rows = Tables((out / "compare.html").read_text()).get("metrics")
    assert rows["header"][:3] == ["metric", "better", "run"] and rows["header"][-1] == "verdict"
    seen = set()
    for row in rows["rows"]:
        metric, direction, run, verdict = row[0], row[1], row[2], row[-1]
        if metric not in HIGHER | LOWER | NEITHER:
            continue
        assert direction == ("higher" if metric in HIGHER else "lower" if metric in LOWER else "—")
        if run == order[0]:
            assert verdict == "baseline"
            continue
        delta, p = csv.loc[(metric, run), ["delta", "p_value"]]
        assert verdict == _verdict(metric, delta, p), (metric, delta, p)
        seen.add(verdict)
    expected = {"not significant", "improvement" if order == "ab" else "regression"}
    assert expected <= seen  # mean_logprob rises with the shorter outputs; the references do not change


def test_changed_most_are_the_largest_changes_with_both_runs_tokens(dirs) -> None:
    a, b = (pd.read_parquet(dirs[r] / "predictions.parquet") for r in "ab")
    delta = b.set_index("id")["rougeL"].astype(float) - a.set_index("id")["rougeL"].astype(float)
    delta = delta[delta != 0].abs()
    text = (dirs["cmp"] / "compare.html").read_text()
    listed = [row[0] for row in Tables(text).get("changed")["rows"]]
    assert len(listed) == min(10, len(delta)) > 3
    threshold = delta.sort_values(ascending=False).iloc[len(listed) - 1]
    assert set(delta[delta > threshold].index) <= set(listed) <= set(delta[delta >= threshold].index)
    assert list(delta[listed]) == sorted(delta[listed], reverse=True)
    assert (
        re.findall(
            r'<article class="example[^"]*"(?: style="[^"]*")? id="row-\d+" data-id="[^"]*" data-key="([^"]*)"',
            text,
        )
        == listed
    )
    tables, eos = [a, b], [1]  # the shipped model's EOS id
    seen: dict[tuple[int, str], list[str]] = {}
    for src, spans in parse_page(dirs["cmp"] / "compare.html").sequences:
        kind, i, _, r, column = src.split(":")
        row = tables[int(i)].iloc[int(r)]
        seen.setdefault((int(i), column), []).append(row["id"])
        logprobs = row[column]
        assert kind == "runs" and len(spans) == len(logprobs)
        for span, lp in zip(spans, logprobs, strict=True):
            assert math.isclose(float(span.attrs["data-lp"]), lp, rel_tol=1e-5, abs_tol=1e-9)
        ids = row["ref_token_ids" if column.startswith("ref_") else "token_ids"]
        assert [j for j, s in enumerate(spans) if "eos" in s.attrs["class"]] == [
            j for j, t in enumerate(ids) if t in eos
        ]
    assert seen[(0, "token_logprobs")] == listed == seen[(1, "token_logprobs")]  # both outputs, each example
    assert seen[(0, "ref_token_logprobs")] == listed  # the same reference, scored alike: shown once


def test_identical_config_and_runs_without_run_json_or_token_pieces(dirs) -> None:
    root = dirs["root"]
    same, bare = root / "same", root / "bare"
    shutil.copytree(dirs["a"], same)
    bare.mkdir()
    for name in ("predictions.parquet", "summary.json"):
        shutil.copy(dirs["b"] / name, bare / name)
    out = _compare(dirs["a"], same, bare, out=root / "cmp3")
    page = (out / "compare.html").read_text()
    assert f"No run.json in <code>bare</code> ({bare}): its configuration is not known." in page
    assert "The runs' run.json are identical" in page
    assert '<h3 id="same-vs-a">same vs a</h3>\n<p>(no row changed)</p>' in page
    assert (
        "<code>bare</code>: no token_pieces.json in the run's folder, so its outputs are plain text" in page
    )
    assert "bare: plain text only (no token_pieces.json in its folder)" in page
    assert (
        '<span class="tokens" data-src="runs:2:' not in page
        and '<span class="tokens" data-src="runs:0:' in page
    )
    _check_numbers(out / "compare.html", CompareSources(out, [dirs["a"], same, bare]))


def test_rerank_compare_shows_the_chosen_candidates_side_by_side(dirs) -> None:
    out = _compare(dirs["r1"], dirs["r2"], out=dirs["root"] / "cmp_rerank")
    _check_numbers(out / "compare.html", CompareSources(out, [dirs["r1"], dirs["r2"]]))
    tables = Tables((out / "compare.html").read_text())
    changed = tables.get("changed")
    assert changed["header"][0] == "group_id" and changed["header"][-2:] == [
        "top_candidate (r1)",
        "top_candidate (r2)",
    ]
    a, b = (pd.read_parquet(dirs[r] / "reranked.parquet") for r in ("r1", "r2"))
    tops = [t[t["rank"] == 1].set_index("group_id") for t in (a, b)]
    assert changed["rows"]  # the two scores choose differently somewhere
    for row in changed["rows"]:
        assert row[-2:] == [tops[0].at[row[0], "candidate"].strip(), tops[1].at[row[0], "candidate"].strip()]
    assert "top_rougeL" in {row[0] for row in tables.get("group-metrics")["rows"]}
    assert 'class="tokens"' not in (out / "compare.html").read_text()  # no token lists needed


def test_page_in_a_browser(dirs, tmp_path) -> None:
    from tests.helpers.browser import open_page, require_browser

    require_browser()
    p_column = 8  # 0-based: metric, better, run, n, mean, delta, low, high, p
    table = "document.querySelector('#metrics ~ div.table table')"
    read = f"[...{table}.tBodies[0].rows].map(r => r.cells[{p_column}].textContent)"
    with open_page(dirs["cmp"] / "compare.html") as page:
        before = page.evaluate(read)
        page.click(f"#metrics ~ div.table table thead th:nth-child({p_column + 1})")
        after = page.evaluate(read)
        values = [float(v) for v in after if v]
        assert values == sorted(values) and after[len(values) :] == [""] * (len(after) - len(values))
        assert after != before and sorted(after) == sorted(before) and len(values) > 5
        assert page.evaluate("document.querySelectorAll('article.example .tok').length") > 100
        assert page.console_errors == [] and page.offline_violations == []
        shot = page.screenshot(tmp_path / "compare.png")
    assert shot.stat().st_size > 10_000
