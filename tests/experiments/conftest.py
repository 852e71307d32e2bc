"""Fixtures of the study tests: a private response cache and a pair of tiny random models."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "inward-cache"))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    from inward.models.tiny import make_tiny_model

    a = make_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)
    b = make_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)
    return f"hf/{a}", f"hf/{b}"
