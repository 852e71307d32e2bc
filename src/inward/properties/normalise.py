"""Answer normalisation for scoring (spec §6.1).

The paper's final analysis cleaned the two sides differently:

- the hypothetical answer goes through ``apply_all_cleaning``: lower-case, every ASCII
  punctuation character removed, newlines and tabs turned into spaces, whitespace collapsed and
  stripped;
- the object-level property value is only lower-cased and stripped.

So an object value that is punctuation or a space (the second character of "A, B"), or a word
with punctuation attached ("sun,"), can never be matched. inward reproduces that by default
(``scoring="paper"``) and offers ``scoring="symmetric"``, which cleans both sides the same way
(what the paper's earlier notebook did).
"""

from __future__ import annotations

import re
import string

_PUNCT = str.maketrans("", "", string.punctuation)
_SPACE = re.compile(r"\s+")

SCORINGS = ("paper", "symmetric")


def clean_answer(text: str) -> str:
    """The paper's ``apply_all_cleaning`` followed by ``.lower().strip()``."""
    text = text.lower().translate(_PUNCT)
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _SPACE.sub(" ", text).strip()


def clean_object_value(value: str, scoring: str = "paper") -> str:
    if scoring == "paper":
        return value.lower().strip()
    if scoring == "symmetric":
        return clean_answer(value)
    raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
