"""Activation files: one safetensors file per (model, prompt kind) of a study stage.

A file holds one float32 tensor per layer, named ``<model>|layer<i>|<prompt>`` (rows x hidden),
and its metadata (``model``, ``prompt``, ``layers``, and ``rows``: the JSON list of row keys in
tensor order), so a file read on its own says what it holds. Files are written atomically (a
temporary name, then a rename), so an interrupted run leaves no half file behind; whether a
stored file may be reused is the study's stage key (inward.store.stages), kept beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Activations:
    model: str
    prompt: str  # "object" | "hypothetical"
    layers: tuple[int, ...]
    rows: tuple[tuple[str, ...], ...]  # row keys, in tensor order
    values: np.ndarray  # [row, layer, hidden] float32

    def tensor_name(self, layer: int) -> str:
        return f"{self.model}|layer{layer}|{self.prompt}"

    def at(self, layer: int) -> np.ndarray:
        return self.values[:, self.layers.index(layer), :]


def save(path: Path, acts: Activations) -> None:
    from safetensors.numpy import save_file

    tensors = {acts.tensor_name(layer): np.ascontiguousarray(acts.at(layer)) for layer in acts.layers}
    meta = {
        "model": acts.model,
        "prompt": acts.prompt,
        "layers": json.dumps(list(acts.layers)),
        "rows": json.dumps([list(r) for r in acts.rows]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load(path: Path) -> Activations:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        layers = tuple(json.loads(meta["layers"]))
        rows = tuple(tuple(r) for r in json.loads(meta["rows"]))
        probe = Activations(meta["model"], meta["prompt"], layers, rows, np.zeros((0, 0, 0)))
        values = np.stack([f.get_tensor(probe.tensor_name(layer)) for layer in layers], axis=1)
    return Activations(meta["model"], meta["prompt"], layers, rows, values.astype(np.float32))


def row_index(rows: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    return {tuple(r): i for i, r in enumerate(rows)}
