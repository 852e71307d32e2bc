"""A results table for the terminal, from the same column list as results.csv and the report
(``inward.report.columns.RESULTS``: its ``cli`` columns)."""

from __future__ import annotations

from collections.abc import Sequence

from inward.report.columns import RESULTS


def format_results(rows: Sequence[dict]) -> str:
    if not rows:
        return RESULTS.text([]) + "\nno evaluable rows: every object-level response was non-compliant"
    return RESULTS.text(rows) + f"\nobject model: {rows[0]['object_model']}   predictor: {rows[0]['meta_model']}"
