"""This process's resident memory: now (for the study's stage lines) and at its peak (for run.json
and the training result). One place, so the study, its seed children and the trainer report the
same measure."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def rss_gib() -> float:
    """Resident memory now, in GiB (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**30
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory so far, in MiB.

    Linux's ``VmHWM`` where it can be read: a process started by ``subprocess`` (a study's seed
    child) would otherwise report, through ``ru_maxrss``, its parent's resident memory at the
    fork as its own. Elsewhere ``ru_maxrss`` (kilobytes on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)
