"""Turning a list of chat messages into the exact prompt string a local model sees.

A model's own chat template wins whenever the tokenizer has one (Qwen's renders an empty system
message as ``<|im_start|>system\\n<|im_end|>\\n``; we keep it, because the paper's prompts pass
``system=""`` and dropping it would make Qwen insert its default system prompt instead).

Models without a template (base models such as Gemma 3 270M) get one of a few fallbacks, each
written as a Jinja chat template so it is rendered by the same machinery and hashed the same way.
Which one is **chosen by measurement**, not convention: :mod:`inward.train.chat_select` scores
each candidate's answer loss before training (a study does this on a held-out slice of its own
train tasks and records the table), and ``-M chat_format=NAME`` sets it by hand.

- ``fallback:gemma`` (offered when the tokenizer has Gemma's turn tokens): Gemma's turn markup
  (``<start_of_turn>user\\n{content}<end_of_turn>\\n`` ... ``<start_of_turn>model\\n``); a
  non-empty system message is prepended to the first user turn followed by a blank line, an
  empty one is dropped (Gemma has no system role); assistant turns use role ``model`` and end
  with ``<end_of_turn>``.
- ``fallback:plain``: ``{system}\\n\\n`` (if non-empty), then ``User: {content}\\n`` and
  ``Assistant: {content}\\n`` per turn, ending with ``Assistant:``.
- ``fallback:qa``: the same with ``Question:`` / ``Answer:``.

The two plain-text formats put a space between ``Assistant:`` and the answer and end a turn
with a newline, as text in the wild does. The space is the format's ``answer_prefix``: training
appends ``answer_prefix + completion`` to the prompt (so `` c`` is one natural token, not ``c``
glued to the colon), and generation strips it from the front of what the model says. Measured on
base Gemma 3 270M before training (docs/training.md): the Gemma markup costs ~29 nats on its
``<end_of_turn>`` token alone, more than a uniform guess over its 262k vocabulary (12.5), which
is where the cross-predictor's "impossible" first-step loss of ~20 nats came from.

All fallbacks start with the tokenizer's BOS token when it has one, since prompts are tokenized
without adding special tokens (chat templates that want BOS write it themselves).

The format identity (source, sha256 of the template text, and for fallbacks the end text and
answer prefix) goes into the backend fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from inward.errors import InwardError
from inward.models.base import BackendStats, Message

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


def _speaker_template(user: str, assistant: str) -> str:
    """``{system}\\n\\n`` then ``<user>: …\\n`` / ``<assistant>: …\\n`` turns, ending ``<assistant>:``."""
    return (
        "{{- bos_token if bos_token else '' -}}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'system' -%}"
        "{%- if message['content'] -%}{{- message['content'] + '\n\n' -}}{%- endif -%}"
        f"{{%- elif message['role'] == 'user' -%}}{{{{- '{user}: ' + message['content'] + '\n' -}}}}"
        f"{{%- else -%}}{{{{- '{assistant}: ' + message['content'] + '\n' -}}}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        f"{{%- if add_generation_prompt -%}}{{{{- '{assistant}:' -}}}}{{%- endif -%}}"
    )


PLAIN_FALLBACK = _speaker_template("User", "Assistant")
QA_FALLBACK = _speaker_template("Question", "Answer")

# End-of-turn markers of the chat formats we know; any that the tokenizer has as a single token
# and that the template uses stop generation (along with EOS).
END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatFormat:
    """How prompts are rendered for one tokenizer; ``identity()`` goes into the fingerprint."""

    source: str  # "model" | "fallback:gemma" | "fallback:plain" | "fallback:qa"
    template: str
    end: str | None = None
    """Text that ends an assistant turn: trained after every completion, and generation stops
    there. None: the first :data:`END_OF_TURN` marker the template uses (the model's own)."""
    answer_prefix: str = ""
    """Text between the generation prompt and the answer (see module doc)."""

    @property
    def name(self) -> str:
        return self.source.removeprefix("fallback:")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.template.encode("utf-8")).hexdigest()

    def identity(self) -> dict[str, str]:
        out = {"source": self.source, "sha256": self.sha256}
        if self.source != "model":  # the model's own template: unchanged keys, unchanged cache
            out.update(end=self.end or "", answer_prefix=self.answer_prefix)
        return out


FALLBACKS: dict[str, ChatFormat] = {
    "gemma": ChatFormat("fallback:gemma", GEMMA_FALLBACK, end="<end_of_turn>"),
    "plain": ChatFormat("fallback:plain", PLAIN_FALLBACK, end="\n", answer_prefix=" "),
    "qa": ChatFormat("fallback:qa", QA_FALLBACK, end="\n", answer_prefix=" "),
}
DEFAULT_FALLBACK = "plain"
"""For a model without a template when nothing was measured or asked for. A study measures
(inward.train.chat_select); ``plain`` had the lowest answer loss of the candidates on base
Gemma 3 270M in the measurement recorded in docs/training.md."""
CHOICES = ("auto", "model", *FALLBACKS)


def check_choice(choice: Any) -> str:
    """The ``chat_format`` model arg, checked before anything loads (an unknown name is an error)."""
    if str(choice) not in CHOICES:
        raise InwardError(f"Model arg chat_format={choice!r}: expected one of {', '.join(CHOICES)}.")
    return str(choice)


def candidates(tokenizer: Any) -> list[str]:
    """The fallbacks that make sense for this tokenizer (Gemma markup needs Gemma's turn tokens)."""
    vocab = tokenizer.get_vocab()
    return [n for n in FALLBACKS if n != "gemma" or ("<start_of_turn>" in vocab and "<end_of_turn>" in vocab)]


def chat_format(tokenizer: Any, model_type: str = "", choice: str = "auto") -> ChatFormat:
    """The format for ``choice``: ``auto`` (the model's own template if it has one, else
    :data:`DEFAULT_FALLBACK`), ``model`` (its own, an error without one) or a fallback name."""
    check_choice(choice)
    own = getattr(tokenizer, "chat_template", None)
    if choice in ("auto", "model") and isinstance(own, str) and own.strip():
        return ChatFormat("model", own)
    if choice == "model":
        raise InwardError(
            "Model arg chat_format=model, but this model's tokenizer has no chat template. "
            f"Use chat_format=auto or one of {', '.join(FALLBACKS)}."
        )
    name = DEFAULT_FALLBACK if choice == "auto" else choice
    if name not in candidates(tokenizer):
        raise InwardError(
            f"Model arg chat_format={name!r}: this tokenizer lacks Gemma's turn tokens; "
            f"use one of {', '.join(candidates(tokenizer))}."
        )
    return FALLBACKS[name]


def validate(messages: Sequence[Message]) -> None:
    if not messages:
        raise InwardError("A prompt needs at least one message.")
    for m in messages:
        if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InwardError(f"Bad chat message {m!r}: expected {{'role': one of {ROLES}, 'content': str}}.")


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
    """End-of-turn token(s) used by the template, then EOS; the first is the template's own end
    (the token trained after every completion)."""
    ids: list[int] = []
    vocab = tokenizer.get_vocab()
    if fmt.end is not None:
        end = tokenizer(fmt.end, add_special_tokens=False)["input_ids"]
        if len(end) != 1:
            raise InwardError(
                f"Chat format {fmt.source}: its end text {fmt.end!r} is not one token "
                "for this tokenizer; choose another chat_format."
            )
        ids.append(end[0])
        if fmt.end == "\n":  # a newline run is its own token in many vocabularies; stop there too
            ids += [t for t in tokenizer("\n\n", add_special_tokens=False)["input_ids"][:1] if t not in ids]
    for marker in END_OF_TURN:
        if marker in fmt.template and marker in vocab and vocab[marker] not in ids:
            ids.append(vocab[marker])
    eos = tokenizer.eos_token_id
    for tid in eos if isinstance(eos, list) else [eos]:
        if tid is not None and tid not in ids:
            ids.append(tid)
    if not ids:
        raise InwardError("The tokenizer has neither an end-of-turn token nor an EOS token to stop at.")
    return ids


def strip_answer_prefix(fmt: ChatFormat, text: str) -> str:
    """What the model said, without the format's answer prefix (e.g. the space after "Assistant:")."""
    p = fmt.answer_prefix
    return text[len(p) :] if p and text.startswith(p) else text


def load_tokenizer(checkpoint: Any, choice: str = "auto") -> tuple[Any, ChatFormat, list[int]]:
    """The tokenizer of a checkpoint directory as inward's engines use it (left padding, a pad
    token), its chat format for ``choice`` and its stop token ids. The torch and llama.cpp engines
    both tokenize with it, so the two feed a model the very same token ids.

    Loaded once per process for each (directory, its tokenizer files as they are now, choice) and
    shared: every adapter of a base model has the base's tokenizer, and a study asks for it for
    each one (reading Gemma's 262k-token vocabulary back from JSON was 129 of the 146 s a default
    study took to read 8 finished seeds back). Nothing changes a tokenizer after this setup."""
    directory = Path(str(checkpoint)).resolve()
    files = sorted(f for f in directory.iterdir() if f.is_file() and ("token" in f.name or "template" in f.name))
    stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    tok, fmt, stop_ids = _load_tokenizer(str(directory), stamp, choice)
    return tok, fmt, list(stop_ids)


@functools.lru_cache(maxsize=4)
def _load_tokenizer(checkpoint: str, stamp: tuple, choice: str) -> tuple[Any, ChatFormat, list[int]]:
    """:func:`load_tokenizer`'s work; ``stamp`` keys the cache to the tokenizer files' state."""
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    fmt = chat_format(tok, AutoConfig.from_pretrained(checkpoint).model_type, choice)
    stop_ids = stop_token_ids(tok, fmt)
    if tok.pad_token_id is None:  # masked out anyway; any real token will do
        tok.pad_token = tok.convert_ids_to_tokens(stop_ids[-1])
    tok.padding_side = "left"
    return tok, fmt, stop_ids


def token_text(tokenizer: Any, fmt: ChatFormat, token_id: int) -> str:
    """A token as answer text: special tokens (end of turn) are "", and a token that is only part
    of a UTF-8 character keeps its raw token string, so such fragments are never merged with each
    other under one "\ufffd" key."""
    text = tokenizer.decode([token_id], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    if "\ufffd" in text:
        return str(tokenizer.convert_ids_to_tokens(token_id))
    return strip_answer_prefix(fmt, text)


_Engine = TypeVar("_Engine", bound="Tokenized")


class Tokenized:
    """What the local engines (the torch and llama.cpp backends) share: the tokenizer, chat format
    and stop tokens of ``self.checkpoint``'s directory for ``self.chat_choice``, loaded on first
    use, and the rendering of prompts with them; their call statistics; and ``with`` closing them
    (each engine's ``close`` frees its weights)."""

    checkpoint: Any
    chat_choice: str
    _tokenizer: Any
    _format: ChatFormat | None
    _stop_ids: list[int]
    _stats: BackendStats

    @property
    def stats(self) -> BackendStats:
        return self._stats

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Engine) -> _Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer, self._format, self._stop_ids = load_tokenizer(
                self.checkpoint.directory(), self.chat_choice
            )
        return self._tokenizer

    @property
    def tokenizer(self) -> Any:
        """The tokenizer, set up as the engines use it (left padding, a pad token)."""
        return self._ensure_tokenizer()

    @property
    def chat_format(self) -> ChatFormat:
        """The chat format prompts are rendered with (the model's template or a fallback)."""
        self._ensure_tokenizer()
        assert self._format is not None
        return self._format

    @property
    def stop_ids(self) -> list[int]:
        """Token ids that end an answer (the chat format's end of turn first)."""
        self._ensure_tokenizer()
        return list(self._stop_ids)

    def render(self, prompt: Sequence[Message]) -> str:
        """The exact text the model sees for ``prompt`` (generation prompt included)."""
        return render(self._ensure_tokenizer(), self.chat_format, prompt)

    def candidate_ids(self, candidates: Sequence[str]) -> list[list[int]]:
        """Each candidate answer as the model would write it: the format's answer prefix, its
        tokens, then the end of the turn."""
        if len(set(candidates)) != len(candidates):
            raise InwardError(f"Answer candidates must be distinct, got {list(candidates)}.")
        tok, end, prefix = self._ensure_tokenizer(), self.stop_ids[0], self.chat_format.answer_prefix
        return [list(tok(prefix + c, add_special_tokens=False)["input_ids"]) + [end] for c in candidates]

    def answer_texts(self, tokens: Sequence[tuple[int, float]]) -> dict[str, float]:
        """(token id, probability) pairs as a distribution over answer text, most likely first:
        tokens that read the same are summed (:func:`token_text`)."""
        dist: dict[str, float] = {}
        for token_id, p in tokens:
            text = token_text(self._ensure_tokenizer(), self.chat_format, token_id)
            dist[text] = dist.get(text, 0.0) + p
        return dict(sorted(dist.items(), key=lambda kv: -kv[1]))

    def answer_text(self, ids: Sequence[int]) -> str:
        """Generated token ids (stop token cut) as the answer: special tokens dropped, nothing
        stripped but the format's answer prefix."""
        text = self._ensure_tokenizer().decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return strip_answer_prefix(self.chat_format, text)
