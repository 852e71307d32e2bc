"""Shared option parsing: ``-M key=value`` model arguments."""

from __future__ import annotations

from typing import Any

import click


def parse_value(text: str) -> Any:
    """``true``/``false``, an int, a float, a JSON list or object (``[1e-4, 2e-4]``), else the text."""
    if text.startswith(("[", "{")):
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise click.BadParameter(f"{text!r} looks like JSON but does not parse: {e.msg}") from None
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_key_values(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint=option)
        out[key.strip()] = parse_value(value.strip())
    return out
