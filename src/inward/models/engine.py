"""Which engine runs a local model: torch (transformers) or llama.cpp (the GGUF file itself).

``engine=torch`` (the default) and ``engine=llama.cpp`` are taken as given. ``engine=auto`` picks
llama.cpp for a ``bundled/`` or ``gguf/`` model only where llama-cpp-python is installed and a
timed check on this machine found it at least :data:`MIN_SPEEDUP` times as fast as torch (in the
precision ``dtype`` resolves to) on the study's two kinds of generation: 16 object-level answers
and 16 hypothetical answers (animals_long, first_word), one batched call each, summed. The result
is kept per machine in ``<INWARD_CACHE_DIR>/engine.json`` with the measured seconds, keyed by the
CPU, its bf16 kernels, thread count, both ISA variables, the model and the torch and
llama-cpp-python versions; :func:`choice` returns it with its reason, which ``inward models
--measure`` prints. The choice is per base model: an adapter runs on the engine its base got.

Measured on the 2-core AMD EPYC with AVX512-BF16 (benchmarks/engines.py): torch bfloat16 was
3.3-5.2x as fast as torch float32 and llama.cpp 0.8-3.1x on object-level answers and 0.7-1.0x on
hypothetical ones, so ``auto`` keeps torch there; llama.cpp can win where bf16 is not native.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from inward.errors import InwardError
from inward.models.paths import MeasurementFile
from inward.models.spec import ModelSpec

ENGINES = ("torch", "llama.cpp", "auto")
MIN_SPEEDUP = 1.2
N_PROMPTS = 16
FILE = "engine.json"


@dataclass(frozen=True)
class EngineChoice:
    engine: str
    reason: str
    torch_s: float | None = None
    llama_cpp_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def choice(spec: ModelSpec, model_args: Mapping[str, Any], remeasure: bool = False) -> EngineChoice:
    """The engine for this model and its ``engine`` arg, and why."""
    engine = str(model_args.get("engine") or "torch")
    if engine not in ENGINES:
        raise InwardError(f"Model arg engine={engine!r} for {spec.raw!r}: expected torch, llama.cpp or auto.")
    if engine != "auto":
        return EngineChoice(engine, "forced")
    if spec.provider not in ("bundled", "gguf"):
        return EngineChoice("torch", "torch: llama.cpp runs GGUF files (bundled/ and gguf/ models) only.")
    from inward.models.llama_cpp_backend import available

    if not available():
        return EngineChoice("torch", "torch: llama-cpp-python is not installed (make setup-server).")
    local = {k: v for k, v in model_args.items() if k != "engine"}
    key = _key(spec, local)
    entry = None if remeasure else MEASUREMENTS.load().get(key)
    if entry is None:
        entry = _measure(spec, local)
        MEASUREMENTS.store(key, entry)
    else:
        entry = {**entry, "reason": entry["reason"] + " (cached)"}
    return EngineChoice(entry["engine"], entry["reason"], entry["torch_s"], entry["llama_cpp_s"])


def _key(spec: ModelSpec, args: Mapping[str, Any]) -> str:
    import llama_cpp

    from inward.models.args import cpu_count
    from inward.models.precision import hardware_bf16, machine_parts

    threads = args.get("threads") or cpu_count()
    parts = (*machine_parts(hardware_bf16(), threads), spec.base, args.get("dtype") or "auto", llama_cpp.__version__)
    return "|".join(str(p) for p in parts)


def _measure(spec: ModelSpec, args: Mapping[str, Any]) -> dict[str, Any]:
    """Seconds for the same object-level and hypothetical prompts on each engine (loads not timed)."""
    from inward.models.base import GenerationConfig
    from inward.models.llama_cpp_backend import LlamaCppBackend
    from inward.models.local import LocalBackend
    from inward.prompts import hypothetical_prompt, object_prompt
    from inward.properties import resolve_property
    from inward.tasks import get_task

    base = ModelSpec(spec.provider, spec.name, None, spec.base)
    task = get_task("animals_long")
    strings = [s.string for s in task.load("val", N_PROMPTS, 0)]
    work = [
        ([object_prompt(task, s) for s in strings], task.max_tokens),
        (
            [hypothetical_prompt(task, "first_word", s) for s in strings],
            resolve_property("first_word").answer_tokens or 8,
        ),
    ]
    torch_backend = LocalBackend(base, **args)
    llama_backend = LlamaCppBackend(base, **{k: v for k, v in args.items() if k != "dtype"})
    seconds = {}
    for name, backend in (("torch", torch_backend), ("llama.cpp", llama_backend)):
        backend.load()
        t0 = time.perf_counter()
        for prompts, budget in work:
            backend.generate(prompts, GenerationConfig(max_tokens=budget))
        seconds[name] = time.perf_counter() - t0
        backend.close()
    torch_precision = torch_backend.dtype
    speedup = seconds["torch"] / seconds["llama.cpp"]
    engine = "llama.cpp" if speedup >= MIN_SPEEDUP else "torch"
    reason = (
        f"{engine}: llama.cpp ran {N_PROMPTS} object-level and {N_PROMPTS} hypothetical answers "
        f"{speedup:.2f}x as fast as torch in {torch_precision} ({seconds['llama.cpp']:.1f} s vs "
        f"{seconds['torch']:.1f} s; llama.cpp needs {MIN_SPEEDUP}x)."
    )
    return {
        "engine": engine,
        "reason": reason,
        "torch_s": round(seconds["torch"], 3),
        "llama_cpp_s": round(seconds["llama.cpp"], 3),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


MEASUREMENTS = MeasurementFile(FILE)
