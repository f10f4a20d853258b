"""Run reports, rendering only: ``report.md`` with its PNG figures, and the page of ``t5score compare``.

The numbers they show are computed before (``t5score.runs``, ``t5score.functional``); nothing here
imports torch, Lightning or transformers.
"""

from t5score.reports.report import WrittenReport, write_report

__all__ = ["WrittenReport", "write_report"]
