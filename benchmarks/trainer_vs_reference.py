"""inward's trainer against the simplest loop we can write, on the same data: held-out accuracy.

    python benchmarks/trainer_vs_reference.py --arm inward --arm reference --seed 0 --out runs/trainer-vs-ref

Data (what the reference script of issue 13 used): untrained bundled Qwen 0.5B's greedy bf16
answers to 100 train-split strings of colors_long and countries_long; self-prediction examples
for first_character, second_character, first_word and starts_with_vowel, 50 per (task,
property): 400 examples. Both arms train LoRA r=16, alpha 32, lr 2e-4 (linear decay), batch 8,
1 epoch (50 steps), bf16 base. `inward` is inward.train.lora.train_lora (shared prefixes, LM
head on labels, length-bucketed batches); `reference` is inward.train.reference.train_reference
(uniformly shuffled batches, transformers' own loss over all positions). Each trained model is
then scored the way the study scores self-prediction: on 100 val strings of the held-out task
animals_long, against its *own* new object-level answers, next to each property's mode baseline.
`--seed` is the training seed (LoRA init and batch order); the data is the same for every seed.
Prints one line per (arm, seed, property); the last line is JSON with every row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

MODEL = "bundled/qwen2.5-coder-0.5b-instruct"
PROPS = ["first_character", "second_character", "first_word", "starts_with_vowel"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", action="append", choices=["inward", "reference"], required=True)
    ap.add_argument("--seed", action="append", type=int, required=True)
    ap.add_argument("--out", default="runs/trainer-vs-reference")
    ap.add_argument("--n-eval", type=int, default=100)
    args = ap.parse_args()

    from inward.experiments.evaluate import EvaluateSpec, collect_objects, run_evaluate
    from inward.models import resolve
    from inward.models.local import release_memory
    from inward.properties.registry import resolve_property
    from inward.store.cache import CachedModel, ResponseCache
    from inward.tasks import get_task
    from inward.train.datasets import self_prediction_examples
    from inward.train.lora import TrainConfig, train_lora
    from inward.train.reference import train_reference

    out = Path(args.out)
    cache = ResponseCache()
    tasks = {n: get_task(n) for n in ("colors_long", "countries_long")}
    backend = resolve(MODEL, dtype="bfloat16")
    objects = collect_objects(CachedModel(backend, cache), list(tasks.values()), "train", 100, seed=0)
    backend.close()
    examples = self_prediction_examples(
        objects, tasks, {t: [resolve_property(p, t) for p in PROPS] for t in tasks}, n_per_pair=50, seed=0
    )
    print(f"{len(examples)} examples", file=sys.stderr)
    rows = []
    for seed in args.seed:
        config = TrainConfig(rank=16, alpha=32, learning_rate=2e-4, batch_size=8, epochs=1, dtype="auto", seed=seed)
        for arm in args.arm:
            t0 = time.perf_counter()
            folder = out / f"{arm}-seed{seed}"
            trainer = train_lora if arm == "inward" else train_reference
            result = trainer(MODEL, examples, replace(config), folder)
            release_memory()
            seconds = time.perf_counter() - t0
            spec = EvaluateSpec(
                model=result.adapter_model_string,
                tasks=["animals_long"],
                properties=PROPS,
                n=args.n_eval,
                model_args={"dtype": "bfloat16"},
            )
            res = run_evaluate(spec, folder / "eval", cache=cache)
            release_memory()
            for r in res.results:
                row = {
                    "arm": arm,
                    "seed": seed,
                    "property": r["response_property"],
                    "accuracy": r["accuracy"],
                    "error": r["error"],
                    "mode_baseline": r["mode_baseline"],
                    "count": r["count"],
                    "first_loss": result.losses[0],
                    "train_seconds": round(seconds, 1),
                }
                rows.append(row)
                print(
                    f"{arm:9s} seed {seed}  {row['property']:18s} {100 * row['accuracy']:5.1f}% "
                    f"(mode {100 * row['mode_baseline']:5.1f}%, n={row['count']})",
                    flush=True,
                )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
