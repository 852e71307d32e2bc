"""Tests for inward.tasks.generators: list contents, string shapes, seeding and the split."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inward.errors import InwardError
from inward.tasks import generators as g
from inward.tasks.generators import GENERATORS, Generator, generate, load_items, split_of

NAMES = ("animals", "english_words", "colors", "countries", "numbers")
TEXT_NAMES = ("story_instructions", "arithmetic_mcq")

# name -> (min items, max items, distinct, trailing space)
SHAPES = {
    "animals": (7, 10, False, True),
    "english_words": (5, 5, False, True),
    "colors": (5, 5, True, False),
    "countries": (3, 6, True, False),
    "numbers": (3, 6, False, False),
}


# --- word lists ---------------------------------------------------------------------------------


def test_registry_keys_and_api():
    assert set(GENERATORS) == set(NAMES) | set(TEXT_NAMES)
    assert g.SEQUENCE_GENERATORS == NAMES
    for name, gen in GENERATORS.items():
        assert isinstance(gen, Generator) == (name in NAMES)
        assert gen.name == name
        assert isinstance(gen.version, int) and gen.version >= 1
        assert isinstance(gen.sample(random.Random(0)), str)


@pytest.mark.parametrize("list_name", ["animals", "colors", "countries", "english_words"])
def test_lists_unique_and_clean(list_name):
    items = load_items(list_name)
    assert len(items) == len(set(items))
    assert len({i.lower() for i in items}) == len(items)  # no case-only duplicates
    for item in items:
        assert item.isascii() and item.isalpha(), item  # one token, letters only


def test_list_sizes():
    assert len(load_items("animals")) == 30
    assert len(load_items("colors")) == 100
    assert 140 <= len(load_items("countries")) <= 200
    assert 1900 <= len(load_items("english_words")) <= 2500


@pytest.mark.parametrize("list_name", ["animals", "colors", "countries"])
def test_short_lists_lower_case(list_name):
    assert all(i == i.lower() for i in load_items(list_name))


def test_english_words_mix_common_rare_and_capitalised():
    words = load_items("english_words")
    capitalised = sum(w[0].isupper() for w in words) / len(words)
    assert 0.05 <= capitalised <= 0.2  # the paper's NLTK words: about 10% of drawn words
    assert sum(len(w) >= 10 for w in words) >= 300  # plenty of long words
    assert sum(len(w) <= 5 for w in words) >= 100  # and some short ones


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape(name):
    lo, hi, distinct, trailing = SHAPES[name]
    gen = GENERATORS[name]
    items = set(gen.items)
    rng = random.Random(123)
    lengths = set()
    for _ in range(2000):
        s = gen.sample(rng)
        assert s.endswith(" ") == trailing
        assert "  " not in s and not s.startswith(" ")
        words = s.split(" ")[:-1] if trailing else s.split(" ")
        assert lo <= len(words) <= hi
        assert set(words) <= items
        if distinct:
            assert len(set(words)) == len(words)
        lengths.add(len(words))
    assert lengths == set(range(lo, hi + 1))  # every length occurs


def test_animals_repeat_sometimes():
    rng = random.Random(0)
    samples = [GENERATORS["animals"].sample(rng).split() for _ in range(1000)]
    with_repeat = sum(len(set(w)) < len(w) for w in samples) / len(samples)
    assert 0.55 < with_repeat < 0.8  # drawn with replacement: about 2/3 repeat an animal


def test_digits_are_single_digits():
    for s in generate("numbers", "val", 200, 0):
        assert all(len(d) == 1 and d.isdigit() for d in s.split(" "))


# --- generate: determinism, nesting, uniqueness -------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", ["train", "val"])
def test_generate_deterministic_unique_and_in_split(name, split):
    a = generate(name, split, 300, seed=7)
    assert a == generate(name, split, 300, seed=7)
    assert len(a) == 300 and len(set(a)) == 300
    assert all(split_of(name, s) == split for s in a)
    assert a != generate(name, split, 300, seed=8)


@pytest.mark.parametrize("name", NAMES)
def test_generate_larger_n_extends_smaller(name):
    big = generate(name, "train", 500, seed=3)
    for n in (0, 1, 10, 137, 499):
        assert generate(name, "train", n, seed=3) == big[:n]


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    split=st.sampled_from(["train", "val"]),
    seed=st.integers(min_value=-(10**6), max_value=10**6),
    n1=st.integers(min_value=0, max_value=60),
    n2=st.integers(min_value=0, max_value=60),
)
def test_nesting_property(name, split, seed, n1, n2):
    small, large = sorted((n1, n2))
    assert generate(name, split, large, seed)[:small] == generate(name, split, small, seed)


def test_stable_across_processes():
    """String seeding must not depend on PYTHONHASHSEED or process state."""
    code = (
        "from inward.tasks.generators import generate;"
        "print(repr([generate(n, 'val', 5, 11) for n in "
        "('animals','english_words','colors','countries','numbers')]))"
    )
    outs = set()
    for hashseed in ("1", "2"):
        env = {"PYTHONHASHSEED": hashseed, "PATH": ""}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr
        outs.add(res.stdout)
    assert len(outs) == 1
    here = repr([generate(n, "val", 5, 11) for n in NAMES]) + "\n"
    assert outs == {here}


# --- split ----------------------------------------------------------------------------------------


def test_split_of_is_the_documented_hash():
    import hashlib

    for s in ("cat dog ", "red blue green teal maroon", "1 2 3"):
        h = int(hashlib.sha256(("animals\0" + s).encode()).hexdigest(), 16)
        assert split_of("animals", s) == ("val" if h % 5 == 0 else "train")


@pytest.mark.parametrize("name", NAMES)
def test_train_val_disjoint_across_seeds(name):
    train, val = set(), set()
    for seed in range(6):
        train.update(generate(name, "train", 400, seed))
        val.update(generate(name, "val", 100, seed))
    assert train and val and not (train & val)


@pytest.mark.parametrize("name", NAMES)
def test_split_ratio_about_one_fifth(name):
    rng = random.Random(99)
    strings = {GENERATORS[name].sample(rng) for _ in range(5000)}
    frac = sum(split_of(name, s) == "val" for s in strings) / len(strings)
    assert 0.17 < frac < 0.23


# --- errors ---------------------------------------------------------------------------------------


def test_impossible_n_beyond_space():
    assert GENERATORS["numbers"].space_size() == 10**3 + 10**4 + 10**5 + 10**6
    with pytest.raises(ValueError, match="only 1111000 different strings"):
        generate("numbers", "train", 2_000_000, 0)


def test_impossible_n_within_space_hits_attempt_cap(monkeypatch):
    tiny = Generator("tiny", 1, 1, 1, item_list=None)  # 10 possible strings: one digit
    monkeypatch.setitem(g.GENERATORS, "tiny", tiny)
    n_val = sum(split_of("tiny", d) == "val" for d in "0123456789")
    assert len(generate("tiny", "val", n_val, 0)) == n_val  # the whole split is reachable
    with pytest.raises(ValueError, match="found only"):
        generate("tiny", "val", n_val + 1, 0)


@pytest.mark.parametrize(
    "args",
    [("nope", "train", 1, 0), ("animals", "test", 1, 0), ("animals", "train", -1, 0)],
)
def test_bad_arguments(args):
    with pytest.raises(ValueError) as info:
        generate(*args)
    assert isinstance(info.value, InwardError)  # shown without traceback by the CLI


def test_zero_is_empty():
    assert generate("colors", "val", 0, 0) == []
