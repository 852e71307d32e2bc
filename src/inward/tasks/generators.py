"""Seeded generators: the sequence tasks (animals, English words, colours, countries, digits),
story instructions and arithmetic multiple-choice questions.

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

Two generators make whole prompts' strings rather than sequences, from inward's own templates (no
third-party text): ``story_instructions`` ("Write a bittersweet story about a lighthouse keeper
... in a quiet village.", standing in for the paper's Claude-written writing_stories
instructions) and ``arithmetic_mcq`` (four-option arithmetic questions in the paper's ARC format,
with the gold letter as target, for the "are you sure?" task).

Train and val are fixed partitions of the space of strings (:func:`split_of`), independent of any
seed, so the two splits can never share a string. :func:`generate` is deterministic across
processes: the same (name, split, n, seed) always gives the same list, and a larger ``n`` extends
a smaller one.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
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

    def target(self, string: str) -> str | None:
        return None


_STORY_GENRES = (
    "short",
    "funny",
    "sad",
    "hopeful",
    "mystery",
    "science fiction",
    "fantasy",
    "ghost",
    "adventure",
    "bedtime",
    "cautionary",
    "heartwarming",
    "bittersweet",
    "suspenseful",
)
_STORY_SUBJECTS = (
    "a lighthouse keeper who finds a message in a bottle",
    "two rival bakers",
    "a robot learning to paint",
    "a girl who can talk to birds",
    "an old fisherman caught in a storm",
    "a lost dog finding its way home",
    "a detective who cannot remember faces",
    "a village whose river dries up",
    "a musician who is losing her hearing",
    "a child's first day at a new school",
    "a thief who steals only books",
    "twins separated at birth",
    "a gardener whose plants grow overnight",
    "a soldier returning home",
    "a baker who burns every cake",
    "an astronaut stranded alone",
    "a cat that guards a library",
    "a king who gives away his crown",
    "a student who fails an important exam",
    "a friendship between a giant and a mouse",
    "a doctor in a small mountain town",
    "a family moving to a new country",
    "a painter who is losing her sight",
    "a boy who builds a boat",
    "a woman who inherits a haunted house",
    "a chess player facing her last match",
    "a farmer during a long drought",
    "a mail carrier with a secret",
    "an inventor whose machine goes wrong",
    "two strangers stuck in an elevator",
)
_STORY_SETTINGS = (
    "in a small coastal town",
    "in a city of the far future",
    "during a winter storm",
    "on a long train journey",
    "in a forest at night",
    "in a busy market",
    "on a distant planet",
    "in a quiet village",
    "during a summer festival",
    "in a crumbling castle",
    "on an island",
    "in the desert",
    "at the bottom of the sea",
    "in a hospital",
    "in a mountain cabin",
    "on the last day of school",
    "in an abandoned factory",
    "during a power cut",
    "in a floating city",
    "at a wedding",
)


@dataclass(frozen=True)
class StoryInstructions:
    """ "Write a <genre> story about <subject> <setting>." from three fixed lists.

    Genres mix happy and sad tones so that sentiment varies. inward's own wording, standing in
    for the paper's writing_stories instructions (hand-written and Claude 3 Opus-written).
    """

    name: str
    version: int

    def sample(self, rng: random.Random) -> str:
        genre = rng.choice(_STORY_GENRES)
        article = "an" if genre[0] in "aeiou" else "a"
        subject, setting = rng.choice(_STORY_SUBJECTS), rng.choice(_STORY_SETTINGS)
        return f"Write {article} {genre} story about {subject} {setting}."

    def space_size(self) -> int:
        return len(_STORY_GENRES) * len(_STORY_SUBJECTS) * len(_STORY_SETTINGS)

    def target(self, string: str) -> str | None:
        return None


_OPS = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b}
_MCQ_STEM = re.compile(r"^What is (\d+) (plus|minus|times) (\d+)\?$")
_MCQ_OFFSETS = (-11, -10, -9, -2, -1, 1, 2, 9, 10, 11)
LETTERS4 = "ABCD"


@dataclass(frozen=True)
class ArithmeticMCQ:
    """Four-option arithmetic questions in the paper's ARC string format::

        What is 37 plus 48?

        Answer choices:
        A - 85
        B - 75
        C - 95
        D - 84

    Questions: a plus b (a, b in 10-99), a minus b (20 <= a <= 99, 10 <= b < a) and a times b
    (12 <= a <= 99, 3 <= b <= 9). The three wrong options are near misses (off by 1, 2, 9, 10 or
    11) and their order is a fixed function of the question, so every question has exactly one
    string; the target is the gold letter.
    """

    name: str
    version: int

    def _stem(self, rng: random.Random) -> str:
        op = rng.choice(sorted(_OPS))
        if op == "plus":
            a, b = rng.randint(10, 99), rng.randint(10, 99)
        elif op == "minus":
            a = rng.randint(20, 99)
            b = rng.randint(10, a - 1)
        else:
            a, b = rng.randint(12, 99), rng.randint(3, 9)
        return f"What is {a} {op} {b}?"

    @staticmethod
    def options(stem: str) -> tuple[list[int], int]:
        """The four options of a question and the index of the right one."""
        m = _MCQ_STEM.match(stem)
        if m is None:
            raise GenerationError(f"Not an arithmetic question: {stem!r}.")
        answer = _OPS[m.group(2)](int(m.group(1)), int(m.group(3)))
        rng = random.Random("arithmetic_mcq:" + stem)
        offsets = rng.sample([o for o in _MCQ_OFFSETS if answer + o >= 0], 3)
        options = [answer + o for o in offsets]
        gold = rng.randrange(4)
        options.insert(gold, answer)
        return options, gold

    def sample(self, rng: random.Random) -> str:
        stem = self._stem(rng)
        options, _ = self.options(stem)
        lines = "\n".join(f"{letter} - {x}" for letter, x in zip(LETTERS4, options, strict=True))
        return f"{stem}\n\nAnswer choices:\n{lines}"

    def space_size(self) -> int:
        plus = 90 * 90
        minus = sum(a - 10 for a in range(20, 100))
        times = 88 * 7
        return plus + minus + times

    def target(self, string: str) -> str | None:
        _, gold = self.options(string.split("\n", 1)[0])
        return LETTERS4[gold]


GENERATORS: dict[str, Generator | StoryInstructions | ArithmeticMCQ] = {
    g.name: g
    for g in (
        Generator("animals", 1, 7, 10, trailing_space=True, item_list="animals"),
        Generator("english_words", 1, 5, 5, trailing_space=True, item_list="english_words"),
        Generator("colors", 1, 5, 5, distinct=True, item_list="colors"),
        Generator("countries", 1, 3, 6, distinct=True, item_list="countries"),
        Generator("numbers", 1, 3, 6),
        StoryInstructions("story_instructions", 1),
        ArithmeticMCQ("arithmetic_mcq", 1),
    )
}
SEQUENCE_GENERATORS = ("animals", "english_words", "colors", "countries", "numbers")


def target_of(generator_name: str, string: str) -> str | None:
    """The dataset target of a generated string (the gold letter of a question), or None."""
    return GENERATORS[generator_name].target(string)


def split_of(generator_name: str, string: str) -> str:
    """``"val"`` for one string in five, ``"train"`` otherwise; a fixed function of the string."""
    digest = hashlib.sha256((generator_name + "\0" + string).encode("utf-8")).hexdigest()
    return "val" if int(digest, 16) % VAL_MODULUS == 0 else "train"


def generate(generator_name: str, split: str, n: int, seed: int) -> list[str]:
    """``n`` distinct strings of ``split``, in the order a ``seed``-ed generator draws them."""
    if generator_name not in GENERATORS:
        raise GenerationError(f"Unknown generator {generator_name!r}; known: {', '.join(sorted(GENERATORS))}.")
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
