"""The trainer's loss is the loss it claims to be.

inward's answer-only loss (shared-prefix KV reuse, LM head on labelled positions only) must equal
a plain forward pass through transformers with the prompt labels masked by hand; and on the real
bundled models the first step must start below a uniform guess over the vocabulary (ln V), which
an untrained-but-pretrained model that merely meets a new answer format always does. Base Gemma
in its own turn markup does not (its ``<end_of_turn>`` costs ~29 nats): that is why a study
measures the chat format of a template-less model (inward.train.chat_select).
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from inward.models import bundled
from inward.prompts import hypothetical_prompt
from inward.properties.registry import resolve_property
from inward.tasks import get_task
from inward.train import TrainExample
from inward.train import lora as L


def realistic_examples(n: int, seed: int = 0) -> list[TrainExample]:
    """Hypothetical questions about train-task strings, answered with plausible property values."""
    rng = random.Random(seed)
    out = []
    for task_name in ("colors_long", "countries_long"):
        task = get_task(task_name)
        for s in task.load("train", n, seed):
            word = rng.choice(s.string.split())
            for prop, value in (
                ("first_character", word[0]),
                ("second_character", word[1]),
                ("first_word", word),
                ("starts_with_vowel", str(word[0] in "aeiou").lower()),
            ):
                out.append(TrainExample(hypothetical_prompt(task, resolve_property(prop, task_name), s.string), value))
    rng.shuffle(out)
    return out[:n]


def hand_masked_loss(model, base: L.BaseModel, examples, end_id: int) -> torch.Tensor:
    """Mean cross-entropy over answer + end tokens, one plain forward per example, labels by hand:
    -100 on every prompt token, transformers does the shifting."""
    total, count = 0.0, 0
    for ex in examples:
        prompt = base.tokenizer(base.backend.render(ex.prompt), add_special_tokens=False)["input_ids"]
        full = base.tokenizer(
            base.backend.render(ex.prompt) + base.answer_prefix + ex.completion, add_special_tokens=False
        )["input_ids"] + [end_id]
        labels = [-100] * len(prompt) + full[len(prompt) :]
        n = len(full) - len(prompt)
        out = model(input_ids=torch.tensor([full]), labels=torch.tensor([labels]))
        total, count = total + out.loss * n, count + n
    return total / count


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("bfloat16", 3e-2)])
def test_answer_loss_equals_a_plain_hand_masked_pass(tiny_model, dtype, tol):
    base = L.load_base(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(str(base.checkpoint), dtype=getattr(torch, dtype)).eval()
    examples = realistic_examples(8)
    batch = L.collate([L.encode_example(base, e) for e in examples], base.pad_id)
    assert L.shared_prefix_length(batch) >= L.MIN_SHARED_PREFIX  # the shared path is exercised
    with torch.no_grad():
        reference = float(hand_masked_loss(model, base, examples, base.end_id))
        for share in (True, False):
            got = float(L.answer_loss(model, batch, share_prefix=share))
            assert got == pytest.approx(reference, rel=tol), (share, got, reference)


def _bundled(name: str) -> str:
    missing = bundled.missing_packages(name)
    if missing:
        pytest.skip(f"bundled model packages not installed: {missing}")
    return f"bundled/{name}"


@pytest.mark.real_model
@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b-instruct", "gemma-3-270m"])
def test_first_step_of_a_bundled_model_starts_below_a_uniform_guess(name):
    from inward.train.chat_select import has_own_template, measure_formats

    model_string = _bundled(name)
    examples = realistic_examples(24)
    args = {}
    if not has_own_template(model_string):
        rows = {r.chat_format: r for r in measure_formats(model_string, examples[8:24])}
        chosen = next(r for r in rows.values() if r.chosen)
        args = {"chat_format": chosen.chat_format}
        # Gemma's own markup: the base model gives its end-of-turn token more than ln V nats.
        assert rows["gemma"].end_loss > math.log(262_144) > chosen.label_loss
    base = L.load_base(model_string, args)
    vocab = len(base.tokenizer)
    model = AutoModelForCausalLM.from_pretrained(str(base.checkpoint), dtype=torch.bfloat16).eval()
    first = examples[:8]  # one batch of the default batch size
    batch = L.collate([L.encode_example(base, e) for e in first], base.pad_id)
    with torch.no_grad():
        loss = float(L.answer_loss(model, batch))  # bf16, shared prefix: the trainer's own path
        plain = float(hand_masked_loss(model, base, first, base.end_id))
    assert loss < math.log(vocab), f"{name}: first-step loss {loss:.2f} >= ln V = {math.log(vocab):.2f}"
    assert loss == pytest.approx(plain, rel=0.03)  # bf16 rounding between the two layouts
