"""The run directory: typed records as JSONL, a manifest, atomic writes and a lock.

Every file is written to a temporary name in the same folder, flushed, fsynced and renamed over
the target, so a kill leaves the old file or the new one, never half of one. One process at a
time may hold a run directory: a second one is refused with a message naming the holder. A child
process the holder starts to work in the directory for it (:mod:`inward.experiments.seed_child`)
opens it with ``borrowed=True``: it relies on its parent's lock instead of taking one.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import fcntl
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from inward.errors import InwardError

MANIFEST = "run.json"
LOCK = ".lock"


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise _write_error(path, e) from None


def _write_error(path: Path, e: OSError) -> InwardError:
    why = "the disk is full" if e.errno == errno.ENOSPC else e.strerror or str(e)
    return InwardError(
        f"Cannot write {str(path)!r}: {why}. Choose an output folder that is writable and has "
        "free space (--out DIR); nothing was written half-way, and a rerun resumes."
    )


def dumps_jsonl(records: Iterable[Any]) -> str:
    return "".join(json.dumps(_to_jsonable(r), ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def dumps_csv(rows: Sequence[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    # Floats keep 10 significant digits (not 10 decimals: a p-value of 5e-27 must not become
    # 0.0), written with a fixed repr so that reruns give byte-identical files.
    if isinstance(value, float):
        return "" if value != value else repr(float(f"{value:.10g}"))
    return "" if value is None else value


class RunDir:
    """A locked output folder. Use as a context manager.

    ``borrowed``: the folder is held by the process that started this one (its lock file names a
    live process that is not this one); nothing is locked or cleaned up here."""

    def __init__(self, path: str | Path, borrowed: bool = False):
        self.path = Path(path).expanduser()
        self.borrowed = borrowed
        self._lock_file: io.TextIOWrapper | None = None

    def __enter__(self) -> RunDir:
        if self.borrowed:
            self._check_borrowed()
            return self
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
            self._lock_file = open(self.path / LOCK, "a+")
        except OSError as e:
            raise _write_error(self.path, e) from None
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            raise InwardError(
                f"The run directory {str(self.path)!r} is in use by {holder}. Wait for it to "
                "finish, or choose another --out folder; two processes may not write one run."
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"pid {os.getpid()} on {platform.node()}\n")
        self._lock_file.flush()
        self._remove_stale_temporaries()
        return self

    def _check_borrowed(self) -> None:
        """The lock must be held by another process: a borrowed folder nobody holds is an error."""
        try:
            with open(self.path / LOCK) as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        except BlockingIOError:
            return  # held, as it should be
        except FileNotFoundError:
            pass  # never held
        except OSError as e:
            raise _write_error(self.path, e) from None
        raise InwardError(
            f"The run directory {str(self.path)!r} was to be borrowed from the process holding it, but no "
            "process holds it. Run the study itself (inward study), not its per-seed child process."
        )

    def _remove_stale_temporaries(self) -> None:
        """Delete temporary files a killed writer left behind (safe: we hold the lock)."""
        for tmp in self.path.rglob(".*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        atomic_write_text(self.file(name), text)
        return self.file(name)

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(_to_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n")

    def write_jsonl(self, name: str, records: Iterable[Any]) -> Path:
        return self.write_text(name, dumps_jsonl(records))

    def write_csv(self, name: str, rows: Sequence[dict], columns: Sequence[str]) -> Path:
        return self.write_text(name, dumps_csv(rows, columns))

    def read_json(self, name: str) -> Any:
        with open(self.file(name), encoding="utf-8") as f:
            return json.load(f)


def environment() -> dict[str, Any]:
    """Versions and provenance recorded beside every result."""
    versions: dict[str, str] = {"python": sys.version.split()[0]}
    for module in ("inward", "torch", "transformers", "peft", "numpy"):
        mod = sys.modules.get(module)
        if mod is not None:
            versions[module] = getattr(mod, "__version__", "?")
    return {
        "versions": versions,
        "platform": platform.platform(),
        "git": _git_state(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
