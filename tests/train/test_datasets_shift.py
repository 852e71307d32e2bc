"""Behaviour-change (shift) data and the data-scaling slices."""

from __future__ import annotations

import pytest

from inward.errors import InwardError
from inward.prompts import object_prompt
from inward.properties import resolve_property
from inward.records import ObjectRecord
from inward.tasks import get_task
from inward.train.datasets import nested_slices, self_prediction_examples, shift_examples

TASKS = {"colors_long": get_task("colors_long"), "numbers": get_task("numbers")}


def obj(task, string, response, split="train", compliant=True, model="other"):
    return ObjectRecord(task, split, string, None, model, response, compliant, ())


def test_shift_examples_are_object_level_conversations_with_the_other_models_answers():
    objects = [
        obj("colors_long", "red blue", "green teal\n"),
        obj("colors_long", "pink grey", "sorry", compliant=False),  # non-compliant: skipped
        obj("colors_long", "tan gold", "  gold"),  # leading whitespace: skipped
        obj("colors_long", "red blue", "again"),  # a repeated string: first kept
        obj("numbers", "1 2 3", "4"),
        obj("arc_challenge_non_cot", "q", "A"),  # not a train task of this study: skipped
    ]
    ex = shift_examples(objects, TASKS, n=10, seed=0)
    got = {(e.meta["task"], e.meta["string"]): e for e in ex}
    assert set(got) == {("colors_long", "red blue"), ("numbers", "1 2 3")}
    e = got[("colors_long", "red blue")]
    assert e.prompt == object_prompt(TASKS["colors_long"], "red blue")
    assert e.completion == "green teal\n"  # the raw response, as the other model gave it
    assert e.meta["object_model"] == "other"
    assert got[("numbers", "1 2 3")].completion == "4"


def test_shift_examples_seeded_draw_and_no_val_strings():
    objects = [obj("colors_long", f"c{i} d", f"w{i} x") for i in range(20)]
    a = shift_examples(objects, TASKS, n=5, seed=0)
    assert len(a) == 5 and a == shift_examples(objects, TASKS, n=5, seed=0)
    assert [e.meta["string"] for e in a] != [e.meta["string"] for e in shift_examples(objects, TASKS, n=5, seed=1)]
    with pytest.raises(InwardError, match="evaluation strings"):
        shift_examples(objects, TASKS, n=5, forbidden_strings={"c3 d"})
    with pytest.raises(InwardError, match="train split"):
        shift_examples([obj("colors_long", "x", "y", split="val")], TASKS, n=5)


def test_scaling_slices_are_nested_and_seeded():
    props = {"colors_long": [resolve_property("first_character"), resolve_property("first_word")]}
    objects = [obj("colors_long", f"c{i} d", f"w{i} x") for i in range(40)]

    def slices(seed):
        ex = self_prediction_examples(objects, TASKS, props, n_per_pair=40, seed=seed)
        return ex, nested_slices(ex, [10, 40, 25, 100])

    ex, s = slices(0)
    assert [len(x) for x in s] == [10, 25, 40, 80]  # sorted; the largest is capped at all 80
    for small, big in zip(s, s[1:]):
        assert big[: len(small)] == small
    assert s[-1] == ex  # the largest slice is the full (main) dataset in the same order
    assert slices(0)[1] == s  # same seed: same slices
    assert [e.meta for e in slices(1)[1][0]] != [e.meta for e in s[0]]  # another seed: another draw
