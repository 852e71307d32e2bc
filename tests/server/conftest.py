"""Fixtures for the API backend tests: fake servers, and a real llama.cpp server.

The real server (``@pytest.mark.server`` tests) is ``python -m llama_cpp.server`` from the
``server`` extra (``make test`` installs it), serving the bundled Qwen 0.5B GGUF. It starts once
per session on a free loopback port. Without the extra the server tests skip locally and fail
in CI (``CI`` set), so CI cannot go green without running them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # api_fakes, for the tests in this folder

from api_fakes import free_port  # noqa: E402

BUNDLED_QWEN = "qwen2.5-coder-0.5b-instruct"
SERVER_START_TIMEOUT = 240.0


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path, monkeypatch):
    # Every test gets its own response cache; the bundled GGUF stays in the machine's cache,
    # which the session-scoped server fixture resolved before this runs.
    monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path / "inward-cache"))
    for var in ("INWARD_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def _require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        msg = f"{module} is not installed: pip install -e '.[{extra}]' (make test does)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def openai_installed() -> None:
    _require("openai", "api")


@pytest.fixture
def fake_openai(openai_installed):
    """A factory of fake chat-completions servers, closed after the test."""
    from api_fakes import FakeOpenAIServer

    servers = []

    def make(**kwargs):
        servers.append(FakeOpenAIServer(**kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture(scope="session")
def qwen_gguf() -> Path:
    from inward.models import bundled

    missing = bundled.missing_packages(BUNDLED_QWEN)
    if missing:
        msg = f"bundled Qwen packages missing ({missing}): make setup installs them"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return bundled.gguf_path(BUNDLED_QWEN)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama.cpp server not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def llama_server(qwen_gguf, tmp_path_factory):
    """Base URL (``http://127.0.0.1:<port>/v1``) of a llama.cpp server running bundled Qwen 0.5B."""
    _require("llama_cpp", "server")
    _require("openai", "api")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(qwen_gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--logits_all",
        "true",  # chat logprobs need it
        "--n_threads",
        str(min(2, os.cpu_count() or 1)),
        "--verbose",
        "false",
    ]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url, proc, log, SERVER_START_TIMEOUT)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
