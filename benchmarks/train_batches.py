"""Batches grouped by task against length-only batches: LoRA training time on the study's own data.

    python benchmarks/train_batches.py                 # the default preset's self-training set
    python benchmarks/train_batches.py --n 240         # a quicker subsample

Data: the default preset's self-prediction examples, built as the study builds them (its train
tasks, ``n_train_strings`` train strings each, the untrained model's greedy answers through the
response cache, ``n_train_per_pair`` examples per (task, property)). Both arms train the same
examples with the preset's finetune settings and the same seed, one after the other:

- ``grouped``: inward's batches (:func:`inward.train.lora.batch_plan` with
  :func:`~inward.train.lora.prompt_group`: sorted by task, then length, within windows);
- ``length``: the same with the groups off (``GROUP_BATCHES = False``): length-sorted windows only,
  as before.

Prints, per arm, training seconds, the prompt tokens a step computes (its shared prefix once,
then each row's suffix: what :func:`~inward.train.lora.label_logits` runs), the mean loss over
the last half of the steps, and the ratios. The batch order differs between the arms, so the
losses differ by training noise; the study's accuracy under the grouped batches is in its run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bundled/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--n", type=int, default=0, help="train on a random subsample of this many examples (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--object-dtype",
        default=None,
        help="precision of the object-level answers the examples are labelled with (default: the preset's "
        "auto); e.g. bfloat16 to reuse cached answers when timing under forced AVX2 kernels",
    )
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
    backend = resolve(args.model, **{**study.model_args, **({"dtype": args.object_dtype} if args.object_dtype else {})})
    cached = CachedModel(backend, ResponseCache())
    objects = collect_objects(cached, list(tasks.values()), "train", study.n_train_strings, seed=study.seed)
    backend.close()
    release_memory()
    props = task_properties(study, list(tasks))
    examples = self_prediction_examples(
        objects, tasks, props, n_per_pair=study.n_train_per_pair, seed=args.seed, scoring=study.scoring
    )
    if args.n:
        examples = random.Random(args.seed).sample(examples, min(args.n, len(examples)))
    cfg = L.TrainConfig(**{**study.finetune.to_json(), "save_every_steps": 0, "seed": args.seed})

    base = L.load_base(args.model)
    enc = [L.encode_example(base, e, cfg.max_length) for e in examples]
    lengths = [len(e.input_ids) for e in enc]
    groups = L.batch_groups(examples)

    def computed_tokens(plan: list[list[int]]) -> int:
        total = 0
        for b in plan:
            batch = L.collate([enc[i] for i in b], base.pad_id)
            width, p = batch["input_ids"].shape[1], L.shared_prefix_length(batch)
            total += p + len(b) * (width - p)
        return total

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        L.train_lora(args.model, examples[: cfg.batch_size], cfg, Path(tmp) / "warm")  # kernels, allocator
        for arm in ("grouped", "length"):
            L.GROUP_BATCHES = arm == "grouped"
            try:
                r = L.train_lora(args.model, examples, cfg, Path(tmp) / arm)
            finally:
                L.GROUP_BATCHES = True
            plan = L.batch_plan(lengths, cfg.batch_size, cfg.seed, 0, groups if arm == "grouped" else None)
            tail = r.losses[len(r.losses) // 2 :]
            rows[arm] = {
                "seconds": r.train_seconds,
                "computed_tokens": computed_tokens(plan),
                "tokens": r.tokens,
                "late_loss": sum(tail) / len(tail),
                "dtype": r.dtype,
            }
            print(
                f"{arm:8s} {r.train_seconds:7.1f} s  computed tokens {rows[arm]['computed_tokens']:6d} "
                f"of {r.tokens}  late loss {rows[arm]['late_loss']:.3f}  ({r.dtype})",
                file=sys.stderr,
                flush=True,
            )
    g, s = rows["grouped"], rows["length"]
    summary = {
        "model": args.model,
        "examples": len(examples),
        "steps": r.steps,
        "speedup": s["seconds"] / g["seconds"],
        "token_ratio": s["computed_tokens"] / g["computed_tokens"],
        "arms": rows,
    }
    print(
        f"grouped batches: {summary['speedup']:.2f}x faster, {summary['token_ratio']:.2f}x fewer computed tokens",
        file=sys.stderr,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
