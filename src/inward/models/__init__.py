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
from inward.models.spec import MODEL_ARGS, ModelSpec, parse_model_string

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

    ``model_args`` are ``dtype``, ``threads``, ``batch_size``, ``device`` (strings accepted, as
    they come from ``-M key=value``).
    """
    spec = parse_model_string(model_string)
    unknown = sorted(set(model_args) - set(MODEL_ARGS))
    if unknown:
        raise InwardError(
            f"Unknown model arg(s) {unknown} for {model_string!r}; valid: {', '.join(MODEL_ARGS)}."
        )
    if spec.provider == "mock":
        from inward.models.mock import MockBackend

        return MockBackend(spec, **model_args)
    if spec.provider in ("bundled", "hf", "gguf"):
        from inward.models.local import LocalBackend

        return LocalBackend(spec, **model_args)
    raise InwardError(
        f"Model provider {spec.provider!r} ({model_string!r}) is not available yet in this version. "
        "Use bundled/<name>, hf/<checkpoint>, gguf/<file> or mock/<name>."
    )


def list_bundled() -> list[BundledModel]:
    """The registered bundled models (see :mod:`inward.models.bundled`)."""
    from inward.models.bundled import REGISTRY

    return list(REGISTRY.values())
