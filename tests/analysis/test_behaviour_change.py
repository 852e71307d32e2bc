"""Experiment 2's analysis: the shifted-item filter, old-vs-new accuracies, entropy adjustment."""

from __future__ import annotations

import pytest

from inward.analysis.behaviour_change import (
    NOT_COMPLIANT,
    SAME,
    SHIFTED,
    behaviour_change_table,
    entropy_adjust,
    shift_status,
    shifted_keys,
)
from inward.analysis.scoring import score
from inward.properties.registry import resolve_property
from inward.records import HypotheticalRecord, ObjectRecord

TASK = "animals_long"
FIRST = resolve_property("first_character", TASK)
VOWEL = resolve_property("starts_with_vowel", TASK)
PROPS = {TASK: [FIRST, VOWEL]}


def obj(string, response, model, compliant=True):
    return ObjectRecord(TASK, "val", string, None, model, response, compliant, () if compliant else ("x",))


def test_shift_status_both_compliant_and_values_differ():
    old = [
        obj("s1", "dog cat", "M"),
        obj("s2", "owl fox", "M"),
        obj("s3", "cat", "M"),
        obj("s4", "Dog", "M"),
        obj("s5", "eel", "M"),
    ]
    new = [
        obj("s1", "emu ant", "MC"),
        obj("s2", "ape bee", "MC"),
        obj("s3", "cow", "MC", compliant=False),
        obj("s4", "dog", "MC"),
    ]  # s5 missing for M_C
    status = shift_status(old, new, PROPS)
    assert status[(TASK, "first_character", "s1")] == SHIFTED  # d -> e
    assert status[(TASK, "starts_with_vowel", "s1")] == SHIFTED  # false -> true
    assert status[(TASK, "first_character", "s2")] == SHIFTED  # o -> a
    assert status[(TASK, "starts_with_vowel", "s2")] == SAME  # true -> true
    assert status[(TASK, "first_character", "s3")] == NOT_COMPLIANT
    assert status[(TASK, "first_character", "s4")] == SAME  # "D" vs "d": equal after cleaning
    assert not any(k[2] == "s5" for k in status)  # present for both models only
    assert shifted_keys(status) == [
        (TASK, "first_character", "s1"),
        (TASK, "starts_with_vowel", "s1"),
        (TASK, "first_character", "s2"),
    ]


def scored_pairs(items):
    """items: (string, old response, new response, hypothetical answer) -> (old rows, new rows)."""
    old_rows, new_rows = [], []
    for string, o, n, answer in items:
        hyp = HypotheticalRecord(TASK, "first_character", string, "MC", answer, True, ())
        old_rows.append(score(obj(string, o, "M"), FIRST, hyp))
        new_rows.append(score(obj(string, n, "MC"), FIRST, hyp))
    return old_rows, new_rows


def test_old_vs_new_hand_computed():
    # 4 shifted items: the answer matches the new value 3 times, the old one once
    old_rows, new_rows = scored_pairs(
        [("a", "dog", "emu", "e"), ("b", "cat", "ant", "a"), ("c", "owl", "bee", "b"), ("d", "rat", "yak", "r")]
    )
    [prop, micro] = behaviour_change_table(old_rows, new_rows)
    assert prop["response_property"] == "first_character" and micro["response_property"] == "micro_average"
    assert micro["predicts_new_accuracy"] == 0.75 and micro["predicts_old_accuracy"] == 0.25
    assert micro["difference"] == 0.5 and micro["count"] == 4
    assert micro["p_value"] == pytest.approx(0.625)  # McNemar exact: 3 vs 1 discordant, 2*P(X<=1 | 4)
    assert micro["predicts_new_error"] == pytest.approx(1.96 * 0.5 / 2)  # sd(1,1,1,0)=0.5, sqrt(4)=2
    # mode recomputed on the filtered items: every value is distinct -> the first seen, 1 of 4
    assert micro["mode_baseline"] == 0.25 and micro["mode_baseline_old"] == 0.25


def test_status_gives_the_shifted_fraction():
    old_rows, new_rows = scored_pairs([("a", "dog", "emu", "e")])
    status = {
        (TASK, "first_character", "a"): SHIFTED,
        (TASK, "first_character", "b"): SAME,
        (TASK, "first_character", "c"): NOT_COMPLIANT,
        (TASK, "first_character", "d"): SAME,
    }
    micro = behaviour_change_table(old_rows, new_rows, status)[-1]
    assert micro["shifted_fraction"] == 0.25 and micro["compared"] == 4


def test_entropy_adjust_matches_object_value_counts():
    # old values: d, d, d, c; new values: e, d, d, c  -> keep per value min(count_old, count_new):
    # d: min(3, 2) = 2 from each; c: min(1, 1) = 1 from each; e is not an old value -> dropped
    old_rows, new_rows = scored_pairs(
        [("1", "dog", "emu", "e"), ("2", "dog", "dog", "d"), ("3", "dog", "dog", "d"), ("4", "cat", "cat", "c")]
    )
    keep_old, keep_new = entropy_adjust(old_rows, new_rows)
    assert sorted(r.object_clean for r in keep_old) == ["c", "d", "d"]
    assert sorted(r.object_clean for r in keep_new) == ["c", "d", "d"]
    assert entropy_adjust(old_rows, new_rows) == (keep_old, keep_new)  # seeded
    rows = behaviour_change_table(keep_old, keep_new, adjustment="entropy")
    assert rows[-1]["adjustment"] == "entropy" and rows[-1]["p_value"] != rows[-1]["p_value"]  # nan


def test_noncompliant_hypotheticals_are_dropped_as_in_the_paper_figure():
    # the 4 items above, plus one whose hypothetical answer is not a single character
    old_rows, new_rows = scored_pairs(
        [
            ("a", "dog", "emu", "e"),
            ("b", "cat", "ant", "a"),
            ("c", "owl", "bee", "b"),
            ("d", "rat", "yak", "r"),
            ("e", "eel", "gnu", "no idea, sorry"),
        ]
    )
    assert new_rows[-1].meta_compliant is False
    micro = behaviour_change_table(old_rows, new_rows)[-1]
    assert micro["count"] == 4 and micro["noncompliant_dropped"] == 1
    assert micro["predicts_new_accuracy"] == 0.75 and micro["predicts_old_accuracy"] == 0.25
    kept = behaviour_change_table(old_rows, new_rows, exclude_noncompliant=False)[-1]
    assert kept["count"] == 5 and kept["noncompliant_dropped"] == 0 and kept["predicts_new_accuracy"] == 0.6
    # each side against its own mode: the modal value (all distinct: the first, "e") is right on
    # item a only; the answers are right on a, b, c, so 2 items favour them and none the mode:
    # one-sided p = P(X >= 2 | n=2) = 0.25
    assert micro["new_beats_mode_p"] == pytest.approx(0.25)
