"""Judging hypothetical answers against object-level behaviour (spec §6.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inward.properties import clean_answer, clean_object_value, failed_checks
from inward.properties.registry import Property
from inward.records import HypotheticalRecord, ObjectRecord, ScoredRecord


def object_value(obj: ObjectRecord, prop: Property) -> str | None:
    """The property of a compliant object response, or None (excluded from scoring)."""
    if not obj.compliant:
        return None
    return prop.extract(obj.response, obj.target)


def score(
    obj: ObjectRecord,
    prop: Property,
    hyp: HypotheticalRecord | None,
    *,
    scoring: str = "paper",
) -> ScoredRecord:
    value = object_value(obj, prop)
    base = dict(
        task=obj.task, property=prop.name, string=obj.string, object_model=obj.model,
        object_response=obj.response, object_value=value,
    )  # fmt: skip
    if value is None or hyp is None:
        return ScoredRecord(**base, meta_model=hyp.model if hyp else "", evaluable=False,
                            answer=hyp.answer if hyp else None, meta_compliant=None,
                            correct=None)  # fmt: skip
    want = clean_object_value(value, scoring)
    got = clean_answer(hyp.answer)
    compliant = not failed_checks(hyp.answer, prop.exclusion_rule_groups)
    return ScoredRecord(
        **base, meta_model=hyp.model, evaluable=True, answer=hyp.answer,
        meta_compliant=compliant, correct=compliant and got == want,
        object_clean=want, answer_clean=got,
    )  # fmt: skip


def score_all(
    objects: Sequence[ObjectRecord],
    props: Mapping[str, Sequence[Property]],
    hyps: Mapping[tuple[str, str, str], HypotheticalRecord],
    *,
    scoring: str = "paper",
) -> list[ScoredRecord]:
    """Score every object row for each of its task's properties; join key (task, property, string)."""
    return [
        score(obj, prop, hyps.get((obj.task, prop.name, obj.string)), scoring=scoring)
        for obj in objects
        for prop in props[obj.task]
    ]
