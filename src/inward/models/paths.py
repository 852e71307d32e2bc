"""Where inward keeps derived model files, and the two filesystem helpers every cache needs.

Everything under :func:`cache_dir` can be deleted at any time: it is rebuilt from the installed
packages (bundled models) or the original files (``gguf/`` and ``hf/`` paths).

- ``bundled/<name>.gguf``       assembled bundled checkpoints (see :mod:`inward.models.bundled`)
- ``models/<sha256[:16]>/``      GGUF files converted once to plain safetensors checkpoints
- ``hashes/<key>.json``          sha256 sidecars, so large files are hashed once, not every run
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CACHE_ENV = "INWARD_CACHE_DIR"
_BLOCK = 1 << 20


def cache_dir() -> Path:
    """``$INWARD_CACHE_DIR`` if set, else ``~/.cache/inward``. Created on first use."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "inward").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock, so two processes never assemble or convert the same model at once.

    The lock is held on a separate ``.lock`` file: the protected output appears by atomic rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def hash_stream(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _sidecar(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "hashes" / f"{key}.json"


def adapter_config_sha256(path: Path | str) -> str:
    """sha256 of a peft ``adapter_config.json`` as settings, not as bytes: keys sorted, the
    base model's path left out (the base is identified by its own weights hash, and its path is
    wherever a cache happens to live), and lists of module names sorted (peft writes
    ``target_modules`` from a set, so its order changes from one process to the next: measured,
    two identical adapters trained in two processes had different file bytes)."""
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    config.pop("base_model_name_or_path", None)
    canonical = {
        k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v for k, v in config.items()
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 of a file, remembered in a sidecar keyed by (absolute path, size, mtime_ns).

    A file whose size or mtime changed is rehashed; hashing a 2 GB checkpoint takes seconds, so
    doing it once per change (not once per run) is what keeps cache-hit reruns fast.
    """
    path = Path(path)
    st = path.stat()
    side = _sidecar(path)
    try:
        rec = json.loads(side.read_text())
        if rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
            return str(rec["sha256"])
    except (OSError, ValueError, KeyError):
        pass  # no sidecar or an unreadable one: fall through to a full hash
    sha, _ = hash_stream(path)
    remember_sha256(path, sha)
    return sha


def remember_sha256(path: Path, sha: str) -> None:
    """Record a hash computed elsewhere (e.g. while assembling), atomically."""
    st = path.stat()
    side = _sidecar(path)
    side.parent.mkdir(parents=True, exist_ok=True)
    tmp = side.with_name(f".{side.name}.{os.getpid()}")
    rec = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
    tmp.write_text(json.dumps(rec))
    os.replace(tmp, side)


class MeasurementFile:
    """A per-machine measurement file in the cache (``{key: entry}``, JSON): ``precision.json``,
    ``engine.json``. ``path`` overrides the location (tests)."""

    def __init__(self, name: str, path: Path | None = None):
        self.name, self._path = name, path

    @property
    def path(self) -> Path:
        return self._path or cache_dir() / self.name

    def load(self) -> dict[str, Any]:
        """Every entry; empty when the file is missing or unreadable (then it is measured again)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def store(self, key: str, entry: dict[str, Any]) -> None:
        """Add one entry, atomically: a reader sees the old file or the new one, never half of one.
        (Two processes measuring at once may each drop the other's new entry; it is measured again.)"""
        data = self.load()
        data[key] = entry
        path = self.path
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
