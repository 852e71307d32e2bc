"""This process's resident memory: now, at its peak, and at its peak within one stage (for the
study's stage lines and run.json, and the training result). One place, so the study, its seed
children and the trainer report the same measure."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_earlier_peak_mb = 0.0  # the process's peak before the last reset of the kernel's counter (window())
_open: list[float] = []  # the peaks the open windows reached before an inner one reset the counter


def rss_gib() -> float:
    """Resident memory now, in GiB (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**30
    except (OSError, ValueError, IndexError):
        return 0.0


def _vmhwm_mb() -> float | None:
    """Linux's ``VmHWM``: the peak since the process started or the last :func:`window` opened."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of the whole process so far, in MiB.

    Linux's ``VmHWM`` where it can be read: a process started by ``subprocess`` (a study's seed
    child) would otherwise report, through ``ru_maxrss``, its parent's resident memory at the
    fork as its own. Elsewhere ``ru_maxrss`` (kilobytes on Linux, bytes on macOS)."""
    now = _vmhwm_mb()
    if now is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        now = round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)
    return max(now, _earlier_peak_mb)


class Window:
    """What :func:`window` measured: ``peak_mb``, set when the window closes (None where windows
    are not available: not Linux)."""

    peak_mb: float | None = None


@contextmanager
def window() -> Iterator[Window]:
    """Measure the peak resident memory of a stretch of work (a study stage), while
    :func:`peak_rss_mb` still reports the whole process's. Linux resets the kernel's peak counter
    through ``/proc/self/clear_refs`` at the window's start; a window opened inside another one
    counts towards both (the outer one keeps the peak it had reached before the reset)."""
    global _earlier_peak_mb
    result = Window()
    before = _vmhwm_mb()
    if _open:
        _open[-1] = max(_open[-1], before or 0.0)
    available = before is not None
    if before is not None:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the RSS now
            _earlier_peak_mb = max(_earlier_peak_mb, before)
        except OSError:
            available = False
    _open.append(0.0)
    try:
        yield result
    finally:
        reached = max(_vmhwm_mb() or 0.0, _open.pop())
        if _open:
            _open[-1] = max(_open[-1], reached)
        result.peak_mb = reached if available else None
