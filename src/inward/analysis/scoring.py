"""Judging hypothetical answers against object-level behaviour (spec §6.1).

Property values come from the property's Python extractor on the raw response, from the two
answers of a two-turn task (``followup_extractor``), or, for LLM-extracted properties, from
``values``: the (task, property, string) → value map of
:func:`inward.properties.llm.extract_llm_values`. A value given in ``values`` overrides the
Python extractor for that row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inward.errors import InwardError
from inward.properties import clean_answer, clean_object_value, failed_checks
from inward.properties.registry import Property
from inward.records import FollowupObjectRecord, HypotheticalRecord, ObjectRecord, ScoredRecord

Values = Mapping[tuple[str, str, str], "str | None"]


def object_value(obj: ObjectRecord, prop: Property, values: Values | None = None) -> str | None:
    """The property of a compliant object response, or None (excluded from scoring)."""
    if not obj.compliant:
        return None
    key = (obj.task, prop.name, obj.string)
    if values is not None and key in values:
        return values[key]
    if prop.llm_extracted:
        if values is None:
            raise InwardError(
                f"Property {prop.name!r} is extracted by a language model: extract its values "
                "first (inward.properties.llm.extract_llm_values) and pass them as values=."
            )
        return None  # not extracted (the extractor saw no compliant response for this row)
    if prop.followup_extractor is not None:
        if not isinstance(obj, FollowupObjectRecord):
            raise InwardError(
                f"Property {prop.name!r} needs the answer after a follow-up turn, and task "
                f"{obj.task!r} has no followup. Use it with a two-turn task (are_you_sure)."
            )
        return prop.followup_extractor(obj.response, obj.followup_response)
    return prop.extract(obj.response, obj.target)


def score(
    obj: ObjectRecord,
    prop: Property,
    hyp: HypotheticalRecord | None,
    *,
    scoring: str = "paper",
    values: Values | None = None,
) -> ScoredRecord:
    value = object_value(obj, prop, values)
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
    values: Values | None = None,
) -> list[ScoredRecord]:
    """Score every object row for each of its task's properties; join key (task, property, string)."""
    return [
        score(obj, prop, hyps.get((obj.task, prop.name, obj.string)), scoring=scoring,
              values=values)
        for obj in objects
        for prop in props[obj.task]
    ]
