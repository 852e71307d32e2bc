"""M1ft's merged checkpoint (the base of M_C's shift finetune) holds exactly the weights the local
backend runs M1ft with, in the dtype the shift finetune trains in."""

from __future__ import annotations

import json

import pytest
import torch

from inward.experiments import behaviour_change as bc
from inward.models import resolve
from inward.models.base import GenerationConfig


@pytest.fixture(scope="module")
def m1ft(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from inward.models.tiny import make_tiny_model

    base = make_tiny_model(tmp_path_factory.mktemp("tiny_m1"), seed=3)
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = tmp_path_factory.mktemp("adapter")
    get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)), cfg).save_pretrained(str(adapter))
    return f"hf/{base}+lora:{adapter}"


def saved_tensors(model_string: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    folder = model_string.removeprefix("hf/")
    return load_file(f"{folder}/model.safetensors")


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_merged_checkpoint_is_the_backends_m1ft(m1ft, tmp_path, dtype):
    merged = bc.merge_adapter_checkpoint(m1ft, tmp_path / "merged", dtype)
    assert merged == f"hf/{(tmp_path / 'merged').resolve()}"
    saved = saved_tensors(merged)
    backend = resolve(m1ft, dtype=dtype)
    runs = backend.load().state_dict()
    assert saved and set(saved) <= set(runs)
    for name, value in saved.items():
        assert value.dtype == getattr(torch, dtype) and torch.equal(value, runs[name]), name
    # loaded back in that dtype, it answers as M1ft does
    prompts = [[{"role": "user", "content": "fox sheep duck"}]]
    greedy = GenerationConfig(max_tokens=6, temperature=0.0)
    assert resolve(merged, dtype=dtype).generate(prompts, greedy) == backend.generate(prompts, greedy)
    marker = json.loads((tmp_path / "merged" / bc.MERGED_MARKER).read_text())
    assert marker["dtype"] == dtype and (tmp_path / "merged" / "tokenizer_config.json").is_file()


def test_a_finished_merge_is_reused_only_in_its_dtype(m1ft, tmp_path, monkeypatch):
    out = tmp_path / "merged"
    bc.merge_adapter_checkpoint(m1ft, out, "bfloat16")
    with monkeypatch.context() as m:
        m.setattr("inward.models.checkpoint.Checkpoint.load", lambda *a, **k: pytest.fail("merged again"))
        bc.merge_adapter_checkpoint(m1ft, out, "bfloat16")
    bc.merge_adapter_checkpoint(m1ft, out, "float32")  # another dtype: merged again
    assert next(iter(saved_tensors(f"hf/{out}").values())).dtype == torch.float32
    # a marker from before the dtype was recorded: those merges were float32
    marker = out / bc.MERGED_MARKER
    marker.write_text(json.dumps({k: v for k, v in json.loads(marker.read_text()).items() if k != "dtype"}))
    with monkeypatch.context() as m:
        m.setattr("inward.models.checkpoint.Checkpoint.load", lambda *a, **k: pytest.fail("merged again"))
        bc.merge_adapter_checkpoint(m1ft, out, "float32")


def test_merge_dtype():
    assert bc.merge_dtype("bfloat16", "bfloat16") == "bfloat16"
    assert bc.merge_dtype("bfloat16", "float32") == "float32"  # the finetune must not see bf16 rounding
    assert bc.merge_dtype("float32", "bfloat16") == "float32"
    assert bc.merge_dtype("float16", "bfloat16") == "float32"
