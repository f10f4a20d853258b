"""``t5score report RUN_DIR``: a finished run's report rendered again, and one line for each mistake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers.cli import assert_user_error
from tests.helpers.report_page import Sources, parse_page, same_number


def test_rendering_again_gives_the_same_numbers(shipped_runs: dict[str, Path], tmp_path: Path) -> None:
    from t5score.cli import main

    run = tmp_path / "again"
    shutil.copytree(shipped_runs["score"], run)
    before = [(s.attrs["data-src"], s.attrs["data-value"]) for s in parse_page(run / "report.html").numbers]
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    page = parse_page(run / "report.html")
    after = [(s.attrs["data-src"], s.attrs["data-value"]) for s in page.numbers]
    assert after == before
    sources = Sources(run, "scores.parquet")
    assert all(same_number(value, sources.value(src)) for src, value in after)


def test_mistakes_are_one_line(shipped_runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert_user_error(capsys, ["report", str(tmp_path / "nope")], r"nope: no such run folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(
        capsys, ["report", str(empty)], r"run.json: not found; is .*empty a finished t5score run"
    )
    broken = tmp_path / "broken"
    shutil.copytree(shipped_runs["score"], broken)
    (broken / "summary.json").write_text("{not json")
    assert_user_error(capsys, ["report", str(broken)], r"summary.json: not valid JSON")
    (broken / "summary.json").write_text("{}")
    info = json.loads((broken / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps({**info, "kind": "train"}))
    assert_user_error(capsys, ["report", str(broken)], r"kind 'train' is not one of predict, score, rerank")
    (broken / "run.json").write_text(json.dumps(info))
    (broken / "scores.parquet").unlink()
    assert_user_error(capsys, ["report", str(broken)], r"scores.parquet: not found")
