"""Stage identity: a run directory reuses a stage's output only when what determined it is unchanged.

Every stage output ``X.jsonl`` of a study gets a sidecar ``X.jsonl.key.json`` with the *facts*
that determine it (config fields, the content hash of its inputs, the identity of the models it
ran, and environment facts such as the CPU thread count) and their sha256. On a rerun the stage is
reused when the stored digest equals the new one; otherwise it is recomputed, and the log and
``run.json`` (``stages``) say which facts changed. Paths never enter a key: models are named by
their weights and adapter hashes, data by the content of the strings drawn, so a moved run
directory reuses everything.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from inward.store.rundir import atomic_write_text

KEY_SUFFIX = ".key.json"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=_default, separators=(",", ":"))


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def digest(facts: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(facts).encode()).hexdigest()


MODEL_FIELDS = ("model", "object_model", "meta_model")


def content_hash(items: Iterable[Any]) -> str:
    """sha256 of a sequence of records (dataclasses, dicts, strings), in order. A record's model
    fields are left out: they name adapters by path, and a stage key names its models by
    :func:`model_identity` instead."""
    h = hashlib.sha256()
    for item in items:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            item = dataclasses.asdict(item)
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if k not in MODEL_FIELDS}
        h.update(_canonical(item).encode())
        h.update(b"\n")
    return h.hexdigest()


_PATH_MODELS = ("hf/", "gguf/")


def model_identity(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """A model's fingerprint without anything that names a place on disk: a model loaded from a
    local path (``hf//abs/dir``, ``gguf/...``) is named by its weights hash alone."""
    fp = dict(fingerprint)
    model = str(fp.get("model", ""))
    rest = model.split("/", 1)[1] if "/" in model else ""
    if model.startswith(_PATH_MODELS) and (rest.startswith(("/", ".", "~")) or Path(rest).exists()):
        fp["model"] = "local:" + str(fp.get("weights_sha256", "?"))
    for k in ("adapter_path", "path", "checkpoint"):
        fp.pop(k, None)
    return fp


def short_fingerprint(identity: Mapping[str, Any]) -> str:
    """A model's fingerprint column in the CSVs: 12 hex digits of the hash of its path-free identity
    (:func:`model_identity`: weights, adapter, precision, chat format, backend), the same wherever
    the run directory or the model files live."""
    return hashlib.sha256(_canonical(model_identity(identity)).encode()).hexdigest()[:12]


def cpu_facts() -> dict[str, str]:
    """The CPU model and its bf16 kernels (see :func:`_read_cpu`), read once per process."""
    return dict(_read_cpu())


@functools.lru_cache(maxsize=1)
def _read_cpu() -> tuple[tuple[str, str], ...]:
    """The CPU model and its bf16 kernels: the same bf16 run gives different numbers on a CPU with
    AMX than on one with only AVX512-BF16 (measured: the default study's seed-0 self − cross gap
    was +22.4 points on an Intel Xeon with AMX and +11.5 on an AMD EPYC without it)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: the model name is all there is
        pass
    bf16 = "amx_bf16" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none"
    return (("model", model), ("bf16", bf16))


def environment_facts() -> dict[str, Any]:
    """Facts of this process that change outputs: bf16 results depend on the CPU thread count and
    on the CPU's bf16 kernels (:func:`cpu_facts`)."""
    facts: dict[str, Any] = {"python": sys.version_info[:2], "cpu": cpu_facts()}
    try:
        import torch

        facts.update(threads=torch.get_num_threads(), torch=torch.__version__)
    except ImportError:  # no torch: only API backends, whose identity is their fingerprint
        pass
    return facts


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The top-level facts that differ (added, removed or changed)."""
    return sorted(k for k in set(old) | set(new) if _canonical(old.get(k)) != _canonical(new.get(k)))


class StageKeys:
    """Decides, for each stage output of one run directory, reuse or recompute, and keeps the log."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log: dict[str, dict[str, Any]] = {}
        self.digests: dict[str, str] = {}
        """The key digest of every stage reused or recorded in this run (a later stage that
        depends on one names it by its digest)."""

    def _key_file(self, rel: str) -> Path:
        return self.root / (rel + KEY_SUFFIX)

    def reusable(self, rel: str, facts: Mapping[str, Any]) -> bool:
        """True when ``rel`` exists and was written with these facts; else logs why not."""
        facts = {**facts, "environment": environment_facts()}
        path, key_file = self.root / rel, self._key_file(rel)
        if not path.is_file():
            self.log[rel] = {"reused": False, "reason": "not computed yet"}
            return False
        try:
            stored = json.loads(key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.log[rel] = {"reused": False, "reason": "no stage key (written before stage keys, or interrupted)"}
            return False
        if stored.get("digest") == digest(facts):
            self.log[rel] = {"reused": True, "reason": "same inputs"}
            self.digests[rel] = stored["digest"]
            return True
        diff = changed(stored.get("facts", {}), facts)
        self.log[rel] = {"reused": False, "reason": "changed: " + ", ".join(diff or ["(unknown)"])}
        print(f"[inward study] {rel}: recomputing, {self.log[rel]['reason']}", file=sys.stderr, flush=True)
        return False

    def record(self, rel: str, facts: Mapping[str, Any]) -> None:
        """Write ``rel``'s key after its output is safely on disk."""
        facts = {**facts, "environment": environment_facts()}
        self.digests[rel] = digest(facts)
        atomic_write_text(
            self._key_file(rel),
            json.dumps({"digest": self.digests[rel], "facts": facts}, sort_keys=True, indent=1, default=_default),
        )
        self.log.setdefault(rel, {"reused": False, "reason": "not computed yet"})
