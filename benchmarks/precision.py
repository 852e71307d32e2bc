"""float32 vs bfloat16 matmul speed here, with native kernels and with AVX2-only kernels (both
variables, then each alone), and what ``dtype: auto`` (:func:`inward.models.precision.resolve`) picks in each.

Each setting runs in a fresh process: torch reads ``ATEN_CPU_CAPABILITY`` and oneDNN reads
``ONEDNN_MAX_CPU_ISA`` once, at start-up. The workloads: one 1024x896 @ 896x4864 matmul (a Qwen
0.5B MLP projection over 1024 tokens) and one decoder layer's matmuls over 64 tokens
(:func:`inward.models.precision.layer_shapes`) of Qwen 0.5B (896, 4864) and Gemma 270M (640, 2048).
``resolve`` runs with ``remeasure=True`` in a temporary cache, so nothing is left behind.

    python benchmarks/precision.py [--repeats 10]

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
SETTINGS = {  # "avx2" is the pair the brief asks about; the last two tell which of its variables matters
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
}
MODELS = {"qwen0.5b": (896, 4864), "gemma270m": (640, 2048)}


def child(repeats: int) -> dict:
    """Time every workload in fp32 and bf16 in this process, and resolve ``auto`` per model."""
    import torch

    from inward.models import precision

    workloads = {"matmul 1024x896@896x4864": [(1024, 896, 4864)]}
    workloads |= {f"layer {name} {h}/{i}": precision.layer_shapes(h, i) for name, (h, i) in MODELS.items()}
    rows = {}
    for name, shapes in workloads.items():
        flops = sum(2 * m * k * n for m, k, n in shapes)
        s = {"float32": float("inf"), "bfloat16": float("inf")}
        for _ in range(precision.ROUNDS):  # in turn, as resolve() times them
            for d in s:
                s[d] = min(s[d], precision.time_matmuls(shapes, d, repeats=repeats))
        rows[name] = {
            "fp32_gflops": flops / s["float32"] / 1e9,
            "bf16_gflops": flops / s["bfloat16"] / 1e9,
            "bf16_over_fp32": s["float32"] / s["bfloat16"],
        }
    picks = {
        name: precision.resolve("auto", hidden=h, intermediate=i, remeasure=True).to_json()
        for name, (h, i) in MODELS.items()
    }
    return {
        "hardware_bf16": precision.hardware_bf16("cpu"),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "rows": rows,
        "auto": picks,
    }


def run_setting(name: str, repeats: int, cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env |= SETTINGS[name] | {"INWARD_CACHE_DIR": cache}
    print(f"[{name}] timing ...", file=sys.stderr, flush=True)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--repeats", str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from inward.models import precision

    if args.child:
        print(json.dumps(child(args.repeats)))
        return
    with tempfile.TemporaryDirectory() as cache:
        results = {name: run_setting(name, args.repeats, cache) for name in SETTINGS}
    n = results["native"]
    best = f"best of {args.repeats} x {precision.ROUNDS}"
    print(f"{n['threads']} threads, torch {n['torch']}; GFLOP/s fp32 / bf16 (bf16 speedup), {best}")
    for name, r in results.items():
        print(
            f"  {name:12}: env {SETTINGS[name] or 'unset'}, torch cpu capability {r['cpu_capability']}, "
            f"hardware_bf16 {r['hardware_bf16']!r}"
        )
    print(f"{'workload':26}" + "".join(f"{name:>22}" for name in SETTINGS))
    for row in n["rows"]:
        cells = [r["rows"][row] for r in results.values()]
        print(
            f"{row:26}"
            + "".join(f"{c['fp32_gflops']:7.0f} /{c['bf16_gflops']:5.0f} ({c['bf16_over_fp32']:4.2f}x)" for c in cells)
        )
    for model in MODELS:
        for name, r in results.items():
            a = r["auto"][model]
            print(f"auto {model:10} {name:12}: {a['dtype']:8} ({a['reason']})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
