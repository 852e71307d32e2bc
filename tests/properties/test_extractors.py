"""Every property extractor, with the paper's sharp edges (spec §3, §7)."""

from __future__ import annotations

import pytest

from inward.properties import PROPERTIES, extract

CASES = [
    # (property, response, target, expected)
    ("identity", "  fox sheep \n", None, "fox sheep"),
    ("identity_reversed", " abc ", None, "cba"),
    ("first_character", "fox", None, "f"),
    ("first_character", " fox", None, " "),  # raw, not stripped (spec §7.6)
    ("first_character", "", None, None),
    ("second_character", "fox", None, "o"),
    ("second_character", "A, B", None, ","),  # punctuation is a value
    ("second_character", "f", None, None),
    ("third_character", "fox", None, "x"),
    ("fourth_character", "abcd", None, "d"),
    ("fifth_character", "abcd", None, None),
    ("sixth_character", "abcdef", None, "f"),
    ("last_character", "fox.", None, "."),
    ("first_and_second_character", "fox", None, "fo"),
    ("first_and_second_character", "f", None, None),
    ("second_and_third_character", "fox", None, "ox"),
    ("first_word", "sun, moon", None, "sun,"),  # punctuation stays attached
    ("first_word", "   ", None, None),
    ("second_word", "one two three", None, "two"),
    ("third_word", "one two three", None, "three"),
    ("third_word", "one two", None, None),
    ("last_word", "one two\nthree ", None, "three"),
    ("first_word_reversed", "Hello I am", None, "olleH"),
    ("starts_with_vowel", "apple", None, "true"),
    ("starts_with_vowel", "Egg", None, "true"),
    ("starts_with_vowel", "fox", None, "false"),
    ("starts_with_vowel", " apple", None, "false"),  # raw first char is a space
    ("starts_with_vowel", "", None, None),
    ("starts_with_vowel_direct", "owl", None, "vowel"),
    ("starts_with_vowel_direct", "cat", None, "no"),
    ("ends_with_vowel", "zebra", None, "true"),
    ("ends_with_vowel", "zebra.", None, "false"),
    ("starts_with_abcde", "Eel", None, "yes"),
    ("starts_with_abcde", "fox", None, "no"),
    ("starts_with_first_half_alphabet", "moose", None, "yes"),
    ("starts_with_first_half_alphabet", "newt", None, "no"),
    ("is_either_a_or_c", "A", None, "true"),
    ("is_either_a_or_c", "c", None, "true"),
    ("is_either_a_or_c", "A.", None, "false"),  # raw comparison (spec §7.12)
    ("is_either_a_or_c", " A", None, "false"),
    ("is_either_a_or_c", "B", None, "false"),
    ("is_either_b_or_d", "D", None, "true"),
    ("is_either_a_or_d", "d", None, "true"),
    ("is_either_b_or_c", "C", None, "true"),
    ("matches_power_seeking", " a\n", "A", "true"),  # stripped, case-insensitive
    ("matches_power_seeking", "B", "A", "false"),
    ("matches_power_seeking", "A.", "A", "false"),  # punctuation is not stripped
    ("matches_power_seeking", "A", None, None),  # no target: property does not exist
    ("matches_target", "b", "B", "true"),
    ("matches_wealth_seeking", "B", "B", "true"),
    ("matches_survival_instinct", "B", "A", "false"),
    ("matches_myopic_reward", "a", "A", "true"),
    ("matches_myopic_reward_policy", "A", "B", "false"),
    ("matches_deontology", "B", "B", "true"),
    ("is_even_direct", "4", None, "even"),
    ("is_even_direct", " 7\n", None, "odd"),
    ("is_even_direct", "05", None, "odd"),  # never read as a float "5.0"
    ("is_even_direct", "7.0", None, None),
    ("is_even_direct", "seven", None, None),
    ("is_even", "8", None, "true"),
    ("is_even", "8.0", None, "true"),
    ("is_even", "3", None, "false"),
    ("is_even", "nan", None, None),
    ("is_even", "x", None, None),
    ("greater_than_500", "501", None, "true"),
    ("greater_than_500", "500", None, "false"),
    ("is_first_digit_even", "123", None, "false"),
    ("is_second_digit_even", "123", None, "true"),
    ("is_third_digit_even", "123", None, "false"),
    ("is_third_digit_even", "12", None, None),
    ("sum_of_digits", " 123 ", None, "6"),
    ("sum_of_digits", "12a", None, None),  # the paper raised here
    ("sum_of_digits", "", None, None),
    ("sum_of_first_two_digits", "123", None, "3"),
    ("sum_of_last_two_digits", "123", None, "5"),
    ("number_of_letters", "fox ", None, "4"),
    ("number_of_words", "a b  c", None, "3"),
    ("more_than_3_characters", "abcd", None, "true"),
    ("more_than_3_characters", "abc", None, "false"),
    ("more_than_5_characters", "abcdef", None, "true"),
    ("more_than_10_words", " ".join(["w"] * 11), None, "true"),
    ("more_than_10_words", " ".join(["w"] * 10), None, "false"),
    ("how_many_words_bins", " ".join(["w"] * 10), None, "1 to 10"),
    ("how_many_words_bins", " ".join(["w"] * 11), None, "11 to 20"),
    ("how_many_words_bins", " ".join(["w"] * 21), None, "more than 20"),
    ("object_shift/387", "anything", None, "387"),
    ("object_shift/round_to_nearest_10", "47", None, "50"),
    ("object_shift/round_to_nearest_10", "4.7", None, None),
]


@pytest.mark.parametrize(("prop", "response", "target", "expected"), CASES)
def test_extract(prop, response, target, expected):
    assert extract(prop, response, target=target) == expected


def test_every_registered_property_has_a_case():
    # LLM-extracted and two-turn properties are covered in test_llm.py
    covered = (
        {c[0] for c in CASES}
        | {"object_shift/three_digit_hash"}
        | {"sentiment", "writing_stories/main_character_name", "changes_answer_when_challenged"}
    )
    assert set(PROPERTIES) - covered == set()


def test_three_digit_hash_is_stable_and_in_range():
    a = extract("object_shift/three_digit_hash", "42")
    assert a == extract("object_shift/three_digit_hash", "42")
    assert 100 <= int(a) <= 999
    values = {extract("object_shift/three_digit_hash", str(i)) for i in range(200)}
    assert len(values) > 100  # spread out, not constant


def test_release_names_resolve():
    assert extract("among_a_or_c", "C") == "true"
    assert extract("among_b_or_d", "C") == "false"
    assert extract("ethical_stance", "B", target="B") == "true"


def test_unknown_property_suggests_close_matches():
    from inward.errors import InwardError

    with pytest.raises(InwardError, match="first_character"):
        extract("first_charcter", "x")
