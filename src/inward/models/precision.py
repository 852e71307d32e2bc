"""One precision resolver: ``dtype: auto`` becomes bfloat16 only where bf16 is measured faster.

A CPU flag is not enough. torch computes in bf16 on any CPU, but without native bf16 kernels it
converts to float32 and back around every matmul, slower than plain float32; and even with
AVX512-BF16 the gain on small layers can be too small to be worth bf16's rounding. So ``auto``
asks two things: does the hardware have native bf16 (:func:`hardware_bf16`), and are this
model's own layer matmuls (:func:`layer_shapes`) at least :data:`MIN_SPEEDUP` times faster in
bf16 than in float32 (:func:`time_matmuls`)? The answer is measured once per machine and model
shape and kept in ``<INWARD_CACHE_DIR>/precision.json``.

    >>> resolve("auto", hidden=896, intermediate=4864).dtype   # doctest: +SKIP
    'bfloat16'
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from inward.errors import InvalidValueError
from inward.models.paths import MeasurementFile

DTYPES = ("auto", "float32", "bfloat16", "float16")
MIN_SPEEDUP = 1.3  # bf16 must beat float32 by this much: below it, rounding costs more than speed buys
MIN_LAYER = 2**20
"""hidden x intermediate below which ``auto`` is float32 without timing: such a model's matmuls take
microseconds, call overhead decides the timing, and the choice would flip from run to run (tiny test
models are 32 x 64; Gemma 3 270M is 640 x 2048 = 1.3 M, Qwen 0.5B 896 x 4864 = 4.4 M)."""
ROUNDS = 3  # float32 and bf16 timed in turn this many times, so load elsewhere slows both, not one
FILE = "precision.json"
ENV_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
# oneDNN ISA caps below AVX512_CORE_BF16: kernels chosen under them have no bf16 instructions.
_ISA_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
_ISA_WITHOUT_AMX = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512"}


def parse_bf16(cpuinfo: str, machine: str, env: Mapping[str, str]) -> str:
    """The native CPU bf16 of a ``/proc/cpuinfo`` text: "amx_bf16", "avx512_bf16", "bf16" or "none".

    x86 reads the ``flags`` line, arm64 the ``Features`` line. On x86, ``ONEDNN_MAX_CPU_ISA`` below
    AVX512_CORE_BF16 gives "none": torch runs bf16 ``nn.Linear`` through oneDNN, and this cap sends
    oneDNN to kernels without bf16 instructions, so bf16 is emulated whatever the CPU has (measured
    on an AMD EPYC with AVX512-BF16, Qwen 0.5B layer matmuls: bf16 4.4x as fast as fp32 natively,
    0.34x under AVX2, 1.1x under AVX512_CORE). ``ATEN_CPU_CAPABILITY`` is not read here: it picks
    torch's own elementwise kernels, not oneDNN's; measured, ``avx2`` left those matmuls 4.4x
    faster in bf16 and a random 4-layer Qwen's prefill 3.9x (``default``: 2.5x). It is still part
    of the cache key, and :func:`resolve` times the matmuls under it. (On arm64 the variables
    name other ISAs and are not read.)
    """
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            break  # every processor lists the same flags
    if machine.lower() in ("aarch64", "arm64"):
        return "bf16" if "bf16" in flags else "none"
    isa = env.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa in _ISA_WITHOUT_BF16:
        return "none"
    if "amx_bf16" in flags and isa not in _ISA_WITHOUT_AMX:
        return "amx_bf16"
    return "avx512_bf16" if "avx512_bf16" in flags or "amx_bf16" in flags else "none"


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return f.read()
    except OSError:  # not Linux: no flags to read, so no bf16 is claimed
        return ""


def cpu_model(cpuinfo: str, machine: str) -> str:
    """The CPU's ``model name`` (x86), else its implementer/part numbers (arm64), else the machine."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    part = " ".join(fields[k] for k in ("cpu implementer", "cpu part") if fields.get(k))
    return f"{machine} {part}".strip()


def hardware_bf16(device: str | None = None) -> str:
    """Native bf16 here: "cuda", "amx_bf16", "avx512_bf16", "bf16" (arm64) or "none".

    ``device`` None checks CUDA first, then the CPU; "cpu" only the CPU. The CPU answer comes from
    /proc/cpuinfo and the environment (:func:`parse_bf16`), not from
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``, which says yes on any AVX-512 CPU without BF16.
    """
    if device is None or device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "cuda"
        if device is not None:
            return "none"
    return parse_bf16(_cpuinfo(), platform.machine(), os.environ)


def layer_shapes(hidden: int, intermediate: int, tokens: int = 64) -> list[tuple[int, int, int]]:
    """(m, k, n) of one decoder layer's matmuls for ``tokens`` rows: q, k, v, o, then gate, up, down.

    k and v are taken as wide as q (grouped-query attention makes them narrower; the MLP's three
    matmuls dominate anyway).
    """
    attention = [(tokens, hidden, hidden)] * 4
    return attention + [(tokens, hidden, intermediate)] * 2 + [(tokens, intermediate, hidden)]


def time_matmuls(shapes: Sequence[tuple[int, int, int]], dtype: Any, *, repeats: int = 5, device: str = "cpu") -> float:
    """Best-of-``repeats`` seconds for one ``F.linear`` per (m, k, n) shape in ``dtype``, after a warm-up.

    ``F.linear`` with an (n, k) weight is what an ``nn.Linear`` runs, so it takes the model's path.
    """
    import torch
    import torch.nn.functional as F

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    gen = torch.Generator().manual_seed(0)
    pairs = [
        (torch.randn(m, k, generator=gen).to(device, dtype), torch.randn(n, k, generator=gen).to(device, dtype))
        for m, k, n in shapes
    ]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = float("inf")
    with torch.inference_mode():
        for i in range(repeats + 1):  # the first pass warms up caches and kernel choices
            sync()
            start = time.perf_counter()
            for x, w in pairs:
                F.linear(x, w)
            sync()
            if i:
                best = min(best, time.perf_counter() - start)
    return best


@dataclass(frozen=True)
class Resolution:
    dtype: str  # what to load the model in
    requested: str
    reason: str  # one sentence for the user
    hardware: str
    fp32_s: float | None = None
    bf16_s: float | None = None
    speedup: float | None = None  # fp32_s / bf16_s

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def machine_parts(hardware: str, threads: int) -> tuple[Any, ...]:
    """What any speed measured here depends on: the CPU, its bf16 kernels, torch, the threads and
    the ISA caps in the environment (the start of every precision.json and engine.json key)."""
    import torch

    env = ",".join(f"{v}={os.environ.get(v, '')}" for v in ENV_VARS)
    return (cpu_model(_cpuinfo(), platform.machine()), hardware, torch.__version__, threads, env)


def _key(hardware: str, hidden: int, intermediate: int, device: str) -> str:
    import torch

    parts = (*machine_parts(hardware, torch.get_num_threads()), hidden, intermediate, device)
    return "|".join(str(p) for p in parts)


MEASUREMENTS = MeasurementFile(FILE)


def resolve(
    requested: str, *, hidden: int, intermediate: int, device: str = "cpu", remeasure: bool = False, repeats: int = 3
) -> Resolution:
    """The dtype to load a model of this shape in. Named dtypes pass through; ``"auto"`` is float32
    unless the hardware has native bf16 and bf16 runs the layer matmuls :data:`MIN_SPEEDUP` times
    faster. The measurement is cached per machine; ``remeasure`` times again and replaces it."""
    if requested not in DTYPES:
        raise InvalidValueError(f"Unknown dtype {requested!r}; use one of {', '.join(DTYPES)}.")
    hardware = hardware_bf16(device)
    if requested != "auto":
        return Resolution(requested, requested, "forced", hardware)
    if hardware == "none":
        return Resolution(
            "float32",
            requested,
            "float32: no native bfloat16 kernels here (CPU flags, or ONEDNN_MAX_CPU_ISA), so bfloat16 "
            "would be emulated and slower.",
            hardware,
        )
    if hidden * intermediate < MIN_LAYER:
        return Resolution(
            "float32",
            requested,
            f"float32: layers of {hidden} x {intermediate} are too small for bfloat16 to pay or to time reliably.",
            hardware,
        )
    key = _key(hardware, hidden, intermediate, device)
    entry = None if remeasure else MEASUREMENTS.load().get(key)
    if entry:
        return Resolution(
            entry["dtype"],
            requested,
            entry["reason"] + " (cached)",
            hardware,
            entry["fp32_s"],
            entry["bf16_s"],
            entry["speedup"],
        )
    shapes = layer_shapes(hidden, intermediate)
    fp32_s = bf16_s = float("inf")
    for _ in range(ROUNDS):
        fp32_s = min(fp32_s, time_matmuls(shapes, "float32", repeats=repeats, device=device))
        bf16_s = min(bf16_s, time_matmuls(shapes, "bfloat16", repeats=repeats, device=device))
    speedup = fp32_s / bf16_s
    dtype = "bfloat16" if speedup >= MIN_SPEEDUP else "float32"
    reason = (
        f"{dtype}: bfloat16 ran this model's layer matmuls {speedup:.2f}x as fast as float32 on "
        f"{hardware} (bfloat16 needs {MIN_SPEEDUP}x)."
    )
    MEASUREMENTS.store(
        key,
        {
            "dtype": dtype,
            "reason": reason,
            "fp32_s": fp32_s,
            "bf16_s": bf16_s,
            "speedup": speedup,
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    return Resolution(dtype, requested, reason, hardware, fp32_s, bf16_s, speedup)
