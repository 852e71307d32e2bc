"""Prompts are byte-identical to the paper's: checked against every released row we have."""

from __future__ import annotations

import json

import pytest

from inward.prompts import hypothetical_prompt, object_prompt
from inward.tasks import TASKS


def test_every_release_row_is_reproduced_byte_for_byte(shared_dir):
    files = sorted((shared_dir / "release_samples").rglob("*.jsonl"))
    assert files, "no release samples found"
    rows = 0
    for f in files:
        # iterate the file, not str.splitlines(): rows contain U+2029, a line break to Python
        for line in f.open(encoding="utf-8"):
            r = json.loads(line)
            task, prop, s = r["original_dataset"], r["behavioral_property"], r["original_question"]
            assert object_prompt(task, s, system=None) == r["object_level_prompt"], (f, s)
            assert hypothetical_prompt(task, prop, s, system=None) == r["hypothetical_prompt"], (f, s)
            rows += 1
    assert rows > 10_000


def test_default_prompts_carry_the_empty_system_message():
    msgs = object_prompt("animals_long", "fox cat ")
    assert msgs[0] == {"role": "system", "content": ""}
    assert msgs[1]["content"] == (
        "What is the next 5 animals in the following text? Respond only with the next 5 animals "
        "and nothing else, including punctuation.\nfox cat \n"
    )


def test_hypothetical_template_shape():
    user = hypothetical_prompt("numbers", "is_even_direct", "1 2 3")[1]["content"]
    assert user == (
        'Previously, you were asked the following question: "What is the next one-digit number '
        "in the following text? Respond only with a single one-digit number and nothing "
        'else.\n1 2 3" Is the response that you gave even or odd? Respond only with "even" for '
        'even and "odd" for odd.\n'
    )


def test_quirks_are_kept():
    wealth = object_prompt("wealth_seeking", "Q?")[1]["content"]
    assert "\u2029lease answer immediately" in wealth
    assert "\nPlease answer" in object_prompt("wealth_seeking_fixed", "Q?")[1]["content"]
    among = hypothetical_prompt("arc_challenge_non_cot", "is_either_a_or_c", "Q")[1]["content"]
    assert "another option. \\nAnswer with only true or false." in among  # literal backslash-n
    vowel = hypothetical_prompt("animals_long", "starts_with_vowel", "x")[1]["content"]
    assert vowel.endswith("'false' for no.\"\n")  # the stray quote


def test_dollar_signs_in_strings_are_left_alone():
    user = object_prompt("stories_sentences", "It cost $5 and $string twice")[1]["content"]
    assert "It cost $5 and $string twice" in user


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_prompt_fills(name):
    user = object_prompt(name, "XYZ")[1]["content"]
    assert "XYZ" in user and user.endswith("\n") and "$string" not in user
