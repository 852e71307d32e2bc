"""Planning a study before it runs: its wall time and the precision of its verdict, for a number of
training seeds, from a pilot (a finished or partial run of the same config on this machine).

- Time: the pilot's stage seconds (run.json ``stage_seconds``) split into seed-independent stages,
  the first seed (it also runs the first-seed-only sections) and each further seed. Stages of
  sections the planned config switches off (``skip``: calibration, behaviour change, ...) are
  left out, so a pilot with them plans a config without them.
- Precision: the expected half-width of the verdict's 95% t-interval,
  t(0.975, N − 1) · E[s] / sqrt(N), at the sd of the pilot's per-seed gaps on the planned config's
  verdict metric: run.json ``verdict``'s when the pilot declared the same metric, else computed
  from the pilot's results.csv.
  That sd is itself an estimate with (pilot seeds − 1) degrees of freedom; the plan prints its 90%
  chi-square interval (with 3 pilot seeds, 0.58x to 4.4x the estimate; with 8, 0.71x to 1.8x) and
  the half-widths at its ends.
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
    metric: str = "micro_average"  # the verdict metric the gaps are on

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

    def sd_range(self, level: float = 0.90) -> tuple[float, float]:
        """The ``level`` confidence interval of the true per-seed sd, from the pilot's sd on
        gap_seeds − 1 degrees of freedom (chi-square; normal gaps assumed)."""
        return sd_interval(self.gap_sd or float("nan"), self.gap_seeds - 1, level)


def sd_interval(sd: float, df: int, level: float = 0.90) -> tuple[float, float]:
    """Confidence interval of a normal population's sd from a sample sd on ``df`` degrees of
    freedom: sd · sqrt(df / chi2(1 − a/2, df)) to sd · sqrt(df / chi2(a/2, df))."""
    from scipy import stats

    if df < 1 or sd != sd:
        return float("nan"), float("nan")
    a = 1 - level
    return (
        sd * math.sqrt(df / float(stats.chi2.ppf(1 - a / 2, df))),
        sd * math.sqrt(df / float(stats.chi2.ppf(a / 2, df))),
    )


# config section -> the start of its stage names in run.json (after "seed N: ")
SECTION_STAGES = {
    "calibration": "calibration",
    "behaviour_change": "behaviour change",
    "scaling": "data scaling",
    "probes": "probe",
    "positive_control": "positive control",
}


def skipped_sections(config: Any) -> tuple[str, ...]:
    """Stage-name starts of the sections ``config`` (a StudyConfig) switches off."""
    return tuple(stage for section, stage in SECTION_STAGES.items() if getattr(config, section, None) is None)


def pilot_from(
    run_json: dict[str, Any],
    source: str,
    skip: tuple[str, ...] = (),
    gap_lists: list[list[float]] | None = None,
    metric: str | None = None,
) -> Pilot:
    """The pilot measured by a run directory's run.json, without the stages whose names start
    with one of ``skip`` (sections the planned config does not run). ``gap_lists``: the per-seed
    gaps of each pair on ``metric`` (:func:`metric_gaps`); None: run.json's verdict's, on the
    pilot's own metric."""
    stages: dict[str, float] = run_json.get("stage_seconds") or {}
    fixed, by_seed = 0.0, dict[int, float]()
    for name, seconds in stages.items():
        m = _SEED.match(name)
        if skip and name[m.end() if m else 0 :].startswith(skip):
            continue
        if m:
            by_seed[int(m.group(1))] = by_seed.get(int(m.group(1)), 0.0) + float(seconds)
        else:
            fixed += float(seconds)
    seeds = list(run_json.get("seeds") or by_seed)
    first = seeds[0] if seeds else 0
    variances, n = [], 0
    pairs = gap_lists if gap_lists is not None else [v.get("gaps") or [] for v in run_json.get("verdict") or []]
    for found in pairs:
        gaps = [g for g in found if g == g]
        if len(gaps) > 1:
            variances.append(float(np.var(gaps, ddof=1)))
            n = max(n, len(gaps))
    sd = math.sqrt(float(np.mean(variances))) if variances else None
    own_metric = pilot_metric(run_json)
    measured = own_metric if gap_lists is None else (metric or own_metric)
    return Pilot(source, fixed, {k: by_seed[k] for k in seeds if k in by_seed}, first, sd, n, measured)


def pilot_metric(run_json: dict[str, Any]) -> str:
    """The verdict metric the pilot's run.json ``verdict`` gaps are on."""
    return ((run_json.get("config") or {}).get("verdict") or {}).get("metric") or "micro_average"


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
        lines.append(
            f"Interval: unknown (the pilot has fewer than 2 seeds with a gap on {pilot.metric}; a pilot needs 2 or more)."
        )
    else:
        low, high = pilot.sd_range()
        lines.append(
            f"Expected 95% interval half-width at {seeds} seed(s): ±{100 * pilot.half_width(seeds):.1f} points, "
            f"at the pilot's per-seed sd of the gap on {pilot.metric}, {100 * pilot.gap_sd:.1f} points (estimated from "
            f"{pilot.gap_seeds} seeds; the true sd lies in [{100 * low:.1f}, {100 * high:.1f}] with 90% confidence, "
            f"which puts the half-width at {seeds} seed(s) between ±{100 * pilot.half_width(seeds) * low / pilot.gap_sd:.1f} "
            f"and ±{100 * pilot.half_width(seeds) * high / pilot.gap_sd:.1f})."
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


def metric_gaps(results: list[dict[str, Any]], metric: str) -> list[list[float]]:
    """Per (target, cross predictor), the per-seed self − cross gaps on ``metric`` (kappa or
    micro_average) from results.csv's micro-average rows: what the verdict of a config declaring
    that metric would be taken on. For micro_average, the difference of the two accuracies (the
    verdict's paired mean difference when both scored the same rows)."""
    from inward.analysis.seeds import micro_pairs

    column = "kappa" if metric == "kappa" else "accuracy"
    return [[s - c for s, c in seeds.values()] for seeds in micro_pairs(results, column).values()]


def load_pilot(path: str, skip: tuple[str, ...] = (), metric: str | None = None) -> tuple[Pilot, dict[str, Any]]:
    """The pilot measured by the run directory ``path`` (its run.json), without ``skip``'s stages;
    with ``metric``, its gap spread on that metric from its results.csv."""
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
    gap_lists = None  # run.json's verdict gaps: exact, when they are on the planned metric
    table = Path(path) / "results.csv"
    if metric and metric != pilot_metric(data):
        gap_lists = []
        if table.is_file():
            import csv

            with table.open(encoding="utf-8", newline="") as f:
                gap_lists = metric_gaps(list(csv.DictReader(f)), metric)
    return pilot_from(data, str(path), skip, gap_lists, metric), data
