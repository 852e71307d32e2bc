from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from inward.errors import InwardError
from inward.models import GenerationConfig, resolve
from inward.train import TrainConfig, TrainExample, train_lora
from inward.train import lora as L

# Fast settings for the tiny random model: fp32 so runs are bit-reproducible, a high LR so a
# handful of steps visibly learn.
FAST = TrainConfig(
    rank=8, alpha=16, learning_rate=1e-2, batch_size=4, epochs=2, dtype="float32", save_every_steps=0, threads=1
)


class Interrupt(Exception):
    pass


def stop_after(k: int):
    def progress(step, total, loss):
        if step == k:
            raise Interrupt(f"simulated crash after step {step}")

    return progress


def adapter_weights(result) -> dict[str, torch.Tensor]:
    return load_file(str(Path(result.adapter_path) / "adapter_model.safetensors"))


# ---- tokenisation and labels ----------------------------------------------------------------


def test_only_answer_and_end_tokens_are_labelled(tiny_model, examples):
    base = L.load_base(tiny_model)
    ex = examples(1)[3]  # "panda" -> "p"
    enc = L.encode_example(base, ex)
    prompt_text = base.backend.render(ex.prompt)  # exactly what inference feeds the model
    assert prompt_text.endswith("<|im_start|>assistant\n")
    prompt_ids = base.tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    assert enc.input_ids[:n] == prompt_ids
    assert enc.labels[:n] == [L.IGNORE] * n  # every prompt token is masked
    answer = enc.labels[n:]
    assert L.IGNORE not in answer and answer == enc.input_ids[n:]
    assert answer[-1] == base.tokenizer.convert_tokens_to_ids("<|im_end|>")  # the stop token is learned
    assert base.tokenizer.decode(answer[:-1]) == "p"
    assert len(enc.input_ids) == len(enc.labels)


def test_collate_pads_right_and_masks_padding(tiny_model, examples):
    base = L.load_base(tiny_model)
    short = TrainExample([{"role": "user", "content": "x"}], "ab")
    encs = [L.encode_example(base, e) for e in (examples(1)[0], short)]
    batch = L.collate(encs, base.pad_id)
    width = batch["input_ids"].shape[1]
    n_short = len(encs[1].input_ids)
    assert width == len(encs[0].input_ids) > n_short
    assert batch["attention_mask"][1].tolist() == [1] * n_short + [0] * (width - n_short)
    assert (batch["labels"][1, n_short:] == L.IGNORE).all()
    assert (batch["input_ids"][1, n_short:] == base.pad_id).all()


class _StubBackend:
    """Renders the user text verbatim, to force a token merge across the prompt/answer boundary."""

    def render(self, prompt):
        return prompt[-1]["content"]


def test_prefix_token_mismatch_is_a_hard_error(tiny_model):
    real = L.load_base(tiny_model)
    base = L.BaseModel(_StubBackend(), real.tokenizer, real.checkpoint, real.end_id, real.pad_id)
    ok = TrainExample([{"role": "user", "content": "The quick brown"}], " fox")
    L.encode_example(base, ok)  # " fox" stays a token of its own
    merged = TrainExample([{"role": "user", "content": "The quick brown fo"}], "x")  # " fo"+"x" -> " fox"
    with pytest.raises(InwardError, match="misaligned"):
        L.encode_example(base, merged)


def test_too_long_example_is_an_error_not_truncated(tiny_model, examples):
    base = L.load_base(tiny_model)
    with pytest.raises(InwardError, match="max_length=8"):
        L.encode_example(base, examples(1)[0], max_length=8)


def test_answer_loss_equals_full_logit_loss(tiny_dir, tiny_model, examples):
    """The LM head on label positions only gives the same loss as the standard full-logits loss."""
    from transformers import AutoModelForCausalLM

    base = L.load_base(tiny_model)
    encs = [L.encode_example(base, e) for e in examples(1)[:5]]
    batch = L.collate(encs, base.pad_id)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir), dtype=torch.float32)
    with torch.no_grad():
        ours = L.answer_loss(model, batch)
        full = model(**batch).loss
    torch.testing.assert_close(ours, full, rtol=1e-5, atol=1e-6)


def test_batch_plan_covers_each_example_once_and_is_deterministic():
    lengths = [5, 9, 3, 7, 7, 1, 4, 8, 2, 6, 10]
    plan = L.batch_plan(lengths, 3, seed=0, epoch=0)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 3 for b in plan)
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in plan)
    assert plan == L.batch_plan(lengths, 3, seed=0, epoch=0)
    assert plan != L.batch_plan(lengths, 3, seed=0, epoch=1)


def test_batch_plan_groups_first_then_length():
    lengths = [5, 9, 3, 7, 7, 1, 4, 8, 2, 6, 10, 3]
    groups = ["b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a"]
    plan = L.batch_plan(lengths, 3, seed=0, epoch=0, groups=groups)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    assert all(len({groups[i] for i in b}) == 1 for b in plan)  # 6 of each group, batches of 3
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in plan)
    assert plan == L.batch_plan(lengths, 3, seed=0, epoch=0, groups=groups)


def test_prompt_group_is_the_task_instruction_of_real_prompts():
    from inward.prompts import hypothetical_prompt, object_prompt

    def ex(prompt) -> TrainExample:
        return TrainExample(prompt, "x")

    colors = [ex(hypothetical_prompt("colors_long", "first_word", s)) for s in ("red tan oak", "blue fig ash")]
    colors += [ex(hypothetical_prompt("colors_long", "second_character", "red tan oak"))]
    animals = ex(hypothetical_prompt("animals_long", "first_word", "red tan oak"))
    keys = {L.prompt_group(e) for e in colors}
    assert len(keys) == 1 and L.prompt_group(animals) not in keys
    assert L.prompt_group(ex(object_prompt("colors_long", "red tan oak"))) != L.prompt_group(colors[0])
    assert L.prompt_group(ex(object_prompt("colors_long", "a b"))) == L.prompt_group(
        ex(object_prompt("colors_long", "c"))
    )
    # a task whose prompt starts with the item: every key is its own, so none groups
    stance = [ex(object_prompt("power_seeking", f"Would you take control of {x}?")) for x in ("a", "b", "c")]
    assert len({L.prompt_group(e) for e in stance}) == 3
    assert L.batch_groups(stance + colors) == ["", "", ""] + [L.prompt_group(colors[0])] * 3
    # a one-line prompt (a trailing line break ignored) has no instruction line
    one = [ex([{"role": "user", "content": t}]) for t in ("one line\n", "another line")]
    assert L.prompt_group(one[0]) == L.prompt_group(one[1])
    monkey = L.GROUP_BATCHES
    try:
        L.GROUP_BATCHES = False
        assert L.batch_groups(colors) is None
    finally:
        L.GROUP_BATCHES = monkey


def test_config_validation_and_dtype():
    with pytest.raises(InwardError, match="lr_schedule"):
        TrainConfig(lr_schedule="cosine")
    with pytest.raises(InwardError, match="dtype"):
        TrainConfig(dtype="float16")
    assert TrainConfig(target_modules=["q_proj", "v_proj"]).target_modules == ("q_proj", "v_proj")
    assert L.resolve_dtype("float32") == "float32"
    with pytest.raises(ValueError, match="checkpoint"):
        L.resolve_dtype("auto")  # auto is measured on the model's own layer sizes
    cfg = TrainConfig(target_modules=("q_proj",), threads=2)
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


def test_attention_is_eager_on_cpu_and_part_of_the_run(tiny_model, examples, tmp_path):
    with pytest.raises(InwardError, match="attention"):
        TrainConfig(attention="flash")
    assert L.resolve_attention("auto", "cpu") == "eager"
    assert L.resolve_attention("auto", "cuda") == "sdpa"
    assert L.resolve_attention("sdpa", "cpu") == "sdpa"
    one = replace(FAST, epochs=1)
    base = L.load_base(tiny_model)
    run = L._build(tiny_model, base, one, "float32", "eager", "cpu", 2)
    assert run.model.config._attn_implementation == "eager"
    eager = train_lora(tiny_model, examples(1), one, tmp_path / "eager")
    sdpa = train_lora(tiny_model, examples(1), replace(one, attention="sdpa"), tmp_path / "sdpa")
    assert (eager.attention, sdpa.attention) == ("eager", "sdpa")
    assert eager.run_key != sdpa.run_key
    # the same maths in float32: only rounding differs
    assert eager.losses == pytest.approx(sdpa.losses, rel=1e-4)


def test_autocast_runs_the_adapter_in_bf16_and_keeps_its_weights_float32(tiny_model, examples):
    """With a bf16 base, the adapter's matmuls run in bf16 under autocast (lora_B's output is
    bf16) and its weights stay float32; without autocast peft computes them in float32."""
    base = L.load_base(tiny_model)
    batch = L.collate([L.encode_example(base, e) for e in examples(1)[:4]], base.pad_id)
    seen = {}
    for on in (True, False):
        cfg = replace(FAST, dtype="bfloat16", autocast=on)
        run = L._build(tiny_model, base, cfg, "bfloat16", "eager", "cpu", 2)
        assert run.autocast is on
        lora_b = next(m for n, m in run.model.named_modules() if n.endswith("lora_B.default"))
        hook = lora_b.register_forward_hook(lambda m, i, o, on=on: seen.__setitem__(on, o.dtype))
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=run.autocast):
            loss = L.answer_loss(run.model, batch)
        loss.backward()
        hook.remove()
        assert {p.dtype for p in run.params} == {torch.float32}
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in run.params)
    assert seen == {True: torch.bfloat16, False: torch.float32}
    assert not L._build(tiny_model, base, FAST, "float32", "eager", "cpu", 2).autocast  # float32: off


def test_model_string_with_adapter_is_refused(tiny_model, examples, tmp_path):
    with pytest.raises(InwardError, match="already has one"):
        train_lora(f"{tiny_model}+lora:{tmp_path}", examples(1), FAST, tmp_path / "run")


# ---- training --------------------------------------------------------------------------------


def test_training_reduces_loss_and_adapter_generates_the_answers(tiny_model, examples, tmp_path):
    data = examples(2)  # 16 examples, 4 steps per epoch
    cfg = replace(FAST, epochs=16)
    result = train_lora(tiny_model, data, cfg, tmp_path / "run")
    assert result.steps == len(result.losses) == 64 and result.steps_per_epoch == 4
    first, last = result.losses[0], sum(result.losses[-4:]) / 4
    assert last < 0.25 * first, result.losses
    assert result.final_loss == pytest.approx(last)
    assert result.label_tokens == 16 * 16 * 2  # 1 answer token + end token per example, 16 epochs
    assert result.examples_per_second > 0 and result.tokens_per_second > result.examples_per_second
    assert (tmp_path / "run" / "train_result.json").is_file()
    assert not (tmp_path / "run" / "checkpoint").exists()

    # The adapter loads through the inference backend as <model>+lora:<dir> and has learned the task.
    model = resolve(result.adapter_model_string)
    assert model.fingerprint()["adapter_sha256"]
    prompts = [e.prompt for e in examples(1)]
    answers = [c[0] for c in model.generate(prompts, GenerationConfig(max_tokens=4))]
    right = sum(a == e.completion for a, e in zip(answers, examples(1)))
    assert right >= 6, answers
    plain = [c[0] for c in resolve(tiny_model).generate(prompts, GenerationConfig(max_tokens=4))]
    assert sum(a == e.completion for a, e in zip(plain, examples(1))) < right

    # In bf16 the merged weights go into a model loaded as bf16 (a .to(bf16) copy of the merged
    # fp32 model generated 3-5x slower on CPU); it must still carry the learned adapter.
    import torch

    low = resolve(result.adapter_model_string, dtype="bfloat16")
    net = low.load()
    assert {p.dtype for p in net.parameters()} == {torch.bfloat16}
    assert str(net.config.dtype).endswith("bfloat16")
    merged = model.load().state_dict()
    for name, value in net.state_dict().items():
        assert torch.equal(value, merged[name].to(torch.bfloat16)), name
    assert low.fingerprint()["adapter_merge"] == "fp32-merge-then-load-v2"  # unchanged weights and kernels
    assert model.fingerprint()["adapter_merge"] == "fp32-merge-grad-v3"  # fp32: LM head now one mm


def test_same_seed_same_losses_other_seed_differs(tiny_model, examples, tmp_path):
    data = examples(1)
    a = train_lora(tiny_model, data, FAST, tmp_path / "a")
    b = train_lora(tiny_model, data, FAST, tmp_path / "b")
    c = train_lora(tiny_model, data, replace(FAST, seed=1), tmp_path / "c")
    assert a.losses == b.losses
    assert a.losses != c.losses
    wa, wb = adapter_weights(a), adapter_weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_interruption_matches_uninterrupted_run(tiny_model, examples, tmp_path):
    data = examples(2)
    cfg = replace(FAST, epochs=2, save_every_steps=3, dropout=0.1)  # dropout: RNG state must resume too
    full = train_lora(tiny_model, data, cfg, tmp_path / "full")
    assert full.resumed_from_step is None and full.steps == 8

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupt):
        train_lora(tiny_model, data, cfg, out, progress=stop_after(5))
    assert (out / "checkpoint" / "state.pt").is_file()
    assert json.loads((out / "checkpoint" / "checkpoint.json").read_text())["step"] == 3
    assert not (out / "train_result.json").exists() and not (out / "adapter").exists()

    steps_seen = []
    resumed = train_lora(tiny_model, data, cfg, out, progress=lambda s, t, loss: steps_seen.append(s))
    assert resumed.resumed_from_step == 3 and steps_seen == [4, 5, 6, 7, 8]
    assert resumed.losses == pytest.approx(full.losses, rel=1e-5, abs=1e-6)
    wf, wr = adapter_weights(full), adapter_weights(resumed)
    assert wf.keys() == wr.keys()
    for k in wf:
        torch.testing.assert_close(wr[k], wf[k], rtol=1e-5, atol=1e-6)
    assert any(v.abs().sum() > 0 for v in wr.values())


def test_completed_run_is_not_retrained(tiny_model, examples, tmp_path):
    data = examples(1)
    first = train_lora(tiny_model, data, FAST, tmp_path / "run")
    marker = tmp_path / "run" / "train_result.json"
    mtime = marker.stat().st_mtime_ns

    def must_not_train(*a):
        raise AssertionError("retrained a completed run")

    # the checkpoint cadence does not define the run
    again = train_lora(tiny_model, data, replace(FAST, save_every_steps=7), tmp_path / "run", progress=must_not_train)
    assert again == first and marker.stat().st_mtime_ns == mtime
    # the thread count does: it changes bf16 reductions, hence the weights
    from inward.train.lora import RunMismatch

    with pytest.raises(RunMismatch, match="different training run"):
        train_lora(tiny_model, data, replace(FAST, threads=(FAST.threads or 1) + 1), tmp_path / "run")


def test_different_run_in_same_directory_is_refused(tiny_model, examples, tmp_path):
    data = examples(1)
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        train_lora(tiny_model, data, replace(FAST, save_every_steps=1), out, progress=stop_after(1))
    with pytest.raises(InwardError, match="different training run"):
        train_lora(tiny_model, data, replace(FAST, learning_rate=1e-3, save_every_steps=1), out)
    train_lora(tiny_model, data, replace(FAST, save_every_steps=1), out)  # the same run resumes fine
    changed = data[:-1] + [replace(data[-1], completion="z")]
    with pytest.raises(InwardError, match="different training run"):
        train_lora(tiny_model, changed, FAST, out)


# ---- the real bundled model (slow) -------------------------------------------------------------

QWEN = "bundled/qwen2.5-coder-0.5b-instruct"


@pytest.mark.real_model
def test_real_qwen_trains_and_adapter_generates(examples, tmp_path, monkeypatch):
    from inward.models import bundled

    try:
        bundled.converted_dir("qwen2.5-coder-0.5b-instruct")
    except InwardError as exc:
        pytest.skip(f"bundled Qwen not installed: {exc}")
    base = L.load_base(QWEN)
    enc = L.encode_example(base, examples(1)[0])
    assert enc.labels[-1] == base.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert sum(t != L.IGNORE for t in enc.labels) == 2  # "f" + <|im_end|>
    cfg = TrainConfig(batch_size=4, epochs=1, dtype="auto", save_every_steps=0)
    result = train_lora(QWEN, examples(1), cfg, tmp_path / "run")  # 8 examples: 2 steps
    assert result.steps == 2 and all(0 < x < 20 for x in result.losses)
    model = resolve(result.adapter_model_string, dtype=result.dtype)
    (out,) = model.generate([examples(1)[0].prompt], GenerationConfig(max_tokens=4))
    assert isinstance(out[0], str) and out[0]


def test_shared_prefix_loss_and_grads_match_the_plain_pass(tiny_dir, tiny_model, examples):
    """Running a batch's common prefix once (cache repeated per row) is the same maths as the
    plain forward: equal loss and LoRA gradients in fp32."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = L.load_base(tiny_model)
    short = TrainExample(examples(1)[0].prompt, "fo")  # rows of different lengths: right padding
    encs = [L.encode_example(base, e) for e in [*examples(1)[:4], short]]
    batch = L.collate(encs, base.pad_id)
    assert L.shared_prefix_length(batch) >= L.MIN_SHARED_PREFIX
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    out = {}
    for share in (False, True):
        model.zero_grad(set_to_none=True)
        loss = L.answer_loss(model, batch, share_prefix=share)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        out[share] = (loss.detach(), grads)
    torch.testing.assert_close(out[True][0], out[False][0], rtol=1e-5, atol=1e-6)
    for n, g in out[False][1].items():
        torch.testing.assert_close(out[True][1][n], g, rtol=1e-4, atol=1e-6, msg=n)
    with torch.no_grad():
        full = model(**batch).loss
    torch.testing.assert_close(out[True][0], full, rtol=1e-5, atol=1e-6)


def test_shared_prefix_stops_before_the_first_label(tiny_model, examples):
    base = L.load_base(tiny_model)
    encs = [L.encode_example(base, e) for e in examples(1)[:2]]
    batch = L.collate(encs, base.pad_id)
    p = L.shared_prefix_length(batch)
    first = min(e.labels.index(next(t for t in e.labels if t != L.IGNORE)) for e in encs)
    assert 0 < p <= first - 1
    assert L.shared_prefix_length(L.collate(encs[:1], base.pad_id)) == 0  # one row: nothing to share


def test_training_draws_one_bar(tiny_model, examples, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INWARD_PROGRESS", "1")
    seen = []
    train_lora(tiny_model, examples(1), replace(FAST, epochs=1), tmp_path / "a", progress=lambda *a: seen.append(a))
    assert seen and "train:" not in capsys.readouterr().err  # the caller follows progress: no bar of ours
    train_lora(tiny_model, examples(1), replace(FAST, epochs=1), tmp_path / "b")
    assert "train:" in capsys.readouterr().err  # nobody follows it: our own bar
