"""Model arguments (``-M key=value`` on the command line, ``model_args:`` in a study config), one
pydantic model per kind of backend.

Values arrive as text from the command line or typed from YAML; each field says what it accepts,
so ``share_prefix=flase`` or ``batch_size=0`` is an error that names the argument and its value,
never a silent default. One ``-M`` list serves every model of a run (an API object model beside a
local predictor), so :func:`parse` is given only the keys a backend takes (``resolve`` filters by
:data:`inward.models.spec.MODEL_ARGS` / ``API_MODEL_ARGS``); an unknown key is still an error there.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from inward.errors import InwardError

A = TypeVar("A", bound="Args")


def check_base_url(url: str, where: str) -> None:
    """A base URL must be http(s) and carry no credentials (they would be written to run.json)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InwardError(f"{where}: expected an http:// or https:// base URL such as http://127.0.0.1:8000/v1.")
    if parts.username or parts.password or parts.query or parts.fragment:
        # Say where, never echo the URL: it may hold a secret.
        raise InwardError(
            f"{where}: the base URL carries user info, a query or a fragment. Put credentials in an "
            "environment variable (-M api_key_env=NAME) instead; inward writes model strings to "
            "run directories."
        )


def cpu_count() -> int:
    """The CPU cores this process may use (the default of the ``threads`` arg)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse(cls: type[A], model: str, args: Mapping[str, Any]) -> A:
    """``args`` validated as ``cls``; the first problem becomes an :class:`InwardError` naming the
    argument, the value given and what it accepts."""
    try:
        return cls.model_validate(dict(args))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        valid = ", ".join(cls.model_fields)
        if err["type"] == "extra_forbidden":
            raise InwardError(f"Unknown model arg {key!r} for {model!r}; valid: {valid}.") from None
        value = args.get(key)
        raise InwardError(f"Model arg {key}={value!r} for {model!r}: {_plain(err)}.") from None


def _plain(err: Mapping[str, Any]) -> str:
    """What the argument accepts, in the words of the rest of inward's errors."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in ("bool_parsing", "bool_type"):
        return "expected true or false"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "expected an integer"
    if kind in ("float_parsing", "float_type"):
        return "expected a number"
    if kind == "greater_than" and ctx.get("gt") == 0:
        return "expected a positive integer"
    if kind in ("greater_than", "greater_than_equal"):
        return f"expected a number {'>' if kind == 'greater_than' else '>='} {ctx.get('gt', ctx.get('ge'))}"
    if kind == "literal_error":
        return f"expected {str(ctx.get('expected')).replace(chr(39), '')}"  # 'a', 'b' or 'c' -> a, b or c
    return str(err["msg"]).removeprefix("Value error, ")


def _chat_format(v: str) -> str:
    from inward.models.chat import CHOICES

    if v not in CHOICES:
        raise ValueError(f"expected one of {', '.join(CHOICES)}")
    return v


class LocalArgs(Args):
    """transformers on this machine (``bundled/``, ``hf/``, ``gguf/``)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto: float32 unless this machine has native bf16 and runs the model's layers at least 1.3x
    faster in it (measured once per machine, inward.models.precision)."""
    threads: PositiveInt | None = None
    """CPU threads (default: every core this process may use)."""
    batch_size: PositiveInt = 32
    device: str = "auto"
    share_prefix: bool = True
    chat_format: str = "auto"
    engine: Literal["torch", "llama.cpp", "auto"] = "torch"
    """torch (transformers); llama.cpp (bundled/ and gguf/ models, on their GGUF file); auto: llama.cpp
    where it was measured faster on this machine (inward.models.engine)."""

    @field_validator("threads", mode="before")
    @classmethod
    def _auto(cls, v: Any) -> Any:
        return None if v in (None, "", "auto") else v

    @field_validator("chat_format")
    @classmethod
    def _format(cls, v: str) -> str:
        return _chat_format(v)


class VllmArgs(Args):
    """The vLLM offline engine (``vllm/``): the local args, read the vLLM way."""

    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    threads: Any = None  # accepted so one -M list serves every backend; vLLM does not use it
    batch_size: PositiveInt | None = None
    """vLLM's max_num_seqs (default: vLLM's own)."""
    device: str = "auto"
    share_prefix: Any = None  # a local-backend arg; vLLM caches prefixes itself
    chat_format: str = "auto"
    engine: Any = None  # a local-backend arg; vLLM is its own engine

    @field_validator("device")
    @classmethod
    def _gpu(cls, v: str) -> str:
        if v not in ("auto", "cuda"):
            raise ValueError(
                "vLLM uses the GPUs it can see; pass device=auto or cuda and pick GPUs with "
                "CUDA_VISIBLE_DEVICES (for CPU use hf/<model>)"
            )
        return v

    @field_validator("batch_size", mode="before")
    @classmethod
    def _default(cls, v: Any) -> Any:
        return None if v in (None, "") else v

    @field_validator("chat_format")
    @classmethod
    def _format(cls, v: str) -> str:
        return _chat_format(v)


class MockArgs(Args):
    """The mock backend takes the local args; only ``dtype`` is recorded (in its fingerprint)."""

    dtype: str = "float32"
    threads: Any = None
    batch_size: Any = None
    device: Any = None
    share_prefix: Any = None
    chat_format: Any = None
    engine: Any = None


class ApiArgs(Args):
    """HTTP API backends (``openai/``, ``openai-compatible/``, ``anthropic/``)."""

    max_concurrency: PositiveInt = 8
    timeout: float = Field(60.0, ge=0.001)
    max_retries: int = Field(8, ge=0)
    retry_base_delay: float = Field(0.5, ge=0.0)
    retry_max_delay: float = Field(30.0, ge=0.0)
    distribution: Literal["auto", "logprobs", "sampling"] = "auto"
    distribution_samples: PositiveInt = 20
    n_param: bool = True
    """Ask for n completions in one request where the server honours it."""
    base_url: str | None = None
    api_key_env: str | None = None
    ignored: dict[str, Any] = Field(default_factory=dict)
    """Local-engine args of the shared -M list, not used by this backend."""

    @classmethod
    def for_spec(cls, spec: Any, args: Mapping[str, Any]) -> ApiArgs:
        """The API args of a ``-M`` list shared with local models (their args are kept as ``ignored``)."""
        from inward.models.spec import API_MODEL_ARGS, MODEL_ARGS

        if "api_key" in args:
            raise InwardError(
                f"Model arg api_key is not accepted for {spec.raw!r}: keys come from the environment "
                "only (so they never land in run directories or logs). Put the key in an environment "
                "variable and name it with -M api_key_env=NAME if it is not the default one."
            )
        unknown = sorted(set(args) - set(API_MODEL_ARGS) - set(MODEL_ARGS))
        if unknown:
            raise InwardError(f"Unknown model arg(s) {unknown} for {spec.raw!r}; valid: {', '.join(API_MODEL_ARGS)}.")
        own = {k: v for k, v in args.items() if k in API_MODEL_ARGS}
        return parse(cls, spec.raw, {**own, "ignored": {k: v for k, v in args.items() if k in MODEL_ARGS}})

    @field_validator("timeout", "retry_base_delay", "retry_max_delay")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("expected a finite number")
        return v

    @field_validator("distribution", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return str(v).strip().lower() if v is not None else v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v

        url = v.strip()
        check_base_url(url, "-M base_url")
        return url

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        name = v.strip()
        if not name or not name.replace("_", "").isalnum():
            raise ValueError("expected the NAME of an environment variable (letters, digits, _), not a key")
        return name
