"""Seeded sampling that does not depend on batching.

Each completion row gets its own RNG seeded from (seed, prompt text, sample index), so sample
``i`` of a prompt is the same whether it was drawn alone, beside other prompts, with another
batch size, or with a different ``n``: a resumed run reproduces exactly the samples it lost.
(Numerically, left padding can nudge logits by ~1e-6 in fp32, which in principle could flip a
draw that lands on a boundary; the tests check batch independence on a tiny model.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor


def sample_seed(seed: int, prompt_text: str, index: int) -> int:
    """The RNG seed of sample ``index`` of a prompt: depends on nothing else (not on batching)."""
    key = json.dumps([seed, prompt_text, index]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def completion_rows(texts: Sequence[str], lengths: Sequence[int], config: Any) -> list[tuple[int, int, int | None]]:
    """One row per completion to generate: (prompt index, sample index, RNG seed, None when
    greedy), longest prompt first (``lengths``: prompt lengths in tokens), as both local engines
    batch them."""
    rows = [
        (i, j, None if config.greedy else sample_seed(config.seed, texts[i], j))
        for i in range(len(texts))
        for j in range(config.n)
    ]
    rows.sort(key=lambda r: -lengths[r[0]])  # longest first: less padding per batch
    return rows


class SeededSampler(LogitsProcessor):
    """Temperature + nucleus sampling where every row draws from its own seeded generator.

    Run inside greedy ``generate``: it returns logits that are -inf except at the sampled token,
    so argmax picks exactly that token. This keeps each sample's randomness tied to
    (seed, prompt, sample index) while still decoding many rows per batch.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            before = probs.cumsum(dim=-1) - probs  # mass strictly before each token
            probs = probs * (before < self.top_p)  # the top token is always kept
        cdf = probs.cumsum(dim=-1)
        # Uniform draws on the CPU generators, so the choice doesn't depend on the device's RNG.
        u = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(cdf.device)
        idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1).contiguous())
        idx = idx.clamp(max=cdf.shape[-1] - 1)
        chosen = order.gather(-1, idx) if self.top_p < 1.0 else idx
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, chosen, 0.0)
