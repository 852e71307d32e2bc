"""``anthropic/<model>``: Claude through Anthropic's Messages API.

Uses the official ``anthropic`` client (``pip install 'inward[anthropic]'``); this module imports
without it. The key comes from ``ANTHROPIC_API_KEY`` (or the variable named by
``-M api_key_env=NAME``) and nothing else; the base URL is ``https://api.anthropic.com`` unless
``-M base_url=...`` names a gateway.

What the Messages API cannot do, and what inward does instead:

- **No sampling parameters.** API version 2026-10-21 (what the ``anthropic`` 2.x client sends)
  rejects ``temperature``, ``top_p`` and ``top_k``, even at their defaults, and the client no
  longer has them. So every answer is a sample at the model's own default: "greedy" object-level
  answers from Claude are samples, not argmax decoding. inward sends no sampling parameters,
  warns once per backend when a config asked for greedy decoding or another temperature, counts
  those requests in ``stats.extra["temperature_not_applied"]``, and says so in the fingerprint.
- **No logprobs.** Answer distributions are sampled: ``distribution_samples`` one-token answers
  (see :mod:`inward.models.api`); the fingerprint says so.
- **No seed and no ``n``.** Every sample is its own request; nothing is repeatable except
  through the response cache.
- **System prompt is a parameter.** System messages are joined into ``system``; empty ones are
  dropped (the API rejects empty text blocks).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from inward.errors import InwardError
from inward.models.api import ApiArgs, ApiBackend, Reply, public_url
from inward.models.base import GenerationConfig, Prompt
from inward.models.retry import Transient, classify_status, is_malformed_response
from inward.models.spec import ModelSpec

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
INSTALL_HINT = (
    "Install the Anthropic client with `pip install 'inward[anthropic]'` (or `pip install -e '.[anthropic]'`)."
)


class MalformedResponse(Exception):
    """The server answered 200 with something that is not a Message."""


def _import_anthropic() -> Any:
    try:
        return importlib.import_module("anthropic")
    except ImportError:
        raise InwardError(
            f"The anthropic package is not installed; anthropic/ models need it. {INSTALL_HINT}"
        ) from None


def _api_version() -> str | None:
    """The ``anthropic-version`` the installed client sends (it decides what the API accepts)."""
    try:
        return importlib.import_module("anthropic._constants").ANTHROPIC_API_VERSION
    except (ImportError, AttributeError):
        return None


def to_messages(prompt: Prompt) -> tuple[str | None, list[dict[str, str]]]:
    """(system text or None, user/assistant messages) in the Messages API's shape."""
    system = [m["content"] for m in prompt if m.get("role") == "system" and m.get("content")]
    messages = [{"role": m["role"], "content": m["content"]} for m in prompt if m.get("role") != "system"]
    if not messages:
        raise InwardError("An anthropic/ prompt needs at least one user message.")
    return ("\n\n".join(system) if system else None), messages


class AnthropicBackend(ApiBackend):
    """Messages API behind inward's batched :class:`~inward.models.base.Backend` protocol.

    Model args as for :class:`~inward.models.openai_compat.OpenAIBackend`, except that
    ``distribution`` must be auto or sampling and ``n_param`` does not apply.
    """

    provider = "anthropic"
    supports_logprobs = False

    def __init__(self, spec: ModelSpec, **model_args: Any):
        self._anthropic = _import_anthropic()
        if spec.adapter is not None:
            raise InwardError(f"{spec.raw!r}: +lora: adapters apply only to local and vllm/ models.")
        args = ApiArgs.for_spec(spec, model_args)
        if args.distribution == "logprobs":
            raise InwardError(
                f"{spec.raw!r}: the Anthropic API returns no logprobs, so -M distribution=logprobs "
                "cannot work. Use -M distribution=sampling (the default for anthropic/)."
            )
        args = args.model_copy(update={"n_param": False})  # the Messages API has no n
        self._warned = False
        super().__init__(
            spec, spec.name, args.base_url or ANTHROPIC_BASE_URL, args, args.api_key_env or "ANTHROPIC_API_KEY"
        )

    def _identity(self) -> dict[str, Any]:
        return {
            "anthropic_version": _api_version(),
            "sampling": "model default: the Messages API takes no temperature or top_p",
            "seed": "not supported by the API",
        }

    def _check_generation(self, config: GenerationConfig) -> None:
        if config.temperature == 1.0 and config.top_p == 1.0:
            return
        extra = self._stats.extra
        extra["temperature_not_applied"] = extra.get("temperature_not_applied", 0) + 1
        if not self._warned:
            self._warned = True
            asked = "greedy decoding" if config.greedy else f"temperature {config.temperature}, top_p {config.top_p}"
            warnings.warn(
                f"{self.model_string}: the Anthropic Messages API takes no sampling parameters, so "
                f"{asked} cannot be applied; answers are samples at the model's default.",
                stacklevel=3,
            )

    def _make_client(self, api_key: str | None) -> Any:
        return self._anthropic.AsyncAnthropic(
            api_key=api_key, base_url=self.base_url, max_retries=0, timeout=self.args.timeout
        )

    async def _request(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        n: int,
        seed: int | None,
        top_logprobs: int | None,
    ) -> Reply:
        system, messages = to_messages(prompt)
        # temperature and top_p are not sent: the API rejects them (see the module doc).
        params: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": messages}
        if system is not None:
            params["system"] = system
        message = await self._client.messages.create(**params)
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            raise MalformedResponse(f"response has no content list ({type(message).__name__})")
        text = "".join(getattr(b, "text", "") or "" for b in content if getattr(b, "type", None) == "text")
        usage = getattr(message, "usage", None)
        return Reply(
            texts=[text],
            prompt_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        )

    def _classify(self, exc: BaseException) -> Transient | None:
        an = self._anthropic
        if isinstance(exc, an.APITimeoutError):
            return Transient("timeout")
        if isinstance(exc, an.APIConnectionError):
            return Transient("connection")
        if isinstance(exc, an.APIStatusError):
            return classify_status(exc.status_code, exc.response.headers)
        if isinstance(exc, (an.APIResponseValidationError, MalformedResponse)) or is_malformed_response(exc):
            return Transient("malformed")
        return None

    def _explain(self, exc: BaseException) -> str:
        an = self._anthropic
        where = public_url(self.base_url)
        if isinstance(exc, (an.AuthenticationError, an.PermissionDeniedError)):
            return (
                f"{where} refused the request for model {self.model!r} with HTTP {exc.status_code}. "
                f"Set {self.key_env} to a valid Anthropic API key."
            )
        if isinstance(exc, an.NotFoundError):
            return f"{where} has no model {self.model!r} (HTTP 404). Check the model name."
        if isinstance(exc, an.APIStatusError):
            body = getattr(exc, "body", None)
            err = body.get("error", body) if isinstance(body, dict) else None
            msg = err.get("message") if isinstance(err, dict) else str(exc)
            return f"{where} rejected a request for model {self.model!r} (HTTP {exc.status_code}): {str(msg)[:300]}"
        return f"Request to {where} (model {self.model!r}) failed: {type(exc).__name__}: {str(exc)[:300]}"
