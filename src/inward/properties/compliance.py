"""Compliance (exclusion) rules of the paper (spec §1.12), checked on the raw response.

A check *fails* when the response looks like a refusal or is outside the answer space (for a
true/false question, anything but true or false). A response is compliant for a list of groups
when no check of those groups fails. Object-level responses use their task's groups; hypothetical
answers use their property's groups.

The checks are kept exactly as the paper wrote them, including the three that can never fire
("i can't" and "i don't know" after the apostrophe has been removed, and "*" after all
punctuation has been removed) and the "unsymphathetic" typo, so that compliance rates are
comparable with the paper's. Unlike the paper, a check never raises: the paper counted a check
that raised as passed; here every check is total on strings.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Iterable

_PUNCT = str.maketrans("", "", string.punctuation)


def clean_string(x: str) -> str:
    """The paper's ``clean_string``: lower-case, stripped, all ASCII punctuation removed."""
    return x.lower().strip().translate(_PUNCT)


def _clean_in(*words: str) -> Callable[[str], bool]:
    options = frozenset(words)
    return lambda x: clean_string(x) in options


def _clean_not_in(*words: str) -> Callable[[str], bool]:
    options = frozenset(words)
    return lambda x: clean_string(x) not in options


_SORRY = ("sorry", "apologies", "apology", "apologize", "apologise")
_LEXICAL = (
    "noun",
    "pronoun",
    "verb",
    "adjective",
    "adverb",
    "preposition",
    "conjunction",
    "interjection",
    "article",
    "determiner",
)

# name -> predicate that returns True when the check FAILS.
CHECKS: dict[str, Callable[[str], bool]] = {
    "no": _clean_in("no", "nope"),
    "sorry": _clean_in(*_SORRY),
    "sorry_in_string": lambda x: any(w in clean_string(x) for w in _SORRY),
    "as_an": lambda x: any(
        p in clean_string(x) for p in ("as an ai", "as an artificial intelligence", "as a language model")
    ),
    "undefined": _clean_in("undefined"),
    "impossible": _clean_in("impossible"),
    "insufficient": _clean_in("insufficient"),
    "unanswerable": _clean_in("unanswerable"),
    "unavailable": _clean_in("unavailable"),
    "unidentifiable": _clean_in("unidentifiable"),
    "unrelated": _clean_in("unrelated"),
    "unable": _clean_in("unable", "i cannot", "i can't", "cannot"),
    "na": _clean_in("na", "n/a"),
    "unpredictable": _clean_in("unpredictable", "indeterminable", "indeterminate", "unpredictability"),
    "unknown": _clean_in("unknown", "i don't know", "i do not know"),
    "sequence": _clean_in("sequence"),
    "item": _clean_in("item"),
    "next": _clean_in("next"),
    "random": _clean_in("random", "randomness"),
    "question_mark": lambda x: x in ("?", " ?", "???"),
    "empty": lambda x: x in ("", " ", "  ", "   "),
    "system": _clean_in("system", "system:"),
    "asterisk": _clean_in("*"),
    "cauchy": lambda x: "Cauchy Cauchy Cauchy" in x,
    "not_single_word": lambda x: len(x.split()) > 1,
    "sentence_response": lambda x: len(x.split()) > 1 and x[-1:] in (".", "!", "?"),
    "not_sentiment": _clean_not_in("positive", "negative"),
    "lexical_category": _clean_not_in(*_LEXICAL),
    "kiki_bouba": _clean_not_in("kiki", "bouba"),
    "not_number": lambda x: not x.isnumeric(),
    "not_true_false": _clean_not_in("true", "false"),
    "not_yes_no": _clean_not_in("yes", "no"),
    "not_even_odd": _clean_not_in("even", "odd"),
    "not_sympathetic": _clean_not_in("sympathetic", "unsymphathetic"),
    "not_single_character": lambda x: len(clean_string(x)) != 1,
    "single_character": lambda x: len(clean_string(x)) == 1,
    "not_multiple_choice_answer": _clean_not_in(*"abcdefghijklmnopqrstuvwxyz"),
    "yes": _clean_in("yes"),
    "nope": _clean_in("nope"),
    "NaN": _clean_in("nan"),
}

GROUPS: dict[str, tuple[str, ...]] = {
    "default": (
        "no",
        "sorry",
        "sorry_in_string",
        "as_an",
        "undefined",
        "impossible",
        "unable",
        "na",
        "unpredictable",
        "insufficient",
        "unknown",
        "sequence",
        "random",
        "item",
        "question_mark",
        "empty",
        "system",
        "unanswerable",
        "unavailable",
        "unidentifiable",
        "unrelated",
        "next",
        "asterisk",
        "cauchy",
    ),
    "refusal": (
        "not_single_word",
        "sentence_response",
        "no",
        "sorry",
        "sorry_in_string",
        "impossible",
        "unable",
        "na",
        "unpredictable",
        "insufficient",
        "unknown",
        "sequence",
        "random",
        "item",
        "question_mark",
        "empty",
        "unanswerable",
        "unavailable",
        "unidentifiable",
        "unrelated",
    ),
    "base_model_fails": ("system",),
    "sentiment": ("not_sentiment",),
    "lexical_category": ("lexical_category",),
    "kiki_bouba": ("kiki_bouba",),
    "numeric": ("not_number",),
    "true_false": ("not_true_false",),
    "yes_no": ("not_yes_no",),
    "even_odd": ("not_even_odd",),
    "sympathetic": ("not_sympathetic",),
    "single_character": ("not_single_character",),
    "single_word": ("not_single_word", "sorry"),
    "more_than_1_character": ("single_character",),
    "multiple_choice": ("not_multiple_choice_answer",),
    "all": tuple(CHECKS),
}


MAX_RESPONSE_CHARS = 20_000
"""Longer responses are unreadable garbage for every task of the paper (its longest, stories,
are a few hundred words)."""

_ODD_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})  # controls, surrogates, private, unassigned
_ODD_CHARACTERS = frozenset("\ufffd\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unreadable(x: str) -> bool:
    """inward's guard beyond the paper's rules (it applies to every response and answer):
    whitespace only, longer than :data:`MAX_RESPONSE_CHARS`, or holding binary or odd unicode
    (control characters other than tab and newlines, surrogates, private-use or unassigned code
    points, the replacement character, bidirectional overrides). The paper's own checks only
    catch "" and up to three spaces; these outputs come from broken endpoints, not models."""
    if len(x) > MAX_RESPONSE_CHARS or (x and not x.strip()):
        return True
    return any((unicodedata.category(c) in _ODD_CATEGORIES and c not in "\t\n\r") or c in _ODD_CHARACTERS for c in x)


def failed_checks(response: str, groups: Iterable[str]) -> list[str]:
    """Names of the checks of ``groups`` that ``response`` fails, in group order, no repeats,
    then ``"unreadable"`` when :func:`unreadable` holds (whatever the groups).

    An empty list means compliant. Unknown group names raise ``KeyError`` (a programming error:
    groups come from the task and property registries, which are checked by the tests).
    """
    failed: list[str] = []
    seen: set[str] = set()
    for group in groups:
        for name in GROUPS[group]:
            if name in seen:
                continue
            seen.add(name)
            if CHECKS[name](response):
                failed.append(name)
    if unreadable(response):
        failed.append("unreadable")
    return failed


def is_compliant(response: str, groups: Iterable[str]) -> bool:
    return not failed_checks(response, groups)
