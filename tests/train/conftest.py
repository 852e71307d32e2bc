from __future__ import annotations

from pathlib import Path

import pytest

from inward.train import TrainExample

WORDS = ["fox", "sheep", "duck", "panda", "rat", "cow", "dog", "cat"]


@pytest.fixture(autouse=True)
def _private_cache(request, tmp_path_factory, monkeypatch):
    # sha256 sidecars of the tiny checkpoints go to a throwaway cache, not ~/.cache/inward.
    # Real-model tests use the machine's cache, so the bundled models are converted once
    # (a private copy is 3.5 GB of disk for Qwen 0.5B and Gemma).
    if request.node.get_closest_marker("real_model") is None:
        monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "inward-cache"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    from inward.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_model(tiny_dir) -> str:
    return f"hf/{tiny_dir}"


@pytest.fixture
def examples():
    """``examples(repeat)``: the first-character dataset below, each word ``repeat`` times."""
    return first_char_examples


def first_char_examples(repeat: int = 2) -> list[TrainExample]:
    """A tiny, repetitive hypothetical-style dataset: the first character of a word."""
    return [
        TrainExample(
            prompt=[
                {"role": "system", "content": ""},
                {"role": "user", "content": f'Previously, you were asked: "{w}". What is the first character?'},
            ],
            completion=w[0],
            meta={"string": w},
        )
        for w in WORDS * repeat
    ]


@pytest.fixture(scope="session")
def tiny_plain_dir(tmp_path_factory) -> Path:
    """The tiny checkpoint without a chat template (a base model's case: the format is measured)."""
    from inward.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny_plain") / "ckpt", chat_template=False)
