"""The simplest LoRA loop we can write, to check :mod:`inward.train.lora` against.

"Before believing a training result, reproduce it with the simplest loop you can write." This is
that loop: no shared prefixes, no LM head trick, no length bucketing, no checkpoints. Each step
takes a uniformly shuffled batch, calls the model with ``labels`` (transformers' own shifted
cross-entropy over every labelled position) and takes an AdamW step. The only thing it shares
with the fast trainer is :func:`inward.train.lora.encode_example`, i.e. what the model is asked
and which tokens carry loss; a test checks that those labels match a hand-masked encoding.

It writes a peft adapter that loads like the fast trainer's (``<model>+lora:<out_dir>/adapter``),
so both can be evaluated by the same code. It is several times slower (the LM head runs over
every position); use it on a few hundred examples.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inward.train.examples import TrainExample
from inward.train.lora import (
    ADAPTER_DIR,
    IGNORE,
    TrainConfig,
    collate,
    encode_example,
    load_base,
    lr_factor,
    resolve_dtype,
)


@dataclass
class ReferenceResult:
    adapter_model_string: str
    losses: list[float]
    seconds: float


def train_reference(
    model_string: str, examples: Sequence[TrainExample], config: TrainConfig, out_dir: Path | str
) -> ReferenceResult:
    """Train a LoRA adapter with a textbook loop (see module doc); returns where it was saved.

    Uses ``config``'s rank, alpha, dropout, target modules, learning rate, schedule, warmup,
    epochs, batch size, dtype and seed; batches are a fresh uniform shuffle every epoch.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    out_dir = Path(out_dir)
    done = out_dir / "reference_result.json"
    if done.is_file():
        return ReferenceResult(**json.loads(done.read_text()))
    base = load_base(model_string)
    encoded = [encode_example(base, ex, config.max_length) for ex in examples]
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    model = base.backend.checkpoint.load_base(resolve_dtype(config.dtype, base.backend.checkpoint))
    target = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    model = get_peft_model(
        model,
        LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=target,
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
    )
    per_epoch = -(-len(encoded) // config.batch_size)
    total = per_epoch * config.epochs

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(config, step, total))
    rng = random.Random(config.seed)
    losses: list[float] = []
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for k in range(0, len(order), config.batch_size):
            batch = collate([encoded[i] for i in order[k : k + config.batch_size]], base.pad_id)
            assert (batch["labels"] != IGNORE).any()
            loss = model(**batch).loss  # transformers shifts the labels itself
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
    seconds = time.perf_counter() - t0
    adapter = (out_dir / ADAPTER_DIR).resolve()
    model.save_pretrained(str(adapter), safe_serialization=True)
    result = ReferenceResult(f"{model_string}+lora:{adapter}", losses, round(seconds, 3))
    done.write_text(json.dumps(result.__dict__, indent=2))
    return result
