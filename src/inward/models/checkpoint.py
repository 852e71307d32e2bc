"""The one place that turns a local model string into weights.

A local model is (weights, adapter, precision): :class:`Checkpoint` resolves the weights of a
``bundled/``, ``gguf/`` or ``hf/`` model string to a plain safetensors directory (bundled and GGUF
models are converted once, :func:`inward.models.bundled.converted_dir`), hashes them, loads them
in a precision with the ``+lora:`` adapter merged, and saves a merged checkpoint. The local backend,
the vLLM backend (its checkpoint directory), the trainers, the chat-format measurement, the
fidelity checks and behaviour change's merged M1ft all load through it, so a model means the same
weights wherever it is used.

Merging: an adapter is merged as if in fp32 and rounded once into the precision
(:func:`_merge_rounding_once`); generating through an unmerged peft adapter was measured 1.15x
slower with weights that require grad, and 12x slower with the frozen weights peft leaves
(benchmarks/unmerged_lora.py).
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inward.errors import InwardError
from inward.models import bundled
from inward.models.paths import adapter_config_sha256, file_sha256
from inward.models.precision import Resolution
from inward.models.precision import resolve as resolve_precision
from inward.models.spec import ModelSpec

PRECISIONS = ("float32", "bfloat16", "float16")
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a precision name (float32, bfloat16, float16)."""
    import torch

    if precision not in PRECISIONS:
        raise InwardError(f"Unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}.")
    return getattr(torch, precision)


@dataclass
class Checkpoint:
    """The weights of one local model string (its adapter included), loaded on demand."""

    spec: ModelSpec
    _directory: Path | None = field(default=None, init=False, repr=False)

    def check(self) -> None:
        """Cheap checks of the model string's files, before anything loads."""
        s = self.spec
        if s.provider == "bundled":
            bundled.get(s.name)  # UnknownNameError with close matches
        elif s.provider == "gguf" and not Path(s.name).expanduser().is_file():
            raise InwardError(
                f"GGUF file {s.name!r} does not exist (from {s.raw!r}). Expected gguf/<path to a .gguf file>."
            )
        elif s.provider == "hf" and looks_local(s.name) and not Path(s.name).expanduser().is_dir():
            raise InwardError(f"Checkpoint directory {s.name!r} does not exist (from {s.raw!r}).")
        if s.adapter is not None:
            adir = Path(s.adapter).expanduser()
            if not (adir / "adapter_config.json").is_file():
                raise InwardError(
                    f"LoRA adapter {s.adapter!r} is not a peft adapter directory "
                    "(expected adapter_config.json and adapter_model.safetensors inside)."
                )

    def directory(self) -> Path:
        """The base model's plain safetensors directory (converted or fetched once)."""
        if self._directory is None:
            s = self.spec
            if s.provider == "bundled":
                self._directory = bundled.converted_dir(s.name)
            elif s.provider == "gguf":
                self._directory = bundled.converted_dir(Path(s.name).expanduser())
            elif looks_local(s.name):
                self._directory = Path(s.name).expanduser()
            else:
                self._directory = hub_snapshot(s.name)
        return self._directory

    def gguf_file(self) -> Path:
        """The GGUF file of a ``bundled/`` or ``gguf/`` model (llama.cpp runs it as it is)."""
        s = self.spec
        if s.provider == "bundled":
            return bundled.gguf_path(s.name)
        if s.provider == "gguf":
            return Path(s.name).expanduser()
        raise InwardError(f"{s.raw!r} is not a GGUF model (bundled/ or gguf/).")

    def weights_sha256(self) -> str:
        s = self.spec
        if s.provider == "bundled":
            return bundled.get(s.name).sha256  # known without touching the file
        if s.provider == "gguf":
            return file_sha256(Path(s.name).expanduser())
        return dir_weights_sha256(self.directory())

    def adapter_hashes(self) -> tuple[str | None, str | None]:
        """sha256 of the adapter's weights and of its settings (None, None without one)."""
        if self.spec.adapter is None:
            return None, None
        adir = Path(self.spec.adapter).expanduser()
        weights = [adir / "adapter_model.safetensors", adir / "adapter_model.bin"]
        found = next((w for w in weights if w.is_file()), None)
        if found is None:
            raise InwardError(f"LoRA adapter {self.spec.adapter!r} has no adapter_model.safetensors.")
        return file_sha256(found), adapter_config_sha256(adir / "adapter_config.json")

    def layer_sizes(self) -> tuple[int, int]:
        """(hidden size, MLP intermediate size) of the model's decoder layers, from its config."""
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(str(self.directory()))
        cfg = getattr(cfg, "text_config", None) or cfg
        hidden = int(cfg.hidden_size)
        return hidden, int(getattr(cfg, "intermediate_size", None) or 4 * hidden)

    def precision(self, requested: str, device: str = "cpu") -> Resolution:
        """The precision to run this model in: ``requested`` if it names one, else (``auto``) the
        one measured fastest for its layer sizes on this machine (:mod:`inward.models.precision`)."""
        if requested != "auto":
            return resolve_precision(requested, hidden=0, intermediate=0, device=device)
        hidden, intermediate = self.layer_sizes()
        return resolve_precision(requested, hidden=hidden, intermediate=intermediate, device=device)

    def load_base(self, precision: str, attention: str | None = None) -> Any:
        """The base model's weights in ``precision``, adapter not applied. Safetensors only: never
        unpickle weights from a folder inward did not write. ``attention``: transformers'
        ``attn_implementation`` (None: its default, sdpa)."""
        from transformers import AutoModelForCausalLM

        from inward.progress import quiet_transformers_bars

        quiet_transformers_bars()
        extra = {"attn_implementation": attention} if attention else {}
        return AutoModelForCausalLM.from_pretrained(
            str(self.directory()), dtype=torch_dtype(precision), use_safetensors=True, **extra
        )

    def load(self, precision: str) -> Any:
        """The model in ``precision`` with its adapter (if any) merged: as if in fp32, rounded
        once into ``precision``. Errors name the model string."""
        try:
            model = self.load_base(precision)
            return self._merged(model, precision) if self.spec.adapter else model
        except InwardError:
            raise
        except Exception as exc:
            raise InwardError(f"Could not load model weights for {self.spec.raw!r}: {exc}") from exc

    def _merged(self, model: Any, precision: str) -> Any:
        """``model`` (loaded in ``precision``) with the adapter merged as if in fp32 and cast
        after, so low-precision rounding happens once: each LoRA target weight becomes
        ``(stored weight in fp32 + ΔW).to(dtype)``, read one tensor at a time from the checkpoint.
        The same numbers as merging into an fp32 copy of the model and copying that into ``model``
        (:meth:`merged_via_fp32`, a test checks equality), without the fp32 copy: for Qwen 1.5B in
        bf16 that copy was 6 GB more peak memory (benchmarks/merge.py)."""
        assert self.spec.adapter is not None
        if precision == "float32":
            merged = merge_adapter(model, self.spec.adapter)
        else:
            merged = _merge_rounding_once(model, self.spec.adapter, self.directory())
            merged = merged if merged is not None else self.merged_via_fp32(precision)
        # peft leaves the base weights frozen. With a weight that does not require grad, PyTorch's
        # CPU matmul of a non-contiguous 3-D input (transformers' last-position slice before the
        # LM head, at every prefill) does not fold the batch: it expands and copies the whole
        # vocabulary matrix per row (measured, Qwen 0.5B bf16, batch 8: 4.1 s instead of 23 ms;
        # generation 7x slower). Weights as from_pretrained leaves them; inference runs without grad.
        return merged.requires_grad_(True)

    def merged_via_fp32(self, precision: str) -> Any:
        """The adapter merged into an fp32 model whose weights are then copied into a model loaded
        in ``precision``. For adapters :func:`_merge_rounding_once` cannot merge (DoRA, LoRA
        biases, non-Linear targets). (A merged fp32 model cast with ``.to(bf16)`` once generated
        3-5x slower, 10 prompts 19 s vs 4 s: most likely the frozen weights peft leaves, see
        :meth:`_merged`; the copy was kept, not remeasured.)"""
        assert self.spec.adapter is not None
        merged = merge_adapter(self.load_base("float32"), self.spec.adapter).state_dict()
        model = self.load_base(precision)
        model.load_state_dict(merged)
        del merged
        return model

    def save(self, model: Any, dest: Path) -> None:
        """Write ``model`` (loaded from this checkpoint) as a plain checkpoint in ``dest``: its
        weights, and the base checkpoint's tokenizer, chat template and generation config."""
        model.save_pretrained(str(dest), safe_serialization=True)
        base = self.directory()
        skip = {p.name for pattern in WEIGHT_FILES for p in base.glob(pattern)} | {"config.json"}
        for f in base.iterdir():
            if f.is_file() and f.name not in skip:
                shutil.copy2(f, dest / f.name)


def looks_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()


def dir_weights_sha256(checkpoint: Path) -> str:
    """sha256 over a checkpoint's weight files: sorted (name, file sha256) lines."""
    files = sorted(checkpoint.glob("*.safetensors")) or sorted(checkpoint.glob("*.bin"))
    if not files:
        raise InwardError(f"No *.safetensors (or *.bin) weight files in {str(checkpoint)!r}.")
    lines = "".join(f"{f.name}\t{file_sha256(f)}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()


@contextmanager
def peft_quietly() -> Iterator[None]:
    """Wrap a model with peft without its FutureWarning: peft calls a transformers method
    (``is_gradient_checkpointing``) deprecated in transformers v5. For loading an adapter here and
    for attaching a new one in training."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def with_adapter(model: Any, adapter: str) -> Any:
    """``model`` wrapped by peft with the LoRA adapter in ``adapter`` (its weights in fp32)."""
    from peft import PeftModel

    try:
        with peft_quietly():
            return PeftModel.from_pretrained(model, str(Path(adapter).expanduser()))
    except Exception as exc:
        raise InwardError(
            f"Could not apply LoRA adapter {adapter!r} to this model: {exc}. Was it trained on the same base model?"
        ) from exc


def merge_adapter(model: Any, adapter: str) -> Any:
    return with_adapter(model, adapter).merge_and_unload()


def merge_identity(precision: str) -> str:
    """How an adapter's weights reach the model, in its fingerprint. bf16/fp16: merged in fp32,
    rounded once (the direct merge gives the same weights as the older copy into a fresh model,
    and the same LM-head kernels, so the old name stays). fp32: since 2026-12-05 the merged
    weights require grad, which moves the prefill's LM head from a per-row bmm to one mm (the
    same maths, but rounding may differ), so fp32 adapter responses get a new key."""
    return "fp32-merge-grad-v3" if precision == "float32" else "fp32-merge-then-load-v2"


def _merge_rounding_once(model: Any, adapter: str, checkpoint: Path) -> Any | None:
    """Merge a plain LoRA adapter into a bf16/fp16 ``model``: each target Linear's weight becomes
    ``(W + ΔW).to(dtype)`` with ``W`` the checkpoint's stored tensor upcast to fp32 and ``ΔW``
    peft's own fp32 delta; other weights are the checkpoint's cast to ``dtype`` as loaded. None
    (``model`` is then unusable) where that is not the whole merge: DoRA or other LoRA variants,
    LoRA biases, non-Linear targets, weights the checkpoint does not name as the model does."""
    from contextlib import ExitStack

    import torch
    from peft.tuners.lora import Linear as LoraLinear
    from peft.tuners.lora import LoraLayer
    from safetensors import safe_open

    wrapped = with_adapter(model, adapter)
    layers = [(n, m) for n, m in wrapped.base_model.model.named_modules() if isinstance(m, LoraLayer)]
    files = sorted(checkpoint.glob("*.safetensors"))
    plain = all(
        type(m) is LoraLinear
        and set(m.lora_A) == {"default"}
        and not getattr(m, "lora_variant", {})
        and not any(getattr(m, "lora_bias", {}).values())
        and m.lora_A["default"].weight.dtype == torch.float32
        for _, m in layers
    )
    if not layers or not files or not plain:
        return None
    with ExitStack() as stack, torch.no_grad():
        handles = [stack.enter_context(safe_open(str(f), "pt")) for f in files]
        where = {key: h for h in handles for key in h.keys()}
        if any(f"{name}.weight" not in where for name, _ in layers):
            return None
        for name, m in layers:
            assert isinstance(m, LoraLinear)
            base = m.get_base_layer()
            stored = where[f"{name}.weight"].get_tensor(f"{name}.weight")
            if stored.shape != base.weight.shape:
                return None
            base.weight.data = (stored.float() + m.get_delta_weight("default")).to(base.weight.dtype)
            del stored
    return wrapped.unload()


def hub_snapshot(repo_id: str) -> Path:
    """Download (or find in the HF cache) a hub checkpoint: safetensors + config + tokenizer."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(
            snapshot_download(
                repo_id,
                allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"],
            )
        )
    except Exception as exc:
        raise InwardError(
            f"Could not fetch {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            "If this machine has no hub access, use a local checkpoint (hf/<directory>), a GGUF "
            "file (gguf/<path>), or a bundled model (bundled/<name>; `inward models` lists them)."
        ) from exc
    if not any(path.glob("*.safetensors")):
        raise InwardError(f"Hub model {repo_id!r} has no safetensors weights; only safetensors are supported.")
    return path
