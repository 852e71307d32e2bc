"""This process's resident memory: now, at its peak, and at its peak within one stage (for the
study's stage lines and run.json, and the training result). One place, so the study, its seed
children and the trainer report the same measure."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_earlier_peak_mb = 0.0  # the process's peak before the last start_window()
_window_open = False  # a start_window() succeeded


def rss_gib() -> float:
    """Resident memory now, in GiB (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**30
    except (OSError, ValueError, IndexError):
        return 0.0


def _vmhwm_mb() -> float | None:
    """Linux's ``VmHWM``: the peak since the process started or its last :func:`start_window`."""
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


def start_window() -> bool:
    """Start measuring a new peak (a study stage's): :func:`window_peak_mb` then reports the peak
    from here on, while :func:`peak_rss_mb` still reports the whole process's. Linux resets the
    kernel's peak counter through ``/proc/self/clear_refs``; False where that is not possible."""
    global _earlier_peak_mb, _window_open
    before = _vmhwm_mb()
    if before is None:
        return False
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the RSS now
    except OSError:
        return False
    _earlier_peak_mb = max(_earlier_peak_mb, before)
    _window_open = True
    return True


def window_peak_mb() -> float | None:
    """The peak since the last :func:`start_window` that returned True, in MiB; None where windows
    are not available (not Linux)."""
    return _vmhwm_mb() if _window_open else None
