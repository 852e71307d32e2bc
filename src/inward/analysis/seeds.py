"""Tables over training seeds: the seed, not the item, is the unit of replication.

A study retrains every finetuned model once per training seed, on that seed's draw of training
strings, and scores it on the same held-out items. Item-level tests (``comparisons.csv``) take one
trained model as fixed; the tables here ask how a *retrained* pair comes out.

- :func:`seed_summary`: per (target, predictor, setup, property), the mean accuracy over seeds, its
  standard deviation, the mean mode baseline, and in how many seeds the predictor beat its mode
  baseline or was degenerate.
- :func:`gap_summary`: the self − cross gap over seeds per property, with the t-test on the
  per-seed gaps (seeds as the unit; df = seeds − 1) and its Holm-corrected p across the
  properties of a pair. Secondary columns, labelled as such in the report: a two-stage
  (hierarchical) bootstrap interval (resample seeds, then each chosen seed's paired items; with
  few seeds too narrow: it cannot see more spread than the seeds it has) and post-hoc power from
  the plug-in sd (a guess with N − 1 degrees of freedom).

The headline inference is not here: :mod:`inward.analysis.verdict`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inward.analysis.results import MICRO

ALPHA = 0.05
POWER_EFFECT = 0.10
"""The self advantage whose detection probability is reported (10 percentage points)."""
BOOTSTRAP_RESAMPLES = 10_000

SEED_SUMMARY_COLUMNS = (
    "target",
    "predictor",
    "label",
    "response_property",
    "seeds",
    "accuracy_mean",
    "accuracy_sd",
    "accuracy_min",
    "accuracy_max",
    "mode_baseline_mean",
    "lift_mean",
    "kappa_mean",
    "seeds_beating_mode",
    "seeds_degenerate",
    "count_mean",
)
GAP_COLUMNS = (
    "target",
    "self_predictor",
    "cross_predictor",
    "response_property",
    "seeds",
    "gap_mean",
    "gap_sd",
    "per_seed_gaps",
    "t",
    "p_value",
    "p_holm",
    "t_lower",
    "t_upper",
    "bootstrap_lower",
    "bootstrap_upper",
    "bootstrap_p",
    "power_at_10pp",
    "detectable_at_80pct",
    "items_per_seed",
)


def base_model(name: str) -> str:
    """``bundled/x+lora:seed1/models/.../adapter`` -> ``bundled/x``."""
    return str(name).split("+lora:")[0]


def micro_pairs(
    results: Sequence[Mapping[str, Any]], column: str
) -> dict[tuple[str, str], dict[Any, tuple[float, float]]]:
    """The micro-average rows of results.csv as (target, cross predictor) -> training seed ->
    (self-predictor's, cross-predictor's) ``column`` (accuracy or kappa), seeds in row order.
    Untrained rows and empty values are skipped; seeds keep their type (int in a study, str when
    read back from the CSV)."""
    own: dict[tuple[str, Any], float] = {}
    other: dict[tuple[str, Any], dict[str, float]] = {}
    for r in results:
        if r.get("response_property") != MICRO or r.get("seed") in (None, "") or r.get(column) in (None, ""):
            continue
        key = (base_model(r["object_model"]), r["seed"])
        if r["label"] == "self":
            own[key] = float(r[column])
        elif r["label"] == "cross":
            other.setdefault(key, {})[base_model(r["meta_model"])] = float(r[column])
    pairs: dict[tuple[str, str], dict[Any, tuple[float, float]]] = {}
    for (target, seed), crosses in other.items():
        if (target, seed) in own:
            for cross, value in crosses.items():
                pairs.setdefault((target, cross), {})[seed] = (own[(target, seed)], value)
    return pairs


def seed_sd(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def seed_summary(results: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Rows of ``results.csv`` (one per seed, setup and property) pooled over seeds."""
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results:
        key = (base_model(r["object_model"]), base_model(r["meta_model"]), r["label"], r["response_property"])
        groups[key].append(r)
    out = []
    for (target, predictor, label, prop), rows in groups.items():
        acc = [float(r["accuracy"]) for r in rows if r["accuracy"] == r["accuracy"]]
        mode = [float(r["mode_baseline"]) for r in rows if r["mode_baseline"] == r["mode_baseline"]]
        kappas = [float(k) for r in rows if (k := r.get("kappa")) is not None and k == k]
        out.append(
            {
                "target": target,
                "predictor": predictor,
                "label": label,
                "response_property": prop,
                "seeds": len(rows),
                "accuracy_mean": float(np.mean(acc)) if acc else float("nan"),
                "accuracy_sd": seed_sd(acc),
                "accuracy_min": min(acc) if acc else float("nan"),
                "accuracy_max": max(acc) if acc else float("nan"),
                "mode_baseline_mean": float(np.mean(mode)) if mode else float("nan"),
                "lift_mean": float(np.mean(acc) - np.mean(mode)) if acc and mode else float("nan"),
                "kappa_mean": float(np.mean(kappas)) if kappas else float("nan"),
                "seeds_beating_mode": sum(1 for r in rows if r.get("beats_mode_p", 1.0) < ALPHA),
                "seeds_degenerate": sum(
                    1 for r in rows if r.get("degenerate") is True or (prop == MICRO and r.get("degenerate_groups"))
                ),
                "count_mean": float(np.mean([r["count"] for r in rows])),
            }
        )
    return out


# -- the seed-level test ------------------------------------------------------------------------
def t_test(gaps: Sequence[float]) -> tuple[float, float, float, float]:
    """Two-sided one-sample t-test of mean(gaps) = 0: (t, p, 95% lower, 95% upper)."""
    from scipy import stats

    n = len(gaps)
    if n < 2:
        return (float("nan"),) * 4
    mean, sd = float(np.mean(gaps)), float(np.std(gaps, ddof=1))
    half = stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n)
    if sd == 0:
        return (math.copysign(math.inf, mean) if mean else float("nan"), 0.0 if mean else 1.0, mean, mean)
    t = mean / (sd / math.sqrt(n))
    return t, float(2 * stats.t.sf(abs(t), n - 1)), mean - half, mean + half


def t_power(effect: float, sd: float, n: int) -> float:
    """Power of the two-sided one-sample t-test at level ALPHA with ``n`` seeds to detect a mean
    gap of ``effect`` when seeds scatter with standard deviation ``sd`` (noncentral t)."""
    from scipy import stats

    if n < 2 or not sd > 0:
        return float("nan")
    df, nc = n - 1, abs(effect) / (sd / math.sqrt(n))
    crit = stats.t.ppf(1 - ALPHA / 2, df)
    wrong_side = float(stats.nct.cdf(-crit, df, nc))  # tiny; scipy returns nan where it underflows
    return float(stats.nct.sf(crit, df, nc)) + (0.0 if math.isnan(wrong_side) else wrong_side)


def detectable_effect(sd: float, n: int, power: float = 0.8) -> float:
    """The smallest mean gap the t-test detects with probability ``power``."""
    from scipy.optimize import brentq

    if n < 2 or not sd > 0:
        return float("nan")
    hi = sd
    while t_power(hi, sd, n) < power:  # power rises with the effect; bracket the root
        hi *= 2
    return float(brentq(lambda d: t_power(d, sd, n) - power, 0.0, hi))


def hierarchical_bootstrap(
    diffs: Sequence[Sequence[int]], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Bootstrap distribution of the mean over seeds of per-seed mean paired differences.

    ``diffs[s]`` holds seed s's item differences self − cross, each -1, 0 or 1. Each resample draws
    len(diffs) seeds with replacement, then for every drawn seed its items with replacement; since
    a difference takes three values, the item resample is one multinomial draw of their counts
    (the same distribution as drawing items one by one, at a fraction of the cost)."""
    rng = np.random.default_rng(seed)
    n_seeds = len(diffs)
    counts = [np.array([(np.asarray(d) == v).sum() for v in (-1, 0, 1)]) for d in diffs]
    sizes = np.array([c.sum() for c in counts])
    if n_seeds == 0 or (sizes == 0).any():
        raise ValueError("every seed needs at least one paired item")
    probs = [c / c.sum() for c in counts]
    chosen = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    means = np.empty((resamples, n_seeds))
    for s in range(n_seeds):  # all draws of seed s at once
        where = chosen == s
        k = int(where.sum())
        if k:
            draw = rng.multinomial(sizes[s], probs[s], size=k)
            means[where] = (draw[:, 2] - draw[:, 0]) / sizes[s]
    return means.mean(axis=1)


def gap_row(diffs: Sequence[Sequence[int]], **labels: Any) -> dict:
    """One row of the seed-level self − cross table from per-seed paired item differences."""
    gaps = [float(np.mean(d)) for d in diffs]
    n = len(gaps)
    t, p, lo, hi = t_test(gaps)
    sd = seed_sd(gaps)
    boot = hierarchical_bootstrap(diffs)
    b_lo, b_hi = np.quantile(boot, [ALPHA / 2, 1 - ALPHA / 2])
    b_p = min(1.0, 2 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
    return {
        **labels,
        "seeds": n,
        "gap_mean": float(np.mean(gaps)),
        "gap_sd": sd,
        "per_seed_gaps": " ".join(f"{100 * g:+.1f}" for g in gaps),
        "t": t,
        "p_value": p,
        "t_lower": lo,
        "t_upper": hi,
        "bootstrap_lower": float(b_lo),
        "bootstrap_upper": float(b_hi),
        "bootstrap_p": b_p,
        "power_at_10pp": t_power(POWER_EFFECT, sd or 0.0, n),
        "detectable_at_80pct": detectable_effect(sd or 0.0, n),
        "items_per_seed": " ".join(str(len(d)) for d in diffs),
    }


def gap_summary(
    paired: Mapping[tuple[str, str, str], Mapping[Any, Mapping[str, tuple[list[bool], list[bool]]]]],
) -> list[dict]:
    """``paired[(target, self_predictor, cross_predictor)][seed][property] = (self_correct,
    cross_correct)`` on the same items, in the same order -> one row per (pair, property) over
    the seeds that have that property."""
    out = []
    for (target, self_p, cross_p), by_seed in paired.items():
        names: list[str] = []
        for per_prop in by_seed.values():
            names += [n for n in per_prop if n not in names]
        for name in names:
            diffs = [
                np.asarray(s, dtype=int) - np.asarray(c, dtype=int)
                for per_prop in by_seed.values()
                if name in per_prop
                for s, c in [per_prop[name]]
                if len(s)
            ]
            if diffs:
                out.append(
                    gap_row(
                        diffs, target=target, self_predictor=self_p, cross_predictor=cross_p, response_property=name
                    )
                )
    return with_holm(out)


def with_holm(rows: list[dict]) -> list[dict]:
    """``p_holm``: each property's seed-level p adjusted by Holm across the properties of its pair
    (the micro averages are not in the family: they are the verdict's own quantity)."""
    from inward.analysis.compare import NON_DEGENERATE
    from inward.analysis.stats import holm

    family: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r["response_property"] not in (MICRO, NON_DEGENERATE):
            family[(r["target"], r["self_predictor"], r["cross_predictor"])].append(i)
    out = [{**r, "p_holm": float("nan")} for r in rows]
    for members in family.values():
        for i, p in zip(members, holm([rows[i]["p_value"] for i in members])):
            out[i]["p_holm"] = p
    return out


# -- the predictor x target matrix --------------------------------------------------------------
MATRIX_COLUMNS = (
    "predictor",
    "target",
    "label",
    "seeds",
    "accuracy_mean",
    "accuracy_sd",
    "mode_baseline_mean",
    "seeds_beating_mode",
)


def matrix_table(summary: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Micro-average accuracy of every trained predictor (rows) on every target (columns), over
    seeds: the diagonal is each target's self-trained predictor, the rest are cross-predictors
    trained on the same items about it. Rows of :func:`seed_summary`."""
    return [
        {k: r[k] for k in MATRIX_COLUMNS}
        for r in summary
        if r["response_property"] == MICRO and r["label"] in ("self", "cross")
    ]
