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
    "kappa_gap_plain",
    "kappa_gap_controlled",
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
    kappa_gap_plain: float = float("nan")  # self − cross in kappa (grouped, as the verdict's)
    kappa_gap_controlled: float = float("nan")

    def gaps(self, metric: str) -> tuple[float, float]:
        """(plain, controlled) self − cross gap on the verdict metric."""
        if metric == "kappa":
            return self.kappa_gap_plain, self.kappa_gap_controlled
        return self.gap_plain, self.gap_controlled


def control_verdicts(rows: list[ControlRow], margin: float, metric: str = MICRO) -> list[str]:
    """Per pair: the controlled gaps on the verdict's metric read by the study's verdict, and the
    planted size (controlled − plain gap on that metric)."""
    out = []
    for target, cross in dict.fromkeys((r.target, r.cross_model) for r in rows):
        mine = [r for r in rows if r.target == target and r.cross_model == cross]
        pairs = [r.gaps(metric) for r in mine]
        v = infer([c for _, c in pairs], margin=margin)
        size = float(np.mean([c - p for p, c in pairs]))
        plain = float(np.mean([p for p, _ in pairs]))
        lo, hi, conf = v.interval
        inside = "inside" if lo <= size <= hi else "outside"
        out.append(
            f"Positive control ({target} vs {cross}, {100 * mine[0].share:.0f}% of held-out items "
            f"{HOW[mine[0].mode]}): {v.sentence()[:-1]}; that gap is the study's own {100 * plain:+.1f} "
            f"points plus the planted advantage measured in this run, {100 * size:+.1f} points, which "
            f"on its own lies {inside} the {conf}% interval ({metric.replace('_', ' ')})."
        )
    return out
