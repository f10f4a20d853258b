"""Input edge cases of issue 15 (item 10): huge CSV fields, repeated column names, user columns named like
t5score's own bookkeeping, and references that are not text.

Each case goes through the reader (``read_records`` and the row builders) and, where it is a user mistake,
through the CLI: one ``t5score: error:`` line, exit 2.
"""

from __future__ import annotations

import csv

import pytest

from t5score.data.io import read_records

BIG = 300_000  # over the csv module's default field limit (131,072 characters)


def _big_text() -> str:
    words = ('the data 数据 of a file, "quoted"\nline ' * (BIG // 30 + 1))[:BIG]
    assert len(words) == BIG
    return words


@pytest.mark.parametrize("sep,suffix", [(",", "csv"), ("\t", "tsv")])
def test_a_field_over_the_csv_limit_arrives_intact(tmp_path, sep, suffix):
    big = _big_text()
    path = tmp_path / f"big.{suffix}"
    with path.open("w", encoding="utf-8", newline="") as handle:  # the csv module as the writer
        writer = csv.writer(handle, delimiter=sep)
        writer.writerows([["id", "source"], ["a", "short"], ["b", big], ["c", "after"]])
    before = csv.field_size_limit()
    rows = read_records(path)
    assert csv.field_size_limit() == before  # the limit is raised for the read only
    assert [r["source"] for r in rows] == ["short", big, "after"]
    # each row is numbered by the line it starts on (the big field spans many lines)
    assert [r["__line__"] for r in rows] == [2, 3, 3 + big.count("\n") + 1]


def test_rows_are_numbered_by_their_first_line(tmp_path):
    """A quoted cell over several lines, blank lines between records, a short row: each row names the
    line it starts on, as an editor shows it."""
    path = tmp_path / "lines.csv"
    path.write_text('id,source\n\n"a","one\ntwo\r\nthree"\n\nb,x\nc\n', encoding="utf-8", newline="")
    rows = read_records(path)
    assert [r["__line__"] for r in rows] == [3, 7, 8]
    assert rows[0]["source"] == "one\ntwo\r\nthree"
    assert rows[2]["__error__"] == "line 8: 1 of the header's 2 fields (missing: 'source')"
    assert rows[2]["source"] is None
