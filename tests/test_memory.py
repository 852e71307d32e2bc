"""inward.memory: the resident-memory figures the study and trainer report."""

from __future__ import annotations

import sys

import pytest

from inward import memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_now_and_peak_follow_a_large_allocation(touched):
    now = memory.rss_gib() * 1024
    block = touched(64)
    after = memory.rss_gib() * 1024
    assert 60 <= after - now <= 80  # statm's pages read in the right unit
    assert memory.peak_rss_mb() >= after * 0.99  # the peak is never below now
    block.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux's")
def test_a_window_restarts_the_peak_and_the_process_peak_remembers(monkeypatch, touched):
    monkeypatch.setattr(memory, "_earlier_peak_mb", 0.0)
    with memory.window() as first:
        assert first.peak_mb is None  # set when the window closes
        touched(128).close()  # 128 MiB resident, then back to the system
    with memory.window() as second:  # a new window, after the 128 MiB went back
        pass
    high, low = first.peak_mb, second.peak_mb
    assert high is not None and low is not None and high - low >= 100
    # the process's peak kept the first window's (the kernel's counters are approximate to pages)
    assert memory.peak_rss_mb() >= high - 1


def test_ru_maxrss_units_where_proc_is_missing(monkeypatch):
    """Without /proc the peak comes from ru_maxrss: kilobytes on Linux, bytes on macOS."""

    class Usage:
        ru_maxrss = 2 * 2**20

    monkeypatch.setattr(memory, "_earlier_peak_mb", 0.0)  # no window started in this process's past
    monkeypatch.setattr(memory.Path, "read_text", lambda self: (_ for _ in ()).throw(OSError("no /proc")))
    monkeypatch.setattr(memory.resource, "getrusage", lambda who: Usage())
    monkeypatch.setattr(memory.sys, "platform", "linux")
    assert memory.peak_rss_mb() == 2048.0  # 2 GiB in kilobytes
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.peak_rss_mb() == 2.0  # 2 MiB in bytes
    assert memory.rss_gib() == 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux's")
def test_an_outer_window_keeps_what_it_reached_before_an_inner_one_opened(touched):
    with memory.window() as outer:
        touched(128).close()  # the outer window's peak, reached before the inner one resets the counter
        with memory.window() as inner:
            pass
    assert outer.peak_mb is not None and inner.peak_mb is not None
    assert outer.peak_mb - inner.peak_mb >= 100
