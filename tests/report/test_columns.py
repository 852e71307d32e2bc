"""One column list per results table (inward.report.columns) drives the CSV, the report and the
terminal, and names exactly its typed row's fields."""

from __future__ import annotations

from dataclasses import fields

import pytest

from inward.analysis.behaviour_change import BehaviourChangeRow
from inward.analysis.calibration import CalibrationRow
from inward.analysis.compare import ComparisonRow
from inward.analysis.results import ByTaskRow, ResultRow
from inward.analysis.scaling import ScalingRow
from inward.report import columns as C
from inward.report.html import table


@pytest.mark.parametrize(
    "spec, row_type",
    [
        (C.RESULTS, ResultRow),
        (C.BY_TASK, ByTaskRow),
        (C.COMPARISONS, ComparisonRow),
        (C.CALIBRATION, CalibrationRow),
        (C.BEHAVIOUR_CHANGE, BehaviourChangeRow),
    ],
)
def test_each_csv_is_its_typed_rows_fields_in_order(spec, row_type):
    assert spec.csv() == tuple(row_type.__annotations__)


def test_the_study_versions_add_the_seed_first():
    assert C.SCALING.csv() == tuple(f.name for f in fields(ScalingRow))
    assert C.RESULTS.seeded().csv() == ("seed", *ResultRow.__annotations__)
    assert C.STUDY_BEHAVIOUR_CHANGE.csv() == ("seed", *BehaviourChangeRow.__annotations__, "shift_model")


ROW = {
    "seed": 1,
    "response_property": "first_word",
    "accuracy": 0.5,
    "error": 0.1,
    "bootstrap_lower": 0.4,
    "bootstrap_upper": 0.6,
    "mode_baseline": 0.3,
    "compliance_rate": 0.9,
    "count": 120,
    "object_model": "bundled/qwen2.5-coder-0.5b-instruct+lora:seed1/models/q/self_ft/adapter",
    "meta_model": "bundled/qwen2.5-coder-0.5b-instruct+lora:seed1/models/q/self_ft/adapter",
    "label": "self",
    "beats_mode_p": 0.001,
    "top_answer": "the",
    "top_answer_share": 0.85,
    "degenerate": True,
    "degenerate_groups": 1,
    "object_fingerprint": "0123456789ab",
    "meta_fingerprint": "0123456789ab",
}


def test_report_and_terminal_show_the_lists_columns_with_its_formats():
    html = table(C.RESULTS.seeded(), [ROW])
    assert html.headers == [c.header for c in C.RESULTS.seeded().columns if c.html]
    cells = dict(zip(html.headers, (c.text for c in html.rows[0])))
    assert cells["accuracy"] == "50.0%" and cells["bootstrap 95%"] == "40.0%–60.0%"
    assert cells["most common answer"] == "the (85.0%) DEGENERATE" and cells["seed"] == "1"
    assert "object_fingerprint" not in html.headers  # CSV only
    text = C.RESULTS.text([ROW]).splitlines()
    assert text[0].split()[:2] == ["property", "accuracy"] and "most common answer" in text[0]
    assert "50.0%" in text[2] and "40.0%–60.0%" in text[2] and "DEGENERATE" in text[2]


def test_a_changed_header_changes_report_and_terminal_together():
    spec = C.Columns(
        tuple(
            C.Column(c.key, "hit rate" if c.key == "accuracy" else c.header, c.show, c.kind, c.csv, c.html, c.cli)
            for c in C.RESULTS.columns
        )
    )
    assert "hit rate" in table(spec, [ROW]).headers
    assert "hit rate" in spec.text([ROW]).splitlines()[0]
    assert spec.csv() == C.RESULTS.csv()  # the CSV is named by keys, not headers
