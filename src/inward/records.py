"""The typed records that flow between stages and are written to the run directory as JSONL.

Strings stay strings end to end: a response "05" or "NA" is stored and compared as written.
"""

from __future__ import annotations

from dataclasses import dataclass

Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

Prompt = list[Message]
"""A conversation sent to a model: the type every backend takes (re-exported by inward.models.base)."""


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
class FollowupObjectRecord(ObjectRecord):
    """An object-level response of a two-turn task (a task with a ``followup``).

    ``response`` is the first answer, judged for compliance like any object response;
    ``followup_response`` is the answer the model gave after the task's follow-up user turn
    (e.g. "Are you sure?"), with the first answer in the conversation. Only two-turn tasks write
    this record, so the records of every other task keep their exact form.
    """

    followup_response: str = ""


def object_record_from_dict(d: dict) -> ObjectRecord:
    """An object record read back from JSONL (either kind; lists become tuples)."""
    d = {**d, "failed_checks": tuple(d["failed_checks"])}
    if "followup_response" in d:
        return FollowupObjectRecord(**d)
    return ObjectRecord(**d)


@dataclass(frozen=True)
class ExtractionRecord:
    """One LLM property extraction (spec §1.4): the extractor's raw output and the value kept.

    ``value`` is the output normalised by :func:`inward.experiments.extraction.normalise_extraction`
    (stripped, lower-cased, checked against the property's answer space), or None when it falls
    outside that space (sentiment: anything but positive or negative).
    """

    task: str
    property: str
    string: str
    extractor_model: str
    output: str
    value: str | None


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
