"""A content-addressed cache of model outputs in SQLite, and a backend wrapper that uses it.

Key = sha256 of canonical JSON (sorted keys) over: the model fingerprint (weights hash, backend,
precision, adapter hash, chat template), the kind of call, the full prompt messages, the full
decoding config (max tokens, temperature, top_p, n, seed) and the sample index. So a rerun makes
no model calls, a killed run resumes from the last committed batch, and two models, precisions
or adapters never share entries. Values are JSON text. The database runs in WAL mode and every
batch is committed in one transaction, so a kill leaves either the whole batch or none of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inward.errors import InwardError
from inward.models.base import Backend, DistributionConfig, GenerationConfig, Prompt
from inward.models.paths import CACHE_ENV, cache_dir

SCHEMA_VERSION = 1


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def cache_key(kind: str, fingerprint: dict, prompt: Prompt, config: dict, sample: int = 0) -> str:
    payload = {
        "v": SCHEMA_VERSION,
        "kind": kind,
        "model": fingerprint,
        "prompt": prompt,
        "config": config,
        "sample": sample,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8", "surrogatepass")).hexdigest()


class ResponseCache:
    """Key → JSON value, in one SQLite file shared by every run on the machine."""

    def __init__(self, path: str | Path | None = None):
        try:
            self.path = Path(path) if path is not None else cache_dir() / "responses.sqlite"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                "model TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL)"
            )
        except (OSError, sqlite3.Error) as e:
            raise InwardError(
                f"Cannot open the response cache at "
                f"{str(path) if path is not None else '$' + CACHE_ENV + ' (default ~/.cache/inward)'} ({e}). Set "
                f"{CACHE_ENV} to a writable folder with free space."
            ) from None

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return found

    def put_many(self, items: Sequence[tuple[str, str, str, Any]]) -> None:
        """Insert (key, kind, model, value) rows in one transaction."""
        now = time.time()
        rows = [(k, kind, model, canonical_json(v), now) for k, kind, model, v in items]
        try:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?)", rows)
        except sqlite3.OperationalError as e:
            raise InwardError(
                f"Cannot write to the response cache {str(self.path)!r} ({e}). Free disk space "
                f"or set {CACHE_ENV} to a writable folder; finished batches are kept."
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def stats(self) -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT model, kind, COUNT(*) FROM entries GROUP BY model, kind ORDER BY model, kind"
        ).fetchall()
        return {"path": str(self.path), "entries": [list(r) for r in rows]}

    def clear(self, model: str | None = None) -> int:
        with self._transaction():
            if model is None:
                cur = self._db.execute("DELETE FROM entries")
            else:
                cur = self._db.execute("DELETE FROM entries WHERE model = ?", (model,))
        return cur.rowcount

    def close(self) -> None:
        self._db.close()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


Progress = Callable[[int], None]


class CachedModel:
    """A backend behind the cache: only missing entries reach the model, in committed batches."""

    def __init__(self, backend: Backend, cache: ResponseCache, batch_size: int = 32):
        self.backend = backend
        self.cache = cache
        self.batch_size = batch_size
        self.stats = CacheStats()
        self._fingerprint: dict | None = None

    @property
    def model_string(self) -> str:
        return self.backend.model_string

    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = self.backend.fingerprint()
        return self._fingerprint

    def generate(
        self, prompts: Sequence[Prompt], config: GenerationConfig, progress: Progress | None = None
    ) -> list[list[str]]:
        cfg = config.to_json()
        keys = [[cache_key("generate", self.fingerprint(), p, cfg, i) for i in range(config.n)] for p in prompts]

        def call(batch: list[Prompt]) -> list[list[str]]:
            return self.backend.generate(batch, config)

        return self._cached(prompts, keys, "generate", call, progress)

    def answer_distribution(
        self, prompts: Sequence[Prompt], config: DistributionConfig, progress: Progress | None = None
    ) -> list[dict[str, float]]:
        cfg = config.to_json()
        keys = [[cache_key("distribution", self.fingerprint(), p, cfg)] for p in prompts]

        def call(batch: list[Prompt]) -> list[list[dict[str, float]]]:
            return [[d] for d in self.backend.answer_distribution(batch, config)]

        return [v[0] for v in self._cached(prompts, keys, "distribution", call, progress)]

    def _cached(self, prompts, keys, kind, call, progress) -> list:
        flat = [k for ks in keys for k in ks]
        found = self.cache.get_many(flat)
        todo: dict[str, int] = {}  # first key of a missing prompt -> its index (dedupes repeats)
        for i, ks in enumerate(keys):
            if not all(k in found for k in ks):
                todo.setdefault(ks[0], i)
        self.stats.hits += len(prompts) - len(todo)
        if progress is not None:
            progress(len(prompts) - len(todo))
        pending = list(todo.values())
        model = canonical_json({"model": self.model_string})
        for start in range(0, len(pending), self.batch_size):
            idx = pending[start : start + self.batch_size]
            results = call([prompts[i] for i in idx])
            rows = []
            for i, values in zip(idx, results, strict=True):
                for k, v in zip(keys[i], values, strict=True):
                    found[k] = v
                    rows.append((k, kind, model, v))
            self.cache.put_many(rows)
            self.stats.misses += len(idx)
            if progress is not None:
                progress(len(idx))
        # Repeated prompts were computed once; everything is in ``found`` now.
        return [[found[k] for k in ks] for ks in keys]
