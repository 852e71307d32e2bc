"""Scoring with extracted values (LLM properties) and with two-turn object records."""

from __future__ import annotations

import pytest

from inward.analysis.scoring import object_value, score, score_all
from inward.errors import InwardError
from inward.properties import PROPERTIES
from inward.records import FollowupObjectRecord, HypotheticalRecord, ObjectRecord

FIRST = PROPERTIES["first_word"]
SENTIMENT = PROPERTIES["sentiment"]
CHANGES = PROPERTIES["changes_answer_when_challenged"]


def obj(string, response, compliant=True, task="writing_stories"):
    return ObjectRecord(task, "val", string, None, "m", response, compliant, ())


def hyp(string, prop, answer, task="writing_stories"):
    return HypotheticalRecord(task, prop, string, "p", answer, True, ())


def test_llm_property_needs_values():
    with pytest.raises(InwardError, match="extract_llm_values"):
        object_value(obj("s", "A fine day."), SENTIMENT)


def test_values_drive_llm_scoring():
    objects = [obj("s1", "A fine day."), obj("s2", "Rain."), obj("s3", "x", compliant=False)]
    values = {
        ("writing_stories", "sentiment", "s1"): "positive",
        ("writing_stories", "sentiment", "s2"): None,
        ("writing_stories", "sentiment", "s3"): "negative",
    }
    hyps = {
        ("writing_stories", "sentiment", s): hyp(s, "sentiment", a)
        for s, a in (("s1", "Positive."), ("s2", "negative"), ("s3", "negative"))
    }
    rows = score_all(objects, {"writing_stories": [SENTIMENT]}, hyps, values=values)
    r1, r2, r3 = rows
    assert r1.evaluable and r1.correct and r1.object_value == "positive"
    assert not r2.evaluable and r2.object_value is None  # extractor output outside the space
    assert not r3.evaluable  # a non-compliant object is excluded whatever the value
    # a string the extractor never saw has no value
    assert object_value(obj("s4", "Sun."), SENTIMENT, values) is None


def test_values_override_a_python_property():
    o = obj("s", "Hello there")
    assert object_value(o, FIRST) == "Hello"
    assert object_value(o, FIRST, {("writing_stories", "first_word", "s"): "bye"}) == "bye"
    h = hyp("s", "first_word", "bye")
    assert score(o, FIRST, h, values={("writing_stories", "first_word", "s"): "bye"}).correct
    assert not score(o, FIRST, h).correct


def test_no_values_is_the_old_behaviour():
    objects = [obj("a", "Hello there"), obj("b", "Good day"), obj("c", "", compliant=False)]
    hyps = {("writing_stories", "first_word", s): hyp(s, "first_word", a) for s, a in (("a", "hello"), ("b", "bad"))}
    props = {"writing_stories": [FIRST]}
    base = score_all(objects, props, hyps)
    assert base == score_all(objects, props, hyps, values=None)
    assert base == score_all(objects, props, hyps, values={})
    assert [r.correct for r in base] == [True, False, None]


def test_followup_records_are_scored_on_both_answers():
    def two(string, first, second):
        return FollowupObjectRecord("are_you_sure", "val", string, "A", "m", first, True, (), followup_response=second)

    objects = [two("q1", "A", "B"), two("q2", "C", "C"), two("q3", "A", "I am sure")]
    assert [object_value(o, CHANGES) for o in objects] == ["true", "false", None]
    hyps = {
        ("are_you_sure", CHANGES.name, q): hyp(q, CHANGES.name, a, task="are_you_sure")
        for q, a in (("q1", "true"), ("q2", "true"), ("q3", "false"))
    }
    rows = score_all(objects, {"are_you_sure": [CHANGES]}, hyps)
    assert [(r.evaluable, r.correct) for r in rows] == [(True, True), (True, False), (False, None)]
    # a Python property reads the first answer
    assert object_value(objects[0], PROPERTIES["is_either_a_or_c"]) == "true"


def test_followup_property_on_a_one_turn_record_is_an_error():
    with pytest.raises(InwardError, match="has no followup"):
        object_value(obj("q", "A", task="arc_challenge_non_cot"), CHANGES)
