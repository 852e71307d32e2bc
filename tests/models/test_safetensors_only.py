"""Weights are only read from safetensors: a folder holding a pickle is refused."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from inward.errors import InwardError
from inward.models import GenerationConfig, resolve
from inward.models.tiny import make_tiny_model


def test_pickled_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path / "cache"))
    d = make_tiny_model(tmp_path / "tiny")
    st = next(d.glob("*.safetensors"))
    torch.save(load_file(st), d / "pytorch_model.bin")  # the same weights, as a pickle
    st.unlink()
    model = resolve(f"hf/{d}", threads=1)
    prompt = [{"role": "user", "content": "hi"}]
    with pytest.raises(InwardError, match="Could not load model weights"):
        model.generate([prompt], GenerationConfig(max_tokens=2))
