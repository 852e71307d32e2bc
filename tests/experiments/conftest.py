"""Fixtures of the study tests: a private response cache and a pair of tiny random models."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(request, tmp_path_factory, monkeypatch):
    # Real-model tests use the machine's cache: a private one would convert the bundled models
    # again (3.5 GB of disk for Qwen 0.5B and Gemma) beside the machine's copies.
    if request.node.get_closest_marker("real_model") is None:
        monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "inward-cache"))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    from inward.models.tiny import make_tiny_model

    a = make_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)
    b = make_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)
    return f"hf/{a}", f"hf/{b}"
