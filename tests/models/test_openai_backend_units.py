"""Pieces of the API backends that need no server: model strings, args, keys, retries, prices."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys

import pytest

from inward.errors import InwardError
from inward.models import parse_model_string, resolve
from inward.models.api import api_seed, public_url
from inward.models.retry import (
    RetryError,
    RetryPolicy,
    Transient,
    call_with_retries,
    classify_status,
    parse_retry_after,
)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    for var in ("INWARD_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)


# ---- model strings -------------------------------------------------------------------------
def test_compatible_string_splits_at_the_url():
    from inward.models.openai_compat import split_compatible

    spec = parse_model_string("openai-compatible/org/model@v2@http://127.0.0.1:8000/v1/")
    assert split_compatible(spec.name, spec.raw) == ("org/model@v2", "http://127.0.0.1:8000/v1")
    with pytest.raises(InwardError, match="openai-compatible/<model>@<base_url>"):
        parse_model_string("openai-compatible/qwen")
    with pytest.raises(InwardError, match="http"):
        parse_model_string("openai-compatible/qwen@localhost:8000")


@pytest.mark.parametrize("url", ["http://me:s3cret-pw@h:1/v1", "http://h:1/v1?key=s3cret-pw", "https://h/v1#s3cret-pw"])
def test_credentials_never_echoed(url):
    with pytest.raises(InwardError, match="environment variable") as info:
        parse_model_string(f"openai-compatible/m@{url}")
    assert "s3cret-pw" not in str(info.value)


def test_api_providers_resolve_without_the_old_not_available_error(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    be = resolve("openai/gpt-4o-mini")  # constructed; no request is made until it is used
    assert (be.model, be.base_url, be.price()) == ("gpt-4o-mini", "https://api.openai.com/v1", (0.15, 0.60))


# ---- keys and args -------------------------------------------------------------------------
def test_openai_needs_its_key():
    with pytest.raises(InwardError, match=r"OPENAI_API_KEY, which is not set.*export OPENAI_API_KEY"):
        resolve("openai/gpt-4o-mini")


def test_compatible_key_is_optional_and_never_openai_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only")
    be = resolve("openai-compatible/q@http://127.0.0.1:9/v1")
    assert be.has_key is False and be.key_env == "INWARD_API_KEY"  # OpenAI's key stays home
    monkeypatch.setenv("INWARD_API_KEY", "sk-inward")
    assert resolve("openai-compatible/q@http://127.0.0.1:9/v1").has_key is True
    be = resolve("openai-compatible/q@http://127.0.0.1:9/v1", api_key_env="OPENAI_API_KEY")
    assert be.has_key is True and be.key_env == "OPENAI_API_KEY"


def test_key_is_not_a_model_arg(monkeypatch):
    with pytest.raises(InwardError, match="environment only"):
        resolve("openai-compatible/q@http://127.0.0.1:9/v1", api_key="sk-abc")
    with pytest.raises(InwardError, match="NAME of an environment variable"):
        resolve("openai-compatible/q@http://127.0.0.1:9/v1", api_key_env="sk-abc-123!")


def test_key_absent_from_repr_fingerprint_inputs_and_vars(monkeypatch):
    secret = "sk-unit-3c0ffee42"
    monkeypatch.setenv("INWARD_API_KEY", secret)
    be = resolve("openai-compatible/q@http://127.0.0.1:9/v1")
    assert secret not in repr(be)
    public = {k: v for k, v in vars(be).items() if k != "_ApiBackend__key"}
    assert secret not in repr(public)  # only the one private attribute holds it
    assert be.redact(f"bad key {secret} given") == "bad key [redacted] given"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"max_concurrency": "0"}, "max_concurrency"),
        ({"timeout": "soon"}, "timeout"),
        ({"distribution": "magic"}, "auto, logprobs or sampling"),
        ({"n_param": "maybe"}, "true or false"),
        ({"max_concurency": "4"}, "Unknown model arg"),
    ],
)
def test_bad_model_args(args, match):
    with pytest.raises(InwardError, match=match):
        resolve("openai-compatible/q@http://127.0.0.1:9/v1", **args)


def test_api_args_do_not_reach_local_backends():
    # One -M list serves both models of a run: the mock (local-style) backend ignores API args.
    be = resolve("mock/m", max_concurrency="4", dtype="bfloat16")
    assert be.dtype == "bfloat16"


def test_base_url_only_for_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert resolve("openai/gpt-4o", base_url="http://127.0.0.1:9/v1").base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(InwardError, match="part after '@'"):
        resolve("openai-compatible/q@http://127.0.0.1:9/v1", base_url="http://x/v1")


def test_modules_import_without_the_clients():
    code = (
        "import sys; sys.modules['openai'] = None; sys.modules['anthropic'] = None\n"
        "import inward.models.openai_compat, inward.models.anthropic_backend\n"
        "from inward.models import resolve\n"
        "from inward.errors import InwardError\n"
        "for s in ('openai-compatible/q@http://127.0.0.1:9/v1', 'anthropic/claude'):\n"
        "    try:\n"
        "        resolve(s)\n"
        "    except InwardError as e:\n"
        "        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'inward[api]'" in out and "pip install 'inward[anthropic]'" in out


# ---- small pure helpers --------------------------------------------------------------------
def test_public_url_drops_credentials():
    assert public_url("https://u:p@api.example.com:8443/v1/?k=1#f") == "https://api.example.com:8443/v1"


def test_api_seed_depends_on_seed_prompt_and_index_only():
    p = [{"role": "user", "content": "x"}]
    seeds = {api_seed(s, p, i) for s in range(3) for i in range(3)}
    assert len(seeds) == 9 and all(0 <= x < 2**31 for x in seeds)
    assert api_seed(1, p, 2) == api_seed(1, [dict(p[0])], 2)


def test_prices():
    from inward.models.openai_compat import price_for

    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_for("gpt-4o") == (2.50, 10.00)
    assert price_for("gpt-3.5-turbo-0125") == (0.50, 1.50)
    assert price_for("ft:gpt-4o-mini-2024-07-18:org:self-pred:abc123") == (0.30, 1.20)
    assert price_for("gpt-4o-audio-preview") is None and price_for("llama-3.1-70b") is None


# ---- retries -------------------------------------------------------------------------------
def test_retry_after_forms():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None and parse_retry_after({}) is None


def test_status_classification():
    assert classify_status(429, {"Retry-After": "2"}) == Transient("rate_limit", 2.0)
    assert classify_status(503, {}) == Transient("server_error", None)
    assert classify_status(529, {}).reason == "server_error"
    assert classify_status(400, {}) is None and classify_status(401, {}) is None and classify_status(404, {}) is None


def test_backoff_is_exponential_jittered_and_floored_by_retry_after():
    policy, rng = RetryPolicy(base_delay=1.0, max_delay=8.0), random.Random(0)
    for attempt in range(6):
        d = [policy.delay(attempt, None, rng) for _ in range(200)]
        cap = min(8.0, 2.0**attempt)
        assert 0 <= min(d) and max(d) <= cap and max(d) > 0.8 * cap  # full jitter up to the cap
    assert policy.delay(0, 5.0, rng) >= 5.0


class Boom(Exception):
    pass


def _run_retries(failures, policy, classify):
    calls, sleeps = [], []

    async def fn():
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    async def sleep(s):
        sleeps.append(s)

    result = asyncio.run(call_with_retries(fn, classify, policy, rng=random.Random(1), sleep=sleep))
    return result, calls, sleeps


def test_call_with_retries_retries_transients_then_succeeds():
    classify = lambda e: Transient("rate_limit", 2.0) if isinstance(e, Boom) else None  # noqa: E731
    result, calls, sleeps = _run_retries([Boom(), Boom()], RetryPolicy(max_retries=3, base_delay=0.1), classify)
    assert result == "ok" and len(calls) == 3 and all(s >= 2.0 for s in sleeps) and len(sleeps) == 2


def test_call_with_retries_gives_up_and_does_not_retry_permanent_errors():
    classify = lambda e: Transient("server_error") if isinstance(e, Boom) else None  # noqa: E731
    with pytest.raises(RetryError) as info:
        _run_retries([Boom()] * 5, RetryPolicy(max_retries=2, base_delay=0.0), classify)
    assert info.value.attempts == 3 and info.value.reason == "server_error"
    with pytest.raises(ValueError):
        _run_retries([ValueError("bad request")], RetryPolicy(max_retries=5), classify)
