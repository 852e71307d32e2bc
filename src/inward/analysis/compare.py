"""Self- vs cross-prediction tests, per reported property and pooled (spec §1.11).

Both predictors are scored against the same object behaviour (the self-trained model's), so
every (task, property, string) row exists for both: the two-proportion z-test compares the two
accuracies as the paper did, and McNemar's exact test uses the pairing the z-test ignores.

A last row, ``micro_average_non_degenerate``, pools only the (task, property) groups where
neither predictor is degenerate (one answer in more than 80% of its rows: a constant answer
that happens to match the behaviour is not evidence about either predictor);
``excluded_groups`` names the groups it leaves out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TypedDict

from inward.analysis.results import MICRO, degenerate_groups, reported_name
from inward.analysis.stats import mcnemar_test, two_proportion_ztest
from inward.records import ScoredRecord


class ComparisonRow(TypedDict):
    """A row of comparisons.csv: self vs cross on one reported property of one trained pair
    (``inward.report.columns.COMPARISONS``)."""

    response_property: str
    self_accuracy: float
    cross_accuracy: float
    difference: float
    z: float
    p_value: float  # two-proportion z-test
    paired_count: int
    mcnemar_p: float
    self_count: int
    cross_count: int
    self_model: str
    cross_model: str
    excluded_groups: str  # the non-degenerate micro average's left-out groups


NON_DEGENERATE = "micro_average_non_degenerate"


def _groups(rows: Sequence[ScoredRecord], skip: set[tuple[str, str]]) -> dict[str, dict[tuple, bool]]:
    out: dict[str, dict[tuple, bool]] = defaultdict(dict)
    for r in rows:
        if not r.evaluable or r.property == "identity":
            continue
        key = (r.task, r.property, r.string)
        out[reported_name(r.property)][key] = bool(r.correct)
        out[MICRO][key] = bool(r.correct)
        if (r.task, r.property) not in skip:
            out[NON_DEGENERATE][key] = bool(r.correct)
    return out


def paired_groups(
    self_rows: Sequence[ScoredRecord], cross_rows: Sequence[ScoredRecord]
) -> dict[str, tuple[list[bool], list[bool]]]:
    """Per reported property (and both micro averages): self's and cross's correctness on the
    items both were scored on, in one order (the input of the seed-level tests)."""
    skip = degenerate_groups(self_rows) | degenerate_groups(cross_rows)
    s_groups, c_groups = _groups(self_rows, skip), _groups(cross_rows, skip)
    names = [n for n in s_groups if n not in (MICRO, NON_DEGENERATE)] + [MICRO, NON_DEGENERATE]
    out = {}
    for name in names:
        s, c = s_groups.get(name, {}), c_groups.get(name, {})
        shared = sorted(set(s) & set(c))
        if shared:
            out[name] = ([s[k] for k in shared], [c[k] for k in shared])
    return out


def compare_self_cross(self_rows: Sequence[ScoredRecord], cross_rows: Sequence[ScoredRecord]) -> list[ComparisonRow]:
    """One row per reported property (micro average last): accuracies, z-test, McNemar."""
    skip = degenerate_groups(self_rows) | degenerate_groups(cross_rows)
    s_groups, c_groups = _groups(self_rows, skip), _groups(cross_rows, skip)
    names = [n for n in s_groups if n not in (MICRO, NON_DEGENERATE)] + [MICRO, NON_DEGENERATE]
    out: list[ComparisonRow] = []
    for name in names:
        s, c = s_groups.get(name, {}), c_groups.get(name, {})
        if not s or not c:
            continue
        s_hits, c_hits = sum(s.values()), sum(c.values())
        z, p = two_proportion_ztest(s_hits, len(s), c_hits, len(c))
        shared = sorted(set(s) & set(c))
        paired = mcnemar_test([s[k] for k in shared], [c[k] for k in shared]) if shared else None
        out.append(
            {
                "response_property": name,
                "self_accuracy": s_hits / len(s),
                "cross_accuracy": c_hits / len(c),
                "difference": s_hits / len(s) - c_hits / len(c),
                "z": z,
                "p_value": p,
                "paired_count": len(shared),
                "mcnemar_p": paired.p_value if paired else float("nan"),
                "self_count": len(s),
                "cross_count": len(c),
                "self_model": self_rows[0].meta_model if self_rows else "",
                "cross_model": cross_rows[0].meta_model if cross_rows else "",
                "excluded_groups": "; ".join(f"{t}/{p}" for t, p in sorted(skip)) if name == NON_DEGENERATE else "",
            }
        )
    return out
