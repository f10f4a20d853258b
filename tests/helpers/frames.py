"""Comparing two output tables row by row, list columns included."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _flat(value) -> np.ndarray:
    if value is None:
        return np.array([])
    return (
        np.concatenate(
            [np.ravel(np.asarray(list(v) if hasattr(v, "__len__") else [v], dtype=float)) for v in value]
        )
        if len(value)
        else np.array([])
    )


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame, atol: float = 0.0):
    """Same ids, order and columns; floats (also inside lists) within ``atol`` abs. or rel., the rest exact."""
    assert a["id"].tolist() == b["id"].tolist()
    assert a.columns.tolist() == b.columns.tolist()
    for col in a.columns:
        first = a[col].dropna().iloc[0] if a[col].notna().any() else None
        if isinstance(first, (np.ndarray, list)):
            for x, y in zip(a[col], b[col], strict=True):
                fx, fy = _flat(x), _flat(y)
                assert fx.shape == fy.shape, col
                np.testing.assert_allclose(fx, fy, rtol=atol, atol=atol, err_msg=col)
        elif pd.api.types.is_float_dtype(a[col]):
            np.testing.assert_allclose(
                a[col].to_numpy(float), b[col].to_numpy(float), rtol=atol, atol=atol, err_msg=col
            )
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
