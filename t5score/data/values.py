"""What counts as a missing cell, in one place: readers, scoring, ROUGE and the reports all ask this."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def is_missing(value: Any) -> bool:
    """None, NaN (Python or NumPy float), ``pd.NA`` or ``NaT``; a text, list or array never is.

    >>> [is_missing(v) for v in (None, float("nan"), pd.NA, pd.NaT, np.float32("nan"))]
    [True, True, True, True, True]
    >>> [is_missing(v) for v in ("", "nan", 0, [None], np.array([np.nan]))]
    [False, False, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, (str, bytes, list, tuple, dict)) or np.ndim(value) != 0:
        return False
    return bool(pd.isna(value))
