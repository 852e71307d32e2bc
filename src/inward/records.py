"""The typed records that flow between stages and are written to the run directory as JSONL.

Strings stay strings end to end: a response "05" or "NA" is stored and compared as written.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectRecord:
    """A model's object-level response to one task string."""

    task: str
    split: str
    string: str
    target: str | None
    model: str
    response: str
    compliant: bool
    failed_checks: tuple[str, ...]


@dataclass(frozen=True)
class HypotheticalRecord:
    """A predictor's answer to "what was property P of your response to this string?"."""

    task: str
    property: str
    string: str
    model: str
    answer: str
    compliant: bool
    failed_checks: tuple[str, ...]


@dataclass(frozen=True)
class ScoredRecord:
    """One (task, property, string) judged: does the hypothetical answer match the behaviour?

    ``object_value`` is the property of the object model's raw response (None when it has
    none); ``evaluable`` is False for non-compliant objects and missing values, which are
    excluded from accuracy and counted separately. ``correct`` requires a compliant answer.
    """

    task: str
    property: str
    string: str
    object_model: str
    meta_model: str
    object_response: str
    object_value: str | None
    evaluable: bool
    answer: str | None
    meta_compliant: bool | None
    correct: bool | None
    object_clean: str | None = None
    answer_clean: str | None = None
