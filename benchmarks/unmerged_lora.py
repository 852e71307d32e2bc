"""Greedy generation through a LoRA-finetuned model three ways, side by side in one process:

- ``merged``: the local backend's own path (adapter merged into the weights, weights requiring
  grad as a plain load leaves them);
- ``unmerged_frozen``: the base model wrapped by peft, adapter not merged, base weights frozen
  as peft leaves them;
- ``unmerged_grad``: the same peft model with every weight requiring grad.

Ratios are generate seconds over the merged path's. Frozen weights send PyTorch's CPU matmul of
the LM head's non-contiguous last-position slice down a per-row path that copies the vocabulary
matrix (see ``LocalBackend._merged``), so ``unmerged_frozen`` measures that pathology plus the
adapter's extra matmuls, and ``unmerged_grad`` the extra matmuls alone. Answers of the unmerged
paths may differ from the merged ones in low precision (two roundings instead of one).

    python benchmarks/unmerged_lora.py --model bundled/qwen2.5-coder-0.5b-instruct --adapter RUN/seed0/models/.../self_ft/adapter

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="base model string, e.g. bundled/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--adapter", required=True, help="a LoRA adapter folder trained on that model")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--prompts", type=int, default=16, help="greedy prompts (animals_long val strings)")
    a = ap.parse_args()
    if not Path(a.adapter, "adapter_config.json").is_file():
        sys.exit(f"--adapter {a.adapter!r}: no adapter_config.json there; pass a finetune's adapter folder.")

    import torch

    from inward.models import resolve
    from inward.models.base import GenerationConfig
    from inward.models.checkpoint import with_adapter
    from inward.prompts import object_prompt
    from inward.tasks.registry import get_task

    task = get_task("animals_long")
    prompts = [object_prompt(task, s.string) for s in task.load("val", a.prompts, 0)]
    config = GenerationConfig(max_tokens=task.max_tokens)
    backend = resolve(f"{a.model}+lora:{a.adapter}", dtype=a.dtype)

    def timed(path: str) -> dict:
        print(f"[bench unmerged] {path} ...", file=sys.stderr, flush=True)
        backend.generate(prompts[:2], config)  # warm-up: first-call allocations outside the timing
        t0 = time.perf_counter()
        answers = [c[0] for c in backend.generate(prompts, config)]
        return {"path": path, "generate_seconds": round(time.perf_counter() - t0, 2), "answers": answers}

    runs = [timed("merged")]
    backend.close()
    peft_model = with_adapter(backend.checkpoint.load_base(a.dtype), a.adapter)
    backend.install(peft_model)
    runs.append(timed("unmerged_frozen"))
    peft_model.requires_grad_(True)
    runs.append(timed("unmerged_grad"))
    base = runs[0]
    out = {
        "model": a.model,
        "adapter": a.adapter,
        "dtype": a.dtype,
        "prompts": len(prompts),
        "threads": torch.get_num_threads(),
    }
    for r in runs:
        out[r["path"]] = {
            "generate_seconds": r["generate_seconds"],
            "ratio_to_merged": round(r["generate_seconds"] / base["generate_seconds"], 2),
            "answers_equal_merged": r["answers"] == base["answers"],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
