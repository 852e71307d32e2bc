"""Per-model throughput on this machine, the figures the symmetric preset's cost follows from
(issue 14): for each installed bundled model (or each --model), in one process, one after the
other, with the default study's settings (bf16, batch 8 LoRA rank 16, answer-only loss):

- ``generation``: greedy object-level answers to the default study's held-out prompts
  (``inward.experiments.speed.measure``: load seconds, prompts/s, generated tokens/s);
- ``training``: ``train_lora`` on self-prediction examples built from the model's own answers to
  train-task prompts, examples/s over the optimizer steps (after a one-batch warm-up run).

    python benchmarks/models.py                 # every installed bundled model
    python benchmarks/models.py --model bundled/qwen2.5-coder-1.5b-instruct --steps 4

Progress goes to stderr; the last line of stdout is one JSON object (per model: the numbers above,
plus the ratio of each model's costs to the first model's). Speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inward.experiments.context import task_properties  # noqa: E402
from inward.experiments.speed import measure  # noqa: E402
from inward.experiments.study_config import preset  # noqa: E402
from inward.models import list_bundled, resolve  # noqa: E402
from inward.models.base import GenerationConfig  # noqa: E402
from inward.models.bundled import missing_packages  # noqa: E402
from inward.prompts import object_prompt  # noqa: E402
from inward.records import ObjectRecord  # noqa: E402
from inward.tasks.registry import get_task  # noqa: E402
from inward.train.datasets import self_prediction_examples  # noqa: E402
from inward.train.lora import TrainConfig, train_lora  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench models] {msg}", file=sys.stderr, flush=True)


def training_speed(model: str, steps: int, seed: int = 0) -> dict[str, Any]:
    study = preset("default")
    cfg = TrainConfig(**{**study.finetune.to_json(), "save_every_steps": 0})
    tasks = {t: get_task(t) for t in study.train_tasks}
    props = task_properties(study, list(tasks))
    backend = resolve(model, **study.model_args)
    objects = []
    for name, task in tasks.items():
        strings = [s.string for s in task.load("train", 24, seed)]
        outs = backend.generate([object_prompt(task, s) for s in strings], GenerationConfig(max_tokens=task.max_tokens))
        objects += [ObjectRecord(name, "train", s, None, model, o[0], True, ()) for s, o in zip(strings, outs)]
    backend.close()
    examples = self_prediction_examples(objects, tasks, props, n_per_pair=10**6, seed=seed)
    need = steps * cfg.batch_size
    if len(examples) < need:
        raise SystemExit(f"{model}: only {len(examples)} training examples for {steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        train_lora(model, examples[: cfg.batch_size], cfg, Path(tmp) / "warm", model_args=study.model_args)
        t0 = time.perf_counter()
        result = train_lora(model, examples[:need], cfg, Path(tmp) / "run", model_args=study.model_args)
        wall = time.perf_counter() - t0
    return {
        "examples": need,
        "steps": steps,
        "train_seconds": result.train_seconds,
        "wall_seconds": wall,
        "examples_per_second": need / result.train_seconds,
        "dtype": result.dtype,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="a local model string (repeatable); default: installed bundled")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps of batch 8 timed per model")
    ap.add_argument("--prompts", type=int, default=32, help="held-out prompts generated per model")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    models = args.model or [f"bundled/{m.name}" for m in list_bundled() if not missing_packages(m.name)]
    out: dict[str, Any] = {}
    for model in models:
        log(f"{model}: generation")
        speed = measure(model, dtype=preset("default").model_args.get("dtype", "bfloat16"), n=args.prompts)
        log(f"{model}: {speed.line()}")
        log(f"{model}: training, {args.steps} steps")
        train = training_speed(model, args.steps)
        log(f"{model}: {train['examples_per_second']:.2f} examples/s ({train['dtype']})")
        out[model] = {
            "load_seconds": speed.load_seconds,
            "prompts_per_second": speed.prompts_per_second,
            "tokens_per_second": speed.tokens_per_second,
            "prompts": speed.prompts,
            "cpu": speed.cpu,
            "threads": speed.threads,
            "training": train,
        }
    first = out[models[0]]
    for m in models:
        out[m]["generation_cost_vs_first"] = first["prompts_per_second"] / out[m]["prompts_per_second"]
        out[m]["training_cost_vs_first"] = (
            first["training"]["examples_per_second"] / out[m]["training"]["examples_per_second"]
        )
    line = json.dumps(out)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
