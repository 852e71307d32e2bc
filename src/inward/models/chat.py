"""Turning a list of chat messages into the exact prompt string a local model sees.

A model's own chat template wins whenever the tokenizer has one (Qwen's renders an empty system
message as ``<|im_start|>system\\n<|im_end|>\\n``; we keep it, because the paper's prompts pass
``system=""`` and dropping it would make Qwen insert its default system prompt instead).

Models without a template (base models such as Gemma 3 270M) get a documented fallback, written
as a Jinja chat template so it is rendered by the same machinery and hashed the same way:

- ``fallback:gemma`` for gemma architectures: Gemma's turn markup
  (``<start_of_turn>user\\n{content}<end_of_turn>\\n`` ... ``<start_of_turn>model\\n``); a
  non-empty system message is prepended to the first user turn followed by a blank line, an
  empty one is dropped (Gemma has no system role); assistant turns use role ``model``.
- ``fallback:plain`` otherwise: ``{system}\\n\\n`` (if non-empty), then ``User: {content}\\n`` and
  ``Assistant: {content}\\n`` per turn, ending with ``Assistant:`` (so completions usually
  start with a space; nothing is stripped).

Both fallbacks start with the tokenizer's BOS token when it has one, since prompts are tokenized
without adding special tokens (chat templates that want BOS write it themselves).

The template identity (source, sha256 of the template text) goes into the backend fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inward.errors import InwardError
from inward.models.base import Message

GEMMA_FALLBACK = (
    "{%- set ns = namespace(system='') -%}"
    "{{- bos_token if bos_token else '' -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set ns.system = message['content'] -%}"
    "{%- else -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{%- set content = message['content'] -%}"
    "{%- if role == 'user' and ns.system -%}"
    "{%- set content = ns.system + '\n\n' + content -%}"
    "{%- set ns.system = '' -%}"
    "{%- endif -%}"
    "{{- '<start_of_turn>' + role + '\n' + content + '<end_of_turn>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%}"
)

PLAIN_FALLBACK = (
    "{{- bos_token if bos_token else '' -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- if message['content'] -%}{{- message['content'] + '\n\n' -}}{%- endif -%}"
    "{%- elif message['role'] == 'user' -%}{{- 'User: ' + message['content'] + '\n' -}}"
    "{%- else -%}{{- 'Assistant: ' + message['content'] + '\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'Assistant:' -}}{%- endif -%}"
)

# End-of-turn markers of the chat formats we know; any that the tokenizer has as a single token
# and that the template uses stop generation (along with EOS).
END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatFormat:
    """How prompts are rendered for one tokenizer; ``identity()`` goes into the fingerprint."""

    source: str  # "model" | "fallback:gemma" | "fallback:plain"
    template: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.template.encode("utf-8")).hexdigest()

    def identity(self) -> dict[str, str]:
        return {"source": self.source, "sha256": self.sha256}


def chat_format(tokenizer: Any, model_type: str) -> ChatFormat:
    """The model's own template if it has one, else the fallback for its architecture."""
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and own.strip():
        return ChatFormat("model", own)
    if model_type.startswith("gemma"):
        return ChatFormat("fallback:gemma", GEMMA_FALLBACK)
    return ChatFormat("fallback:plain", PLAIN_FALLBACK)


def validate(messages: Sequence[Message]) -> None:
    if not messages:
        raise InwardError("A prompt needs at least one message.")
    for m in messages:
        if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InwardError(
                f"Bad chat message {m!r}: expected {{'role': one of {ROLES}, 'content': str}}."
            )


def render(tokenizer: Any, fmt: ChatFormat, messages: Sequence[Message]) -> str:
    """The prompt text, ending with the generation prompt (the start of the assistant turn)."""
    validate(messages)
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages],
        chat_template=fmt.template,
        tokenize=False,
        add_generation_prompt=True,
    )


def stop_token_ids(tokenizer: Any, fmt: ChatFormat) -> list[int]:
    """End-of-turn token(s) used by the template, then EOS; the first is the template's own end."""
    ids: list[int] = []
    vocab = tokenizer.get_vocab()
    for marker in END_OF_TURN:
        if marker in fmt.template and marker in vocab:
            ids.append(vocab[marker])
    eos = tokenizer.eos_token_id
    for tid in eos if isinstance(eos, list) else [eos]:
        if tid is not None and tid not in ids:
            ids.append(tid)
    if not ids:
        raise InwardError("The tokenizer has neither an end-of-turn token nor an EOS token to stop at.")
    return ids
