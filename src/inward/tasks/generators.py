"""Seeded generators for the sequence tasks (animals, English words, colours, countries, digits).

The paper's sequence datasets are not shipped with inward. Instead each generator draws strings of
the same shape from inward's own item lists (``inward/tasks/wordlists/*.txt``, one item a line):

==============  ==================================  ============  ==============
generator       items per string                    repeats       trailing space
==============  ==================================  ============  ==============
animals         7-10 of 30 animals                  allowed       yes
english_words   5 of ~2000 English words            allowed       yes
colors          5 of 100 colours                    distinct      no
countries       3-6 of ~160 countries               distinct      no
numbers         3-6 of the digits 0-9               allowed       no
==============  ==================================  ============  ==============

Train and val are fixed partitions of the space of strings (:func:`split_of`), independent of any
seed, so the two splits can never share a string. :func:`generate` is deterministic across
processes: the same (name, split, n, seed) always gives the same list, and a larger ``n`` extends
a smaller one.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources

from inward.errors import InwardError

SPLITS = ("train", "val")
VAL_MODULUS = 5  # one string in five is val
DIGITS = tuple("0123456789")


class GenerationError(InwardError, ValueError):
    """A request :func:`generate` cannot satisfy."""


@cache
def load_items(list_name: str) -> tuple[str, ...]:
    """The items of ``wordlists/<list_name>.txt`` (blank lines ignored)."""
    text = resources.files("inward.tasks.wordlists").joinpath(f"{list_name}.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class Generator:
    name: str
    version: int
    """Bumped whenever the item list or the shape changes; recorded with every run."""
    min_items: int
    max_items: int
    distinct: bool = False
    trailing_space: bool = False
    item_list: str | None = None
    """Word list file name (without ``.txt``); ``None`` means the digits 0-9."""

    @property
    def items(self) -> tuple[str, ...]:
        return DIGITS if self.item_list is None else load_items(self.item_list)

    def sample(self, rng: random.Random) -> str:
        items = self.items
        k = rng.randint(self.min_items, self.max_items)
        words = rng.sample(items, k) if self.distinct else [rng.choice(items) for _ in range(k)]
        return " ".join(words) + (" " if self.trailing_space else "")

    def space_size(self) -> int:
        """How many different strings this generator can produce (both splits together)."""
        n = len(set(self.items))
        count = math.perm if self.distinct else pow
        return sum(count(n, k) for k in range(self.min_items, self.max_items + 1))


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator("animals", 1, 7, 10, trailing_space=True, item_list="animals"),
        Generator("english_words", 1, 5, 5, trailing_space=True, item_list="english_words"),
        Generator("colors", 1, 5, 5, distinct=True, item_list="colors"),
        Generator("countries", 1, 3, 6, distinct=True, item_list="countries"),
        Generator("numbers", 1, 3, 6),
    )
}


def split_of(generator_name: str, string: str) -> str:
    """``"val"`` for one string in five, ``"train"`` otherwise; a fixed function of the string."""
    digest = hashlib.sha256((generator_name + "\0" + string).encode("utf-8")).hexdigest()
    return "val" if int(digest, 16) % VAL_MODULUS == 0 else "train"


def generate(generator_name: str, split: str, n: int, seed: int) -> list[str]:
    """``n`` distinct strings of ``split``, in the order a ``seed``-ed generator draws them."""
    if generator_name not in GENERATORS:
        raise GenerationError(
            f"Unknown generator {generator_name!r}; known: {', '.join(sorted(GENERATORS))}."
        )
    if split not in SPLITS:
        raise GenerationError(f"Unknown split {split!r}; use 'train' or 'val'.")
    if n < 0:
        raise GenerationError(f"Cannot generate a negative number of strings ({n}).")
    gen = GENERATORS[generator_name]
    if n > gen.space_size():
        raise GenerationError(
            f"Generator {generator_name!r} can make only {gen.space_size()} different strings "
            f"(both splits together); {n} were asked for. Ask for fewer strings."
        )
    rng = random.Random(f"{generator_name}:{seed}")  # str seeds hash with sha512: stable
    max_draws = 20 * n + 100_000
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(max_draws):
        if len(out) == n:
            return out
        s = gen.sample(rng)
        if s not in seen and split_of(generator_name, s) == split:
            seen.add(s)
            out.append(s)
    if len(out) == n:
        return out
    raise GenerationError(
        f"Generator {generator_name!r} found only {len(out)} distinct {split} strings in "
        f"{max_draws} draws; {n} were asked for. The {split} split is probably smaller than "
        f"that; ask for fewer strings."
    )
