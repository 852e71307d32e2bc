"""Fixtures for backend tests: a tiny random checkpoint (not a real model) and an isolated cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path, monkeypatch):
    # Real-model tests use the machine's cache, so the one-off GGUF conversion is reused;
    # every other test gets its own throwaway cache directory.
    if request.node.get_closest_marker("real_model") is None:
        monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path / "inward-cache"))
        # One thread is plenty for the tiny model and immune to a busy machine's oversubscription.
        monkeypatch.setattr("inward.models.local._cpu_count", lambda: 1)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from inward.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="session")
def tiny_plain_dir(tmp_path_factory):
    """The tiny checkpoint without a chat template, to exercise the fallback."""
    from inward.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny_plain") / "ckpt", chat_template=False)


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    """One loaded tiny backend shared by the read-only tests (loading is the slow part)."""
    from inward.models import resolve

    return resolve(f"hf/{tiny_dir}", batch_size=3, threads=1)


@pytest.fixture(scope="session")
def prompts():
    # Lengths deliberately varied and not sorted, so length-sorting and padding are exercised.
    words = "fox sheep duck panda rat cow dog cat horse goat".split()
    return [
        [{"role": "system", "content": ""}, {"role": "user", "content": " ".join(words[: (i * 7) % 10 + 1]) + f" {i}"}]
        for i in range(7)
    ]
