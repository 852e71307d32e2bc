"""A peft LoRA adapter as a GGUF LoRA adapter, which llama.cpp applies at runtime, unmerged.

The GGUF adapter format is llama.cpp's (its ``convert_lora_to_gguf.py``): ``general.type =
adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, and for every adapted weight
``<gguf tensor name>.lora_a`` (peft's ``lora_A``, rank x in) and ``.lora_b`` (peft's ``lora_B``,
out x rank), stored in float32. llama.cpp scales the update by ``alpha / rank`` as peft does
(rsLoRA's ``alpha / sqrt(rank)`` is written as an equivalent alpha).

The decoder layer names of the architectures inward bundles (Qwen2, Gemma 3, and Llama-style
models without the q/k permutation) map one to one; anything else is refused with a clear error
rather than silently dropped. Converted files are cached under ``cache_dir()/gguf-lora`` keyed by
the adapter's weights and settings and the base GGUF's sha256.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from inward.errors import InwardError
from inward.models.paths import adapter_config_sha256, cache_dir, file_lock, file_sha256

FORMAT_VERSION = "gguf-lora-v1"

# transformers module name -> GGUF tensor name (llama.cpp's tensor map) for decoder layers.
MODULES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
# Architectures whose GGUF conversion stores q/k weights unpermuted (so lora_A/B map as they are).
ARCHITECTURES = ("qwen2", "qwen3", "gemma3", "gemma2", "gemma")

_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")


def gguf_tensor_name(peft_key: str) -> tuple[str, str]:
    """(GGUF tensor name ``blk.N.<name>.weight``, "a" or "b") of a peft LoRA weight key."""
    m = _KEY.search(peft_key)
    if m is None or m.group(2) not in MODULES:
        raise InwardError(
            f"LoRA weight {peft_key!r} is not on a decoder layer's attention or MLP projection "
            f"({', '.join(MODULES)}); llama.cpp cannot apply it. Use -M engine=torch for this adapter."
        )
    layer, module, side = m.groups()
    return f"blk.{layer}.{MODULES[module]}.weight", side.lower()


def _alpha(config: dict[str, Any], where: str) -> float:
    if config.get("use_dora"):
        raise InwardError(f"{where}: DoRA adapters are not supported by llama.cpp; use -M engine=torch.")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise InwardError(f"{where}: per-module ranks or alphas are not supported here; use -M engine=torch.")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        raise InwardError(f"{where}: adapters with trained biases are not supported here; use -M engine=torch.")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    # llama.cpp scales by alpha / r; rsLoRA scales by alpha / sqrt(r).
    return alpha * math.sqrt(r) if config.get("use_rslora") else alpha


def _architecture(base_gguf: Path) -> str:
    import gguf

    reader = gguf.GGUFReader(str(base_gguf))
    field = reader.fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def convert(adapter_dir: Path, base_gguf: Path, out: Path) -> Path:
    """Write the peft adapter in ``adapter_dir`` as a GGUF LoRA adapter for ``base_gguf`` to ``out``."""
    import gguf
    from safetensors import safe_open

    where = f"LoRA adapter {str(adapter_dir)!r}"
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    alpha = _alpha(config, where)
    arch = _architecture(base_gguf)
    if arch not in ARCHITECTURES:
        raise InwardError(
            f"{where}: the base GGUF's architecture {arch!r} is not one inward converts adapters for "
            f"({', '.join(ARCHITECTURES)}); use -M engine=torch."
        )
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise InwardError(f"{where} has no adapter_model.safetensors (llama.cpp needs safetensors adapters).")
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    seen: dict[str, set[str]] = {}
    with safe_open(str(weights), framework="np") as fh:
        for key in sorted(fh.keys()):
            name, side = gguf_tensor_name(key)
            seen.setdefault(name, set()).add(side)
            writer.add_tensor(f"{name}.lora_{side}", fh.get_tensor(key).astype("float32"))
    unpaired = sorted(n for n, sides in seen.items() if sides != {"a", "b"})
    if unpaired:
        raise InwardError(f"{where}: {unpaired[0]} has lora_A without lora_B or the reverse.")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def gguf_adapter(adapter_dir: str | Path, base_gguf: Path) -> Path:
    """The GGUF LoRA file of a peft adapter for ``base_gguf``, converted once and cached."""
    adir = Path(adapter_dir).expanduser()
    weights = adir / "adapter_model.safetensors"
    if not weights.is_file():
        raise InwardError(f"LoRA adapter {str(adapter_dir)!r} has no adapter_model.safetensors.")
    key = hashlib.sha256(
        json.dumps(
            [
                FORMAT_VERSION,
                file_sha256(weights),
                adapter_config_sha256(adir / "adapter_config.json"),
                file_sha256(base_gguf),
            ]
        ).encode()
    ).hexdigest()[:20]
    target = cache_dir() / "gguf-lora" / f"{key}.gguf"
    if target.is_file():
        return target
    with file_lock(target.with_suffix(".lock")):
        if not target.is_file():
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            try:
                convert(adir, base_gguf, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    return target
