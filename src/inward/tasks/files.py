"""Reading the paper's data files: one JSON object per line with ``string`` (and ``target``).

Strings stay strings: no pandas, so "05", "NA" and "null" arrive exactly as written (the paper's
CSV round trips turned them into numbers or NaN, spec §7.7).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from inward.errors import InwardError


def read_jsonl_strings(path: Path, *, task: str, need_target: bool = False) -> list[tuple[str, str | None]]:
    """(string, target) per line of ``path``; a clear error names the file and line on bad input."""
    path = Path(path)
    if not path.is_file():
        raise InwardError(
            f"Task {task!r} needs the data file {path.name} in {str(path.parent)!r}, which is "
            "missing. Point --data-dir (or INWARD_DATA_DIR) at the folder that holds the paper's "
            f"{{train,val}}_<name>.jsonl files, or copy {path.name} there."
        )
    stat = path.stat()
    return list(_read(str(path), stat.st_mtime_ns, stat.st_size, task))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) per non-blank line; bad JSON names the file and line.

    Lines are split on "\\n" only (file iteration), never with ``str.splitlines()``, which
    would also split on U+2029, a character inside the paper's wealth_seeking prompts.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise InwardError(
                    f"{path}, line {lineno}: not valid JSON ({e.msg}). Each line must be one JSON "
                    "object; fix or remove that line."
                ) from None


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int, task: str) -> tuple[tuple[str, str | None], ...]:
    rows: list[tuple[str, str | None]] = []
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("string"), str):
            raise InwardError(
                f'{path}, line {lineno}: missing the text field "string" (task {task!r}). '
                'Each line must be a JSON object with a "string" field holding text.'
            )
        target = obj.get("target")
        if target is not None and not isinstance(target, str):
            target = json.dumps(target) if not isinstance(target, (int, float)) else str(target)
        rows.append((obj["string"], target))
    if not rows:
        raise InwardError(f"{path} has no rows (task {task!r}); it needs one JSON object per line.")
    return tuple(rows)
