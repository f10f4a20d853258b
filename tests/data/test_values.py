"""is_missing: one definition of a missing cell, the one every layer uses."""

from __future__ import annotations

import datetime
import doctest

import numpy as np
import pandas as pd
import pytest

import t5score.data.values
import t5score.reports.markdown
from t5score.data.values import is_missing


@pytest.mark.parametrize(
    "value", [None, float("nan"), np.nan, np.float32("nan"), pd.NA, pd.NaT, np.datetime64("NaT")]
)
def test_missing(value):
    assert is_missing(value)


@pytest.mark.parametrize(
    "value",
    ["", "nan", "None", 0, 0.0, False, [], [None], (np.nan,), {}, np.array([np.nan]), np.array([]), 1.5]
    + [datetime.date(2020, 1, 1), np.int64(3)],
)
def test_not_missing(value):
    assert not is_missing(value)


def test_the_reports_use_the_same_check():
    assert t5score.reports.markdown.is_missing is is_missing
    assert (
        t5score.reports.markdown.md_cell(pd.NA) == "" and t5score.reports.markdown.md_cell([None]) == "[None]"
    )


def test_docstring_example():
    assert doctest.testmod(t5score.data.values).failed == 0
