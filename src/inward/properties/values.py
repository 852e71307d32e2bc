"""The property value of one object-level record: what every hypothetical answer is judged
against (spec §6.1), and what training labels are built from.

Property values come from the property's Python extractor on the raw response, from the two
answers of a two-turn task (``followup_extractor``), or, for LLM-extracted properties, from
``values``: the (task, property, string) → value map of
:func:`inward.experiments.extraction.extract_llm_values`. A value given in ``values`` overrides
the Python extractor for that row.
"""

from __future__ import annotations

from collections.abc import Mapping

from inward.errors import InwardError
from inward.properties.registry import Property
from inward.records import FollowupObjectRecord, ObjectRecord

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
                "first (inward.experiments.extraction.extract_llm_values) and pass them as values=."
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
