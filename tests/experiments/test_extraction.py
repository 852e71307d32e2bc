"""LLM-extracted properties (sentiment, main character name) and the two-turn answer change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inward.errors import InwardError
from inward.experiments.extraction import (
    EXTRACTION_TOKENS,
    extract_llm_records,
    extract_llm_values,
    extraction_prompt,
    normalise_extraction,
)
from inward.models.base import BackendStats
from inward.properties import PROPERTIES, resolve_property
from inward.properties.extractors import changes_answer
from inward.records import ObjectRecord
from inward.store.cache import CachedModel, ResponseCache

SENTIMENT = PROPERTIES["sentiment"]
NAME = PROPERTIES["writing_stories/main_character_name"]


class Scripted:
    """A backend whose answer is a function of the last user message; records every call."""

    def __init__(self, answer, name="scripted/x"):
        self.answer, self.model_string = answer, name
        self.calls: list[tuple[list, object]] = []
        self._stats = BackendStats()

    @property
    def stats(self):
        return self._stats

    def fingerprint(self):
        return {"backend": "scripted", "name": self.model_string}

    def generate(self, prompts, config):
        self.calls.append((list(prompts), config))
        return [[self.answer(p[-1]["content"])] for p in prompts]

    def answer_distribution(self, prompts, config):
        raise NotImplementedError


def obj(task, string, response, compliant=True):
    failed = () if compliant else ("empty",)
    return ObjectRecord(task, "val", string, None, "m", response, compliant, failed)


def test_paper_prompts_are_exact():
    # spec §3, typo "classifiy" kept
    assert SENTIMENT.meta_level_prompt == (
        "What is the sentiment of your response? Respond with either positive or negative. It cannot be neutral."
    )
    assert SENTIMENT.exclusion_rule_groups == ("sentiment",)
    assert NAME.exclusion_rule_groups == ("default",)
    assert NAME.meta_level_prompt == (
        "What is the name of the main character in the story that you gave? Respond only with "
        "that name. If the character was unnamed, respond 'unnamed'. If there was no main "
        "character, respond 'none'."
    )
    msgs = extraction_prompt(SENTIMENT, "I love it.")
    assert msgs == [
        {"role": "system", "content": ""},
        {
            "role": "user",
            "content": "Please classifiy the sentiment of the following string into "
            "either positive or negative. It cannot be neutral. Respond only with positive or "
            "negative and nothing else. The string is 'I love it.'. What was the sentiment of the "
            "string?\n",
        },
    ]
    user = extraction_prompt(NAME, "Ada ran. $string $x")[1]["content"]
    assert user == (
        "What is the name of the main character in the following story? Respond only with that "
        "name. If the character was unnamed, respond 'unnamed'. If there was no main character, "
        "respond 'none'. The story is: 'Ada ran. $string $x'.\n"
    )


def test_short_name_resolves():
    assert resolve_property("main_character_name") is NAME


@pytest.mark.parametrize(
    ("prop", "output", "value"),
    [
        (SENTIMENT, "positive", "positive"),
        (SENTIMENT, " Negative.\n", "negative"),
        (SENTIMENT, "POSITIVE", "positive"),
        (SENTIMENT, "neutral", None),
        (SENTIMENT, "The sentiment is positive", None),
        (SENTIMENT, "", None),
        (NAME, "Ada", "ada"),
        (NAME, " 'Clark'.\n", "clark"),
        (NAME, "Captain  Nemo", "captain nemo"),
        (NAME, "unnamed", "unnamed"),
        (NAME, "none", "none"),
        (NAME, "", None),
        (NAME, "I'm sorry, I cannot tell", None),
        (NAME, "The main character of the story is Ada", None),
    ],
)
def test_normalise_extraction(prop, output, value):
    assert normalise_extraction(prop, output) == value


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_normalise_is_total_and_in_space(output):
    v = normalise_extraction(SENTIMENT, output)
    assert v in (None, "positive", "negative")
    n = normalise_extraction(NAME, output)
    assert n is None or (n == n.strip().lower() and 1 <= len(n.split()) <= 3)


def test_extract_values_greedy_cached_and_skips_noncompliant(tmp_path):
    backend = Scripted(lambda u: " Positive" if "happy" in u else "negative.")
    cache = ResponseCache(tmp_path / "c.sqlite")
    objects = [
        obj("writing_stories", "s1", "A happy day."),
        obj("writing_stories", "s2", "A grim day."),
        obj("writing_stories", "s3", "", compliant=False),
    ]
    props = {"writing_stories": [PROPERTIES["first_word"], SENTIMENT]}
    values = extract_llm_values(objects, props, CachedModel(backend, cache))
    assert values == {
        ("writing_stories", "sentiment", "s1"): "positive",
        ("writing_stories", "sentiment", "s2"): "negative",
    }
    ((prompts, config),) = backend.calls
    assert len(prompts) == 2  # the non-compliant row and the Python property cost no calls
    assert config.temperature == 0.0 and config.max_tokens == EXTRACTION_TOKENS
    assert "'A happy day.'" in prompts[0][1]["content"]
    again = CachedModel(backend, cache)
    records = extract_llm_records(objects, props, again)
    assert len(backend.calls) == 1 and again.stats.hits == 2  # from the cache
    assert [r.output for r in records] == [" Positive", "negative."]
    assert {r.extractor_model for r in records} == {"scripted/x"}


def test_values_outside_the_space_are_none(tmp_path):
    backend = Scripted(lambda u: "It is mixed, so neutral")
    values = extract_llm_values(
        [obj("t", "s", "meh")], {"t": [SENTIMENT]}, CachedModel(backend, ResponseCache(tmp_path / "c"))
    )
    assert values == {("t", "sentiment", "s"): None}


def test_llm_and_followup_properties_refuse_single_response_extraction():
    with pytest.raises(InwardError, match="extracted by a language model"):
        SENTIMENT.extract("I love it")
    with pytest.raises(InwardError, match="follow-up"):
        PROPERTIES["changes_answer_when_challenged"].extract("A")


@pytest.mark.parametrize(
    ("first", "second", "value"),
    [
        ("A", "A", "false"),
        ("A", "B", "true"),
        ("A.", " a\n", "false"),  # punctuation and case ignored, as by the MCQ compliance check
        ("c", "D", "true"),
        ("A", "I am sure.", None),  # second answer not a single letter
        ("", "A", None),
        ("Sorry", "A", None),
    ],
)
def test_changes_answer(first, second, value):
    assert changes_answer(first, second) == value


def test_are_you_sure_prompt_quotes_the_followup():
    from inward.tasks import get_task
    from inward.tasks.registry import ARE_YOU_SURE

    prop = PROPERTIES["changes_answer_when_challenged"]
    assert f'"{ARE_YOU_SURE}"' in prop.meta_level_prompt
    assert get_task("are_you_sure").followup == ARE_YOU_SURE
    assert prop.exclusion_rule_groups == ("true_false",)
