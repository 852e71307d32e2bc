"""The one protocol every model backend implements, and the records it exchanges.

A backend has three capabilities, all batched and order-preserving:

1. ``generate`` with ``temperature == 0``: greedy decoding, one completion per prompt.
2. ``generate`` with ``temperature > 0``: seeded sampling of ``n`` completions per prompt. The
   randomness of sample ``i`` of a prompt depends only on (seed, prompt, i), never on how the
   prompts were batched, so a resumed run reproduces the samples it lost.
3. ``answer_distribution``: the probability distribution of a short answer computed from one
   forward pass over the prompt, without generating: the next-token distribution at the start of
   the assistant turn (top-k tokens, decoded), or, when ``candidates`` are given, normalised
   sequence probabilities of those candidate answers.

"The model" is (weights, backend, precision, adapter, chat template): :meth:`Backend.fingerprint`
returns all of them, and every cache key includes it, so behaviour and hypotheticals collected
with different backends or precisions are never mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from inward.errors import InvalidValueError
from inward.records import Message as Message  # re-exported: the backends' prompt types
from inward.records import Prompt as Prompt


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode. Part of every cache key.

    ``temperature == 0`` means greedy decoding and requires ``n == 1``.
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise InvalidValueError(f"max_tokens must be >= 1, got {self.max_tokens}.")
        if not (0.0 <= self.temperature <= 10.0):
            raise InvalidValueError(
                f"temperature must be in [0, 10] (0 = greedy; the paper samples at 1.0), got {self.temperature}."
            )
        if not (0.0 < self.top_p <= 1.0):
            raise InvalidValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.n < 1:
            raise InvalidValueError(f"n (samples per prompt) must be >= 1, got {self.n}.")
        if self.temperature == 0.0 and self.n != 1:
            raise InvalidValueError(
                "greedy decoding (temperature 0) gives one completion; use n=1 or a temperature > 0."
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DistributionConfig:
    """How to read an answer distribution from one forward pass. Part of every cache key.

    With ``candidates`` empty: the top ``top_k`` next tokens at the start of the answer, keyed by
    their decoded text (tokens that decode to the same text are summed). With ``candidates``:
    the probability of each candidate string as the whole answer, renormalised over the
    candidates.
    """

    top_k: int = 20
    candidates: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "candidates": list(self.candidates)}


@dataclass
class BackendStats:
    """Counts of real model work (cache hits are not counted here)."""

    generate_calls: int = 0
    prompts_generated: int = 0
    completions_generated: int = 0
    distribution_calls: int = 0
    prompts_scored: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def add_generate(self, prompts: int, completions: int, seconds: float, tokens: int | None = None) -> None:
        """Count one ``generate`` call (``tokens``: new tokens, where the backend knows them)."""
        self.generate_calls += 1
        self.prompts_generated += prompts
        self.completions_generated += completions
        self.seconds += seconds
        if tokens is not None:
            self.extra["tokens_generated"] = self.extra.get("tokens_generated", 0) + tokens

    def add_distribution(self, prompts: int, seconds: float) -> None:
        """Count one ``answer_distribution`` call."""
        self.distribution_calls += 1
        self.prompts_scored += prompts
        self.seconds += seconds


@runtime_checkable
class Backend(Protocol):
    """A language model behind inward's batched interface.

    Contract (every implementation keeps it; tests check it on the local backend):
    - ``generate(prompts, config)[i]`` is a list of ``config.n`` strings for ``prompts[i]``.
    - Order is preserved; backends may reorder internally (longest first, length buckets).
    - The returned text is the assistant's completion only, with special tokens removed and
      nothing stripped: leading spaces and newlines are part of the behaviour.
    - ``answer_distribution(prompts, config)[i]`` maps answer text to probability (values sum to
      at most 1 for top-k, exactly 1 over candidates).
    """

    model_string: str

    def fingerprint(self) -> dict[str, Any]:
        """JSON-able identity: backend, weights sha256, precision, adapter hash, chat template."""
        ...

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]: ...

    def answer_distribution(self, prompts: Sequence[Prompt], config: DistributionConfig) -> list[dict[str, float]]: ...

    @property
    def stats(self) -> BackendStats: ...
