"""Model backends: one batched protocol (:mod:`inward.models.base`), chosen by a model string.

    >>> from inward.models import resolve
    >>> model = resolve("bundled/qwen2.5-coder-0.5b-instruct", dtype="bfloat16")  # loads lazily

Importing this package is cheap (no torch); the local backend imports torch when resolved.
"""

from __future__ import annotations

from typing import Any

from inward.errors import InwardError
from inward.models.base import (
    Backend,
    BackendStats,
    DistributionConfig,
    GenerationConfig,
    Message,
    Prompt,
)
from inward.models.bundled import BundledModel
from inward.models.spec import ALL_MODEL_ARGS, MODEL_ARGS, ModelSpec, model_args_for, parse_model_string

__all__ = [
    "Backend",
    "BackendStats",
    "BundledModel",
    "DistributionConfig",
    "GenerationConfig",
    "MODEL_ARGS",
    "Message",
    "ModelSpec",
    "Prompt",
    "list_bundled",
    "parse_model_string",
    "resolve",
]


def resolve(model_string: str, **model_args: Any) -> Backend:
    """The backend for ``model_string`` (see :mod:`inward.models.spec`), weights not yet loaded.

    ``model_args`` are ``dtype``, ``threads``, ``batch_size``, ``device`` for local engines and
    :data:`~inward.models.spec.API_MODEL_ARGS` for API backends (strings accepted, as they come
    from ``-M key=value``); each backend receives the ones it takes.
    """
    spec = parse_model_string(model_string)
    # API backends check their own args (and refuse a key passed as one).
    if spec.provider in ("openai", "openai-compatible"):
        from inward.models.openai_compat import OpenAIBackend  # imports openai only when used

        return OpenAIBackend(spec, **model_args)
    if spec.provider == "anthropic":
        from inward.models.anthropic_backend import AnthropicBackend  # imports anthropic only when used

        return AnthropicBackend(spec, **model_args)
    unknown = sorted(set(model_args) - set(ALL_MODEL_ARGS))
    if unknown:
        raise InwardError(
            f"Unknown model arg(s) {unknown} for {model_string!r}; valid: {', '.join(model_args_for(spec.provider))}."
        )
    # One -M list serves every model of a run (an API model beside a local one): local engines
    # get only the args they take.
    model_args = {k: v for k, v in model_args.items() if k in MODEL_ARGS}
    if spec.provider == "mock":
        from inward.models.mock import MockBackend

        return MockBackend(spec, **model_args)
    if spec.provider in ("bundled", "hf", "gguf"):
        from inward.models.engine import choice

        picked = choice(spec, model_args)
        if picked.engine == "llama.cpp":
            from inward.models.llama_cpp_backend import LlamaCppBackend

            backend: Any = LlamaCppBackend(spec, **{**model_args, "engine": "llama.cpp"})
        else:
            from inward.models.local import LocalBackend

            backend = LocalBackend(spec, **{**model_args, "engine": "torch"})
        backend.engine_choice = picked  # why this engine (run.json records it)
        return backend
    if spec.provider == "vllm":
        from inward.models.vllm_backend import VLLMBackend  # imports vllm only when used

        return VLLMBackend(spec, **model_args)
    raise AssertionError(f"parse_model_string accepted provider {spec.provider!r} that resolve() lacks")


def list_bundled() -> list[BundledModel]:
    """The registered bundled models (see :mod:`inward.models.bundled`)."""
    from inward.models.bundled import REGISTRY

    return list(REGISTRY.values())
