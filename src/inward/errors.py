"""Errors a user can act on.

Every error that reaches the command line because of bad input is an :class:`InwardError`:
its message names the bad input, the expected form and the next step. The CLI prints the
message without a traceback and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InwardError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class InvalidValueError(InwardError, ValueError):
    """A setting outside its range (a temperature of 12, a negative token budget)."""


class UnknownNameError(InwardError, KeyError):
    """A task, property or model name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = ""):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        msg = f"Unknown {kind} {name!r}."
        if close:
            msg += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        if kind in ("task", "property", "model"):
            msg += f" Run `inward {kind_to_command(kind)}` to list them."
        if hint:
            msg += " " + hint
        super().__init__(msg)
        self.name = name

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


def kind_to_command(kind: str) -> str:
    return {"task": "tasks", "property": "properties", "model": "models"}.get(kind, kind + "s")
