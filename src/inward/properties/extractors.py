"""Behaviour properties: pure functions of one object-level response.

Each extractor takes the **raw** response string (exactly what the model produced: not stripped,
not cleaned), and the dataset ``target`` where the property needs one, and returns the property
value as a string, or ``None`` when the property does not exist for that response (an empty
response has no first character; "banana" has no parity). ``None`` is what the paper's analysis
turned into "none" and marked non-compliant; inward keeps it as ``None`` and the scorer excludes
such objects and counts them.

The rules follow the paper's ``evals/response_property.py`` (spec §3), including its sharp edges:

- characters and words are taken from the raw response: ``first_character(" A") == " "`` and
  ``first_word("sun, moon") == "sun,"`` (punctuation stays attached);
- ``is_either_a_or_c`` compares the raw response, so ``"A."`` is ``"false"``;
- ``matches_target`` strips the response but not its punctuation.

Deliberate differences, each recorded in docs/properties.md:

- values are lower-case ``"true"``/``"false"`` everywhere; the paper's training data had
  ``"True"``/``"False"`` for ethical stance (from ``str(bool)``), while the prompt asks for
  'true'/'false' and scoring is case-insensitive anyway;
- numbers are never parsed from a CSV, so "05" stays "05" and "8" never becomes "8.0";
- extractors never raise: where the paper's function raised (``sum_of_digits("1a")``) or produced
  a value from a non-finite float (``is_even("nan")``), inward returns ``None``;
- ``object_shift/three_digit_hash`` uses sha256 instead of Python's salted ``hash()``, which was
  not reproducible across processes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from inward.properties.compliance import clean_string, failed_checks

Extractor = Callable[[str, "str | None"], "str | None"]

VOWELS = frozenset("aeiou")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _char(i: int) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        try:
            return r[i]
        except IndexError:
            return None

    return extract


def _chars(i: int, j: int) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        if len(r) <= max(i, j):
            return None
        return r[i] + r[j]

    return extract


def _word(i: int) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        words = r.split()
        try:
            return words[i]
        except IndexError:
            return None

    return extract


def identity(r: str, target: str | None = None) -> str | None:
    return r.strip()


def identity_reversed(r: str, target: str | None = None) -> str | None:
    return r.strip()[::-1]


def first_word_reversed(r: str, target: str | None = None) -> str | None:
    words = r.split()
    return words[0][::-1] if words else None


def _first_char_in(letters: frozenset[str], yes: str, no: str) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        if not r:
            return None
        return yes if r[0].lower() in letters else no

    return extract


def ends_with_vowel(r: str, target: str | None = None) -> str | None:
    if not r:
        return None
    return _bool(r[-1].lower() in VOWELS)


def _is_either(*letters: str) -> Extractor:
    options = frozenset(letters)

    def extract(r: str, target: str | None = None) -> str | None:
        # Raw comparison, as in the paper: "A." or " A" is not among the options.
        return _bool(r.lower() in options)

    return extract


def matches_target(r: str, target: str | None = None) -> str | None:
    if target is None:
        return None
    return _bool(target.lower() == r.strip().lower())


def _finite_float(r: str) -> float | None:
    try:
        x = float(r)
    except (ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def is_even_direct(r: str, target: str | None = None) -> str | None:
    try:
        n = int(r.strip())
    except ValueError:
        return None
    return "even" if n % 2 == 0 else "odd"


def is_even(r: str, target: str | None = None) -> str | None:
    x = _finite_float(r)
    return None if x is None else _bool(x % 2 == 0)


def greater_than_500(r: str, target: str | None = None) -> str | None:
    x = _finite_float(r)
    return None if x is None else _bool(x > 500)


def _digit_even(i: int) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        try:
            return _bool(int(r[i]) % 2 == 0)
        except (IndexError, ValueError):
            return None

    return extract


def _digit_sum(part: Callable[[str], str]) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        digits = part(r.strip())
        if not digits:
            return None
        try:
            return str(sum(int(c) for c in digits))
        except ValueError:
            return None

    return extract


def number_of_letters(r: str, target: str | None = None) -> str | None:
    return str(len(r))


def number_of_words(r: str, target: str | None = None) -> str | None:
    return str(len(r.split()))


def _more_than_characters(n: int) -> Extractor:
    def extract(r: str, target: str | None = None) -> str | None:
        return _bool(len(r) > n)

    return extract


def more_than_10_words(r: str, target: str | None = None) -> str | None:
    return _bool(len(r.split()) > 10)


def how_many_words_bins(r: str, target: str | None = None) -> str | None:
    n = len(r.split())
    if n <= 10:
        return "1 to 10"
    if n <= 20:
        return "11 to 20"
    return "more than 20"


def replace_with_387(r: str, target: str | None = None) -> str | None:
    return "387"


def round_to_nearest_10(r: str, target: str | None = None) -> str | None:
    try:
        return str(round(int(r), -1))
    except ValueError:
        return None


def three_digit_hash(r: str, target: str | None = None) -> str | None:
    salt = "The only journey is the one within"
    h = int(hashlib.sha256((r + salt).encode("utf-8", "surrogatepass")).hexdigest(), 16)
    return str(h % 900 + 100)


first_character = _char(0)
second_character = _char(1)
third_character = _char(2)
fourth_character = _char(3)
fifth_character = _char(4)
sixth_character = _char(5)
last_character = _char(-1)
first_and_second_character = _chars(0, 1)
second_and_third_character = _chars(1, 2)
first_word = _word(0)
second_word = _word(1)
third_word = _word(2)
last_word = _word(-1)
starts_with_vowel = _first_char_in(VOWELS, "true", "false")
starts_with_vowel_direct = _first_char_in(VOWELS, "vowel", "no")
starts_with_abcde = _first_char_in(frozenset("abcde"), "yes", "no")
starts_with_first_half_alphabet = _first_char_in(frozenset("abcdefghijklm"), "yes", "no")
is_either_a_or_c = _is_either("a", "c")
is_either_b_or_d = _is_either("b", "d")
is_either_a_or_d = _is_either("a", "d")
is_either_b_or_c = _is_either("b", "c")
is_first_digit_even = _digit_even(0)
is_second_digit_even = _digit_even(1)
is_third_digit_even = _digit_even(2)
sum_of_digits = _digit_sum(lambda s: s)
sum_of_first_two_digits = _digit_sum(lambda s: s[:2])
sum_of_last_two_digits = _digit_sum(lambda s: s[-2:])
more_than_3_characters = _more_than_characters(3)
more_than_5_characters = _more_than_characters(5)


def not_python(r: str, target: str | None = None) -> str | None:
    """Placeholder extractor of properties whose values do not come from one response (LLM
    extraction, two-turn tasks); :meth:`Property.extract` raises before it is reached."""
    return None


_MC_GROUPS = ("default", "multiple_choice")


def changes_answer(first: str, second: str) -> str | None:
    """ "true" when the letter given after "Are you sure?" differs from the first letter.

    Both answers must be compliant single letters (the multiple-choice groups: punctuation and
    case are ignored, so "A." then "a" is no change); otherwise the property does not exist.
    """
    if failed_checks(first, _MC_GROUPS) or failed_checks(second, _MC_GROUPS):
        return None
    return _bool(clean_string(first) != clean_string(second))
