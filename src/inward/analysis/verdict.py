"""The study's headline: one pre-registered inference over training seeds.

The unit of replication is the training seed. Each seed gives one paired gap, self − cross on the
same held-out items, on the metric the config declares (micro-average accuracy, or Cohen's kappa:
inward.experiments.outputs.seed_gaps), and the verdict is a statement about the mean of those
gaps:

- a two-sided one-sample t-test over the N seed gaps, with its 95% t-interval (df = N − 1);
- the upper one-sided test of an equivalence test (two one-sided tests, TOST) against the
  preset's margin M: its 90% interval lies below +M when a self advantage of M or more is
  rejected at 5%. The lower test is reported too (the TOST p, both sides) but no reading rests
  on it: the question is whether the self-predictor has an advantage.

Three readings, each with exactly one interval:

- ``self advantage``: the t-test rejects 0 and the mean is positive; the 95% interval;
- ``no self advantage``: a self advantage of M or more is rejected; the 90% interval;
- ``inconclusive``: neither; the 95% interval.

A learning gate goes in the same sentence: when a predictor does not beat its mode baseline over
the seeds (the mean over seeds of accuracy − mode baseline is not positive), the gap measures a
weak predictor rather than privileged access, and the sentence says so.

The bootstrap interval, post-hoc power and the subset without degenerate groups are not part of
the verdict (analysis/seeds.py keeps them for the secondary tables, labelled as such).
``simulate`` checks the procedure's error rates through these same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from inward.analysis.stats import holm as holm  # re-exported: per-property p-values of the verdict's tables

Reading = Literal["self advantage", "no self advantage", "inconclusive", "one seed"]

ALPHA = 0.05
DEFAULT_MARGIN = 0.05  # 5 points of the declared metric


@dataclass(frozen=True)
class Gate:
    """Does a predictor beat its mode baseline over the seeds? ``lift``: mean over seeds of its
    micro-average accuracy minus its mode baseline on the same rows."""

    name: str  # "self-predictor" or "cross-predictor"
    lift: float
    seeds_above: int  # seeds whose accuracy exceeds the mode baseline
    seeds: int

    @property
    def passed(self) -> bool:
        return self.lift > 0


@dataclass(frozen=True)
class Verdict:
    reading: Reading
    seeds: int
    mean: float
    sd: float
    p_value: float  # two-sided t-test of mean = 0
    lower95: float
    upper95: float
    lower90: float
    upper90: float
    margin: float
    p_no_advantage: float  # one-sided test of mean >= +margin (TOST's upper test)
    p_tost: float  # both one-sided tests (equivalence within ±margin)
    gates: tuple[Gate, ...] = ()
    gaps: tuple[float, ...] = ()  # the per-seed gaps the inference is on

    @property
    def interval(self) -> tuple[float, float, int]:
        """The one interval the reading reports: (lower, upper, confidence in %)."""
        if self.reading == "no self advantage":
            return self.lower90, self.upper90, 90
        return self.lower95, self.upper95, 95

    def sentence(self) -> str:
        n = self.seeds
        if self.reading == "one seed":
            head = (
                f"one seed: self − cross = {_pts(self.mean)} points; one training seed gives no verdict "
                "(set seeds: [0, 1, 2] or more)"
            )
        elif self.reading == "self advantage":
            head = (
                f"self advantage: {_pts(self.mean)} points, 95% interval "
                f"[{_pts(self.lower95)}, {_pts(self.upper95)}] over {n} seeds"
            )
        elif self.reading == "no self advantage":
            head = (
                f"no self advantage of {100 * self.margin:.0f} points or more: 90% interval "
                f"[{_pts(self.lower90)}, {_pts(self.upper90)}] over {n} seeds"
            )
        else:
            head = (
                f"inconclusive: {_pts(self.mean)} points, 95% interval "
                f"[{_pts(self.lower95)}, {_pts(self.upper95)}] over {n} seeds"
            )
        failed = [g for g in self.gates if not g.passed]
        if failed:
            who = " and ".join(f"the {g.name} ({_pts(g.lift)} points over its mode baseline)" for g in failed)
            verb = "does not beat its" if len(failed) == 1 else "do not beat their"
            head += (
                f"; {who} {verb} mode baseline over the seeds, so the gap measures "
                "predictor weakness, not privileged access"
            )
        elif self.gates:
            head += "; both predictors beat their mode baselines over the seeds"
        return head[0].upper() + head[1:] + "."

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["gates"] = [asdict(g) | {"passed": g.passed} for g in self.gates]
        out["sentence"] = self.sentence()
        return out


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def t_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    from scipy import stats

    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return float("nan"), float("nan")
    se = float(np.std(values, ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, n - 1)) * se
    return mean - half, mean + half


def infer(
    gaps: Sequence[float], *, margin: float = DEFAULT_MARGIN, alpha: float = ALPHA, gates: Sequence[Gate] = ()
) -> Verdict:
    """The verdict on per-seed gaps (self − cross, fractions of 1)."""
    from scipy import stats

    n = len(gaps)
    mean = float(np.mean(gaps)) if n else float("nan")
    if n < 2:
        nan = float("nan")
        return Verdict("one seed", n, mean, nan, nan, nan, nan, nan, nan, margin, nan, nan, tuple(gates), tuple(gaps))
    sd = float(np.std(gaps, ddof=1))
    se = sd / math.sqrt(n)
    df = n - 1
    lo95, hi95 = t_interval(gaps, 1 - alpha)
    lo90, hi90 = t_interval(gaps, 1 - 2 * alpha)
    if se == 0:  # every seed gave the same gap: the tests degenerate to comparisons
        p = 0.0 if mean != 0 else 1.0
        p_upper = 0.0 if mean < margin else 1.0
        p_lower = 0.0 if mean > -margin else 1.0
    else:
        p = float(2 * stats.t.sf(abs(mean / se), df))
        p_upper = float(stats.t.cdf((mean - margin) / se, df))  # H0: mean >= +margin
        p_lower = float(stats.t.sf((mean + margin) / se, df))  # H0: mean <= -margin
    if p < alpha and mean > 0:
        reading: Reading = "self advantage"
    elif p_upper < alpha:
        reading = "no self advantage"
    else:
        reading = "inconclusive"
    return Verdict(
        reading,
        n,
        mean,
        sd,
        p,
        lo95,
        hi95,
        lo90,
        hi90,
        margin,
        p_upper,
        max(p_upper, p_lower),
        tuple(gates),
        tuple(gaps),
    )


def gate(name: str, accuracies: Sequence[float], modes: Sequence[float]) -> Gate:
    """The learning gate of one predictor from its per-seed accuracy and mode baseline."""
    lifts = [a - m for a, m in zip(accuracies, modes)]
    return Gate(name, float(np.mean(lifts)) if lifts else float("nan"), sum(1 for x in lifts if x > 0), len(lifts))


# -- checking the procedure by simulation --------------------------------------------------------


@dataclass(frozen=True)
class SimulationRow:
    seeds: int
    true_gap: float
    false_positive_rate: float  # "self advantage" read when the true gap is 0
    coverage95: float  # the 95% t-interval contains the true gap
    power: float  # "self advantage" read
    predicted_power: float  # the noncentral-t power at this true gap and the simulated spread
    no_advantage_rate: float  # "no self advantage" read


def simulate(
    seeds: int,
    true_gap: float,
    *,
    seed_sd: float,
    item_sd: float,
    items: int,
    margin: float = DEFAULT_MARGIN,
    runs: int = 4000,
    rng_seed: int = 0,
) -> SimulationRow:
    """Studies simulated at a known true gap: each seed's gap is the truth plus a between-seed
    effect (sd ``seed_sd``) plus item noise (the mean of ``items`` paired differences with sd
    ``item_sd``), and each study is read by :func:`infer`, the function the study calls."""
    from inward.analysis.seeds import t_power

    rng = np.random.default_rng(rng_seed)
    per_seed_sd = math.sqrt(seed_sd**2 + item_sd**2 / items)
    readings, covered = [], 0
    for _ in range(runs):
        gaps = true_gap + rng.normal(0.0, per_seed_sd, size=seeds)
        v = infer(list(gaps), margin=margin)
        readings.append(v.reading)
        covered += v.lower95 <= true_gap <= v.upper95
    share = {r: sum(1 for x in readings if x == r) / runs for r in ("self advantage", "no self advantage")}
    fp = share["self advantage"] if true_gap == 0 else float("nan")
    return SimulationRow(
        seeds,
        true_gap,
        fp,
        covered / runs,
        share["self advantage"],
        t_power(true_gap, per_seed_sd, seeds) if true_gap else float("nan"),
        share["no self advantage"],
    )


def expected_half_width(seeds: int, per_seed_sd: float, confidence: float = 0.95) -> float:
    """The expected half-width of the 95% t-interval with ``seeds`` seeds at a per-seed sd
    (E[s] = c4 · sigma)."""
    from scipy import stats
    from scipy.special import gammaln

    if seeds < 2:
        return float("inf")
    c4 = math.sqrt(2 / (seeds - 1)) * math.exp(gammaln(seeds / 2) - gammaln((seeds - 1) / 2))
    return float(stats.t.ppf(1 - (1 - confidence) / 2, seeds - 1)) * c4 * per_seed_sd / math.sqrt(seeds)


def target_verdicts(pairs: Sequence[tuple[str, str, Verdict]]) -> list[str]:
    """Per target of a predictor x target matrix: against how many other predictors its own
    self-trained predictor reads "self advantage", each pair with the one interval of its reading."""
    by_target: dict[str, list[tuple[str, Verdict]]] = {}
    for target, cross, v in pairs:
        by_target.setdefault(target, []).append((cross, v))
    out = []
    for target, rows in by_target.items():
        wins = sum(1 for _, v in rows if v.reading == "self advantage")
        parts = "; ".join(f"vs {cross}: {_short(v)}" for cross, v in rows)
        out.append(
            f"Target {target}: its own self-trained predictor reads self advantage against {wins} of "
            f"{len(rows)} other predictors (self − cross: {parts})."
        )
    return out


def _short(v: Verdict) -> str:
    if v.reading == "one seed":
        return f"{_pts(v.mean)} points, one seed"
    lo, hi, conf = v.interval
    return f"{v.reading}, {_pts(v.mean)} points, {conf}% interval [{_pts(lo)}, {_pts(hi)}]"
