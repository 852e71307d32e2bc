"""Attention kernel and adapter autocast: LoRA training time on the study's own data.

    python benchmarks/train_kernels.py                        # Qwen 0.5B, 240 examples, 2 rounds
    python benchmarks/train_kernels.py --model bundled/gemma-3-270m
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/train_kernels.py   # float32 there

Data: the default preset's self-prediction examples of the untrained model, built as the study
builds them (as in ``train_batches.py``), a random subsample of ``--n``. Every arm trains the same
examples with the preset's finetune settings and seed, in its precision (``auto``), one after the
other, ``--rounds`` times interleaved (arm order A B C A B C) so drift in the machine hits every
arm alike:

- ``sdpa``: transformers' default attention (``attention="sdpa"``), the adapter in float32
  (``autocast=False``): inward's trainer before these settings existed;
- ``eager``: eager attention, the adapter in float32;
- ``eager+autocast``: eager attention, the adapter's matmuls in bf16 under autocast (inward's
  default over a bf16 base; on a float32 base autocast is off, so this arm equals ``eager``).

Prints, per arm and round, the training seconds (optimizer steps only) and the mean loss over the
last half of the steps; then each arm's median seconds and its speedup over ``sdpa``. The last
stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

ARMS = {
    "sdpa": {"attention": "sdpa", "autocast": False},
    "eager": {"attention": "eager", "autocast": False},
    "eager+autocast": {"attention": "eager", "autocast": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bundled/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--n", type=int, default=240, help="examples to train on (a seeded random subsample)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import inward.train.lora as L
    from inward.experiments.context import task_properties
    from inward.experiments.evaluate import collect_objects
    from inward.experiments.study_config import preset
    from inward.models import resolve
    from inward.models.local import release_memory
    from inward.store.cache import CachedModel, ResponseCache
    from inward.tasks import get_task
    from inward.train.datasets import self_prediction_examples

    study = preset("default")
    tasks = {n: get_task(n) for n in study.train_tasks}
    backend = resolve(args.model, **study.model_args)
    objects = collect_objects(
        CachedModel(backend, ResponseCache()), list(tasks.values()), "train", study.n_train_strings, seed=study.seed
    )
    backend.close()
    release_memory()
    props = task_properties(study, list(tasks))
    examples = self_prediction_examples(
        objects, tasks, props, n_per_pair=study.n_train_per_pair, seed=args.seed, scoring=study.scoring
    )
    examples = random.Random(args.seed).sample(examples, min(args.n, len(examples)))
    base_cfg = {**study.finetune.to_json(), "save_every_steps": 0, "seed": args.seed}

    seconds: dict[str, list[float]] = {arm: [] for arm in ARMS}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = L.TrainConfig(**base_cfg)
        L.train_lora(args.model, examples[: warm.batch_size], warm, Path(tmp) / "warm")  # kernels, allocator
        for k in range(args.rounds):
            for arm, settings in ARMS.items():
                r = L.train_lora(
                    args.model, examples, L.TrainConfig(**{**base_cfg, **settings}), Path(tmp) / f"{arm}-{k}"
                )
                release_memory()
                tail = r.losses[len(r.losses) // 2 :]
                seconds[arm].append(r.train_seconds)
                rows.append(
                    {
                        "arm": arm,
                        "round": k,
                        "seconds": r.train_seconds,
                        "late_loss": sum(tail) / len(tail),
                        "dtype": r.dtype,
                    }
                )
                print(
                    f"round {k} {arm:15s} {r.train_seconds:7.1f} s  late loss {rows[-1]['late_loss']:.4f}  ({r.dtype})",
                    file=sys.stderr,
                    flush=True,
                )
    median = {arm: statistics.median(v) for arm, v in seconds.items()}
    speedup = {arm: median["sdpa"] / median[arm] for arm in ARMS}
    print(
        "median seconds: "
        + ", ".join(f"{arm} {median[arm]:.1f} ({speedup[arm]:.2f}x)" for arm in ARMS)
        + f"; {len(examples)} examples, {args.model}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {"model": args.model, "examples": len(examples), "median_seconds": median, "speedup": speedup, "runs": rows}
        )
    )


if __name__ == "__main__":
    main()
