"""The llama.cpp engine (``-M engine=llama.cpp``): arguments, the GGUF LoRA conversion, and, on the
bundled models, batch-layout determinism, the contract, and fidelity against torch float32.

Fidelity tolerances come from benchmarks/engines.py (benchmarks/README.md): on 32 of the study's
object-level and 32 hypothetical prompts, llama.cpp's first-token distributions were 0.015-0.029
total variation from torch float32's (bf16's own: 0.012-0.014), and 91-100% of its greedy answers
were the same strings (bf16: 94-100%). These tests ask for
less than was measured, and far less than a conversion fault gives (a dropped or misscaled adapter
moves the distributions by about as much as the adapter itself does).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from inward.errors import InwardError
from inward.models import DistributionConfig, GenerationConfig, bundled, resolve
from inward.models import gguf_lora as G
from inward.models.spec import parse_model_string

QWEN = "bundled/qwen2.5-coder-0.5b-instruct"
GEMMA = "bundled/gemma-3-270m"


def study_prompts(n: int = 8) -> list:
    from inward.prompts import hypothetical_prompt, object_prompt
    from inward.tasks import get_task

    task = get_task("animals_long")
    strings = [s.string for s in task.load("val", n, 0)]
    return [object_prompt(task, s) for s in strings] + [hypothetical_prompt(task, "first_word", s) for s in strings]


# ---- arguments and engine choice (no llama.cpp needed) --------------------------------------------
def test_engine_default_is_torch_and_bad_values_are_named():
    from inward.models.engine import choice
    from inward.models.local import LocalBackend

    spec = parse_model_string(QWEN)
    assert choice(spec, {}).engine == "torch"
    assert choice(spec, {"engine": "llama.cpp"}).engine == "llama.cpp"
    with pytest.raises(InwardError, match="engine='vulkan'"):
        choice(spec, {"engine": "vulkan"})
    assert isinstance(resolve(QWEN), LocalBackend)


def test_llama_cpp_refuses_hf_checkpoints_and_a_forced_dtype(tmp_path):
    from inward.models.llama_cpp_backend import LlamaCppBackend

    with pytest.raises(InwardError, match="bundled/ or gguf/"):
        LlamaCppBackend(parse_model_string(f"hf/{tmp_path}"))
    with pytest.raises(InwardError, match="dtype=float32 with engine=llama.cpp"):
        LlamaCppBackend(parse_model_string(QWEN), dtype="float32")
    # A step of more sequences than one llama.cpp call takes would abort the process, not raise.
    with pytest.raises(InwardError, match="batch_size=65 with engine=llama.cpp"):
        LlamaCppBackend(parse_model_string(QWEN), batch_size=65)


def test_peft_keys_map_to_gguf_tensor_names():
    key = "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
    assert G.gguf_tensor_name(key) == ("blk.3.attn_q.weight", "a")
    assert G.gguf_tensor_name(key.replace("self_attn.q_proj", "mlp.down_proj").replace("_A", "_B")) == (
        "blk.3.ffn_down.weight",
        "b",
    )
    with pytest.raises(InwardError, match="engine=torch"):
        G.gguf_tensor_name("base_model.model.lm_head.lora_A.weight")


def test_adapter_settings_llama_cpp_cannot_apply_are_refused():
    assert G._alpha({"r": 16, "lora_alpha": 32}, "x") == 32
    assert G._alpha({"r": 16, "lora_alpha": 32, "use_rslora": True}, "x") == pytest.approx(128)  # 32*sqrt(16)
    for bad in ({"use_dora": True}, {"rank_pattern": {"q_proj": 4}}, {"bias": "all"}):
        with pytest.raises(InwardError, match="engine=torch"):
            G._alpha({"r": 4, "lora_alpha": 8, **bad}, "adapter x")


def test_conversion_writes_llama_cpp_lora_layout(tmp_path):
    import gguf
    from safetensors.numpy import save_file

    base = tmp_path / "base.gguf"
    w = gguf.GGUFWriter(str(base), "qwen2")
    w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    adir = tmp_path / "adapter"
    adir.mkdir()
    (adir / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 4, "peft_type": "LORA"}))
    a = np.arange(16, dtype=np.float32).reshape(2, 8)
    b = np.ones((8, 2), dtype=np.float32)
    save_file(
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": a,
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": b,
        },
        str(adir / "adapter_model.safetensors"),
    )
    out = G.gguf_adapter(adir, base)
    assert G.gguf_adapter(adir, base) == out  # cached
    reader = gguf.GGUFReader(str(out))
    fields = {k: f for k, f in reader.fields.items()}
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 4.0
    tensors = {t.name: np.asarray(t.data).reshape([int(x) for x in reversed(t.shape)]) for t in reader.tensors}
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight.lora_a"], a)
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight.lora_b"], b)
    # A lone lora_A is an error, not a silently dropped weight.
    save_file(
        {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": a}, str(adir / "adapter_model.safetensors")
    )
    with pytest.raises(InwardError, match="without lora_B"):
        G.convert(adir, base, tmp_path / "bad.gguf")


# ---- the bundled models through llama.cpp -------------------------------------------------------------
def _need(name: str) -> None:
    pytest.importorskip("llama_cpp", reason="llama.cpp comes with the server extra (make test installs it)")
    if bundled.missing_packages(name.removeprefix("bundled/")):
        pytest.skip(f"{name} is not installed")


def _tv(p: dict, q: dict) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


@pytest.mark.real_model
def test_greedy_output_is_the_same_bytes_alone_batched_and_rerun():
    _need(QWEN)
    ps = study_prompts(6)
    cfg = GenerationConfig(max_tokens=24)
    be = resolve(QWEN, engine="llama.cpp", batch_size=5)
    batched = be.generate(ps, cfg)
    assert be.generate(ps, cfg) == batched
    assert [be.generate([p], cfg)[0] for p in ps[:4]] == batched[:4]
    assert be.generate(ps[::-1], cfg) == batched[::-1]
    assert len({r[0] for r in batched}) > 3
    fp = be.fingerprint()
    assert fp["backend"] == "llama.cpp" and fp["generation_layout"] and fp["precision"] == "gguf"
    be.close()


@pytest.mark.real_model
def test_sampling_is_seeded_and_independent_of_batching():
    _need(QWEN)
    ps = study_prompts(3)[:3]
    cfg = GenerationConfig(max_tokens=8, temperature=1.0, n=3, seed=5)
    be = resolve(QWEN, engine="llama.cpp", batch_size=4)
    together = be.generate(ps, cfg)
    assert [be.generate([p], cfg)[0] for p in ps] == together
    assert len({s for r in together for s in r}) > 3  # samples differ
    be.close()


@pytest.mark.real_model
@pytest.mark.parametrize("name,chat_format", [(QWEN, "auto"), (GEMMA, "qa")])
def test_fidelity_to_torch_float32_on_study_prompts(name, chat_format):
    """llama.cpp (Q4_K_M weights, 8-bit activations in its dot products) vs torch float32 (the
    exact dequantisation): first-token distributions within 0.06 total variation on average and
    greedy answers mostly identical."""
    _need(name)
    ps = study_prompts(8)
    cfg, dist = GenerationConfig(max_tokens=16), DistributionConfig(top_k=20)
    lc = resolve(name, engine="llama.cpp", chat_format=chat_format)
    ours, ours_d = lc.generate(ps, cfg), lc.answer_distribution(ps, dist)
    cand = lc.answer_distribution(ps[:4], DistributionConfig(candidates=("fox", "dog", "cat")))
    lc.close()
    ref = resolve(name, dtype="float32", chat_format=chat_format)
    theirs, theirs_d = ref.generate(ps, cfg), ref.answer_distribution(ps, dist)
    ref_cand = ref.answer_distribution(ps[:4], DistributionConfig(candidates=("fox", "dog", "cat")))
    ref.close()
    same = sum(a == b for a, b in zip(ours, theirs)) / len(ps)
    tv = sum(_tv(p, q) for p, q in zip(ours_d, theirs_d)) / len(ps)
    assert tv < 0.06, f"{name}: mean first-token TV {tv:.3f}"
    assert same >= 0.6, f"{name}: {same:.0%} identical greedy answers"
    assert max(_tv(p, q) for p, q in zip(cand, ref_cand)) < 0.1


@pytest.mark.real_model
def test_a_lora_adapter_is_applied_unmerged_with_peft_scaling(tmp_path):
    """A random adapter (r=4, alpha=8: scale 2) moves llama.cpp's distributions the way it moves
    torch's merged model; a dropped or misscaled adapter would not."""
    _need(QWEN)
    import torch
    from peft import LoraConfig, get_peft_model

    from inward.models.checkpoint import Checkpoint

    base_model = Checkpoint(parse_model_string(QWEN)).load_base("float32")
    peft_model = get_peft_model(
        base_model,
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"], init_lora_weights=False
        ),
    )
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn_like(p) * (0.02 if "lora_A" in n else 0.05))
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    del peft_model, base_model
    model = f"{QWEN}+lora:{tmp_path / 'adapter'}"
    ps = study_prompts(6)
    dist = DistributionConfig(top_k=20)
    lc_base = resolve(QWEN, engine="llama.cpp")
    plain = lc_base.answer_distribution(ps, dist)
    lc_base.close()
    lc = resolve(model, engine="llama.cpp")
    ours = lc.answer_distribution(ps, dist)
    lc.close()
    ref = resolve(model, dtype="float32")
    theirs = ref.answer_distribution(ps, dist)
    ref.close()
    moved = sum(_tv(p, q) for p, q in zip(plain, theirs)) / len(ps)
    gap = sum(_tv(p, q) for p, q in zip(ours, theirs)) / len(ps)
    assert moved > 0.1, f"the test adapter barely moves the model ({moved:.3f}); make it stronger"
    assert gap < moved / 3, f"llama.cpp+adapter vs torch merged: TV {gap:.3f}; the adapter itself moves {moved:.3f}"


def test_auto_keeps_torch_where_llama_cpp_cannot_run(tmp_path, monkeypatch):
    from inward.models import llama_cpp_backend
    from inward.models.engine import choice

    assert choice(parse_model_string(f"hf/{tmp_path}"), {"engine": "auto"}).engine == "torch"
    monkeypatch.setattr(llama_cpp_backend, "available", lambda: False)
    picked = choice(parse_model_string(QWEN), {"engine": "auto"})
    assert picked.engine == "torch" and "not installed" in picked.reason


@pytest.mark.real_model
def test_auto_measures_both_engines_once_and_records_why(tmp_path, monkeypatch):
    _need(GEMMA)
    from inward.models import engine
    from inward.models.paths import MeasurementFile

    monkeypatch.setattr(engine, "MEASUREMENTS", MeasurementFile("engine.json", tmp_path / "engine.json"))
    picked = engine.choice(parse_model_string(GEMMA), {"engine": "auto", "chat_format": "qa"})
    assert picked.torch_s and picked.llama_cpp_s and picked.engine in ("torch", "llama.cpp")
    expected = "llama.cpp" if picked.torch_s / picked.llama_cpp_s >= engine.MIN_SPEEDUP else "torch"
    assert picked.engine == expected
    again = engine.choice(parse_model_string(GEMMA), {"engine": "auto", "chat_format": "qa"})
    assert again.engine == picked.engine and again.reason.endswith("(cached)")
    with_adapter = engine.choice(
        parse_model_string(f"{GEMMA}+lora:{tmp_path}"), {"engine": "auto", "chat_format": "qa"}
    )
    assert with_adapter.engine == picked.engine and with_adapter.reason.endswith("(cached)")  # the base's choice
    assert resolve(GEMMA, engine="auto", chat_format="qa").engine_choice.engine == picked.engine
