"""Local HTTP test doubles for the API backends: a fake OpenAI chat-completions server and a
fault-injecting proxy. Both listen on 127.0.0.1 only, on a free port, in daemon threads.

FakeOpenAIServer answers deterministically from a hash of (messages, seed when sampling, choice
index), so tests can predict and compare its outputs; it records every request's body and
headers and the most requests it ever had in flight at once.

FaultProxy forwards to an upstream server and replaces chosen requests (counted from 1, in
arrival order, POSTs only) with a fault: ``429`` (with Retry-After), ``quota`` (OpenAI's 429
insufficient_quota, which no wait fixes), ``500``, ``hang`` (no answer
for ``hang_seconds``, longer than the client's timeout), ``drop`` (connection closed without a
response) or ``malformed`` (200 with a cut-off JSON body).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = "fox sheep duck panda rat cow dog cat horse goat rabbit deer chicken owl bee whale".split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()[:8], "big")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    def __init__(self) -> None:
        self.httpd: _Server | None = None
        self.thread: threading.Thread | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    @property
    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class FakeOpenAIServer(_Base):
    """A deterministic chat-completions server.

    ``logprobs``: "yes" (top_logprobs returned), "absent" (ignored, no logprobs field) or
    "reject" (400 when asked). ``honour_n``: return ``n`` choices, or one. ``delay``: seconds each
    request takes (to observe concurrency). ``key``: when set, requests without
    ``Authorization: Bearer <key>`` get 401 with OpenAI's error shape.
    """

    def __init__(
        self,
        *,
        logprobs: str = "yes",
        honour_n: bool = True,
        delay: float = 0.0,
        key: str | None = None,
        system_fingerprint: str | None = "fp_fake1",
    ):
        super().__init__()
        self.logprobs, self.honour_n, self.delay, self.key = logprobs, honour_n, delay, key
        self.system_fingerprint = system_fingerprint
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._serve(_OpenAIHandler)

    @staticmethod
    def answer(
        messages: list[dict], *, temperature: float = 0.0, seed: int | None = None, index: int = 0, max_tokens: int = 16
    ) -> str:
        """The text this server returns (so tests can predict it)."""
        user = " ".join(m["content"] for m in messages if m["role"] == "user")
        salt = [] if temperature == 0 else [seed, index, temperature]
        h = _h(messages, *salt)
        if "character" in user or "letter" in user:
            return "abcdefghij"[h % 10]
        words = [WORDS[_h(h, i) % len(WORDS)] for i in range(3)]
        return " ".join(words[:max_tokens])

    @staticmethod
    def top(messages: list[dict], k: int) -> list[tuple[str, float]]:
        """Deterministic first-token alternatives: ranked words with geometric probabilities."""
        h = _h(messages, "top")
        ranked = sorted(WORDS, key=lambda w: _h(h, w))[:k]
        return [(w, math.log(0.5 / 2**i)) for i, w in enumerate(ranked)]


class _OpenAIHandler(_Handler):
    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        srv: FakeOpenAIServer = self.owner
        raw = self._body()
        with srv._lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._handle(srv, raw)
        finally:
            with srv._lock:
                srv.in_flight -= 1

    def _handle(self, srv: FakeOpenAIServer, raw: bytes) -> None:
        auth = self.headers.get("Authorization", "")
        body = json.loads(raw)
        with srv._lock:
            srv.requests.append(body)
            srv.auth_headers.append(auth)
        if srv.delay:
            time.sleep(srv.delay)
        if srv.key is not None and auth != f"Bearer {srv.key}":
            given = auth.removeprefix("Bearer ")
            # OpenAI echoes part of a wrong key in its message; so does this fake.
            self._send(
                401, {"error": {"message": f"Incorrect API key provided: {given}.", "type": "invalid_request_error"}}
            )
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        if body.get("model") == "missing-model":
            self._send(404, {"error": {"message": "The model `missing-model` does not exist"}})
            return
        wants_lp = bool(body.get("logprobs"))
        if wants_lp and srv.logprobs == "reject":
            self._send(400, {"error": {"message": "logprobs is not supported"}})
            return
        messages = body["messages"]
        t = float(body.get("temperature", 1.0))
        n = int(body.get("n", 1)) if srv.honour_n else 1
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        choices = []
        for i in range(n):
            text = FakeOpenAIServer.answer(
                messages, temperature=t, seed=body.get("seed"), index=i, max_tokens=max_tokens
            )
            if max_tokens == 1:
                text = text.split(" ")[0]
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
            if wants_lp and srv.logprobs == "yes":
                k = int(body.get("top_logprobs") or 1)
                alts = FakeOpenAIServer.top(messages, k)
                choice["logprobs"] = {
                    "content": [
                        {
                            "token": alts[0][0],
                            "logprob": alts[0][1],
                            "bytes": None,
                            "top_logprobs": [{"token": w, "logprob": lp, "bytes": None} for w, lp in alts],
                        }
                    ]
                }
            choices.append(choice)
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": choices,
            "usage": {"prompt_tokens": 10, "completion_tokens": 3 * n, "total_tokens": 10 + 3 * n},
        }
        if srv.system_fingerprint:
            payload["system_fingerprint"] = srv.system_fingerprint
        self._send(200, payload)


class FaultProxy(_Base):
    """Forwards to ``upstream`` (host, port), injecting ``schedule[k]`` on the k-th POST."""

    def __init__(
        self,
        upstream_port: int,
        schedule: dict[int, str],
        *,
        retry_after: str = "1",
        hang_seconds: float = 5.0,
        upstream_timeout: float = 600.0,
    ):
        super().__init__()
        self.upstream_port = upstream_port
        self.schedule = dict(schedule)
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.upstream_timeout = upstream_timeout
        self.log: list[dict[str, Any]] = []  # ordinal, time, fault, path, body (sha256)
        self.bodies: list[bytes] = []  # bodies of forwarded (not faulted) POSTs
        self.auth_headers: list[str] = []
        self._count = 0
        self._lock = threading.Lock()
        self._serve(_ProxyHandler)

    def faults(self) -> list[str]:
        return [e["fault"] for e in self.log if e["fault"] != "forward"]

    def retry_gap(self, ordinal: int) -> float:
        """Seconds between request ``ordinal`` and the next request with the same body."""
        first = next(e for e in self.log if e["ordinal"] == ordinal)
        again = next(e for e in self.log if e["ordinal"] > ordinal and e["body"] == first["body"])
        return again["time"] - first["time"]


class _ProxyHandler(_Handler):
    def do_GET(self) -> None:
        self._forward("GET", b"")

    def do_POST(self) -> None:
        srv: FaultProxy = self.owner
        raw = self._body()
        with srv._lock:
            srv._count += 1
            k = srv._count
            fault = srv.schedule.get(k, "forward")
            srv.log.append(
                {
                    "ordinal": k,
                    "time": time.monotonic(),
                    "fault": fault,
                    "path": self.path,
                    "body": hashlib.sha256(raw).hexdigest(),
                }
            )
            srv.auth_headers.append(self.headers.get("Authorization", ""))
        if fault == "429":
            self._send(
                429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"Retry-After": srv.retry_after}
            )
        elif fault == "quota":
            self._send(
                429,
                {
                    "error": {
                        "message": "You exceeded your current quota",
                        "type": "insufficient_quota",
                        "code": "insufficient_quota",
                    }
                },
            )
        elif fault == "500":
            self._send(500, {"error": {"message": "The server had an error", "type": "server_error"}})
        elif fault == "hang":
            time.sleep(srv.hang_seconds)
            self.close_connection = True
        elif fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault == "malformed":
            self._send(200, b'{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [{"index": 0, "mess')
        else:
            with srv._lock:
                srv.bodies.append(raw)
            self._forward("POST", raw)

    def _forward(self, method: str, raw: bytes) -> None:
        srv: FaultProxy = self.owner
        conn = http.client.HTTPConnection("127.0.0.1", srv.upstream_port, timeout=srv.upstream_timeout)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        try:
            conn.request(method, self.path, body=raw or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
