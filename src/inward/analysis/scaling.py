"""Points of the cross-prediction data-scaling curve (the study's ``scaling`` section): one
predictor's micro-average accuracy after a number of training examples."""

from __future__ import annotations

from dataclasses import dataclass

from inward.analysis.results import MICRO, results_table
from inward.records import ScoredRecord


@dataclass(frozen=True)
class ScalingRow:
    """One point of the curve: a predictor's micro-average accuracy after ``n_train`` examples
    (``label`` "cross"; the self-predictor's point is "self", at its own number of examples).
    A row of scaling.csv (``inward.report.columns.SCALING``)."""

    seed: int
    n_train: int | str
    accuracy: float
    error: float
    predictor: str
    target: str
    label: str
    mode_baseline: float
    count: int


def _point(seed: int, n_train: int | str, rows: list[ScoredRecord], label: str) -> ScalingRow:
    m = next(r for r in results_table(rows, label=label) if r["response_property"] == MICRO)
    return ScalingRow(
        seed,
        n_train,
        m["accuracy"],
        m["error"],
        m["meta_model"],
        m["object_model"],
        label,
        m["mode_baseline"],
        m["count"],
    )
