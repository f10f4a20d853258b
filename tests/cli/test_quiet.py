"""Importing the command line changes no global state; its quieting lasts only while a command runs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

from t5score.cli.commands import IGNORED_WARNINGS, QUIET_LOGGERS, quiet_run

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_cli_leaves_warning_filters_and_logger_levels_alone():
    names = json.dumps(sorted(QUIET_LOGGERS))
    code = f"""
import json, logging, warnings
import lightning.pytorch, transformers  # their own import-time settings are not ours to check
names = {names}
def state():
    return [repr(f) for f in warnings.filters], {{n: logging.getLogger(n).level for n in names}}
before = state()
import t5score.cli, t5score.cli.commands, t5score.cli.lightning_cli, t5score.cli.compare
print(json.dumps([before == state(), before[1], len(before[0])]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True, timeout=120
    )
    unchanged, levels, n_filters = json.loads(result.stdout.strip().splitlines()[-1])
    assert unchanged, result.stdout
    assert n_filters > 0 and set(levels) == set(QUIET_LOGGERS)


def test_quiet_run_applies_inside_and_restores_after():
    loggers = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    saved = {name: logger.level for name, logger in loggers.items()}
    try:
        for logger in loggers.values():
            logger.setLevel(logging.DEBUG)
        filters = list(warnings.filters)
        with quiet_run():
            assert {n: lg.level for n, lg in loggers.items()} == QUIET_LOGGERS
            patterns = {f[1].pattern for f in warnings.filters if f[0] == "ignore" and f[1] is not None}
            assert set(IGNORED_WARNINGS) <= patterns
            with warnings.catch_warnings(record=True) as caught:
                warnings.warn(
                    "The dataloader does not have many workers, consider", UserWarning, stacklevel=1
                )
                warnings.warn("a warning of t5score's own that must still show", UserWarning, stacklevel=1)
            assert [str(w.message) for w in caught] == ["a warning of t5score's own that must still show"]
        assert warnings.filters == filters
        assert {n: lg.level for n, lg in loggers.items()} == dict.fromkeys(QUIET_LOGGERS, logging.DEBUG)
    finally:
        for name, logger in loggers.items():
            logger.setLevel(saved[name])


def test_quiet_run_restores_after_an_error():
    filters = list(warnings.filters)
    try:
        with quiet_run():
            raise KeyError("boom")
    except KeyError:
        pass
    assert warnings.filters == filters
