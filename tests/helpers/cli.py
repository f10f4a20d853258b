"""Checks for the command line's promise: a user mistake prints one line and exits 2, no traceback."""

from __future__ import annotations

import re

from t5score.cli import main


def assert_user_error(capsys, argv: list[str], match: str) -> str:
    """Run ``t5score argv`` in-process; assert exit 2 and one ``t5score: error:`` line matching ``match``.

    In-process, a traceback would surface as an exception out of ``main`` and fail the test itself.
    Returns the line.
    """
    capsys.readouterr()  # drop what earlier steps printed
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "warning:" not in line]
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("t5score: error: "), err
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
    return lines[0]
