"""Memory and time of loading a LoRA-finetuned model in bf16, two ways, each in a fresh process:

- ``via_fp32``: the whole base model loaded in fp32, the adapter merged, the weights copied into
  a second model loaded in bf16 (inward's only path before 2026-12-05; now the fallback for DoRA
  and other adapters the direct merge cannot take);
- ``direct``: the model loaded once in bf16, each LoRA target weight read from the checkpoint in
  fp32, the delta added and rounded once (``LocalBackend._merged``).

Both must give identical weights (a sha256 over every tensor's bytes is compared); the ratios are
the direct path's peak resident memory and load seconds over the fp32 path's. A few greedy
prompts check the direct model generates the same answers at the same speed.

    python benchmarks/merge.py --model bundled/qwen2.5-coder-1.5b-instruct --adapter RUN/seed0/models/.../cross_ft/.../adapter

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def one_path(model: str, adapter: str, path: str, dtype: str, n_prompts: int) -> dict:
    """Load ``model+lora:adapter`` one way in this process; report digest, seconds, peak memory."""
    import torch

    from inward.models import resolve
    from inward.models.base import GenerationConfig
    from inward.prompts import object_prompt
    from inward.tasks.registry import get_task

    backend = resolve(f"{model}+lora:{adapter}", dtype=dtype)
    backend.fingerprint()  # tokenizer, stop tokens (and a one-time conversion) outside the timing
    t0 = time.perf_counter()
    net = backend.load() if path == "direct" else backend.checkpoint.merged_via_fp32(dtype)
    load = time.perf_counter() - t0
    peak_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    if path != "direct":  # generate through the fp32 path's model, set up as the backend sets up its own
        backend.install(net)
    task = get_task("animals_long")
    prompts = [object_prompt(task, s.string) for s in task.load("val", n_prompts, 0)]
    t0 = time.perf_counter()
    answers = [c[0] for c in backend.generate(prompts, GenerationConfig(max_tokens=task.max_tokens))]
    gen = time.perf_counter() - t0
    return {
        "path": path,
        "weights_sha256": digest.hexdigest(),
        "load_seconds": round(load, 2),
        "peak_rss_mb_after_load": round(peak_load),
        "generate_seconds": round(gen, 2),
        "answers_sha256": hashlib.sha256(json.dumps(answers).encode()).hexdigest(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="base model string, e.g. bundled/qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--adapter", required=True, help="a LoRA adapter folder trained on that model")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    ap.add_argument("--prompts", type=int, default=8, help="greedy prompts generated after each load")
    ap.add_argument("--one", choices=["direct", "via_fp32"], help=argparse.SUPPRESS)  # the child process
    a = ap.parse_args()
    if not Path(a.adapter, "adapter_config.json").is_file():
        sys.exit(f"--adapter {a.adapter!r}: no adapter_config.json there; pass a finetune's adapter folder.")
    if a.one:
        print(json.dumps(one_path(a.model, a.adapter, a.one, a.dtype, a.prompts)))
        return
    out = {"model": a.model, "adapter": a.adapter, "dtype": a.dtype}
    for path in ("via_fp32", "direct"):
        print(f"[bench merge] {path} ...", file=sys.stderr, flush=True)
        cmd = [
            sys.executable,
            __file__,
            "--model",
            a.model,
            "--adapter",
            a.adapter,
            "--dtype",
            a.dtype,
            "--prompts",
            str(a.prompts),
            "--one",
            path,
        ]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[path] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"[bench merge] {path}: {out[path]}", file=sys.stderr, flush=True)
    old, new = out["via_fp32"], out["direct"]
    out["identical_weights"] = old["weights_sha256"] == new["weights_sha256"]
    out["identical_answers"] = old["answers_sha256"] == new["answers_sha256"]
    out["peak_memory_ratio"] = round(new["peak_rss_mb_after_load"] / old["peak_rss_mb_after_load"], 3)
    out["load_time_ratio"] = round(new["load_seconds"] / old["load_seconds"], 3)
    out["generate_time_ratio"] = round(new["generate_seconds"] / old["generate_seconds"], 3)
    print(json.dumps(out))
    if not (out["identical_weights"] and out["identical_answers"]):
        sys.exit("The two merges differ: the direct merge is not exact for this model and adapter.")


if __name__ == "__main__":
    main()
