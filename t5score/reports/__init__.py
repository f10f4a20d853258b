"""Run reports: uncertainty quality (PRR, AURC), PNG figures and ``report.md``.

Pure pandas/numpy/matplotlib: nothing here imports torch, Lightning or transformers.
"""

from t5score.functional.uncertainty import (
    aurc,
    prr,
    rejection_curve,
    risk_coverage_curve,
    uncertainty_summary,
)
from t5score.reports.report import write_report

__all__ = ["aurc", "prr", "rejection_curve", "risk_coverage_curve", "uncertainty_summary", "write_report"]
