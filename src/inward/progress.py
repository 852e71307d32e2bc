"""Progress on stderr. On a terminal: tqdm bars. Not on a terminal (``make study > log``): a plain
line per running step at most every ``INWARD_PROGRESS_INTERVAL`` seconds (default 30) and one
when it ends, with done/total, elapsed time and an ETA, so a log shows the run is alive.
``INWARD_PROGRESS=0`` hides both; ``=1`` forces bars."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

Mode = Literal["bar", "lines", "off"]
DEFAULT_INTERVAL = 30.0


def progress_mode() -> Mode:
    flag = os.environ.get("INWARD_PROGRESS", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return "off"
    if flag in ("1", "true", "yes", "on"):
        return "bar"
    return "bar" if sys.stderr.isatty() else "lines"


def progress_enabled() -> bool:
    """Whether tqdm bars are drawn (a terminal, or INWARD_PROGRESS=1)."""
    return progress_mode() == "bar"


def quiet_transformers_bars() -> bool:
    """transformers draws its own bars ("Loading weights", "Writing model shards"); without a
    terminal or with INWARD_PROGRESS=0 they are switched off too. True when bars are off."""
    if progress_mode() == "bar":
        return False
    import transformers

    transformers.utils.logging.disable_progress_bar()
    return True


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLines:
    """Progress as plain lines: at most one per ``interval`` seconds while running, one at the end."""

    def __init__(self, total: int, desc: str, unit: str = "prompt", interval: float | None = None):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.interval = (
            interval if interval is not None else float(os.environ.get("INWARD_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
        )
        self.start = self.last = time.monotonic()
        self.postfix = ""

    def line(self, now: float) -> str:
        elapsed = now - self.start
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = ""
        if 0 < self.done < self.total:
            eta = f", ETA {_duration(elapsed * (self.total - self.done) / self.done)}"
        extra = f", {self.postfix}" if self.postfix else ""
        return f"[inward] {self.desc}: {self.done}/{self.total} {self.unit}s{share}, {_duration(elapsed)}{eta}{extra}"

    def update(self, k: int) -> None:
        self.done += k
        now = time.monotonic()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            print(self.line(now), file=sys.stderr, flush=True)

    def close(self) -> None:
        print(self.line(time.monotonic()), file=sys.stderr, flush=True)


@contextmanager
def progress_bar(total: int, desc: str) -> Iterator[Callable[[int], None]]:
    """Yields ``update(k)``: k more items done."""
    mode = progress_mode()
    if mode == "off":
        yield lambda k: None
        return
    if mode == "lines":
        lines = ProgressLines(total, desc)
        yield lines.update
        lines.close()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="prompt", dynamic_ncols=True, file=sys.stderr) as bar:
        yield bar.update
