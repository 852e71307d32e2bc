"""Measured load and generation speed of a local model on this machine (``inward models --measure``).

One measurement: load the converted checkpoint (conversion, if still needed, happens first and is
not timed), then greedy object-level answers to ``n`` seeded ``animals_long`` prompts in one
batched call, as the study generates them. Results are kept per machine in
``<INWARD_CACHE_DIR>/speed.json``, keyed by model, dtype, thread count and the CPU's bf16 kernels,
so ``inward models`` shows the figures measured on this kind of machine, or says there are none.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE = "speed.json"


@dataclass(frozen=True)
class Speed:
    model: str
    dtype: str
    threads: int
    cpu: str
    load_seconds: float
    prompts: int
    generated_tokens: int
    generate_seconds: float
    measured_at: str
    precision: str = ""  # why this dtype (inward.models.precision), for dtype auto

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.generate_seconds

    @property
    def prompts_per_second(self) -> float:
        return self.prompts / self.generate_seconds

    def line(self) -> str:
        return (
            f"load {self.load_seconds:.1f} s, greedy {self.tokens_per_second:.1f} tokens/s "
            f"({self.prompts_per_second:.2f} prompts/s, {self.prompts} prompts, {self.dtype}, "
            f"{self.threads} threads; measured {self.measured_at})"
            + (f"\n    precision: {self.precision}" if self.precision else "")
        )


def _key(model: str, dtype: str, threads: int, cpu: str) -> str:
    return f"{model}|{dtype}|{threads}|{cpu}"


def _cpu() -> str:
    from inward.store.stages import cpu_facts

    facts = cpu_facts()
    return f"{facts['model']} ({facts['bf16']})"


def _path() -> Path:
    from inward.models.paths import cache_dir

    return cache_dir() / FILE


def stored(model: str, dtype: str = "auto", threads: int | None = None) -> Speed | None:
    """The latest measurement of ``model`` on this kind of CPU (in ``dtype``; ``auto``: in
    whichever precision it resolved to), or None. Converts and loads nothing."""
    from inward.models.local import _cpu_count

    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    threads = threads or _cpu_count()
    rows = [
        Speed(**row)
        for row in data.values()
        if row["model"] == model
        and row["threads"] == threads
        and row["cpu"] == _cpu()
        and (dtype == "auto" or row["dtype"] == dtype)
    ]
    return max(rows, key=lambda s: s.measured_at) if rows else None


def measure(model: str, *, dtype: str = "auto", n: int = 16, threads: int | None = None) -> Speed:
    """Load ``model`` (a local model string) and time greedy generation; stores and returns it.
    ``auto`` is measured again (inward.models.precision) and the precision it picks is timed."""
    from inward.models import resolve
    from inward.models.base import GenerationConfig
    from inward.prompts import object_prompt
    from inward.tasks import get_task

    args: dict[str, Any] = {"dtype": dtype} | ({"threads": threads} if threads else {})
    from inward.models.local import LocalBackend

    backend = resolve(model, **args)
    if not isinstance(backend, LocalBackend):
        raise ValueError(f"{model!r} is not a local model; only local models have a load and generation speed here.")
    backend.checkpoint_dir()  # a first use converts the GGUF (minutes): not part of the load time
    if dtype == "auto":
        from inward.models.precision import resolve as resolve_precision

        hidden, intermediate = backend.checkpoint.layer_sizes()
        resolve_precision("auto", hidden=hidden, intermediate=intermediate, remeasure=True)
    t0 = time.perf_counter()
    backend.load()
    load = time.perf_counter() - t0
    task = get_task("animals_long")
    prompts = [object_prompt(task, s.string) for s in task.load("val", n, 0)]
    t0 = time.perf_counter()
    outputs = backend.generate(prompts, GenerationConfig(max_tokens=task.max_tokens))
    seconds = time.perf_counter() - t0
    tok = backend.tokenizer
    tokens = sum(len(tok(out[0], add_special_tokens=False)["input_ids"]) + 1 for out in outputs)  # + stop token
    speed = Speed(
        model,
        backend.dtype,
        backend.threads,
        _cpu(),
        round(load, 3),
        len(prompts),
        tokens,
        round(seconds, 3),
        time.strftime("%Y-%m-%d"),
        backend.precision.reason if dtype == "auto" else "",
    )
    backend.close()
    _save(speed)
    return speed


def _save(speed: Speed) -> None:
    from inward.store.rundir import atomic_write_text

    path = _path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[_key(speed.model, speed.dtype, speed.threads, speed.cpu)] = asdict(speed)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
