"""What every backend behind an HTTP API shares: keys, concurrency, retries, stats, sampling.

The :class:`~inward.models.base.Backend` protocol is synchronous and batched; HTTP APIs are
fastest with many requests in flight. :class:`ApiBackend` bridges the two: each batch becomes
one request per prompt (or per sample), run on a private asyncio event loop in a background
thread with at most ``max_concurrency`` in flight, every request retried under
:mod:`inward.models.retry`, and the results returned in the order of the prompts. A request
that still fails after its retries fails the whole batch, and the rest of the batch is
cancelled: the cache then holds every earlier batch and none of this one, so a rerun resumes.

**Keys come from the environment only.** A key is read from an environment variable when the
backend is created, kept in one private attribute and handed to the provider's client; it is
never part of the model string, the fingerprint, stats, error messages or anything written to
disk. Messages that quote a server's reply are passed through :meth:`ApiBackend.redact` first.

**Answer distributions without logprobs** (Anthropic, or a server that does not return them):
``distribution_samples`` completions at temperature 1, each one token long (the first token's
text, the same quantity as the logprob path), and the empirical distribution of their texts.
With ``candidates``, the completions are short answers and each candidate's share of the samples
that match one exactly (whitespace around them ignored) is its probability.

Seeds: a sample requested on its own is sample ``i`` with ``seed = api_seed(seed, prompt, i)``,
so it depends on neither batching nor ``n``. Where the server honours ``n`` (OpenAI, vLLM), the
``n`` samples of a prompt come from one request seeded ``api_seed(seed, prompt, 0)``, which is
cheaper (the prompt is billed once) but ties the samples to ``n``; ``-M n_param=false`` asks once
per sample instead. Servers that ignore ``n`` (llama.cpp) are detected and asked once per
sample. Servers also apply their own sampler defaults (llama.cpp: top-k 40, min-p 0.05), so a
"temperature 1" sample differs between servers; the fingerprint keeps them apart. Hosted APIs treat the seed as best-effort (OpenAI) or have
none (Anthropic): their samples, and even their greedy answers, are not guaranteed repeatable;
the cache is what makes a run repeatable there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from inward.errors import InwardError
from inward.models.args import ApiArgs  # the API backends' -M args (re-exported)
from inward.models.base import BackendStats, DistributionConfig, GenerationConfig, Prompt
from inward.models.retry import RetryError, RetryPolicy, Transient, call_with_retries
from inward.models.spec import ModelSpec

T = TypeVar("T")

API_BACKEND_VERSION = 1  # bump when request shapes change what a model returns (cache keys)
CANDIDATE_MAX_TOKENS = 16  # sampled candidate answers: long enough for any short answer


def api_seed(seed: int, prompt: Prompt, index: int) -> int:
    """The API seed of sample ``index`` of ``prompt`` (31 bits: every server accepts it)."""
    key = json.dumps([seed, list(prompt), index], sort_keys=True).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFF_FFFF


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment: what may be written down about an endpoint."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def read_key(env_var: str, *, required: bool, purpose: str) -> str | None:
    """The API key in ``$env_var`` (stripped), or None when unset and not required."""
    value = os.environ.get(env_var, "").strip()
    if value:
        return value
    if required:
        raise InwardError(
            f"{purpose} needs an API key in the environment variable {env_var}, which is not set. "
            f"Run `export {env_var}=...` (keys are read from the environment only, never from "
            "model strings, configs or files)."
        )
    return None


@dataclass
class Reply:
    """One API response, reduced to what inward uses."""

    texts: list[str]
    # Top alternatives for the first generated token: (token text, logprob), or None when the
    # response carried no logprobs; [] when it had logprobs but generated no token.
    first_token_logprobs: list[tuple[str, float]] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    system_fingerprint: str | None = None


class _LoopThread:
    """A private event loop in a daemon thread: run coroutines from synchronous code, even when
    the caller is itself inside a running event loop (a notebook)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="inward-api", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


async def gather_or_cancel(aws: Sequence[Awaitable[T]]) -> list[T]:
    """Like ``asyncio.gather`` (results in order), but the first failure cancels the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ApiBackend:
    """Base of the HTTP API backends. Subclasses set the class attributes and implement
    :meth:`_make_client`, :meth:`_request`, :meth:`_classify` and :meth:`_explain`."""

    provider = "api"
    supports_logprobs = False
    key_required = True

    def __init__(self, spec: ModelSpec, model: str, base_url: str, args: ApiArgs, key_env: str):
        self.spec = spec
        self.model_string = spec.raw
        self.model = model
        self.base_url = base_url
        self.args = args
        self.key_env = key_env
        self.policy = RetryPolicy(args.max_retries, args.retry_base_delay, args.retry_max_delay)
        self.__key = read_key(key_env, required=self.key_required, purpose=f"{spec.raw!r}")
        self.has_key = self.__key is not None
        self._stats = BackendStats()
        self._stats.extra.update(
            requests=0,
            retries=0,
            retries_by_reason={},
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=None if self.price() is None else 0.0,
            distribution_method={},
        )
        self._loop: _LoopThread | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._fingerprint: dict[str, Any] | None = None
        self._logprobs_ok: bool | None = None if self.supports_logprobs else False
        self._n_ok: bool = args.n_param
        self._system_fingerprint: str | None = None
        self._rng = random.Random()
        self._lock = threading.Lock()

    # ---- what subclasses provide ---------------------------------------------------------
    def _make_client(self, api_key: str | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

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
    ) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> Transient | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _explain(self, exc: BaseException) -> str:  # pragma: no cover - abstract
        """A user-facing message for a failure that retrying cannot fix (not yet redacted)."""
        raise NotImplementedError

    def price(self) -> tuple[float, float] | None:
        """USD per million (prompt, completion) tokens, when known."""
        return None

    def _identity(self) -> dict[str, Any]:
        """Static part of the fingerprint (subclasses may add)."""
        return {}

    def _probe_fingerprint(self) -> None:
        """Learn, with one tiny request, what the fingerprint must record (subclasses)."""

    # ---- protocol ------------------------------------------------------------------------
    @property
    def stats(self) -> BackendStats:
        return self._stats

    def redact(self, text: str) -> str:
        key = self.__key
        if key and len(key) >= 4:
            text = text.replace(key, "[redacted]")
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_string!r})"

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._probe_fingerprint()
            fp = {
                "backend": f"{self.provider}-api",
                "api_backend_version": API_BACKEND_VERSION,
                "provider": self.provider,
                "model": self.model,
                "base_url": public_url(self.base_url),
                "system_fingerprint": self._system_fingerprint,
                "answer_distribution": self._distribution_method_name(),
                "deterministic": False,  # greedy and seeded sampling are best-effort on APIs
            }
            if not self._logprobs_ok:
                fp["distribution_samples"] = self.args.distribution_samples
            fp.update(self._identity())
            self._fingerprint = fp
        return dict(self._fingerprint)

    def _distribution_method_name(self) -> str:
        if self._logprobs_ok:
            return "logprobs: top-k of the first token (candidates: sampled)"
        return "sampled: empirical first token at temperature 1"

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        if not prompts:
            return []
        self._check_generation(config)
        t0 = time.perf_counter()
        out = self._run(gather_or_cancel([self._generate_one(p, config) for p in prompts]))
        self._stats.add_generate(len(prompts), len(prompts) * config.n, time.perf_counter() - t0)
        return out

    def answer_distribution(self, prompts: Sequence[Prompt], config: DistributionConfig) -> list[dict[str, float]]:
        if not prompts:
            return []
        if config.candidates and len(set(config.candidates)) != len(config.candidates):
            raise InwardError(f"Answer candidates must be distinct, got {list(config.candidates)}.")
        if self._logprobs_ok is None:
            self.fingerprint()  # probes whether the server returns logprobs
        t0 = time.perf_counter()
        out = self._run(gather_or_cancel([self._distribution_one(p, config) for p in prompts]))
        self._stats.add_distribution(len(prompts), time.perf_counter() - t0)
        return out

    def close(self) -> None:
        """Close the HTTP client and stop the event loop thread."""
        if self._loop is not None:
            if self._client is not None:
                try:
                    self._loop.run(self._aclose())
                except Exception:  # noqa: BLE001 - closing is best-effort
                    pass
            self._loop.stop()
        self._loop, self._client, self._semaphore = None, None, None

    def __enter__(self) -> ApiBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- machinery -----------------------------------------------------------------------
    def _check_generation(self, config: GenerationConfig) -> None:
        """Raise InwardError for a config this provider cannot honour (subclasses extend)."""

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
        return self._loop.run(coro)

    async def _aclose(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result

    async def _call(self, *, explain: bool = True, **kwargs: Any) -> Reply:
        """One request with bounded concurrency and retries. Failures become InwardError, except
        that with ``explain=False`` a non-transient client error propagates as it is."""
        if self._client is None:
            self._client = self._make_client(self.__key)
            self._semaphore = asyncio.Semaphore(self.args.max_concurrency)
        extra = self._stats.extra

        def on_retry(t: Transient) -> None:
            extra["retries"] += 1
            extra["retries_by_reason"][t.reason] = extra["retries_by_reason"].get(t.reason, 0) + 1

        async def attempt() -> Reply:
            assert self._semaphore is not None
            async with self._semaphore:  # held only while a request is in flight, not while waiting
                extra["requests"] += 1
                return await self._request(**kwargs)

        try:
            reply = await call_with_retries(attempt, self._classify, self.policy, on_retry=on_retry, rng=self._rng)
        except RetryError as exc:
            raise InwardError(self.redact(self._gave_up(exc))) from None
        except InwardError:
            raise
        except Exception as exc:  # noqa: BLE001 - explained, redacted, and not chained
            if not explain:
                raise
            raise InwardError(self.redact(self._explain(exc))) from None
        self._account(reply)
        return reply

    def _gave_up(self, exc: RetryError) -> str:
        where = f"{public_url(self.base_url)} (model {self.model!r})"
        if exc.reason == "connection":
            advice = "Cannot connect: check the server is running and the base URL is right."
        elif exc.reason == "timeout":
            advice = (
                f"Requests timed out after {self.args.timeout:g} s: raise -M timeout=SECONDS "
                "or lower -M max_concurrency."
            )
        elif exc.reason == "rate_limit":
            advice = "Still rate-limited: lower -M max_concurrency or raise -M max_retries."
        else:
            advice = "The server kept failing; finished batches are cached, so rerun to resume."
        return f"{self.provider} request to {where} failed after {exc.attempts} attempts ({exc.reason}). {advice}"

    def _account(self, reply: Reply) -> None:
        extra = self._stats.extra
        extra["prompt_tokens"] += reply.prompt_tokens
        extra["completion_tokens"] += reply.completion_tokens
        price = self.price()
        if price is not None:
            cost = (reply.prompt_tokens * price[0] + reply.completion_tokens * price[1]) / 1e6
            extra["cost_usd"] = round(extra["cost_usd"] + cost, 8)
        if reply.system_fingerprint and self._system_fingerprint is None:
            self._system_fingerprint = reply.system_fingerprint

    def _count_method(self, name: str) -> None:
        methods = self._stats.extra["distribution_method"]
        methods[name] = methods.get(name, 0) + 1

    async def _generate_one(self, prompt: Prompt, config: GenerationConfig) -> list[str]:
        if config.greedy:
            reply = await self._call(
                prompt=prompt,
                max_tokens=config.max_tokens,
                temperature=0.0,
                top_p=1.0,
                n=1,
                seed=config.seed,
                top_logprobs=None,
            )
            return reply.texts[:1]
        return await self._sample(prompt, config.n, config.max_tokens, config.temperature, config.top_p, config.seed)

    async def _sample(
        self, prompt: Prompt, n: int, max_tokens: int, temperature: float, top_p: float, seed: int
    ) -> list[str]:
        """``n`` sampled completions: one request with ``n`` where the server honours it, else
        one request per sample (each with its own seed)."""
        texts: list[str] = []
        if n > 1 and self._n_ok:
            reply = await self._call(
                prompt=prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                n=n,
                seed=api_seed(seed, prompt, 0),
                top_logprobs=None,
            )
            texts = list(reply.texts[:n])
            if len(texts) < n:
                self._n_ok = False  # the server ignores n: ask once per sample from now on
                self._stats.extra["n_param_ignored"] = True
        missing = range(len(texts), n)
        more = await asyncio.gather(
            *[
                self._call(
                    prompt=prompt,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    top_p=top_p,
                    n=1,
                    seed=api_seed(seed, prompt, i),
                    top_logprobs=None,
                )
                for i in missing
            ]
        )
        return texts + [r.texts[0] if r.texts else "" for r in more]

    async def _distribution_one(self, prompt: Prompt, config: DistributionConfig) -> dict[str, float]:
        if not config.candidates and self._logprobs_ok:
            k = max(1, min(config.top_k, self.max_top_logprobs))
            reply = await self._call(
                prompt=prompt, max_tokens=1, temperature=0.0, top_p=1.0, n=1, seed=0, top_logprobs=k
            )
            top = reply.first_token_logprobs
            if top:
                self._count_method("logprobs")
                dist: dict[str, float] = {}
                for token, logprob in top[: config.top_k]:
                    text = self.token_text(token)
                    dist[text] = dist.get(text, 0.0) + math.exp(logprob)
                return dict(sorted(dist.items(), key=lambda kv: -kv[1]))
            # No token came back (the answer was empty) or no logprobs at all: sample instead.
        return await self._sampled_distribution(prompt, config)

    max_top_logprobs = 20

    def token_text(self, token: str) -> str:
        """A returned token as answer text (subclasses map end-of-turn markers to "")."""
        return token

    async def _sampled_distribution(self, prompt: Prompt, config: DistributionConfig) -> dict[str, float]:
        n = self.args.distribution_samples
        seed = 1_000_003  # fixed: a distribution is a function of the prompt, like the logprob path
        if config.candidates:
            self._count_method("sampled-candidates")
            texts = await self._sample(prompt, n, CANDIDATE_MAX_TOKENS, 1.0, 1.0, seed)
            wanted = {c.strip(): c for c in config.candidates}
            counts = Counter(wanted[t.strip()] for t in texts if t.strip() in wanted)
            total = sum(counts.values())
            if total == 0:
                self._stats.extra["distribution_no_candidate_sampled"] = (
                    self._stats.extra.get("distribution_no_candidate_sampled", 0) + 1
                )
                return {c: 0.0 for c in config.candidates}
            return {c: counts.get(c, 0) / total for c in config.candidates}
        self._count_method("sampled")
        texts = await self._sample(prompt, n, 1, 1.0, 1.0, seed)
        counts = Counter(self.token_text(t) for t in texts)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: config.top_k]
        return {text: c / n for text, c in ranked}
