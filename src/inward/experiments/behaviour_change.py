"""Experiment 2's model side (spec §1.8): build M_C and collect what the analysis needs.

M_C is the self-trained M1ft finetuned *further*. The trainer trains a fresh LoRA adapter on a
base checkpoint (it refuses a model that already has one), so M1ft's adapter is first merged into
M1's weights and saved as a plain safetensors checkpoint (float32, so the merge is not rounded
twice); M_C is then ``hf/<that checkpoint>+lora:<shift adapter>``. Loading that checkpoint in the
study's dtype gives the same weights the local backend uses for M1ft (it merges in float32 and
casts once), so M_C starts from exactly M1ft's behaviour.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from inward.analysis.behaviour_change import shift_status, shifted_keys
from inward.errors import InwardError
from inward.experiments.evaluate import collect_hypotheticals
from inward.properties.registry import Property
from inward.records import HypotheticalRecord, ObjectRecord
from inward.store.cache import CachedModel
from inward.tasks import Task

MERGED_MARKER = "merged.json"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def merge_adapter_checkpoint(model_string: str, out_dir: Path) -> str:
    """Save ``<base>+lora:<adapter>`` merged as a plain checkpoint in ``out_dir``; return its
    ``hf/`` model string. Skipped when ``out_dir`` already holds a finished merge (marker last)."""
    import json

    from inward.models import parse_model_string

    from inward.models.paths import file_sha256

    out_dir = Path(out_dir).resolve()
    result = f"hf/{out_dir}"
    spec = parse_model_string(model_string)
    if spec.adapter is None:
        raise InwardError(f"merge_adapter_checkpoint needs a model with a +lora: adapter, got {model_string!r}.")
    adapter_files = sorted(Path(spec.adapter).expanduser().glob("*.safetensors"))
    identity = {"from": spec.base, "adapter_sha256": [file_sha256(f) for f in adapter_files]}
    try:  # reuse a finished merge only of this very adapter (a retrained one merges again)
        done = json.loads((out_dir / MERGED_MARKER).read_text())
        if {k: done.get(k) for k in identity} == identity:
            return result
    except (OSError, ValueError):
        pass
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from inward.train.lora import load_base

    base = load_base(spec.base)
    model = AutoModelForCausalLM.from_pretrained(str(base.checkpoint), dtype=torch.float32, use_safetensors=True)
    model = PeftModel.from_pretrained(model, str(Path(spec.adapter).expanduser())).merge_and_unload()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    skip = {p.name for pattern in WEIGHT_FILES for p in Path(base.checkpoint).glob(pattern)}
    for f in Path(base.checkpoint).iterdir():  # tokenizer and chat template files
        if f.is_file() and f.name not in skip and not (tmp / f.name).exists():
            shutil.copy2(f, tmp / f.name)
    (tmp / MERGED_MARKER).write_text(json.dumps(identity) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    del model
    import gc

    gc.collect()
    return result


def shifted_hypotheticals(
    predictor: CachedModel,
    old: list[ObjectRecord],
    new: list[ObjectRecord],
    tasks: dict[str, Task],
    props: dict[str, list[Property]],
    scoring: str,
) -> list[HypotheticalRecord]:
    """M_C's hypothetical answers, asked only where its behaviour shifted (the only items scored)."""
    keys = set(shifted_keys(shift_status(old, new, props, scoring)))
    records: list[HypotheticalRecord] = []
    for task_name, task_props in props.items():
        for prop in task_props:
            objs = [o for o in new if o.task == task_name and (task_name, prop.name, o.string) in keys]
            if objs:
                records += collect_hypotheticals(predictor, objs, tasks, {task_name: [prop]})
    return records
