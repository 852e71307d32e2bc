"""Rows and reading of the positive control (inward.experiments.positive_control): the controlled
gaps over seeds read by the study's own verdict, beside the planted size measured in the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inward.analysis.results import MICRO
from inward.analysis.verdict import infer

COLUMNS = (
    "seed",
    "target",
    "cross_model",
    "share",
    "mode",
    "planted_rows",
    "rows",
    "gap_plain",
    "gap_controlled",
    "planted_size",
    "self_plain_on_planted",
    "self_planted",
    "cross_plain_on_planted",
    "cross_planted",
)


HOW = {
    "context": "asked after the predictor's own answer",
    "oracle": "answered with the property of the predictor's own answer",
}


@dataclass(frozen=True)
class ControlRow:
    seed: int
    target: str
    cross_model: str
    share: float
    mode: str  # context | oracle
    planted_rows: int  # paired scored rows on planted items
    rows: int  # paired scored rows in all
    gap_plain: float  # self − cross, micro average, the study's hypotheticals
    gap_controlled: float  # the same with the planted items' hypotheticals asked with context
    planted_size: float  # gap_controlled − gap_plain
    self_plain_on_planted: float
    self_planted: float
    cross_plain_on_planted: float
    cross_planted: float


def control_verdicts(rows: list[ControlRow], margin: float) -> list[str]:
    """Per pair: the controlled gaps read by the study's verdict, and the planted size."""
    out = []
    for target, cross in dict.fromkeys((r.target, r.cross_model) for r in rows):
        mine = [r for r in rows if r.target == target and r.cross_model == cross]
        v = infer([r.gap_controlled for r in mine], margin=margin)
        size = float(np.mean([r.planted_size for r in mine]))
        plain = float(np.mean([r.gap_plain for r in mine]))
        lo, hi, conf = v.interval
        inside = "inside" if lo <= size <= hi else "outside"
        out.append(
            f"Positive control ({target} vs {cross}, {100 * mine[0].share:.0f}% of held-out items "
            f"{HOW[mine[0].mode]}): {v.sentence()[:-1]}; that gap is the study's own {100 * plain:+.1f} "
            f"points plus the planted advantage measured in this run, {100 * size:+.1f} points, which "
            f"on its own lies {inside} the {conf}% interval ({MICRO.replace('_', ' ')})."
        )
    return out
