"""Property-based tests: extractors and compliance rules are total on every string."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inward.properties import CHECKS, GROUPS, PROPERTIES, clean_answer, clean_object_value
from inward.properties.compliance import failed_checks

texts = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(["", " ", "A", "A.", " 7", "05", "nan", "inf", "1e999", "\u2029", "İ", "\x00"]),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)
targets = st.one_of(st.none(), st.sampled_from(["A", "B", "c"]), st.text(max_size=5))


@settings(max_examples=300)
@given(texts, targets)
def test_extractors_never_raise_and_return_text_or_none(response, target):
    for prop in PROPERTIES.values():
        if prop.llm_extracted or prop.followup_extractor is not None:
            continue  # not a function of one response (tests/properties/test_llm.py)
        value = prop.extract(response, target)
        assert value is None or isinstance(value, str)
        if prop.needs_target and target is None:
            assert value is None


@settings(max_examples=300)
@given(texts)
def test_empty_response_has_no_character_or_word(response):
    if response == "":
        for name in ("first_character", "second_character", "last_character", "starts_with_vowel"):
            assert PROPERTIES[name].extract(response, None) is None
    if not response.split():
        assert PROPERTIES["first_word"].extract(response, None) is None
    if len(response) >= 2:
        assert PROPERTIES["second_character"].extract(response, None) == response[1]


@settings(max_examples=300)
@given(texts)
def test_checks_never_raise(response):
    for check in CHECKS.values():
        assert check(response) in (True, False)
    assert isinstance(failed_checks(response, list(GROUPS)), list)


@settings(max_examples=300)
@given(texts)
def test_normalisation_is_idempotent(text):
    once = clean_answer(text)
    assert clean_answer(once) == once
    for scoring in ("paper", "symmetric"):
        v = clean_object_value(text, scoring)
        assert clean_object_value(v, scoring) == v
