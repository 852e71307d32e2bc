"""Finetuning examples and the paper's OpenAI chat JSONL format (spec §4.5).

One example is a prompt (the chat messages the model sees, usually ``[system "", user]`` as
built by :mod:`inward.prompts`) and the completion it is trained to give (the assistant turn).
On disk, one line per example::

    {"messages": [{"role": "system", "content": ""},
                  {"role": "user", "content": "Previously, you were asked ..."},
                  {"role": "assistant", "content": "o"}]}

This is the upload format of the paper (the ``string`` key of its files is dropped before
upload). ``to_openai_jsonl(..., include_meta=True)`` adds a ``"meta"`` object per line for our
own bookkeeping; :func:`from_openai_jsonl` reads both, and puts any extra top-level keys (such as
the paper's ``"string"``) into ``meta`` too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inward.errors import InwardError
from inward.models.base import Message

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class TrainExample:
    """``prompt`` messages (ending in a user turn) and the assistant ``completion`` to learn."""

    prompt: list[Message]
    completion: str
    meta: dict[str, Any] = field(default_factory=dict)

    def messages(self) -> list[Message]:
        return [dict(m) for m in self.prompt] + [{"role": "assistant", "content": self.completion}]


def check_example(example: TrainExample, where: str = "") -> None:
    """Raise :class:`InwardError` unless the example is trainable (``where`` prefixes the message)."""
    at = f"{where}: " if where else ""
    if not isinstance(example.prompt, list) or not example.prompt:
        raise InwardError(f"{at}the prompt must be a non-empty list of chat messages.")
    for k, m in enumerate(example.prompt):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InwardError(f"{at}message {k} is {m!r}; expected {{'role': one of {ROLES}, 'content': str}}.")
    if example.prompt[-1]["role"] == "assistant":
        raise InwardError(f"{at}the prompt ends with an assistant turn; the completion is the assistant turn.")
    if not isinstance(example.completion, str) or not example.completion:
        raise InwardError(f"{at}the completion must be a non-empty string, got {example.completion!r}.")


def to_openai_jsonl(examples: Iterable[TrainExample], *, include_meta: bool = False) -> str:
    """One ``{"messages": [...prompt, assistant]}`` JSON object per line (newline-terminated)."""
    lines = []
    for i, ex in enumerate(examples):
        check_example(ex, f"example {i}")
        row: dict[str, Any] = {"messages": ex.messages()}
        if include_meta and ex.meta:
            row["meta"] = ex.meta
        lines.append(json.dumps(row, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def from_openai_jsonl(text: str) -> list[TrainExample]:
    """Parse chat JSONL; each line needs ``messages`` ending in an assistant turn.

    Blank lines are skipped. Errors name the 1-based line number.
    """
    out: list[TrainExample] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"JSONL line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InwardError(f"{where} is not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise InwardError(f'{where}: expected an object with a "messages" list.')
        messages = row["messages"]
        if len(messages) < 2:
            raise InwardError(f"{where}: needs at least one prompt message and the assistant answer.")
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant":
            raise InwardError(f"{where}: the last message must be the assistant's answer, got {last!r}.")
        meta = {k: v for k, v in row.items() if k not in ("messages", "meta")}
        if "meta" in row:
            if not isinstance(row["meta"], dict):
                raise InwardError(f'{where}: "meta" must be an object.')
            meta.update(row["meta"])
        completion: Any = last.get("content")  # raw JSON; check_example rejects a non-string
        ex = TrainExample(
            prompt=[dict(m) if isinstance(m, dict) else m for m in messages[:-1]],
            completion=completion,
            meta=meta,
        )
        check_example(ex, where)
        out.append(ex)
    return out
