"""Retrying API calls: which failures are worth another try, and how long to wait before it.

The provider clients' own retries are switched off (``max_retries=0``), so every retry happens
here, is counted in the backend's stats and can be tested. A call is retried on rate limits
(429), server errors (5xx, and 408/409/529), timeouts, dropped connections and malformed
responses; it fails at once on anything else (a bad request, a rejected key, an unknown model),
because repeating those cannot help.

Waits grow exponentially with full jitter (``uniform(0, min(cap, base * 2**attempt))``), so many
concurrent callers that failed together do not come back together; a server's ``Retry-After``
(or ``retry-after-ms``) sets a floor on the wait.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Status codes that say "try again later" rather than "this request is wrong".
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_RETRY_AFTER = 300.0  # seconds: longer than this and something is wrong; wait no longer


@dataclass(frozen=True)
class Transient:
    """Classification of a failure that may succeed on retry."""

    reason: str  # "rate_limit" | "server_error" | "timeout" | "connection" | "malformed"
    retry_after: float | None = None  # seconds the server asked us to wait, if it said


class RetryError(Exception):
    """A call still failed after every retry. ``last`` is the final failure."""

    def __init__(self, attempts: int, reason: str, last: BaseException):
        super().__init__(f"gave up after {attempts} attempts (last failure: {reason})")
        self.attempts, self.reason, self.last = attempts, reason, last


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts after the first; waits in seconds."""

    max_retries: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        backoff = rng.uniform(0.0, min(self.max_delay, self.base_delay * 2.0**attempt))
        if retry_after is not None:
            return max(min(retry_after, MAX_RETRY_AFTER), backoff)
        return backoff


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent
    or unreadable."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify_status(status: int, headers: Mapping[str, str] | None) -> Transient | None:
    """A transient classification for an HTTP error status, or None if retrying cannot help."""
    if status not in RETRY_STATUS and status < 500:
        return None
    reason = "rate_limit" if status == 429 else "server_error"
    return Transient(reason, parse_retry_after(headers))


def is_malformed_response(exc: BaseException) -> bool:
    """A body that was not the JSON the client expected (a proxy's HTML page, a cut-off body)."""
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return True
    try:
        import pydantic

        if isinstance(exc, pydantic.ValidationError):
            return True
    except ImportError:  # pragma: no cover - pydantic is a core dependency
        pass
    return False


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    classify: Callable[[BaseException], Transient | None],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[Transient], None] | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """``await fn()``, retrying transient failures (per ``classify``) under ``policy``.

    Non-transient exceptions propagate unchanged; after the last retry, :class:`RetryError`.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classify decides
            transient = classify(exc)
            if transient is None:
                raise
            if attempt >= policy.max_retries:
                raise RetryError(attempt + 1, transient.reason, exc) from None
            if on_retry is not None:
                on_retry(transient)
            await sleep(policy.delay(attempt, transient.retry_after, rng))
            attempt += 1
