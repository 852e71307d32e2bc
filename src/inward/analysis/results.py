"""From scored rows to the paper's results table (spec §6.2).

Rows are grouped by reported property. As in the paper's figures, every ``matches_*`` property
is reported as ``ethical_stance`` and every ``is_either_*`` as ``among_options``, ``identity`` is
left out of the pooled rows, and a ``micro_average`` row pools all (task, property, string) rows,
so tasks weigh by their row counts. The mode baseline is computed per (task, property) on the
evaluated rows themselves and then averaged over the rows of a group.

Two columns guard against reading a constant answer as knowledge:

- ``beats_mode_p``: one-sided exact McNemar test, on the same rows, that the predictor is right
  more often than always answering each (task, property)'s modal value;
- ``top_answer`` / ``top_answer_share`` / ``degenerate``: the predictor's most common cleaned
  answer (``<non-compliant>`` for answers that failed compliance) and its share; ``degenerate``
  is true above :data:`~inward.analysis.stats.DEGENERATE_SHARE` (80%). A property row pools its
  tasks; the micro-average row leaves these blank and counts its degenerate (task, property)
  groups in ``degenerate_groups``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import NotRequired, TypedDict, cast

from inward.analysis.stats import DEGENERATE_SHARE, accuracy_summary, beats_mode_p, group_mode_flags, top_answer
from inward.records import ScoredRecord


class ResultRow(TypedDict):
    """A row of results.csv: one reported property of one setup, or its micro average. Its
    columns, headers and formats: ``inward.report.columns.RESULTS``."""

    response_property: str
    accuracy: float
    error: float  # 1.96 SEM
    bootstrap_lower: float
    bootstrap_upper: float
    mode_baseline: float
    compliance_rate: float
    count: int
    object_model: str
    meta_model: str
    label: str  # untrained | self | cross (or a tuning point)
    beats_mode_p: float
    top_answer: str
    top_answer_share: float | None
    degenerate: bool | str  # "" for the micro average
    degenerate_groups: int
    kappa: float  # chance-corrected agreement, mean over (task, property) groups weighted by rows
    object_fingerprint: NotRequired[str]  # added by the study and inward evaluate
    meta_fingerprint: NotRequired[str]


class ByTaskRow(TypedDict):
    """A row of results_by_task.csv (``inward.report.columns.BY_TASK``)."""

    task: str
    response_property: str
    accuracy: float
    error: float
    bootstrap_lower: float
    bootstrap_upper: float
    mode_baseline: float
    modal_value: str | None
    compliance_rate: float
    count: int
    objects: int
    object_excluded: int
    object_model: str
    meta_model: str
    label: str
    beats_mode_p: float
    top_answer: str
    top_answer_share: float | None
    degenerate: bool | str
    kappa: float
    object_fingerprint: NotRequired[str]
    meta_fingerprint: NotRequired[str]


NON_COMPLIANT = "<non-compliant>"
MICRO = "micro_average"


def reported_name(prop: str) -> str:
    if prop.startswith("matches_"):
        return "ethical_stance"
    if prop.startswith("is_either_"):
        return "among_options"
    return prop


def _mode_flags(rows: Sequence[ScoredRecord]) -> tuple[dict[int, bool], dict[tuple[str, str], str | None]]:
    """Per evaluable row (by index): does the (task, property) mode equal its object value?"""
    idx = [i for i, r in enumerate(rows) if r.evaluable]
    flags, modes = group_mode_flags(
        [(rows[i].task, rows[i].property) for i in idx], [rows[i].object_clean for i in idx]
    )
    return dict(zip(idx, flags, strict=True)), modes


def answer_of(r: ScoredRecord) -> str:
    """The predictor's cleaned answer, or ``<non-compliant>``: what "most common answer" counts."""
    return r.answer_clean if r.meta_compliant and r.answer_clean is not None else NON_COMPLIANT


def degenerate_groups(rows: Sequence[ScoredRecord]) -> set[tuple[str, str]]:
    """(task, property) groups of evaluable rows whose most common answer covers more than 80%."""
    answers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        if r.evaluable:
            answers[(r.task, r.property)].append(answer_of(r))
    return {g for g, a in answers.items() if top_answer(a)[1] > DEGENERATE_SHARE}


def _answer_columns(rows: list[ScoredRecord], pooled: bool = True) -> dict:
    if not pooled:  # the micro average mixes properties: count degenerate (task, property) groups
        n_bad = len(degenerate_groups(rows))
        return {"top_answer": "", "top_answer_share": None, "degenerate": "", "degenerate_groups": n_bad}
    answer, share = top_answer([answer_of(r) for r in rows])
    return {
        "top_answer": answer,
        "top_answer_share": share,
        "degenerate": bool(share > DEGENERATE_SHARE),
        "degenerate_groups": int(share > DEGENERATE_SHARE),
    }


def kappa(rows: Sequence[ScoredRecord]) -> float:
    """Cohen's kappa between the predictor's answers (non-compliant is its own category, never
    correct) and the object-level values, on one (task, property) group: (p_o − p_e) / (1 − p_e)
    with p_o the accuracy and p_e the agreement expected from the two marginals. A constant
    answer scores 0, whatever the mode baseline; NaN without rows."""
    if not rows:
        return float("nan")
    n = len(rows)
    p_o = sum(bool(r.correct) for r in rows) / n
    answers = Counter(answer_of(r) for r in rows)
    objects = Counter(r.object_clean for r in rows)
    p_e = sum(answers[k] * objects[k] for k in answers) / (n * n)
    return 0.0 if p_e >= 1 else (p_o - p_e) / (1 - p_e)


def grouped_kappa(rows: Sequence[ScoredRecord]) -> float:
    """Kappa per (task, property) group, averaged weighted by rows (a property's row pools tasks;
    the micro average pools properties: agreement by chance is counted within each group)."""
    groups: dict[tuple[str, str], list[ScoredRecord]] = defaultdict(list)
    for r in rows:
        groups[(r.task, r.property)].append(r)
    if not groups:
        return float("nan")
    return sum(len(g) * kappa(g) for g in groups.values()) / sum(len(g) for g in groups.values())


def _summary_row(rows: list[ScoredRecord], mode_flags: list[bool], seed: int) -> dict:
    correct = [bool(r.correct) for r in rows]
    s = accuracy_summary(correct, seed=seed)
    n = len(rows)
    return {
        "beats_mode_p": beats_mode_p(correct, mode_flags) if n else float("nan"),
        "accuracy": s.accuracy,
        "error": s.error,
        "bootstrap_lower": s.bootstrap_lower,
        "bootstrap_upper": s.bootstrap_upper,
        "mode_baseline": sum(mode_flags) / n if n else float("nan"),
        "compliance_rate": sum(bool(r.meta_compliant) for r in rows) / n if n else float("nan"),
        "count": n,
    }


def pooled(row: ScoredRecord, include_identity: bool = False) -> bool:
    """Whether ``row`` counts in the micro average: evaluable, and not the identity property
    (unless asked for)."""
    return row.evaluable and (include_identity or row.property != "identity")


def results_table(
    rows: Sequence[ScoredRecord], *, label: str, include_identity: bool = False, seed: int = 42
) -> list[ResultRow]:
    """One row per reported property, then the micro average (the paper's columns)."""
    flags, _ = _mode_flags(rows)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if not pooled(r, include_identity):
            continue
        groups[reported_name(r.property)].append(i)
        groups[MICRO].append(i)
    micro = groups.pop(MICRO, [])
    out = []
    for name, idx in [*groups.items(), (MICRO, micro)]:
        if not idx:
            continue
        chosen = [rows[i] for i in idx]
        out.append(
            {
                "response_property": name,
                **_summary_row(chosen, [flags[i] for i in idx], seed),
                **_answer_columns(chosen, pooled=name != MICRO),
                "kappa": grouped_kappa(chosen),
                "object_model": chosen[0].object_model,
                "meta_model": chosen[0].meta_model,
                "label": label,
            }
        )
    return cast(list[ResultRow], out)


def results_by_task(rows: Sequence[ScoredRecord], *, label: str, seed: int = 42) -> list[ByTaskRow]:
    """One row per (task, property), with object-level exclusions counted."""
    flags, modes = _mode_flags(rows)
    pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        pairs[(r.task, r.property)].append(i)
    out = []
    for (task, prop), idx in pairs.items():
        evaluable = [i for i in idx if rows[i].evaluable]
        chosen = [rows[i] for i in evaluable]
        first = rows[idx[0]]
        row = {
            "task": task,
            "response_property": prop,
            "accuracy": float("nan"),
            "error": float("nan"),
            "bootstrap_lower": float("nan"),
            "bootstrap_upper": float("nan"),
            "mode_baseline": float("nan"),
            "compliance_rate": float("nan"),
            "count": 0,
            "beats_mode_p": float("nan"),
            "top_answer": "",
            "top_answer_share": float("nan"),
            "degenerate": "",
            "kappa": kappa(chosen),
        }
        if chosen:
            row.update(_summary_row(chosen, [flags[i] for i in evaluable], seed))
            row.update(_answer_columns(chosen))
            del row["degenerate_groups"]
        row.update(
            {
                "modal_value": modes.get((task, prop)),
                "objects": len(idx),
                "object_excluded": len(idx) - len(evaluable),
                "object_model": first.object_model,
                "meta_model": chosen[0].meta_model if chosen else "",
                "label": label,
            }
        )
        out.append(row)
    return cast(list[ByTaskRow], out)
