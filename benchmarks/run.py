"""inward vs the paper's naive methods, measured side by side in one process (issue 6).

    python benchmarks/run.py --quick            # ~5-10 min on a 2-core CPU
    python benchmarks/run.py                    # larger sizes
    python benchmarks/run.py --study-run runs/default   # item 5 from a finished study's run.json

Every ratio compares two implementations on the same prompts / examples, in the same process,
back to back, after a warmup call on each side. Progress goes to stderr; the LAST line of
stdout is one JSON object with every key (see benchmarks/README.md for what each one means).
Speed is never asserted in tests; this script is where it is measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from inward.experiments.context import task_properties  # noqa: E402
from inward.experiments.study_config import preset  # noqa: E402
from inward.models import (
    parse_model_string,  # noqa: E402
    resolve,  # noqa: E402
)
from inward.models.base import DistributionConfig, GenerationConfig  # noqa: E402
from inward.models.local import MIN_SHARED_PREFIX as LOCAL_MIN_PREFIX  # noqa: E402
from inward.models.local import LocalBackend, _common_prefix, _cpu_count  # noqa: E402
from inward.prompts import hypothetical_prompt, object_prompt  # noqa: E402
from inward.records import ObjectRecord  # noqa: E402
from inward.tasks.registry import get_task  # noqa: E402
from inward.train import lora as lora_mod  # noqa: E402
from inward.train.datasets import self_prediction_examples  # noqa: E402
from inward.train.lora import IGNORE, TrainConfig, answer_loss, collate, encode_example, load_base, train_lora  # noqa: E402

TARGETS = {
    "generation_speedup": 8.0,
    "scoring_speedup": 10.0,
    "training_speedup": 3.0,
    "train_peak_fraction": 0.4,
    "study_peak_rss_gb": 8.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- machine peak --------------------------------------------------------------------------------


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5, rounds: int = 3) -> float:
    """Best achieved FLOP/s of an n x n x n matmul at ``dtype`` with the current thread count."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


# ---- model arithmetic ----------------------------------------------------------------------------


def model_dims(model: Any) -> dict[str, int]:
    """Parameter counts that enter the FLOP formulas (see README): decoder linear weights N_body,
    LM head V x d, layers and attention width."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    dec = lm.get_decoder()
    body = 0
    for name, mod in dec.named_modules():
        if isinstance(mod, torch.nn.Linear):
            w = getattr(mod, "base_layer", mod).weight if hasattr(mod, "base_layer") else mod.weight
            if "lora_" not in name:
                body += w.numel()
    head = lm.get_output_embeddings().weight
    cfg = lm.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return {
        "n_body": body,
        "vocab": head.shape[0],
        "d": head.shape[1],
        "layers": cfg.num_hidden_layers,
        "attn_width": heads * head_dim,
    }


def gen_flops(dims: dict[str, int], prompt_lens: list[int], new_lens: list[int]) -> float:
    """Useful forward FLOPs of generating: 2 N_body per real token (prompt + generated), the LM head
    (2 V d) once per generated token, attention 4 s d_attn per token at context s per layer."""
    f = 0.0
    for p, g in zip(prompt_lens, new_lens):
        f += 2 * dims["n_body"] * (p + g) + 2 * dims["vocab"] * dims["d"] * max(g, 1)
        f += 4 * dims["layers"] * dims["attn_width"] * sum(range(1, p + g + 1))
    return f


def train_flops(dims: dict[str, int], lengths: list[int], n_labels: int, n_lora: int) -> float:
    """Useful FLOPs of LoRA steps over a frozen base: forward 2 N_body T + backward to activations
    2 N_body T (no weight grads for frozen weights) = 4 N_body T; LoRA weights 6 N_lora T; LM head on
    label positions only, 4 V d L; attention 3 x 4 s^2 d_attn per layer per sequence."""
    t = sum(lengths)
    f = 4 * dims["n_body"] * t + 6 * n_lora * t + 4 * dims["vocab"] * dims["d"] * n_labels
    f += 3 * 4 * dims["layers"] * dims["attn_width"] * sum(s * s for s in lengths)
    return f


# ---- 1. object-level generation ------------------------------------------------------------------


def naive_model(ckpt: Path):
    """What the paper's HF backend did: the checkpoint in its default dtype (fp32), one generate
    call per prompt, the tokenizer's chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32, use_safetensors=True).eval()
    return tok, model


def naive_generate(tok, model, prompt, max_new_tokens: int, stop_ids: list[int], **sampling) -> list[int]:
    text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    inputs = tok(text, return_tensors="pt", add_special_tokens=False)
    kw = dict(do_sample=False) if not sampling else dict(do_sample=True, **sampling)
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=tok.pad_token_id or stop_ids[-1],
            **kw,
        )
    seq = out[0, inputs["input_ids"].shape[1] :].tolist()
    for k, t in enumerate(seq):  # the stop token ends the answer (as in ours)
        if t in stop_ids:
            return seq[:k]
    return seq


def bench_generation(ours, tok, naive, groups, stop_ids, dims, peaks) -> tuple[dict, dict]:
    log(f"generation: {sum(len(p) for _, p, _ in groups)} object-level prompts")
    # warmup both sides
    naive_generate(tok, naive, groups[0][1][0], 2, stop_ids)
    ours.generate(groups[0][1][:2], GenerationConfig(max_tokens=2))

    t = time.perf_counter()
    ours_out = {name: ours.generate(prompts, GenerationConfig(max_tokens=mt)) for name, prompts, mt in groups}
    t_ours = time.perf_counter() - t

    # ablation: the same backend without shared-prefix KV reuse (same loaded weights)
    plain = LocalBackend(
        parse_model_string(ours.model_string), dtype=ours.dtype, batch_size=ours.batch_size, share_prefix=False
    )
    plain.install(ours.load())  # the same loaded weights
    t = time.perf_counter()
    plain_out = {name: plain.generate(prompts, GenerationConfig(max_tokens=mt)) for name, prompts, mt in groups}
    t_plain = time.perf_counter() - t

    t = time.perf_counter()
    naive_out = {name: [naive_generate(tok, naive, p, mt, stop_ids) for p in prompts] for name, prompts, mt in groups}
    t_naive = time.perf_counter() - t

    n = sum(len(p) for _, p, _ in groups)
    same, prompt_lens, ours_lens, naive_lens = 0, [], [], []
    for name, prompts, _ in groups:
        for p, o, nv in zip(prompts, ours_out[name], naive_out[name]):
            prompt_lens.append(len(tok(ours.render(p), add_special_tokens=False)["input_ids"]))
            ours_lens.append(len(tok(o[0], add_special_tokens=False)["input_ids"]))
            naive_lens.append(len(nv))
            same += o[0] == tok.decode(nv, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    f_model = gen_flops(dims, prompt_lens, ours_lens)
    f_naive = gen_flops(dims, prompt_lens, naive_lens)
    # FLOPs ours actually executes: a batch's shared prefix runs once, not once per row
    saved_tokens = 0
    for _name, prompts, _ in groups:
        ids = [tok(ours.render(p), add_special_tokens=False)["input_ids"] for p in prompts]
        ids.sort(key=len, reverse=True)
        for k in range(0, len(ids), ours.batch_size):
            b = ids[k : k + ours.batch_size]
            pre = _common_prefix(b) if len(b) > 1 else 0
            if pre >= LOCAL_MIN_PREFIX:
                saved_tokens += pre * (len(b) - 1)
    f_ours = f_model - 2 * dims["n_body"] * saved_tokens
    res = {
        "generation_speedup": t_naive / t_ours,
        "generation": {
            "prompts": n,
            "max_tokens": {name: mt for name, _, mt in groups},
            "ours_seconds": t_ours,
            "naive_seconds": t_naive,
            "ours_prompts_per_s": n / t_ours,
            "naive_prompts_per_s": n / t_naive,
            "ours_no_prefix_reuse_seconds": t_plain,
            "prefix_reuse_speedup": t_plain / t_ours,
            "prefix_reuse_identical_outputs_fraction": sum(
                a == b for name, _, _ in groups for a, b in zip(ours_out[name], plain_out[name])
            )
            / n,
            "ours_tokens_generated": sum(ours_lens),
            "naive_tokens_generated": sum(naive_lens),
            "prompt_tokens": sum(prompt_lens),
            "identical_outputs_fraction": same / n,
            "ours_flops_executed": f_ours,
            "ours_flop_per_s": f_ours / t_ours,
            "model_flops": f_model,
            "ours_model_flop_per_s": f_model / t_ours,
            "prefix_tokens_not_recomputed": saved_tokens,
            "naive_flop_per_s": f_naive / t_naive,
            "ours_dtype": ours.dtype,
            "ours_batch_size": ours.batch_size,
        },
    }
    res["gen_peak_fraction"] = res["generation"]["ours_flop_per_s"] / peaks[ours.dtype]  # executed FLOPs
    res["generation"]["naive_peak_fraction_fp32"] = res["generation"]["naive_flop_per_s"] / peaks["float32"]
    return res, ours_out


# ---- 2. hypothetical answer distributions --------------------------------------------------------


def _first_token_text(tok, ids: list[int]) -> str:
    if not ids:
        return ""
    text = tok.decode(ids[:1], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return tok.convert_ids_to_tokens(ids[0]) if "\ufffd" in text else text


def tv_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """Total variation between two distributions over answer-token texts; mass either one leaves
    outside its keys (ours: beyond the top k) is one shared "other" bucket."""
    keys = set(p) | set(q)
    rest_p, rest_q = 1 - sum(p.values()), 1 - sum(q.values())
    return 0.5 * (sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys) + abs(rest_p - rest_q))


def bench_scoring(ours, tok, naive, prompts, budgets, stop_ids, n_samples: int, seed: int) -> dict:
    log(f"scoring: {len(prompts)} hypothetical prompts, naive = {n_samples} separate sampled generate calls each")
    cfg = DistributionConfig(top_k=20)
    ours.answer_distribution(prompts[:2], cfg)  # warmup
    naive_generate(tok, naive, prompts[0], 1, stop_ids, temperature=1.0, top_k=0, top_p=1.0)

    t = time.perf_counter()
    dists = ours.answer_distribution(prompts, cfg)
    t_ours = time.perf_counter() - t

    torch.manual_seed(seed)
    t = time.perf_counter()
    samples = [
        [naive_generate(tok, naive, p, b, stop_ids, temperature=1.0, top_k=0, top_p=1.0) for _ in range(n_samples)]
        for p, b in zip(prompts, budgets)
    ]
    t_naive = time.perf_counter() - t

    # greedy (the paper's temperature-0 answer, fp32, one prompt at a time): its first token
    greedy = [_first_token_text(tok, naive_generate(tok, naive, p, 1, stop_ids)) for p in prompts]
    tvs, noise, agree = [], [], 0
    rng = random.Random(seed)
    for d, ss, g in zip(dists, samples, greedy):
        emp: dict[str, float] = {}
        for s in ss:
            key = _first_token_text(tok, s)
            emp[key] = emp.get(key, 0.0) + 1 / len(ss)
        tvs.append(tv_distance(d, emp))
        # the TV a perfect forward pass would still show against n_samples draws (sampling noise)
        keys, probs = list(d) + ["\x00other"], list(d.values()) + [max(0.0, 1 - sum(d.values()))]
        draw: dict[str, float] = {}
        for k in rng.choices(keys, probs, k=n_samples):
            draw[k] = draw.get(k, 0.0) + 1 / n_samples
        noise.append(tv_distance(d, {k: v for k, v in draw.items() if k != "\x00other"}))
        agree += max(d, key=d.get) == g
    return {
        "scoring_speedup": t_naive / t_ours,
        "scoring": {
            "prompts": len(prompts),
            "naive_samples_per_prompt": n_samples,
            "naive_method": "one model.generate call per sample (do_sample, T=1, top_k=0, top_p=1), "
            "fp32, as the paper issued one API call per sample",
            "ours_seconds": t_ours,
            "naive_seconds": t_naive,
            "ours_prompts_per_s": len(prompts) / t_ours,
            "naive_prompts_per_s": len(prompts) / t_naive,
            "mean_tv_distance": sum(tvs) / len(tvs),
            "mean_tv_sampling_noise_floor": sum(noise) / len(noise),
            "argmax_vs_greedy_agreement": agree / len(prompts),
        },
    }


# ---- 3/4. training -------------------------------------------------------------------------------


def naive_train(ckpt: Path, encoded, cfg: TrainConfig, pad_id: int, seed: int):
    """A plain peft LoRA loop as a researcher would write it: fp32, random batches padded to the
    batch max, the model's own loss (logits over every position, labels -100 on the prompt),
    AdamW, the same LR schedule, batch size and steps."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32, use_safetensors=True)
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=cfg.target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    steps = math.ceil(len(encoded) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (steps - s) / steps))
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    times, losses, pad = [], [], 0
    for k in range(steps):
        batch = collate([encoded[i] for i in order[k * cfg.batch_size : (k + 1) * cfg.batch_size]], pad_id)
        t = time.perf_counter()
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        times.append(time.perf_counter() - t)
        losses.append(float(loss.detach()))
        pad += int((batch["attention_mask"] == 0).sum())
    return model, times, losses, pad


def heldout_loss(model, encoded, pad_id: int, batch_size: int = 8) -> tuple[float, float]:
    """Mean answer-token cross-entropy per example on held-out examples, and its standard error."""
    per = []
    model.eval()
    with torch.no_grad():
        for k in range(0, len(encoded), batch_size):
            for e in encoded[k : k + batch_size]:
                per.append(float(answer_loss(model, collate([e], pad_id))))
    m = sum(per) / len(per)
    sd = math.sqrt(sum((x - m) ** 2 for x in per) / max(1, len(per) - 1))
    return m, sd / math.sqrt(len(per))


def bench_training(model_string, examples, heldout, cfg: TrainConfig, dims, peaks, seed) -> dict:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = load_base(model_string)
    enc = [encode_example(base, e, cfg.max_length) for e in examples]
    enc_held = [encode_example(base, e, cfg.max_length) for e in heldout]
    lengths = [len(e.input_ids) for e in enc]
    groups = lora_mod.batch_groups(examples)
    plan = lora_mod.batch_plan(lengths, cfg.batch_size, cfg.seed, 0, groups)
    shared = [lora_mod.shared_prefix_length(collate([enc[i] for i in b], base.pad_id)) for b in plan]
    n_labels = sum(sum(t != IGNORE for t in e.labels) for e in enc)
    log(
        f"training: {len(enc)} examples ({sum(lengths)} tokens, {n_labels} label tokens), "
        f"{math.ceil(len(enc) / cfg.batch_size)} steps of batch {cfg.batch_size}; held-out {len(enc_held)}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        # warmup: one tiny ours run (kernels, allocator) so neither side pays first-call costs
        train_lora(model_string, examples[: cfg.batch_size], cfg, Path(tmp) / "warm")
        r = train_lora(model_string, examples, cfg, Path(tmp) / "ours")
        log(f"ours: {r.train_seconds:.1f} s, {r.examples_per_second:.2f} ex/s, dtype {r.dtype}")
        lora_mod.SHARE_PREFIX = False  # ablation: what computing the shared prefix once buys
        try:
            r_noshare = train_lora(model_string, examples, cfg, Path(tmp) / "ours_noshare")
        finally:
            lora_mod.SHARE_PREFIX = True
        log(f"ours without prefix sharing: {r_noshare.train_seconds:.1f} s")
        naive, times, naive_losses, naive_pad_tokens = naive_train(base.checkpoint, enc, cfg, base.pad_id, seed)
        t_naive = sum(times)
        log(f"naive: {t_naive:.1f} s, {len(enc) / t_naive:.2f} ex/s")
        n_lora = sum(p.numel() for p in naive.parameters() if p.requires_grad)
        naive_held = heldout_loss(naive, enc_held, base.pad_id)
        with naive.disable_adapter():
            untrained_held = heldout_loss(naive, enc_held, base.pad_id)
        del naive
        fp32 = AutoModelForCausalLM.from_pretrained(str(base.checkpoint), dtype=torch.float32, use_safetensors=True)
        ours_model = PeftModel.from_pretrained(fp32, r.adapter_path)
        ours_held = heldout_loss(ours_model, enc_held, base.pad_id)
        del ours_model, fp32

    f = train_flops(dims, lengths, n_labels, n_lora)  # model FLOPs: every row's full prompt
    # FLOPs ours executes: each batch's shared prefix runs once (attention term kept in full)
    saved = sum(p * (len(b) - 1) for p, b in zip(shared, plan))
    f_exec = f - (4 * dims["n_body"] + 6 * n_lora) * saved
    ours_fps = f_exec / r.train_seconds
    return {
        "training_speedup": (len(enc) / r.train_seconds) / (len(enc) / t_naive),
        "train_peak_fraction": ours_fps / peaks[r.dtype],
        "training": {
            "examples": len(enc),
            "steps": r.steps,
            "batch_size": cfg.batch_size,
            "tokens": sum(lengths),
            "label_tokens": n_labels,
            "lora_params": n_lora,
            "ours_dtype": r.dtype,
            "ours_seconds": r.train_seconds,
            "naive_seconds": t_naive,
            "ours_examples_per_s": r.examples_per_second,
            "naive_examples_per_s": len(enc) / t_naive,
            "ours_step_seconds": r.train_seconds / r.steps,
            "ours_no_prefix_sharing_seconds": r_noshare.train_seconds,
            "prefix_sharing_speedup": r_noshare.train_seconds / r.train_seconds,
            "shared_prefix_tokens_per_batch": shared,
            "naive_step_seconds": times,
            "ours_train_losses": r.losses,
            "naive_train_losses_full_logits": naive_losses,
            "heldout_loss_ours": ours_held[0],
            "heldout_loss_ours_se": ours_held[1],
            "heldout_loss_naive": naive_held[0],
            "heldout_loss_naive_se": naive_held[1],
            "heldout_loss_untrained": untrained_held[0],
            "heldout_examples": len(enc_held),
            "model_flops": f,
            "ours_flops_executed": f_exec,
            "ours_flop_per_s": ours_fps,
            "ours_model_flop_per_s": f / r.train_seconds,
            "prefix_tokens_not_recomputed": saved,
            "naive_flop_per_s_same_useful_flops": f / t_naive,
            "naive_peak_fraction_fp32": (f / t_naive) / peaks["float32"],
            "naive_padding_tokens": naive_pad_tokens,
            "flop_formula": train_flops.__doc__.split(":", 1)[1].strip(),
        },
    }


# ---- 5. the default study ------------------------------------------------------------------------


def study_numbers(run_dir: Path | None, smoke: bool) -> dict:
    out: dict[str, Any] = {"study_stage_seconds": None, "study_peak_rss_gb": None}
    if run_dir is not None and (run_dir / "run.json").is_file():
        man = json.loads((run_dir / "run.json").read_text())
        stages = man.get("stage_seconds") or {}
        out["study_stage_seconds"] = stages
        out["study_total_stage_seconds"] = sum(stages.values())
        out["study_training_seconds"] = {
            f"seed {t.get('seed')}: {t.get('purpose', 'main')}: {t.get('about', t.get('model'))}": t.get("seconds")
            for t in man.get("training", [])
        }
        out["study_run"] = str(run_dir)
        if man.get("peak_rss_mb") is not None:
            out["study_peak_rss_gb"] = man["peak_rss_mb"] / 1024
            out["study_peak_rss_source"] = "run.json peak_rss_mb"
        else:
            rss = [json.loads(p.read_text()).get("peak_rss_mb") for p in run_dir.rglob("train_result.json")]
            rss = [x for x in rss if x]
            if rss:
                out["study_peak_rss_gb"] = max(rss) / 1024
                out["study_peak_rss_source"] = (
                    "max peak_rss_mb of the run's train_result.json files (process peak "
                    "at the end of each finetune; run.json has no peak_rss_mb)"
                )
        peaks = man.get("stage_peak_rss_mb") or {}  # where the peak was reached (runs from 2026-12-07 on)
        if peaks:
            out["study_stage_peak_rss_gb"] = {name: round(mb / 1024, 2) for name, mb in peaks.items()}
            out["study_peak_stage"] = max(peaks, key=peaks.get)
    if smoke:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "inward.cli.main", "study", "--preset", "smoke", "--out", tmp],
                check=True,
                cwd=ROOT,
            )
            out["smoke_study_seconds"] = time.perf_counter() - t
            # The study records its own peak. RUSAGE_CHILDREN is no use here: a child's ru_maxrss
            # counts the pages it shared with this (12 GB) process between fork and exec.
            peak_mb = json.loads((Path(tmp) / "run.json").read_text()).get("peak_rss_mb")
        out["smoke_study_peak_rss_gb"] = peak_mb / 1024 if peak_mb is not None else None
        if out["study_peak_rss_gb"] is None:
            out["study_peak_rss_gb"] = out["smoke_study_peak_rss_gb"]
            out["study_peak_rss_source"] = "smoke preset child process"
    return out


def seed_seconds(run_dir: Path) -> tuple[dict[int, float], float]:
    """Per training seed, the seconds of its core stages (finetunes, object level, evaluations;
    calibration and behaviour change excluded, since the default preset runs them on one seed
    only), and the seconds of the stages no seed owns (object-level train answers, the untrained
    evaluation, the chat-format measurement), from a finished run's run.json."""
    import re

    stages = json.loads((run_dir / "run.json").read_text()).get("stage_seconds") or {}
    seeds: dict[int, float] = {}
    shared = 0.0
    for name, sec in stages.items():
        m = re.match(r"seed (\d+): (.*)", name)
        if m is None:
            if not name.startswith(("calibration", "behaviour change")):
                shared += sec
        elif not m.group(2).startswith(("calibration", "behaviour change")):
            seeds[int(m.group(1))] = seeds.get(int(m.group(1)), 0.0) + sec
    return seeds, shared


def compare_runs(native: Path, other: Path) -> dict[str, Any]:
    """Seed and shared-stage seconds of two runs of one preset (say native kernels vs forced AVX2),
    and their ratios over the seeds both ran."""
    a_seeds, a_shared = seed_seconds(native)
    b_seeds, b_shared = seed_seconds(other)
    both = sorted(set(a_seeds) & set(b_seeds))
    out: dict[str, Any] = {
        "native_run": str(native),
        "other_run": str(other),
        "native_seed_seconds": a_seeds,
        "other_seed_seconds": b_seeds,
        "native_shared_seconds": a_shared,
        "other_shared_seconds": b_shared,
        "shared_ratio": b_shared / a_shared if a_shared else None,
    }
    if both:
        out["seed_ratio"] = sum(b_seeds[s] for s in both) / sum(a_seeds[s] for s in both)
        out["seeds_compared"] = both
    return out


# ---- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (target: under 20 minutes on 2 cores)")
    ap.add_argument("--model", default="bundled/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--study-run", default=str(ROOT / "runs" / "default"), help="run dir of a finished default study")
    ap.add_argument("--smoke-study", action="store_true", help="also run the smoke preset and measure its peak RSS")
    ap.add_argument(
        "--compare-run",
        default=None,
        help="a finished run of the same preset made another way (e.g. with ATEN_CPU_CAPABILITY=avx2 "
        "ONEDNN_MAX_CPU_ISA=AVX2): seed and shared-stage seconds of both and their ratios (key study_compare)",
    )
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dev", action="store_true", help="tiny sizes to check the script runs (numbers meaningless)")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    threads = _cpu_count()
    torch.set_num_threads(threads)
    study = preset("default")
    tasks = list(study.train_tasks)
    props = task_properties(study, tasks)
    n_gen = 32  # object prompts per task: one full batch (the study's batch size), as in the study
    n_score = 8 if args.quick else 24  # hypothetical prompts in all
    n_samples = 20
    steps = 6 if args.quick else 16
    cfg = TrainConfig(**{**study.finetune.to_json(), "save_every_steps": 0})
    n_held = 32 if args.quick else 64
    if args.dev:
        n_gen, n_score, n_samples, steps, n_held = 2, 2, 2, 1, 4

    peaks = {"bfloat16": matmul_peak(torch.bfloat16), "float32": matmul_peak(torch.float32)}
    log(
        f"matmul peak with {threads} threads: bf16 {peaks['bfloat16'] / 1e9:.0f}, fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s"
    )

    ours = resolve(args.model, **{**study.model_args})
    ours.load()
    stop_ids = ours.stop_ids
    naive_tok, naive = naive_model(ours.checkpoint_dir())
    dims = model_dims(naive)

    strings = {t: [s.string for s in get_task(t).load("train", n_gen, args.seed)] for t in tasks}
    groups = [(t, [object_prompt(t, s) for s in strings[t]], get_task(t).max_tokens) for t in tasks]
    gen, outs = bench_generation(ours, naive_tok, naive, groups, stop_ids, dims, peaks)

    # hypothetical prompts from the same strings, spread over (task, property) pairs
    pairs = [(t, p, s) for t in tasks for p in props[t] for s in strings[t]]
    random.Random(args.seed).shuffle(pairs)
    pairs = pairs[:n_score]
    hyp = [hypothetical_prompt(t, p, s) for t, p, s in pairs]
    budgets = [p.answer_tokens or get_task(t).max_tokens for t, p, _ in pairs]
    score = bench_scoring(ours, naive_tok, naive, hyp, budgets, stop_ids, n_samples, args.seed)
    del naive
    ours.close()

    # training data: self-prediction examples from this model's own object-level responses
    objects = [
        ObjectRecord(t, "train", s, None, args.model, o[0], True, ())
        for t in tasks
        for s, o in zip(strings[t], outs[t])
    ]
    exs = self_prediction_examples(objects, {t: get_task(t) for t in tasks}, props, n_per_pair=10**6, seed=args.seed)
    need = steps * cfg.batch_size
    if len(exs) < need + 8:
        raise SystemExit(f"only {len(exs)} training examples; need {need} + held-out")
    train = bench_training(args.model, exs[:need], exs[need : need + n_held], cfg, dims, peaks, args.seed)

    study_run = Path(args.study_run) if args.study_run else None
    # A fresh clone has no finished default study: measure the smoke preset's peak memory instead
    # (same stages and models at tiny sizes), so every key gets a measured value.
    no_study = study_run is None or not (study_run / "run.json").is_file()
    study_res = study_numbers(study_run, args.smoke_study or no_study)
    if study_run is not None and not no_study:
        seeds, shared = seed_seconds(study_run)
        study_res["study_seed_seconds"], study_res["study_shared_seconds"] = seeds, shared
        if args.compare_run:
            study_res["study_compare"] = compare_runs(study_run, Path(args.compare_run))
    result: dict[str, Any] = {
        "generation_speedup": gen["generation_speedup"],
        "scoring_speedup": score["scoring_speedup"],
        "training_speedup": train["training_speedup"],
        "train_peak_fraction": train["train_peak_fraction"],
        "gen_peak_fraction": gen["gen_peak_fraction"],
        "mean_tv_distance": score["scoring"]["mean_tv_distance"],
        "argmax_vs_greedy_agreement": score["scoring"]["argmax_vs_greedy_agreement"],
        "heldout_loss_ours": train["training"]["heldout_loss_ours"],
        "heldout_loss_naive": train["training"]["heldout_loss_naive"],
        "study_stage_seconds": study_res.pop("study_stage_seconds"),
        "study_peak_rss_gb": study_res.pop("study_peak_rss_gb"),
        "targets": TARGETS,
        "machine": {
            "cpu": _cpu_name(),
            "threads": threads,
            "torch": torch.__version__,
            "matmul_peak_flop_per_s": peaks,
        },
        "generation": gen["generation"],
        "scoring": score["scoring"],
        "training": train["training"],
        "study": study_res,
        "quick": args.quick,
        "bench_seconds": time.perf_counter() - t_start,
        "benchmark_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    ok = {
        k: (result[k] is not None and (result[k] < v if k == "study_peak_rss_gb" else result[k] >= v))
        for k, v in TARGETS.items()
    }
    result["at_target"] = ok
    line = json.dumps(result, default=float)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    for k, v in TARGETS.items():
        log(f"{k}: {result[k]} (target {'<' if k == 'study_peak_rss_gb' else '>='} {v}) {'OK' if ok[k] else 'BELOW'}")
    print(line, flush=True)
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
