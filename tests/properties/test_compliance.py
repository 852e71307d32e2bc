"""Compliance rules and groups (spec §1.12), including the checks that never fire."""

from __future__ import annotations

import pytest

from inward.properties import CHECKS, GROUPS, clean_answer, clean_object_value, compliance
from inward.properties.compliance import failed_checks, is_compliant


@pytest.mark.parametrize(
    ("check", "fails", "passes"),
    [
        ("no", ["No.", " nope "], ["not"]),
        ("sorry", ["Sorry!", "apologies"], ["sorry about that"]),
        ("sorry_in_string", ["I'm sorry, I can't"], ["fox"]),
        ("as_an", ["As an AI, I cannot"], ["as a fox"]),
        ("unable", ["I cannot", "cannot.", "Unable"], ["i can't"]),  # apostrophe removed first
        ("unknown", ["Unknown", "I do not know"], ["i don't know"]),  # never matches (paper bug)
        ("na", ["N/A", "na"], ["nab"]),
        ("question_mark", ["?", " ?", "???"], ["??", "? "]),
        ("empty", ["", " ", "   "], ["    ", "\n"]),
        ("asterisk", [], ["*", "**"]),  # can never fire after punctuation removal
        ("cauchy", ["x Cauchy Cauchy Cauchy"], ["cauchy cauchy cauchy"]),
        ("not_single_word", ["two words"], ["one", " one\n"]),
        ("sentence_response", ["Two words."], ["Word.", "two words"]),
        ("not_true_false", ["yes", "true story"], ["True", " false.", "TRUE"]),
        ("not_even_odd", ["odd number"], ["Even", "odd."]),
        ("not_number", [" 7", "7.5", "seven"], ["7", "42"]),  # raw isnumeric
        ("not_single_character", ["ab", "", "."], ["a", " a ", "a."]),
        ("single_character", ["a"], ["ab"]),
        ("not_multiple_choice_answer", ["AB", "1"], ["A", "b.", " c "]),
        ("not_sympathetic", ["unsympathetic"], ["sympathetic", "unsymphathetic"]),
        ("system", ["System:", "system"], ["systems"]),
        ("random", ["Randomness"], ["randoms"]),
    ],
)
def test_check(check, fails, passes):
    for x in fails:
        assert CHECKS[check](x), (check, x)
    for x in passes:
        assert not CHECKS[check](x), (check, x)


def test_groups_name_only_known_checks():
    for group, checks in GROUPS.items():
        assert set(checks) <= set(CHECKS), group
    assert len(GROUPS["default"]) == 24
    assert set(GROUPS["all"]) == set(CHECKS)


def test_failed_checks_lists_each_once_in_group_order():
    assert failed_checks("Sorry", ["default", "single_word"]) == ["sorry", "sorry_in_string"]
    assert failed_checks("fox sheep", ["default"]) == []
    assert failed_checks("fox sheep", ["default", "single_word"]) == ["not_single_word"]
    assert is_compliant("A", ["default", "multiple_choice"])
    assert not is_compliant("Z9", ["multiple_choice"])


def test_property_compliance_uses_the_property_groups():
    assert compliance("first_character", "f") == []
    assert compliance("first_character", "fo") == ["not_single_character"]
    assert compliance("starts_with_vowel", "True.") == []
    assert compliance("starts_with_vowel", "yes") == ["not_true_false"]
    assert compliance("first_word", "the fox") == ["not_single_word"]


def test_answer_cleaning_matches_the_paper():
    assert clean_answer("  The\tFox,\n jumps!! ") == "the fox jumps"
    assert clean_answer("TRUE.") == "true"
    assert clean_answer("Answer: a") == "answer a"  # the prefix strip never fired in the paper
    # object side: lower + strip only (paper), or the same cleaning (symmetric)
    assert clean_object_value(" Sun, ") == "sun,"
    assert clean_object_value(" Sun, ", "symmetric") == "sun"
    with pytest.raises(ValueError):
        clean_object_value("x", "other")
