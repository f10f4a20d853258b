"""How ``report.html`` shows a number: formatted, with its value and source in data attributes."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from t5score.reports.blocks import Num


def fmt(value: Any) -> str:
    """A number as the pages show it: floats to 4 significant digits, booleans as yes / no."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def data_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def num(n: Num) -> str:
    return (
        f'<span class="num" data-src="{escape(n.src)}" data-value="{data_value(n.value)}">'
        f"{escape(fmt(n.value))}</span>"
    )
