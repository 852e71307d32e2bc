"""Behaviour change (Experiment 2, spec §1.8, §6.3, §6.4): which behaviour does M_C predict?

M = the self-trained model, M_C = M finetuned further on another model's object-level answers.
Per (task, property, string) the two object-level behaviours are compared: ``shifted`` when both
are compliant and their (cleaned) property values differ, ``same`` when equal, ``not_compliant``
otherwise. On the shifted items, M_C's hypothetical answers are scored twice: against M's value
("predicts old behaviour") and against M_C's own ("predicts new behaviour"). Introspection
predicts new > old. The same answer can match at most one of two different values, so the two
flags of an item are paired: McNemar's exact test on the discordant items gives the p-value.

Mode baselines are recomputed on the filtered items, per (task, property) as in ``results.csv``
(the paper pooled the mode across tasks, which can only give a lower baseline).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import TypedDict, cast

from inward.analysis.results import MICRO, answer_of, reported_name
from inward.analysis.scoring import object_value
from inward.analysis.stats import (
    DEGENERATE_SHARE,
    accuracy_summary,
    beats_mode_p,
    group_mode_flags,
    mcnemar_test,
    top_answer,
    two_proportion_ztest,
)
from inward.properties import clean_object_value
from inward.properties.registry import Property
from inward.records import ObjectRecord, ScoredRecord

SHIFTED, SAME, NOT_COMPLIANT = "shifted", "same", "not_compliant"


class BehaviourChangeRow(TypedDict):
    """A row of behaviour_change.csv (``inward.report.columns.BEHAVIOUR_CHANGE``)."""

    response_property: str
    predicts_old_accuracy: float
    predicts_old_error: float
    predicts_new_accuracy: float
    predicts_new_error: float
    difference: float  # new - old
    p_value: float  # McNemar (nan after the entropy adjustment: unpaired)
    ztest_p: float
    mode_baseline: float  # of the new behaviour
    mode_baseline_old: float
    count: int
    shifted_fraction: float
    compared: int
    adjustment: str  # none | entropy
    old_model: str
    new_model: str
    meta_model: str
    new_beats_mode_p: float
    old_beats_mode_p: float
    top_answer: str
    top_answer_share: float
    degenerate: bool
    noncompliant_dropped: int


Key = tuple[str, str, str]  # (task, property, string)


def shift_status(
    old: Sequence[ObjectRecord],
    new: Sequence[ObjectRecord],
    props: Mapping[str, Sequence[Property]],
    scoring: str = "paper",
) -> dict[Key, str]:
    """Status of every (task, property, string) present for both object models."""
    new_by = {(o.task, o.string): o for o in new}
    out: dict[Key, str] = {}
    for o in old:
        n = new_by.get((o.task, o.string))
        if n is None:
            continue
        for prop in props.get(o.task, ()):
            a, b = object_value(o, prop), object_value(n, prop)
            if a is None or b is None:
                out[(o.task, prop.name, o.string)] = NOT_COMPLIANT
            else:
                same = clean_object_value(a, scoring) == clean_object_value(b, scoring)
                out[(o.task, prop.name, o.string)] = SAME if same else SHIFTED
    return out


def shifted_keys(status: Mapping[Key, str]) -> list[Key]:
    return [k for k, s in status.items() if s == SHIFTED]


def entropy_adjust(
    old_rows: Sequence[ScoredRecord], new_rows: Sequence[ScoredRecord], seed: str = "42", top: int = 100
) -> tuple[list[ScoredRecord], list[ScoredRecord]]:
    """Spec §6.4: per (task, property), keep for each of the ``top`` most common object values of
    the old bar ``min(count_old, count_new)`` items of each bar (seeded shuffle), so both bars
    are scored against the same object-value distribution."""
    keys_new = {(r.task, r.property, r.string) for r in new_rows}
    keys_old = {(r.task, r.property, r.string) for r in old_rows}
    shared = keys_old & keys_new
    groups: dict[tuple[str, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    for r in old_rows:
        if (r.task, r.property, r.string) in shared:
            groups[(r.task, r.property)][0].append(r)
    for r in new_rows:
        if (r.task, r.property, r.string) in shared:
            groups[(r.task, r.property)][1].append(r)
    keep_old: list[ScoredRecord] = []
    keep_new: list[ScoredRecord] = []
    for (task, prop), (olds, news) in groups.items():
        rng = random.Random(f"{seed}:{task}:{prop}")
        olds, news = list(olds), list(news)
        rng.shuffle(olds)
        rng.shuffle(news)
        for value, count_old in Counter(r.object_clean for r in olds).most_common(top):
            o = [r for r in olds if r.object_clean == value]
            n = [r for r in news if r.object_clean == value]
            k = min(count_old, len(n))
            keep_old += o[:k]
            keep_new += n[:k]
    return keep_old, keep_new


def _mode_flags(rows: Sequence[ScoredRecord]) -> list[bool]:
    """Per row: is its object value the modal one of its (task, property) on these rows?"""
    return group_mode_flags([(r.task, r.property) for r in rows], [r.object_clean for r in rows])[0]


def _mode_rate(rows: Sequence[ScoredRecord]) -> float:
    return sum(_mode_flags(rows)) / len(rows) if rows else float("nan")


def behaviour_change_table(
    old_rows: Sequence[ScoredRecord],
    new_rows: Sequence[ScoredRecord],
    status: Mapping[Key, str] | None = None,
    *,
    adjustment: str = "none",
    seed: int = 42,
    exclude_noncompliant: bool = True,
) -> list[BehaviourChangeRow]:
    """One row per reported property and a micro average: old vs new accuracy, CIs, p-values.

    ``old_rows`` are M_C's answers scored against M, ``new_rows`` the same answers against M_C,
    on shifted items (rows that are not evaluable are ignored, and, as in the paper's
    behaviour-change figure, so are rows whose hypothetical answer is not compliant; their
    number is ``noncompliant_dropped``). ``status`` gives the shifted
    fraction of the compared items per group.
    """
    dropped: dict[str, int] = defaultdict(int)

    def groups(rows, count=False):
        out: dict[str, dict[Key, ScoredRecord]] = defaultdict(dict)
        for r in rows:
            if not r.evaluable or r.property == "identity":
                continue
            if exclude_noncompliant and r.meta_compliant is False:  # the paper's figure (spec §5)
                if count:
                    dropped[reported_name(r.property)] += 1
                    dropped[MICRO] += 1
                continue
            out[reported_name(r.property)][(r.task, r.property, r.string)] = r
            out[MICRO][(r.task, r.property, r.string)] = r
        return out

    g_old, g_new = groups(old_rows), groups(new_rows, count=True)
    compared: dict[str, list[str]] = defaultdict(list)
    for (_task, prop, _), s in (status or {}).items():
        if prop != "identity":
            compared[reported_name(prop)].append(s)
            compared[MICRO].append(s)
    names = [n for n in g_new if n != MICRO] + ([MICRO] if MICRO in g_new else [])
    out = []
    for name in names:
        o, n = g_old.get(name, {}), g_new[name]
        if adjustment == "none":
            shared = sorted(set(o) & set(n))
            olds, news = [o[k] for k in shared], [n[k] for k in shared]
        else:
            olds, news = [o[k] for k in sorted(o)], [n[k] for k in sorted(n)]
        if not olds or not news:
            continue
        so = accuracy_summary([bool(r.correct) for r in olds], seed=seed)
        sn = accuracy_summary([bool(r.correct) for r in news], seed=seed)
        if adjustment == "none":
            p = mcnemar_test([bool(r.correct) for r in news], [bool(r.correct) for r in olds]).p_value
        else:  # the two bars hold different items after down-sampling: unpaired only
            p = float("nan")
        _, zp = two_proportion_ztest(
            sum(bool(r.correct) for r in news), len(news), sum(bool(r.correct) for r in olds), len(olds)
        )
        st = compared.get(name, [])
        top, share = top_answer([answer_of(r) for r in news])
        pooled = name != MICRO
        out.append(
            {
                "response_property": name,
                "predicts_old_accuracy": so.accuracy,
                "predicts_old_error": so.error,
                "predicts_new_accuracy": sn.accuracy,
                "predicts_new_error": sn.error,
                "difference": sn.accuracy - so.accuracy,
                "p_value": p,
                "ztest_p": zp,
                "mode_baseline": _mode_rate(news),
                "mode_baseline_old": _mode_rate(olds),
                "count": len(news),
                "shifted_fraction": st.count("shifted") / len(st) if st else float("nan"),
                "compared": len(st),
                "adjustment": adjustment,
                "old_model": olds[0].object_model,
                "new_model": news[0].object_model,
                "meta_model": news[0].meta_model,
                # each side against its own mode baseline (the modal value of the behaviour it is scored on)
                "new_beats_mode_p": beats_mode_p([bool(r.correct) for r in news], _mode_flags(news)),
                "old_beats_mode_p": beats_mode_p([bool(r.correct) for r in olds], _mode_flags(olds)),
                "top_answer": top if pooled else "",
                "top_answer_share": share if pooled else None,
                "degenerate": bool(share > DEGENERATE_SHARE) if pooled else "",
                "noncompliant_dropped": dropped.get(name, 0),
            }
        )
    return cast(list[BehaviourChangeRow], out)
