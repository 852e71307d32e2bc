"""Planning a study before it runs: its wall time and the precision of its verdict, for a number of
training seeds, from a pilot (a finished or partial run of the same config on this machine).

- Time: the pilot's stage seconds (run.json ``stage_seconds``) split into seed-independent stages,
  the first seed (it also runs the first-seed-only sections) and each further seed.
- Precision: the expected half-width of the verdict's 95% t-interval,
  t(0.975, N − 1) · E[s] / sqrt(N), at the sd of the pilot's per-seed gaps (run.json ``verdict``).
  That sd is itself an estimate with (pilot seeds − 1) degrees of freedom: with 3 pilot seeds the
  true spread may well be half or twice it, and the plan says so.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inward.analysis.verdict import expected_half_width

_SEED = re.compile(r"^seed (-?\d+): ")


@dataclass(frozen=True)
class Pilot:
    source: str
    fixed_seconds: float  # stages that run once whatever the seeds
    seed_seconds: dict[int, float]  # per measured training seed, in the pilot's order
    first_seed: int
    gap_sd: float | None  # sd of the per-seed gaps (pooled over pairs), None with < 2 seeds
    gap_seeds: int

    @property
    def first_seconds(self) -> float:
        return self.seed_seconds.get(self.first_seed, float("nan"))

    @property
    def further_seconds(self) -> float:
        """A seed after the first: the mean of the pilot's others, else the first seed's own."""
        others = [s for k, s in self.seed_seconds.items() if k != self.first_seed]
        return float(np.mean(others)) if others else self.first_seconds

    def seconds(self, seeds: int) -> float:
        return self.fixed_seconds + self.first_seconds + max(0, seeds - 1) * self.further_seconds

    def half_width(self, seeds: int) -> float:
        return expected_half_width(seeds, self.gap_sd) if self.gap_sd else float("nan")


def pilot_from(run_json: dict[str, Any], source: str) -> Pilot:
    """The pilot measured by a run directory's run.json."""
    stages: dict[str, float] = run_json.get("stage_seconds") or {}
    fixed, by_seed = 0.0, dict[int, float]()
    for name, seconds in stages.items():
        m = _SEED.match(name)
        if m:
            by_seed[int(m.group(1))] = by_seed.get(int(m.group(1)), 0.0) + float(seconds)
        else:
            fixed += float(seconds)
    seeds = list(run_json.get("seeds") or by_seed)
    first = seeds[0] if seeds else 0
    variances, n = [], 0
    for v in run_json.get("verdict") or []:
        gaps = [g for g in v.get("gaps") or [] if g == g]
        if len(gaps) > 1:
            variances.append(float(np.var(gaps, ddof=1)))
            n = max(n, len(gaps))
    sd = math.sqrt(float(np.mean(variances))) if variances else None
    return Pilot(source, fixed, {k: by_seed[k] for k in seeds if k in by_seed}, first, sd, n)


def seeds_for_budget(pilot: Pilot, budget_seconds: float, *, most: int = 200) -> int:
    """The most training seeds whose predicted wall time fits the budget (0 if not even one)."""
    n = 0
    while n < most and pilot.seconds(n + 1) <= budget_seconds:
        n += 1
    return n


def parse_duration(text: str) -> float:
    """Seconds of "90m", "1.5h", "3600s" or "3600"."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise ValueError(f"expected a duration such as 60m, 1.5h or 3600s, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def plan_lines(pilot: Pilot, seeds: int, budget_seconds: float | None = None) -> list[str]:
    """What ``inward plan`` prints."""

    def minutes(s: float) -> str:
        return f"{s / 60:.0f} min" if s == s else "unknown"

    lines = [
        f"Pilot: {pilot.source} ({len(pilot.seed_seconds)} training seed(s) measured; seed-independent stages "
        f"{minutes(pilot.fixed_seconds)}, first seed {minutes(pilot.first_seconds)}, each further seed "
        f"{minutes(pilot.further_seconds)}).",
        f"This config, {seeds} seed(s): predicted wall time {minutes(pilot.seconds(seeds))}.",
    ]
    if pilot.gap_sd is None:
        lines.append("Interval: unknown (the pilot has fewer than 2 seeds with a verdict; a pilot needs 2 or more).")
    else:
        lines.append(
            f"Expected 95% interval half-width at {seeds} seed(s): ±{100 * pilot.half_width(seeds):.1f} points, "
            f"at the pilot's per-seed sd of the gap, {100 * pilot.gap_sd:.1f} points (estimated from "
            f"{pilot.gap_seeds} seeds: with so few it may be half or twice the true spread)."
        )
        table = ", ".join(
            f"{n}: ±{100 * pilot.half_width(n):.1f} in {minutes(pilot.seconds(n))}" for n in (3, 5, 10, 20)
        )
        lines.append(f"Seeds: half-width and time: {table}.")
        need = next((n for n in range(2, 201) if pilot.half_width(n) <= 0.05), None)
        lines.append(
            f"±5 points needs about {need} seeds ({minutes(pilot.seconds(need))})."
            if need
            else "±5 points needs more than 200 seeds at this spread."
        )
    if budget_seconds is not None:
        n = seeds_for_budget(pilot, budget_seconds)
        lines.append(f"Budget {minutes(budget_seconds)}: {n} seed(s) fit.")
    return lines


def load_pilot(path: str) -> tuple[Pilot, dict[str, Any]]:
    """The pilot measured by the run directory ``path`` (its run.json)."""
    from inward.errors import InwardError

    manifest = Path(path) / "run.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InwardError(
            f"--from {path}: no readable run.json there ({exc}). Give the folder of a study run on this "
            "machine (run the same config once, or the smoke preset, to measure one)."
        ) from exc
    if data.get("command") != "study" or not data.get("stage_seconds"):
        raise InwardError(f"--from {path}: run.json is not from `inward study` with stage times; give a study run.")
    return pilot_from(data, str(path)), data
