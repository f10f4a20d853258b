"""report.html of real runs of the shipped model, opened offline in headless Chromium (Debian's package).

Checked in the live page: no console error and no request leaving the file; the token spans of the
examples with their titles; the colour switch; the tooltip on focus; the tables sorting on click (and on
Enter) and filtering; picking a row by id; a screenshot that is not blank. Skipped, saying why, only where
no Chromium can be had (`.ci/run` installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.browser import open_page, require_browser
from tests.helpers.report_page import parse_page

COLUMN_VALUES = """(() => {
  const th = document.getElementById('sort-me'), table = th.closest('table');
  const i = [...th.parentNode.children].indexOf(th);
  return [...table.tBodies[0].rows].map(r => r.cells[i].getAttribute('data-sort'));
})()"""


def _mark_header(page, heading: str, column: str) -> None:
    """Give the header ``column`` of the first table after the heading ``heading`` the id ``sort-me``."""
    found = page.evaluate(
        f"""(() => {{
      const h = [...document.querySelectorAll('h2, h3')].find(x => x.textContent.trim() === {heading!r});
      let node = h.nextElementSibling;
      while (node && !node.querySelector('table')) node = node.nextElementSibling;
      const th = [...node.querySelectorAll('th')].find(x => x.textContent.trim() === {column!r});
      th.id = 'sort-me';
      return true;
    }})()"""
    )
    assert found


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v not in ("", None)]


@pytest.fixture(scope="module")
def browser() -> str:
    return require_browser()


def test_predict_page_in_a_real_browser(shipped_runs: dict[str, Path], browser: str, tmp_path: Path) -> None:
    path = shipped_runs["predict"] / "report.html"
    expected_spans = sum(len(spans) for _, spans in parse_page(path).sequences)
    with open_page(path, height=1000) as page:
        assert page.evaluate("document.querySelectorAll('.example .tok[title]').length") == expected_spans > 0
        assert page.evaluate("document.querySelectorAll('figure svg').length") >= 6

        # the colour switch: probability first, entropy after a click on its radio button
        colour = """(() => {
          const t = document.querySelector('.example .tok[data-ent]');
          const probe = document.createElement('span');
          probe.style.background = t.style.getPropertyValue(%s);
          document.body.appendChild(probe);
          const want = getComputedStyle(probe).backgroundColor;
          probe.remove();
          return [getComputedStyle(t).backgroundColor, want];
        })()"""
        shown, want = page.evaluate(colour % "'--lp'")
        assert shown == want
        page.click("#colour-en")
        shown, want = page.evaluate(colour % "'--en'")
        assert shown == want

        # focus shows the token's title (probability, entropy, alternatives) next to it
        page.focus(".example .tok[data-ent]")
        tip = page.evaluate(
            "[getComputedStyle(document.activeElement, '::after').content, document.activeElement.title]"
        )
        assert tip[0] == '"' + tip[1].replace("\n", "\\a ") + '"'  # CSS writes a newline as \a
        assert "top-3:" in tip[1] and "entropy" in tip[1]

        # sorting: a click sorts ascending, a second descending, Enter on the header too
        _mark_header(page, "Least confident", "mean_logprob")
        page.click("#sort-me")
        values = _numbers(page.evaluate(COLUMN_VALUES))
        assert values == sorted(values) and len(values) > 1
        page.click("#sort-me")
        values = _numbers(page.evaluate(COLUMN_VALUES))
        assert values == sorted(values, reverse=True)
        _mark_header(page, "Every number of summary.json", "value")
        page.focus("#sort-me")
        page.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter"})
        values = _numbers(page.evaluate(COLUMN_VALUES))
        assert values == sorted(values)

        # the filter box hides the rows without the text
        rows = page.evaluate(
            """(() => {
          const box = document.querySelector('input.filter');
          box.value = 'rouge';
          box.dispatchEvent(new Event('input'));
          const rows = [...box.parentNode.querySelector('tbody').rows];
          return [rows.filter(r => !r.hidden).map(r => r.textContent), rows.length];
        })()"""
        )
        assert rows[0] and all("rouge" in text.lower() for text in rows[0]) and len(rows[0]) < rows[1]

        # pick by id: an embedded row is shown, another one says how to add it
        first_id = page.evaluate("document.querySelector('.example').getAttribute('data-id')")
        page.evaluate(f"document.getElementById('pick-id').value = {first_id!r}")
        page.click("#pick button")
        assert page.evaluate("document.querySelector('.example.picked').getAttribute('data-id')") == first_id
        page.evaluate("document.getElementById('pick-id').value = 'no such row'")
        page.click("#pick button")
        assert "t5score report" in page.evaluate("document.getElementById('pick-result').textContent")

        shot = page.screenshot(tmp_path / "report.png")
        assert page.console_errors == []
        assert page.offline_violations == []
    image = Image.open(shot).convert("RGB")
    assert image.width == 1280 and image.height > 2000
    assert len(image.getcolors(1 << 24)) > 50  # text, tables, figures and coloured tokens: not blank


@pytest.mark.parametrize("kind", ["score", "rerank"])
def test_score_and_rerank_pages_in_a_real_browser(
    shipped_runs: dict[str, Path], browser: str, kind: str
) -> None:
    with open_page(shipped_runs[kind] / "report.html") as page:
        if kind == "rerank":
            heading = page.evaluate("document.querySelector('main h2').textContent")
            assert heading == "Reranking result"  # the point of reranking comes first
            _mark_header(page, "Every group", "top rougeL")
        else:
            assert page.evaluate("document.querySelectorAll('.example .tok[title]').length") > 0
            _mark_header(page, "Least confident", "mean_logprob")
        page.click("#sort-me")
        values = _numbers(page.evaluate(COLUMN_VALUES))
        assert values == sorted(values) and len(values) > 1
        assert page.console_errors == []
        assert page.offline_violations == []
