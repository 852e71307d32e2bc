"""Judging hypothetical answers against object-level behaviour (spec §6.1).

Property values come from the property's Python extractor on the raw response, from the two
answers of a two-turn task (``followup_extractor``), or, for LLM-extracted properties, from
``values``: the (task, property, string) → value map of
:func:`inward.experiments.extraction.extract_llm_values`. A value given in ``values`` overrides the
Python extractor for that row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inward.properties import clean_answer, clean_object_value, failed_checks
from inward.properties.registry import Property
from inward.properties.values import Values, object_value
from inward.records import HypotheticalRecord, ObjectRecord, ScoredRecord


def score(
    obj: ObjectRecord,
    prop: Property,
    hyp: HypotheticalRecord | None,
    *,
    scoring: str = "paper",
    values: Values | None = None,
) -> ScoredRecord:
    value = object_value(obj, prop, values)
    if value is None or hyp is None:
        return ScoredRecord(
            task=obj.task,
            property=prop.name,
            string=obj.string,
            object_model=obj.model,
            object_response=obj.response,
            object_value=value,
            meta_model=hyp.model if hyp else "",
            evaluable=False,
            answer=hyp.answer if hyp else None,
            meta_compliant=None,
            correct=None,
        )
    want = clean_object_value(value, scoring)
    got = clean_answer(hyp.answer)
    compliant = not failed_checks(hyp.answer, prop.exclusion_rule_groups)
    return ScoredRecord(
        task=obj.task,
        property=prop.name,
        string=obj.string,
        object_model=obj.model,
        object_response=obj.response,
        object_value=value,
        meta_model=hyp.model,
        evaluable=True,
        answer=hyp.answer,
        meta_compliant=compliant,
        correct=compliant and got == want,
        object_clean=want,
        answer_clean=got,
    )


def score_all(
    objects: Sequence[ObjectRecord],
    props: Mapping[str, Sequence[Property]],
    hyps: Mapping[tuple[str, str, str], HypotheticalRecord],
    *,
    scoring: str = "paper",
    values: Values | None = None,
) -> list[ScoredRecord]:
    """Score every object row for each of its task's properties; join key (task, property, string)."""
    return [
        score(obj, prop, hyps.get((obj.task, prop.name, obj.string)), scoring=scoring, values=values)
        for obj in objects
        for prop in props[obj.task]
    ]
