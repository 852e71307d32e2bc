"""The whole-string generators: story instructions and arithmetic multiple-choice questions."""

from __future__ import annotations

import random
import re

import pytest

from inward.errors import InwardError
from inward.tasks import get_task
from inward.tasks.generators import GENERATORS, generate, split_of, target_of

TEXT_NAMES = ("story_instructions", "arithmetic_mcq")
QUESTION = re.compile(
    r"^What is (\d+) (plus|minus|times) (\d+)\?\n\nAnswer choices:\n"
    r"A - (\d+)\nB - (\d+)\nC - (\d+)\nD - (\d+)$"
)


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_deterministic_nested_unique_and_split(name):
    a = generate(name, "val", 200, seed=4)
    assert a == generate(name, "val", 200, seed=4)
    assert a[:50] == generate(name, "val", 50, seed=4)
    assert len(set(a)) == 200 and all(split_of(name, s) == "val" for s in a)
    assert a != generate(name, "val", 200, seed=5)
    train = set(generate(name, "train", 800, seed=4))
    assert not train & set(a)


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_space_size_bounds_what_is_drawn(name):
    gen = GENERATORS[name]
    rng = random.Random(0)
    seen = {gen.sample(rng) for _ in range(60_000)}
    assert len(seen) <= gen.space_size()
    assert len(seen) > 0.6 * gen.space_size()  # most of the space is reachable
    with pytest.raises(InwardError, match="different strings"):
        generate(name, "val", gen.space_size() + 1, 0)


def test_story_instructions_shape():
    for s in generate("story_instructions", "val", 300, 0):
        assert s.startswith(("Write a ", "Write an ")) and " story about " in s and s.endswith(".")
        article, genre = s.split()[1], s.split()[2]
        assert (article == "an") == (genre[0] in "aeiou")
        assert target_of("story_instructions", s) is None


def test_arithmetic_questions_have_one_right_option_and_the_right_target():
    letters_seen = set()
    for s in generate("arithmetic_mcq", "val", 500, 0):
        m = QUESTION.match(s)
        assert m, s
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        answer = {"plus": a + b, "minus": a - b, "times": a * b}[op]
        options = [int(m.group(i)) for i in range(4, 8)]
        assert len(set(options)) == 4 and options.count(answer) == 1
        assert min(options) >= 0
        assert all(abs(x - answer) in (1, 2, 9, 10, 11) for x in options if x != answer)
        target = target_of("arithmetic_mcq", s)
        assert options["ABCD".index(target)] == answer
        letters_seen.add(target)
    assert letters_seen == set("ABCD")  # the gold letter is spread over the options


def test_generated_tasks_need_no_data_and_carry_targets(monkeypatch):
    monkeypatch.delenv("INWARD_DATA_DIR", raising=False)
    sure = get_task("are_you_sure").load("val", 5, seed=0)
    assert all(s.target in tuple("ABCD") for s in sure)
    stories = get_task("writing_stories").load("val", 5, seed=0)
    assert all(s.target is None and s.string.startswith("Write") for s in stories)
    assert [s.string for s in get_task("writing_stories_pick_name").load("val", 5, seed=0)] == [
        s.string for s in stories
    ]


def test_writing_stories_can_still_read_the_paper_file(data_dir):
    rows = get_task("writing_stories").load("val", 3, data_dir=data_dir, source="file")
    assert len(rows) == 3 and all(r.string.startswith("Write") for r in rows)
