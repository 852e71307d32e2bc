"""Activation files: a safetensors round trip whose tensor names and metadata say what they hold."""

from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open

from inward.store import activations as store


def test_round_trip_and_self_describing_names(tmp_path):
    values = np.random.default_rng(0).normal(size=(3, 2, 4)).astype(np.float32)
    acts = store.Activations(
        "qwen+lora", "hypothetical", (4, 12), (("t", "p", "a"), ("t", "p", "b"), ("t", "q", "a")), values
    )
    path = tmp_path / "deep" / "self-hypothetical.safetensors"
    store.save(path, acts)
    assert not list(path.parent.glob("*.tmp"))  # written under a temporary name, then renamed
    back = store.load(path)
    assert (back.model, back.prompt, back.layers, back.rows) == (acts.model, acts.prompt, acts.layers, acts.rows)
    np.testing.assert_array_equal(back.values, values)
    np.testing.assert_array_equal(back.at(12), values[:, 1])
    with safe_open(str(path), framework="numpy") as f:
        assert sorted(f.keys()) == ["qwen+lora|layer12|hypothetical", "qwen+lora|layer4|hypothetical"]
        assert json.loads(f.metadata()["rows"])[1] == ["t", "p", "b"]
    assert store.row_index(back.rows)[("t", "q", "a")] == 2
