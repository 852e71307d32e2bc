"""llama.cpp vs torch as the CPU inference engine, side by side in one run, on the study's own prompts.

For each bundled model (Qwen2.5-Coder 0.5B, Gemma 3 270M), without and with a trained LoRA
adapter, and each engine (torch float32; torch bfloat16 where this CPU has native bf16 kernels;
llama.cpp on the GGUF file with the adapter converted to GGUF LoRA and applied unmerged):

- speed: prompts/s of greedy object-level answers (animals_long and english_words_long, the
  default preset's held-out tasks, their own max_tokens) and of hypothetical answers (first_word,
  its answer budget), each one batched call as the study makes it; the model load is not timed;
- fidelity against torch float32 on the same prompts: the share of identical greedy answers, and
  the mean total-variation distance between the first-token answer distributions (top 20) of the
  hypothetical prompts. bf16's own deviation from float32 is the yardstick.

    python benchmarks/engines.py [--n 32] [--run runs/default]

``--run`` names a finished study whose seed-0 adapters are used (the self-trained Qwen adapter and
the cross-trained Gemma adapter); without it, only the base models are measured. Progress goes to
stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODELS = {"qwen0.5b": "bundled/qwen2.5-coder-0.5b-instruct", "gemma270m": "bundled/gemma-3-270m"}
ADAPTERS = {"qwen0.5b": "models/qwen*/self_ft/adapter", "gemma270m": "models/qwen*/cross_ft/*/adapter"}
# The study renders Gemma 3 270M (a base model) with the format it measured best; qa here.
CHAT = {"qwen0.5b": "auto", "gemma270m": "qa"}


def prompts(n: int) -> dict[str, tuple[list, int]]:
    from inward.prompts import hypothetical_prompt, object_prompt
    from inward.properties import resolve_property as get_property
    from inward.tasks import get_task

    out = {}
    obj, hyp = [], []
    budget_obj = 0
    for name in ("animals_long", "english_words_long"):
        task = get_task(name)
        strings = [s.string for s in task.load("val", n // 2, 0)]
        obj += [object_prompt(task, s) for s in strings]
        hyp += [hypothetical_prompt(task, "first_word", s) for s in strings]
        budget_obj = max(budget_obj, task.max_tokens)
    prop = get_property("first_word")
    out["object"] = (obj, budget_obj)
    out["hypothetical"] = (hyp, prop.answer_tokens or budget_obj)
    return out


def run_engine(model: str, args: dict, work: dict) -> dict:
    from inward.models import resolve
    from inward.models.base import DistributionConfig, GenerationConfig

    backend = resolve(model, **args)
    t0 = time.perf_counter()
    backend.load()
    load = time.perf_counter() - t0
    res: dict = {"load_s": round(load, 2)}
    for kind, (ps, budget) in work.items():
        t0 = time.perf_counter()
        out = backend.generate(ps, GenerationConfig(max_tokens=budget))
        s = time.perf_counter() - t0
        res[kind] = {"prompts_per_s": round(len(ps) / s, 3), "seconds": round(s, 2), "answers": [o[0] for o in out]}
    ps = work["hypothetical"][0]
    t0 = time.perf_counter()
    res["distributions"] = backend.answer_distribution(ps, DistributionConfig(top_k=20))
    res["distribution_prompts_per_s"] = round(len(ps) / (time.perf_counter() - t0), 3)
    res["precision"] = backend.fingerprint()["precision"]
    backend.close()
    del backend
    gc.collect()
    return res


def tv(p: dict, q: dict) -> float:
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32, help="prompts per kind (half per task)")
    ap.add_argument("--run", type=Path, help="a finished study folder: its seed-0 adapters are measured too")
    a = ap.parse_args()

    from inward.models import llama_cpp_backend
    from inward.models.precision import hardware_bf16

    if not llama_cpp_backend.available():
        raise SystemExit("llama-cpp-python is not installed: make setup-server")
    work = prompts(a.n)
    engines = {"torch float32": {"dtype": "float32"}}
    if hardware_bf16():
        engines["torch bfloat16"] = {"dtype": "bfloat16"}
    engines["llama.cpp"] = {"engine": "llama.cpp"}
    rows = []
    for short, model in MODELS.items():
        variants = [("base", model)]
        if a.run:
            found = sorted(glob.glob(str(a.run / "seed0" / ADAPTERS[short])))
            if found:
                variants.append(("lora", f"{model}+lora:{found[0]}"))
        for variant, string in variants:
            results = {}
            for engine, args in engines.items():
                print(f"{short} {variant} {engine} ...", file=sys.stderr, flush=True)
                results[engine] = run_engine(string, {**args, "chat_format": CHAT[short]}, work)
            ref = results["torch float32"]
            for engine, r in results.items():
                row = {
                    "model": short,
                    "adapter": variant,
                    "engine": engine,
                    "precision": r["precision"],
                    "load_s": r["load_s"],
                    "object_prompts_per_s": r["object"]["prompts_per_s"],
                    "hypothetical_prompts_per_s": r["hypothetical"]["prompts_per_s"],
                    "distribution_prompts_per_s": r["distribution_prompts_per_s"],
                    "object_same_as_fp32": sum(x == y for x, y in zip(r["object"]["answers"], ref["object"]["answers"]))
                    / len(ref["object"]["answers"]),
                    "hypothetical_same_as_fp32": sum(
                        x == y for x, y in zip(r["hypothetical"]["answers"], ref["hypothetical"]["answers"])
                    )
                    / len(ref["hypothetical"]["answers"]),
                    "first_token_tv_vs_fp32": sum(tv(p, q) for p, q in zip(r["distributions"], ref["distributions"]))
                    / len(ref["distributions"]),
                }
                base_speed = ref["object"]["prompts_per_s"]
                row["object_speedup_vs_fp32"] = round(row["object_prompts_per_s"] / base_speed, 2)
                rows.append(row)
                print(
                    f"  {engine:15s} object {row['object_prompts_per_s']:6.2f}/s ({row['object_speedup_vs_fp32']:.2f}x)"
                    f"  hyp {row['hypothetical_prompts_per_s']:6.2f}/s  dist {row['distribution_prompts_per_s']:6.2f}/s"
                    f"  same greedy obj {row['object_same_as_fp32']:.0%} hyp {row['hypothetical_same_as_fp32']:.0%}"
                    f"  TV {row['first_token_tv_vs_fp32']:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
    print(json.dumps({"n_per_kind": len(work["object"][0]), "rows": rows}))


if __name__ == "__main__":
    main()
