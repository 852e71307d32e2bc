"""``mock/<name>``: a TEST DOUBLE, not a model. Deterministic, instantaneous, no torch.

Use it to test code that drives backends (runners, caches, resumption) in CI. Its "completions"
are picked from small word lists by sha256 of (model name, prompt), plus (seed, sample index)
when sampling, so the same inputs always give the same outputs and different names behave like
different models. Prompts that ask for a single character, word, number, yes/no, true/false or
A/B get a short answer of that kind. It counts work in :attr:`stats` exactly as real backends do.

Two environment knobs exist for crash tests that kill a real process mid-run:
``INWARD_MOCK_LATENCY`` (seconds of sleep per prompt, so a run takes long enough to be killed)
and ``INWARD_MOCK_CALL_LOG`` (a file that gets one line per prompt the mock really computed, so
a test can count repeated work across killed runs). Neither changes any output.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from inward.models.base import BackendStats, DistributionConfig, GenerationConfig, Prompt
from inward.models.spec import ModelSpec

WORDS = (
    "fox sheep duck panda rat cow dog cat horse goat rabbit deer chicken owl bee whale "
    "apple river stone cloud seven blue table light"
).split()
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
DIGITS = list("0123456789")

MOCK_VERSION = 1  # bump when the outputs change, so caches keyed on the fingerprint miss


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts).encode()).digest()[:8], "big")


def _answer_kind(prompt: Prompt) -> list[str] | None:
    """The short-answer options a prompt asks for, or None for free text."""
    text = " ".join(m.get("content", "") for m in prompt if m.get("role") == "user").lower()
    if "true" in text and "false" in text:
        return ["true", "false"]
    if "yes" in text and "no" in text.split():
        return ["yes", "no"]
    if "(a)" in text and "(b)" in text:
        return ["A", "B"]
    if "character" in text or "letter" in text:
        return LETTERS
    if "number" in text or "digit" in text:
        return DIGITS
    if "word" in text and "words" not in text:
        return WORDS
    return None


def _simulate_work(kind: str, prompts: Sequence[Prompt]) -> None:
    latency = float(os.environ.get("INWARD_MOCK_LATENCY", "0") or 0)
    if latency > 0:
        time.sleep(latency * len(prompts))
    log = os.environ.get("INWARD_MOCK_CALL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            for p in prompts:
                digest = hashlib.sha256(json.dumps(list(p), sort_keys=True).encode()).hexdigest()
                f.write(f"{kind} {digest[:16]}\n")


class MockBackend:
    """Test double behind the :class:`~inward.models.base.Backend` protocol (see module doc)."""

    def __init__(self, spec: ModelSpec, *, dtype: str = "float32", **ignored: Any):
        from inward.models.args import MockArgs, parse

        args = parse(MockArgs, spec.raw, {"dtype": dtype, **ignored})
        self.spec = spec
        self.model_string = spec.raw
        self.dtype = str(args.dtype)  # only recorded, so fingerprints differ by precision like real ones
        self._stats = BackendStats()

    @property
    def stats(self) -> BackendStats:
        return self._stats

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": "mock",
            "model": self.spec.base,
            "weights_sha256": hashlib.sha256(self.spec.name.encode()).hexdigest(),
            "precision": self.dtype,
            "adapter_sha256": (hashlib.sha256(self.spec.adapter.encode()).hexdigest() if self.spec.adapter else None),
            "chat_template": {"source": "mock", "sha256": hashlib.sha256(b"mock").hexdigest()},
            "mock_version": MOCK_VERSION,
        }

    def _key(self, prompt: Prompt) -> str:
        return self.spec.raw + "\n" + json.dumps(list(prompt), sort_keys=True)

    def _complete(self, prompt: Prompt, max_tokens: int, *salt: Any) -> str:
        h = _h(self._key(prompt), *salt)
        options = _answer_kind(prompt)
        if options is not None:
            return options[h % len(options)]
        k = 3 + h % 4  # 3..6 words, one "token" each
        words = [WORDS[_h(h, w) % len(WORDS)] for w in range(min(k, max_tokens))]
        return " ".join(words)

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        t0 = time.perf_counter()
        _simulate_work("generate", prompts)
        out = []
        for p in prompts:
            if config.greedy:
                out.append([self._complete(p, config.max_tokens)])
            else:
                out.append(
                    [self._complete(p, config.max_tokens, config.seed, i, config.temperature) for i in range(config.n)]
                )
        self._stats.add_generate(len(prompts), len(prompts) * config.n, time.perf_counter() - t0)
        return out

    def answer_distribution(self, prompts: Sequence[Prompt], config: DistributionConfig) -> list[dict[str, float]]:
        t0 = time.perf_counter()
        _simulate_work("distribution", prompts)
        out = []
        for p in prompts:
            if config.candidates:
                w = [1 + _h(self._key(p), c) % 100 for c in config.candidates]
                out.append({c: x / sum(w) for c, x in zip(config.candidates, w)})
                continue
            # The greedy answer's first word gets the most mass, as it would in a real model.
            top = self._complete(p, 1).split(" ")[0]
            others = [o for o in (_answer_kind(p) or WORDS) if o != top]
            others = sorted(others, key=lambda o: _h(self._key(p), o))[: max(0, config.top_k - 1)]
            dist = {top: 0.5}
            for rank, o in enumerate(others[:4]):
                dist[o] = 0.4 / 2 ** (rank + 1)  # 0.2, 0.1, ...: total stays below 1
            out.append(dict(list(dist.items())[: config.top_k]))
        self._stats.add_distribution(len(prompts), time.perf_counter() - t0)
        return out
