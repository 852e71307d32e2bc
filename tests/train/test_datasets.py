"""Self-prediction datasets: targets are the model's own properties; no val string gets in."""

from __future__ import annotations

import pytest

from inward.errors import InwardError
from inward.properties import resolve_property
from inward.records import ObjectRecord
from inward.tasks import get_task
from inward.train.datasets import nested_slices, self_prediction_examples

TASKS = {"colors_long": get_task("colors_long"), "numbers": get_task("numbers")}
PROPS = {
    "colors_long": [resolve_property("first_character"), resolve_property("first_word")],
    "numbers": [resolve_property("is_even_direct")],
}


def obj(task, string, response, split="train", compliant=True):
    return ObjectRecord(task, split, string, None, "m", response, compliant, ())


def objects():
    return [
        obj("colors_long", "red blue", "green teal"),
        obj("colors_long", "pink grey", "sorry", compliant=False),
        obj("colors_long", "tan gold", " "),  # whitespace-only values are not trainable
        obj("numbers", "1 2 3", "4"),
        obj("numbers", "5 6", "seven"),  # no parity: skipped
    ]


def test_targets_are_the_models_own_properties():
    ex = self_prediction_examples(objects(), TASKS, PROPS, n_per_pair=10, seed=0)
    got = {(e.meta["task"], e.meta["property"], e.meta["string"]): e.completion for e in ex}
    assert got == {
        ("colors_long", "first_character", "red blue"): "g",
        ("colors_long", "first_word", "red blue"): "green",
        ("numbers", "is_even_direct", "1 2 3"): "even",
    }
    e = next(e for e in ex if e.meta["property"] == "first_word")
    assert e.prompt[0] == {"role": "system", "content": ""}
    assert "What is the first word of the response you gave?" in e.prompt[1]["content"]
    assert "red blue" in e.prompt[1]["content"]


def test_n_per_pair_and_seed():
    many = [obj("colors_long", f"c{i} d", f"w{i} x") for i in range(30)]
    a = self_prediction_examples(many, TASKS, {"colors_long": PROPS["colors_long"]}, n_per_pair=7, seed=1)
    b = self_prediction_examples(many, TASKS, {"colors_long": PROPS["colors_long"]}, n_per_pair=7, seed=1)
    c = self_prediction_examples(many, TASKS, {"colors_long": PROPS["colors_long"]}, n_per_pair=7, seed=2)
    assert len(a) == 14 and a == b and a != c


def test_val_strings_never_get_in():
    with pytest.raises(InwardError, match="held-out"):
        self_prediction_examples([obj("numbers", "1 2", "3", split="val")], TASKS, PROPS, n_per_pair=5)
    with pytest.raises(InwardError, match="held-out"):
        self_prediction_examples(objects(), TASKS, PROPS, n_per_pair=5, forbidden_strings={"1 2 3"})


def test_nested_slices():
    ex = self_prediction_examples(
        [obj("colors_long", f"c{i} d", f"w{i} x") for i in range(30)],
        TASKS,
        {"colors_long": PROPS["colors_long"]},
        n_per_pair=30,
    )
    slices = nested_slices(ex, [50, 10, 25])
    assert [len(s) for s in slices] == [10, 25, 50]
    assert slices[0] == slices[1][:10] and slices[1] == slices[2][:25]
