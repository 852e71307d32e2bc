"""``anthropic/<model>`` against a local fake of the Messages API (no network here)."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inward.errors import InwardError
from inward.models import resolve
from inward.models.base import DistributionConfig, GenerationConfig

if importlib.util.find_spec("anthropic") is None:  # pragma: no cover - make test installs it
    if os.environ.get("CI"):
        raise RuntimeError("anthropic is not installed: pip install -e '.[anthropic]' (make test does)")
    pytest.skip("anthropic is not installed (pip install -e '.[anthropic]')", allow_module_level=True)

KEY = "sk-ant-test-9b1d77aa"
WORDS = ["fox", "owl", "cat", "dog"]


class FakeMessages:
    """POST /v1/messages. Answers "<word> <n>" where word cycles per request; ``faults`` is a
    list of (status, headers) returned for the first requests."""

    def __init__(self, faults: list[tuple[int, dict]] | None = None):
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.faults = list(faults or [])
        self.lock = threading.Lock()
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.requests.append(body)
                    owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                    k = len(owner.requests)
                    fault = owner.faults.pop(0) if owner.faults else None
                if fault is not None:
                    return self._send(
                        fault[0], {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, fault[1]
                    )
                given = self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")
                if given != KEY:
                    return self._send(
                        401,
                        {
                            "type": "error",
                            "error": {"type": "authentication_error", "message": f"invalid x-api-key {given}"},
                        },
                    )
                if any(k in body for k in ("temperature", "top_p", "top_k")):  # API 2026-10-21
                    return self._send(
                        400,
                        {
                            "type": "error",
                            "error": {
                                "type": "invalid_request_error",
                                "message": "temperature: Extra inputs are not permitted",
                            },
                        },
                    )
                if body["model"] == "claude-missing":
                    return self._send(
                        404, {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-missing"}}
                    )
                text = f"{WORDS[k % len(WORDS)]} {k}"
                if body["max_tokens"] == 1:
                    text = text.split(" ")[0]
                self._send(
                    200,
                    {
                        "id": f"msg_{k}",
                        "type": "message",
                        "role": "assistant",
                        "model": body["model"],
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 7, "output_tokens": 2},
                    },
                )

            def _send(self, status, payload, headers=None):
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    servers = []

    def make(**kw):
        servers.append(FakeMessages(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


pytestmark = pytest.mark.filterwarnings("ignore:.*takes no sampling parameters:UserWarning")

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name an animal."}]
FAST = {"retry_base_delay": "0.01", "retry_max_delay": "0.05"}


def test_generate_maps_system_and_records_usage(fake):
    srv = fake()
    be = resolve("anthropic/claude-test", base_url=srv.url, max_concurrency=1, **FAST)
    with pytest.warns(UserWarning, match="greedy decoding cannot be applied"):
        out = be.generate(
            [PROMPT, [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}]],
            GenerationConfig(max_tokens=5),
        )
    assert out == [["owl 1"], ["cat 2"]]
    first, second = srv.requests
    assert first["system"] == "Be brief." and first["messages"] == [{"role": "user", "content": "Name an animal."}]
    assert "system" not in second  # empty system prompts are dropped
    assert first["max_tokens"] == 5 and not {"temperature", "top_p", "top_k"} & set(first)
    assert srv.headers[0].get("x-api-key") == KEY or srv.headers[0]["authorization"] == f"Bearer {KEY}"
    assert be.stats.extra["prompt_tokens"] == 14 and be.stats.extra["completion_tokens"] == 4
    assert be.stats.extra["cost_usd"] is None and be.stats.extra["temperature_not_applied"] == 1
    fp = be.fingerprint()
    assert fp["provider"] == "anthropic" and fp["answer_distribution"].startswith("sampled")
    assert fp["sampling"].startswith("model default") and fp["anthropic_version"]
    assert KEY not in json.dumps(fp) and len(srv.requests) == 2  # no probe request for anthropic
    be.close()


def test_sampling_is_one_request_per_sample(fake):
    srv = fake()
    be = resolve("anthropic/claude-test", base_url=srv.url, max_concurrency=1, **FAST)
    (samples,) = be.generate([PROMPT], GenerationConfig(max_tokens=5, temperature=1.0, n=3))
    assert samples == ["owl 1", "cat 2", "dog 3"] and len(srv.requests) == 3
    assert all("n" not in r and "seed" not in r for r in srv.requests)
    assert "temperature_not_applied" not in be.stats.extra  # T=1 is the model's default


def test_distribution_is_sampled(fake):
    srv = fake()
    be = resolve("anthropic/claude-test", base_url=srv.url, distribution_samples=8, max_concurrency=1, **FAST)
    (dist,) = be.answer_distribution([PROMPT], DistributionConfig(top_k=3))
    # 8 one-token samples cycle through the 4 words: each 2 of 8; top_k keeps 3 of them.
    assert len(srv.requests) == 8 and all(r["max_tokens"] == 1 and "temperature" not in r for r in srv.requests)
    assert len(dist) == 3 and all(v == 0.25 for v in dist.values())
    assert be.stats.extra["distribution_method"] == {"sampled": 1}


def test_overloaded_and_rate_limited_are_retried(fake):
    srv = fake(faults=[(529, {}), (429, {"retry-after": "0"})])
    be = resolve("anthropic/claude-test", base_url=srv.url, **FAST)
    assert be.generate([PROMPT], GenerationConfig(max_tokens=5)) == [["dog 3"]]
    assert be.stats.extra["retries_by_reason"] == {"server_error": 1, "rate_limit": 1}


def test_wrong_key_and_unknown_model(fake, monkeypatch):
    srv = fake()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-5e5e5e5e")
    with pytest.raises(InwardError) as info:
        resolve("anthropic/claude-test", base_url=srv.url).generate([PROMPT], GenerationConfig(max_tokens=5))
    assert "HTTP 401" in str(info.value) and "ANTHROPIC_API_KEY" in str(info.value)
    assert "5e5e5e5e" not in str(info.value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with pytest.raises(InwardError, match=r"no model 'claude-missing' \(HTTP 404\)"):
        resolve("anthropic/claude-missing", base_url=srv.url).generate([PROMPT], GenerationConfig(max_tokens=5))


def test_refusals_that_need_no_server(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(InwardError, match="ANTHROPIC_API_KEY, which is not set"):
        resolve("anthropic/claude-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with pytest.raises(InwardError, match="no logprobs"):
        resolve("anthropic/claude-test", distribution="logprobs")
    assert resolve("anthropic/claude-test").base_url == "https://api.anthropic.com"
