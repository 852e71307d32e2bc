"""The OpenAI-compatible backend against a local fake server (fast; no model).

What matters here: order and bounded concurrency, the n-parameter fallback and per-sample seeds,
logprob distributions and the sampling fallback (recorded in the fingerprint), retries on every
kind of fault with Retry-After honoured, errors that say what to do, token and cost accounting,
and that an API key never reaches the run directory or the cache.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from api_fakes import FakeOpenAIServer, FaultProxy, free_port

from inward.errors import InwardError
from inward.models import resolve
from inward.models.api import api_seed
from inward.models.base import DistributionConfig, GenerationConfig

FAST = {"retry_base_delay": "0.01", "retry_max_delay": "0.05"}


def prompts(k: int) -> list[list[dict]]:
    return [
        [{"role": "system", "content": ""}, {"role": "user", "content": f"Name some animals {i}."}] for i in range(k)
    ]


def backend(url: str, model: str = "fake", **args):
    return resolve(f"openai-compatible/{model}@{url}", **{**FAST, **args})


def test_generate_keeps_order_and_bounds_concurrency(fake_openai):
    srv = fake_openai(delay=0.15)
    ps = prompts(12)
    with backend(srv.url, max_concurrency=4) as be:
        out = be.generate(ps, GenerationConfig(max_tokens=8))
    assert out == [[FakeOpenAIServer.answer(p, max_tokens=8)] for p in ps]
    assert srv.max_in_flight == 4  # 12 slow requests: the bound was reached and never exceeded
    assert all(r["temperature"] == 0.0 and r["max_tokens"] == 8 and "n" not in r for r in srv.requests)
    assert be.stats.prompts_generated == 12 and be.stats.extra["requests"] == 12
    assert be.stats.extra["prompt_tokens"] == 120 and be.stats.extra["cost_usd"] is None


@pytest.mark.parametrize("honour_n", [True, False])
def test_sampling_uses_n_or_one_request_per_sample(fake_openai, honour_n):
    srv = fake_openai(honour_n=honour_n)
    ps = prompts(3)
    cfg = GenerationConfig(max_tokens=8, temperature=0.7, n=4, seed=11)
    with backend(srv.url) as be:
        out = be.generate(ps, cfg)
    for p, samples in zip(ps, out):
        s0 = api_seed(11, p, 0)
        if honour_n:
            want = [FakeOpenAIServer.answer(p, temperature=0.7, seed=s0, index=i) for i in range(4)]
        else:  # first request asked for n=4 and got one choice; the rest came one by one
            want = [FakeOpenAIServer.answer(p, temperature=0.7, seed=api_seed(11, p, i)) for i in range(4)]
        assert samples == want
    assert len(set(map(tuple, out))) == 3
    if honour_n:
        assert len(srv.requests) == 3 and all(r["n"] == 4 for r in srv.requests)
    else:
        assert be.stats.extra["n_param_ignored"] is True
        # Once the server was seen to ignore n, later prompts were not asked with n again
        # (prompts run concurrently, so up to all 3 may have asked before it was noticed).
        assert 3 * 4 <= len(srv.requests) <= 3 + 3 * 3 + 3


def test_distribution_from_logprobs(fake_openai):
    srv = fake_openai()
    ps = prompts(5)
    with backend(srv.url) as be:
        fp = be.fingerprint()
        dists = be.answer_distribution(ps, DistributionConfig(top_k=5))
    assert fp["answer_distribution"].startswith("logprobs")
    assert fp["system_fingerprint"] == "fp_fake1" and fp["base_url"] == srv.url
    for p, d in zip(ps, dists):
        assert d == pytest.approx({w: math.exp(lp) for w, lp in FakeOpenAIServer.top(p, 5)})
    asked = [r for r in srv.requests if r["messages"] != [{"role": "user", "content": "Reply with one word: ok"}]]
    assert all(r["logprobs"] is True and r["top_logprobs"] == 5 and r["max_tokens"] == 1 for r in asked)
    assert be.stats.extra["distribution_method"] == {"logprobs": 5}


@pytest.mark.parametrize("mode", ["absent", "reject"])
def test_distribution_falls_back_to_sampling(fake_openai, mode):
    srv = fake_openai(logprobs=mode)
    ps = prompts(3)
    with backend(srv.url, distribution_samples=8) as be:
        fp = be.fingerprint()
        dists = be.answer_distribution(ps, DistributionConfig(top_k=20))
    assert fp["answer_distribution"].startswith("sampled") and fp["distribution_samples"] == 8
    for p, d in zip(ps, dists):
        s0 = api_seed(1_000_003, p, 0)  # one request with n=8, at temperature 1, one token each
        words = [FakeOpenAIServer.answer(p, temperature=1.0, seed=s0, index=i, max_tokens=1) for i in range(8)]
        assert d == {w: words.count(w) / 8 for w in set(words)}
    assert be.stats.extra["distribution_method"] == {"sampled": 3}


def test_distribution_logprobs_required_but_missing(fake_openai):
    srv = fake_openai(logprobs="absent")
    with pytest.raises(InwardError, match="distribution=logprobs requires"):
        backend(srv.url, distribution="logprobs").fingerprint()


def test_candidates_are_sampled_and_renormalised(fake_openai):
    srv = fake_openai()
    p = [{"role": "user", "content": "Which character comes first?"}]
    cands = tuple("abcdefghij")
    with backend(srv.url, distribution_samples=10) as be:
        (d,) = be.answer_distribution([p], DistributionConfig(candidates=cands))
    assert set(d) == set(cands) and sum(d.values()) == pytest.approx(1.0)
    assert be.stats.extra["distribution_method"] == {"sampled-candidates": 1}


def test_openai_provider_prices_tokens(fake_openai, monkeypatch):
    srv = fake_openai()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    be = resolve("openai/gpt-4o-mini-2024-07-18", base_url=srv.url, **FAST)
    be.generate(prompts(4), GenerationConfig(max_tokens=5))
    assert all("max_completion_tokens" in r and "max_tokens" not in r for r in srv.requests)
    assert srv.auth_headers == ["Bearer sk-test-openai"] * 4
    # 4 requests x (10 prompt tokens at $0.15/M + 3 completion tokens at $0.60/M)
    assert be.stats.extra["cost_usd"] == pytest.approx(4 * (10 * 0.15 + 3 * 0.60) / 1e6)
    be.close()


def test_every_kind_of_fault_is_retried(fake_openai):
    srv = fake_openai()
    schedule = {1: "429", 2: "500", 3: "hang", 4: "drop", 5: "malformed"}
    with FaultProxy(srv.port, schedule, retry_after="1", hang_seconds=3) as proxy:
        ps = prompts(4)
        with backend(proxy.url, max_concurrency=1, timeout=1) as be:
            out = be.generate(ps, GenerationConfig(max_tokens=8))
    assert out == [[FakeOpenAIServer.answer(p, max_tokens=8)] for p in ps]
    assert proxy.faults() == ["429", "500", "hang", "drop", "malformed"]
    assert be.stats.extra["retries_by_reason"] == {
        "rate_limit": 1,
        "server_error": 1,
        "timeout": 1,
        "connection": 1,
        "malformed": 1,
    }
    assert be.stats.extra["retries"] == 5 and be.stats.extra["requests"] == 9
    assert len(srv.requests) == 4  # each prompt reached the server exactly once
    assert proxy.retry_gap(1) >= 1.0  # the rate-limited request waited out Retry-After: 1


def test_gives_up_with_advice_after_max_retries(fake_openai):
    srv = fake_openai()
    with FaultProxy(srv.port, {k: "500" for k in range(1, 10)}) as proxy:
        with pytest.raises(InwardError, match=r"failed after 3 attempts \(server_error\)"):
            backend(proxy.url, max_retries=2).generate(prompts(1), GenerationConfig(max_tokens=4))
    assert len(proxy.log) == 3


def test_out_of_quota_is_not_retried(fake_openai):
    srv = fake_openai()
    with FaultProxy(srv.port, {1: "quota"}) as proxy:
        with pytest.raises(InwardError, match="no quota left"):
            backend(proxy.url).generate(prompts(1), GenerationConfig(max_tokens=4))
    assert len(proxy.log) == 1 and srv.requests == []


def test_unreachable_server_says_so():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(InwardError, match="Cannot connect: check the server is running"):
        backend(url, max_retries=1).fingerprint()


def test_wrong_key_error_names_the_variable_not_the_key(fake_openai, monkeypatch):
    srv = fake_openai(key="sk-right-key")
    secret = "sk-wrong-KEY-7d41c0ffee"
    monkeypatch.setenv("INWARD_API_KEY", secret)
    with pytest.raises(InwardError) as info:
        backend(srv.url).generate(prompts(1), GenerationConfig(max_tokens=4))
    msg = str(info.value)
    assert "HTTP 401" in msg and "INWARD_API_KEY" in msg and secret not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained server text
    assert srv.auth_headers == [f"Bearer {secret}"]  # the key was really sent


def test_missing_model_error(fake_openai):
    srv = fake_openai()
    with pytest.raises(InwardError, match=r"has no model 'missing-model' \(HTTP 404\)"):
        backend(srv.url, model="missing-model").generate(prompts(1), GenerationConfig(max_tokens=4))


def test_named_key_variable_must_exist(fake_openai):
    srv = fake_openai()
    with pytest.raises(InwardError, match="TOGETHER_API_KEY, which is not set"):
        backend(srv.url, api_key_env="TOGETHER_API_KEY")


def _grep(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_evaluate_never_writes_the_key(fake_openai, tmp_path, monkeypatch):
    """`inward evaluate` against a keyed server: the run dir and the cache never hold the key."""
    from click.testing import CliRunner

    from inward.cli.main import cli

    secret = "sk-inward-DISTINCTIVE-3f9a1b7c5e"
    srv = fake_openai(key=secret)
    monkeypatch.setenv("INWARD_API_KEY", secret)
    cache, out = tmp_path / "cache", tmp_path / "run"
    monkeypatch.setenv("INWARD_CACHE_DIR", str(cache))
    args = [
        "evaluate",
        "--model",
        f"openai-compatible/fake@{srv.url}",
        "--task",
        "animals_long",
        "--property",
        "first_character",
        "--n",
        "4",
        "--out",
        str(out),
        "-M",
        "max_concurrency=2",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert len(srv.requests) >= 5 and set(srv.auth_headers) == {f"Bearer {secret}"}
    files = [p for p in list(out.rglob("*")) + list(cache.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files) and (out / "run.json").is_file()
    assert _grep(out, secret.encode()) == [] and _grep(cache, secret.encode()) == []
    assert _grep(out, b"3f9a1b7c5e") == [] and _grep(cache, b"3f9a1b7c5e") == []
    run = json.loads((out / "run.json").read_text())
    fp = next(iter(run["models"].values()))
    assert fp["base_url"] == srv.url and fp["provider"] == "openai-compatible"
    # A rerun is served from the cache: only the one fingerprint probe reaches the server.
    before = len(srv.requests)
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(srv.requests) == before + 1


def test_credentials_in_the_url_are_refused():
    with pytest.raises(InwardError, match="environment variable") as info:
        resolve("openai-compatible/m@http://user:hunter2@127.0.0.1:9/v1")
    assert "hunter2" not in str(info.value)
    with pytest.raises(InwardError) as info:
        resolve("openai-compatible/m@http://127.0.0.1:9/v1?api-key=hunter3")
    assert "hunter3" not in str(info.value)


def test_local_model_args_are_accepted_and_ignored(fake_openai):
    srv = fake_openai()
    be = backend(srv.url, dtype="bfloat16", threads="2", max_concurrency="3")
    assert be.args.max_concurrency == 3 and be.args.ignored == {"dtype": "bfloat16", "threads": "2"}
