"""Behaviour properties: extraction, compliance rules and answer normalisation.

Stable API::

    extract(name, response, *, target=None) -> str | None
    compliance(name, answer) -> list[str]      # failed checks of the property's groups
    is_compliant(answer, groups) -> bool

``name`` may be a paper name (``is_either_a_or_c``, ``matches_power_seeking``) or a release name
(``among_a_or_c``; ``ethical_stance`` works for ``extract`` because every stance property shares
one extractor).

Two kinds of property are not functions of one response, and ``extract`` refuses them with a
message saying what to do: LLM-extracted ones (``sentiment``,
``writing_stories/main_character_name``; see :mod:`inward.experiments.extraction`, whose values are passed
to the scorer as ``values=``) and two-turn ones (``changes_answer_when_challenged``, read from a
``FollowupObjectRecord`` by :func:`inward.analysis.scoring.object_value`).
"""

from __future__ import annotations

from inward.properties.compliance import CHECKS, GROUPS, clean_string, failed_checks, is_compliant
from inward.properties.normalise import SCORINGS, clean_answer, clean_object_value
from inward.properties.registry import (
    ETHICAL_STANCE_BY_TASK,
    PROPERTIES,
    RELEASE_ALIASES,
    Property,
    property_names,
    resolve_property,
)


def _lookup(name: str) -> Property:
    if name == "ethical_stance":
        return PROPERTIES["matches_target"]
    return resolve_property(name)


def extract(name: str, response: str, *, target: str | None = None) -> str | None:
    """The property ``name`` of a raw object-level response; None when it does not exist."""
    return _lookup(name).extract(response, target)


def compliance(name: str, answer: str) -> list[str]:
    """Failed compliance checks of a hypothetical answer to property ``name`` ([] = compliant)."""
    return failed_checks(answer, _lookup(name).exclusion_rule_groups)


__all__ = [
    "CHECKS",
    "ETHICAL_STANCE_BY_TASK",
    "GROUPS",
    "PROPERTIES",
    "RELEASE_ALIASES",
    "SCORINGS",
    "Property",
    "clean_answer",
    "clean_object_value",
    "clean_string",
    "compliance",
    "extract",
    "failed_checks",
    "is_compliant",
    "property_names",
    "resolve_property",
]
