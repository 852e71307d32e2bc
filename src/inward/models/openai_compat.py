"""``openai/<model>`` and ``openai-compatible/<model>@<base_url>``: chat completions over HTTP.

One backend for OpenAI itself and for every server that speaks its chat-completions API: a vLLM
server, llama.cpp's server (``llama-server`` or ``python -m llama_cpp.server``), Together,
Fireworks, Ollama. It uses the official ``openai`` client (``pip install 'inward[api]'``); this
module imports without it and says so only when a backend is created.

Keys (environment only; see :mod:`inward.models.api`):

- ``openai/``: ``OPENAI_API_KEY`` (required); base URL ``https://api.openai.com/v1`` unless
  ``-M base_url=...``.
- ``openai-compatible/``: ``INWARD_API_KEY``, or the variable named by ``-M api_key_env=NAME``
  (e.g. ``TOGETHER_API_KEY``). Unset means no key: local servers accept any, and the client
  sends the placeholder ``EMPTY``. ``OPENAI_API_KEY`` is deliberately *not* a fallback here, so
  an OpenAI key is never sent to another host unless you name it.

Answer distributions come from ``logprobs``/``top_logprobs`` of the first generated token when
the server returns them (OpenAI, vLLM, llama.cpp; at most 20 alternatives). One small request
when the backend is first used finds out whether it does (and reads ``system_fingerprint``);
the fingerprint records the answer: where there are no logprobs, distributions are sampled (see
:mod:`inward.models.api`). Sampling with ``n > 1`` asks for ``n`` choices in one request; a server
that returns fewer (llama.cpp ignores ``n``) is asked once per remaining sample from then on.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from inward.errors import InwardError
from inward.models.api import ApiArgs, ApiBackend, Reply, public_url
from inward.models.args import check_base_url
from inward.models.base import Prompt
from inward.models.retry import Transient, classify_status, is_malformed_response
from inward.models.spec import ModelSpec

OPENAI_BASE_URL = "https://api.openai.com/v1"
COMPAT_KEY_ENV = "INWARD_API_KEY"
INSTALL_HINT = "Install the OpenAI client with `pip install 'inward[api]'` (or `pip install -e '.[api]'`)."
PROBE_PROMPT: Prompt = [{"role": "user", "content": "Reply with one word: ok"}]

# USD per million (prompt, completion) tokens: OpenAI's list prices as published in 2025, for a
# few models people run this study on. Check https://openai.com/api/pricing before trusting a
# total; a model not listed here reports cost None. "ft:" rows are fine-tuned models.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "ft:gpt-4o": (3.75, 15.00),
    "ft:gpt-4o-mini": (0.30, 1.20),
    "ft:gpt-4.1": (3.00, 12.00),
    "ft:gpt-4.1-mini": (0.80, 3.20),
    "ft:gpt-4.1-nano": (0.20, 0.80),
    "ft:gpt-3.5-turbo": (3.00, 6.00),
}
_SNAPSHOT = r"(-\d{4}-\d{2}-\d{2}|-\d{4})?"  # gpt-4o-2024-08-06, gpt-3.5-turbo-0125

# End-of-turn markers that servers running open models return as token text; the local backend
# decodes them as "" (the answer ended), so they are mapped to "" here too.
_SPECIAL_TOKEN = re.compile(r"^(<\|[A-Za-z0-9_]+\|>|</s>|<eos>|<end_of_turn>|\[/INST\])$")


class MalformedResponse(Exception):
    """The server answered 200 with something that is not a chat completion."""


def price_for(model: str) -> tuple[float, float] | None:
    """List price for an OpenAI model name, a dated snapshot of it, or a fine-tune of it."""
    name = model
    if model.startswith("ft:"):
        parts = model.split(":")  # ft:<base>:<org>:<suffix>:<id>
        name = "ft:" + (parts[1] if len(parts) > 1 else "")
    for key, price in PRICES.items():
        if re.fullmatch(re.escape(key) + _SNAPSHOT, name):
            return price
    return None


def _import_openai() -> Any:
    try:
        return importlib.import_module("openai")
    except ImportError:
        raise InwardError(
            f"The openai package is not installed; openai/ and openai-compatible/ models need it. {INSTALL_HINT}"
        ) from None


def split_compatible(name: str, raw: str) -> tuple[str, str]:
    """``<model>@<base_url>`` -> (model, base_url), split at the first '@' before http(s)://."""
    m = re.match(r"^(?P<model>.+?)@(?P<url>https?://.*)$", name)
    if m is None:
        raise InwardError(
            "Model string for openai-compatible/ must be openai-compatible/<model>@<base_url> with an "
            "http(s) base URL, e.g. openai-compatible/qwen@http://127.0.0.1:8000/v1."
        )
    check_base_url(m.group("url"), "openai-compatible/<model>@<base_url>")
    return m.group("model"), m.group("url").rstrip("/")


class OpenAIBackend(ApiBackend):
    """Chat completions behind inward's batched :class:`~inward.models.base.Backend` protocol.

    Model args (``-M key=value``): ``max_concurrency`` requests in flight (default 8);
    ``timeout`` seconds per request (60); ``max_retries`` (8) with ``retry_base_delay`` (0.5 s) and
    ``retry_max_delay`` (30 s); ``distribution`` auto | logprobs | sampling; ``distribution_samples``
    (20) when sampling; ``n_param`` (true) to ask for n choices per request; ``base_url`` (openai/
    only); ``api_key_env`` the NAME of the variable holding the key. The local-model args
    (``dtype``, ``threads``, ``batch_size``, ``device``) are accepted and ignored, so one ``-M`` list
    can serve a local object model and an API predictor.
    """

    supports_logprobs = True

    def __init__(self, spec: ModelSpec, **model_args: Any):
        self._openai = _import_openai()
        if spec.adapter is not None:
            raise InwardError(f"{spec.raw!r}: +lora: adapters apply only to local and vllm/ models.")
        args = ApiArgs.for_spec(spec, model_args)
        if spec.provider == "openai":
            self.provider = "openai"
            model, base_url = spec.name, args.base_url or OPENAI_BASE_URL
            key_env = args.api_key_env or "OPENAI_API_KEY"
            self.key_required = True
        elif spec.provider == "openai-compatible":
            self.provider = "openai-compatible"
            if args.base_url is not None:
                raise InwardError(f"-M base_url does not apply to {spec.raw!r}: the base URL is the part after '@'.")
            model, base_url = split_compatible(spec.name, spec.raw)
            key_env = args.api_key_env or COMPAT_KEY_ENV
            # A key named explicitly must be there; the default may be absent (local servers).
            self.key_required = args.api_key_env is not None
        else:
            raise InwardError(f"OpenAIBackend cannot run {spec.raw!r}.")
        if args.distribution == "sampling":
            self.supports_logprobs = False
        super().__init__(spec, model, base_url, args, key_env)

    # ---- provider hooks ------------------------------------------------------------------
    def _make_client(self, api_key: str | None) -> Any:
        return self._openai.AsyncOpenAI(
            api_key=api_key or "EMPTY",
            base_url=self.base_url,
            max_retries=0,  # every retry is ours (counted, tested, Retry-After honoured)
            timeout=self.args.timeout,
        )

    def price(self) -> tuple[float, float] | None:
        return price_for(self.model) if self.provider == "openai" else None

    def token_text(self, token: str) -> str:
        return "" if _SPECIAL_TOKEN.match(token) else token

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
        params: dict[str, Any] = {"model": self.model, "messages": list(prompt), "temperature": temperature}
        # OpenAI deprecated max_tokens for chat; most other servers only know max_tokens.
        params["max_completion_tokens" if self.provider == "openai" else "max_tokens"] = max_tokens
        if top_p != 1.0:
            params["top_p"] = top_p
        if n > 1:
            params["n"] = n
        if seed is not None:
            params["seed"] = seed
        if top_logprobs is not None:
            params["logprobs"] = True
            params["top_logprobs"] = top_logprobs
        response = await self._client.chat.completions.create(**params)
        return _reply(response)

    def _classify(self, exc: BaseException) -> Transient | None:
        oa = self._openai
        if isinstance(exc, oa.APITimeoutError):
            return Transient("timeout")
        if isinstance(exc, oa.APIConnectionError):
            return Transient("connection")
        if isinstance(exc, oa.APIStatusError):
            if exc.status_code == 429 and _error_code(exc) == "insufficient_quota":
                return None  # out of credit: waiting will not help
            return classify_status(exc.status_code, exc.response.headers)
        if isinstance(exc, (oa.APIResponseValidationError, MalformedResponse)) or is_malformed_response(exc):
            return Transient("malformed")
        return None

    def _explain(self, exc: BaseException) -> str:
        oa = self._openai
        where = public_url(self.base_url)
        if isinstance(exc, (oa.AuthenticationError, oa.PermissionDeniedError)):
            sent = f"the key in ${self.key_env}" if self.has_key else f"no key (${self.key_env} is unset)"
            return (
                f"{where} refused the request for model {self.model!r} with HTTP {exc.status_code}; "
                f"inward sent {sent}. Set {self.key_env} to a valid key (or name another variable "
                "with -M api_key_env=NAME)."
            )
        if isinstance(exc, oa.RateLimitError) and _error_code(exc) == "insufficient_quota":
            return (
                f"{where} says the account behind ${self.key_env} has no quota left (HTTP 429 "
                "insufficient_quota). Add credit or use another key; finished batches are cached."
            )
        if isinstance(exc, oa.NotFoundError):
            return (
                f"{where} has no model {self.model!r} (HTTP 404). Check the model name (GET "
                f"{where}/models lists what the server serves) and the base URL."
            )
        if isinstance(exc, oa.APIStatusError):
            return f"{where} rejected a request for model {self.model!r} (HTTP {exc.status_code}): {_message(exc)}"
        return f"Request to {where} (model {self.model!r}) failed: {type(exc).__name__}: {str(exc)[:300]}"

    def _probe_fingerprint(self) -> None:
        """One tiny request: is the server there, does it return logprobs, which system
        fingerprint does it report? Runs once, when the fingerprint is first needed."""
        wants = self.supports_logprobs
        try:
            reply = self._run(
                self._call(
                    explain=False,
                    prompt=PROBE_PROMPT,
                    max_tokens=1,
                    temperature=0.0,
                    top_p=1.0,
                    n=1,
                    seed=0,
                    top_logprobs=1 if wants else None,
                )
            )
        except self._openai.BadRequestError:
            if not wants:
                raise
            # Some servers reject the logprobs parameters outright: probe once more without.
            reply = self._run(
                self._call(
                    prompt=PROBE_PROMPT, max_tokens=1, temperature=0.0, top_p=1.0, n=1, seed=0, top_logprobs=None
                )
            )
            reply.first_token_logprobs = None
        except InwardError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise InwardError(self.redact(self._explain(exc))) from None
        if wants:
            self._logprobs_ok = reply.first_token_logprobs is not None
            if not self._logprobs_ok and self.args.distribution == "logprobs":
                raise InwardError(
                    f"{public_url(self.base_url)} returned no logprobs for {self.model!r}, and "
                    "-M distribution=logprobs requires them. Use -M distribution=auto (falls back to "
                    "sampling) or start the server with logprobs enabled (llama.cpp: --logits_all true)."
                )
        else:
            self._logprobs_ok = False
        self._system_fingerprint = reply.system_fingerprint


def _error_code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else getattr(exc, "code", None)
    return str(code) if code is not None else None


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return str(msg)[:300]
    return str(getattr(exc, "message", exc))[:300]


def _reply(response: Any) -> Reply:
    """Reduce a ChatCompletion to a :class:`Reply`; anything else is a malformed response."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse(f"response has no choices ({type(response).__name__})")
    try:
        ordered = sorted(choices, key=lambda c: c.index if isinstance(c.index, int) else 0)
        texts = [(c.message.content if c.message is not None else None) or "" for c in ordered]
    except AttributeError as exc:
        raise MalformedResponse(f"unexpected choice shape: {exc}") from None
    first: list[tuple[str, float]] | None = None
    lp = getattr(ordered[0], "logprobs", None)
    if lp is not None and getattr(lp, "content", None) is not None:
        content = lp.content
        if not content:
            first = []
        else:
            head = content[0]
            alts = getattr(head, "top_logprobs", None) or []
            first = [(a.token, float(a.logprob)) for a in alts] or [(head.token, float(head.logprob))]
    usage = getattr(response, "usage", None)
    return Reply(
        texts=texts,
        first_token_logprobs=first,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        system_fingerprint=getattr(response, "system_fingerprint", None) or None,
    )
