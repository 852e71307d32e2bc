"""Progress without a terminal: plain lines with done/total and an ETA (a log shows the run is alive)."""

from __future__ import annotations

import io

from inward import progress


def test_without_a_terminal_progress_is_lines(monkeypatch):
    monkeypatch.delenv("INWARD_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a TTY, as under `make study > log`
    assert progress.progress_mode() == "lines" and not progress.progress_enabled()
    monkeypatch.setenv("INWARD_PROGRESS", "0")
    assert progress.progress_mode() == "off"
    monkeypatch.setenv("INWARD_PROGRESS", "1")
    assert progress.progress_mode() == "bar"


def test_lines_carry_done_total_and_eta_and_respect_the_interval(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    clock = iter([0.0, 10.0, 40.0, 50.0, 100.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    lines = progress.ProgressLines(10, "object-level animals (val)", interval=30)  # start at t=0
    lines.update(2)  # t=10: too soon for a line
    lines.update(2)  # t=40: a line, 4 of 10 done in 40 s -> 60 s to go
    lines.update(1)  # t=50: too soon after the last line
    lines.close()  # t=100: the closing line
    out = err.getvalue().splitlines()
    assert out == [
        "[inward] object-level animals (val): 4/10 prompts (40%), 40s, ETA 1m00s",
        "[inward] object-level animals (val): 5/10 prompts (50%), 1m40s, ETA 1m40s",
    ]


def test_progress_bar_in_a_log_ends_with_a_line(monkeypatch):
    err = io.StringIO()
    monkeypatch.delenv("INWARD_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", err)
    with progress.progress_bar(3, "extract sentiment") as update:
        update(3)
    assert err.getvalue().startswith("[inward] extract sentiment: 3/3 prompts (100%)")
