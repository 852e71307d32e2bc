"""The verdict over training seeds (inward.analysis.seeds), against reference implementations:
scipy's t-test, statsmodels' power, the exact variance of the two-stage bootstrap, and a plain
item-by-item bootstrap loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from inward.analysis.seeds import (
    detectable_effect,
    gap_row,
    gap_summary,
    hierarchical_bootstrap,
    seed_summary,
    t_power,
    t_test,
)


def test_t_test_matches_scipy():
    gaps = [0.12, 0.03, 0.08, -0.01]
    t, p, lo, hi = t_test(gaps)
    ref = stats.ttest_1samp(gaps, 0.0)
    assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))


def test_power_matches_statsmodels_and_simulation():
    from statsmodels.stats.power import TTestPower

    for effect, sd, n in [(0.10, 0.08, 3), (0.05, 0.05, 5), (0.02, 0.10, 10)]:
        ref = TTestPower().power(effect_size=effect / sd, nobs=n, alpha=0.05, alternative="two-sided")
        assert t_power(effect, sd, n) == pytest.approx(ref, abs=1e-6)
    # and by simulation: how often the t-test rejects when seeds really scatter like that
    rng = np.random.default_rng(0)
    draws = rng.normal(0.10, 0.08, size=(20_000, 3))
    rejected = np.mean([stats.ttest_1samp(d, 0.0).pvalue < 0.05 for d in draws])
    assert t_power(0.10, 0.08, 3) == pytest.approx(rejected, abs=0.01)
    mde = detectable_effect(0.08, 3)
    assert t_power(mde, 0.08, 3) == pytest.approx(0.8, abs=1e-6)
    assert t_power(0.1, 0.0, 3) != t_power(0.1, 0.0, 3)  # nan: no spread, no power figure


def _diffs(rng, sizes, means):
    return [rng.choice([-1, 0, 1], size=n, p=[(1 - m) / 2 - 0.1, 0.2, (1 + m) / 2 - 0.1]) for n, m in zip(sizes, means)]


def test_hierarchical_bootstrap_has_the_exact_two_stage_variance():
    rng = np.random.default_rng(1)
    diffs = _diffs(rng, [200, 150, 180], [0.3, -0.1, 0.2])
    boot = hierarchical_bootstrap(diffs, resamples=40_000, seed=2)
    m = np.array([d.mean() for d in diffs])
    v = np.array([d.var() for d in diffs])  # population variance within each seed
    n = np.array([len(d) for d in diffs])
    k = len(diffs)
    # T* = mean of k iid draws of M*: pick a seed uniformly, then the mean of n_s resampled items
    expected_var = (np.mean((m - m.mean()) ** 2) + np.mean(v / n)) / k
    assert boot.mean() == pytest.approx(m.mean(), abs=0.003)
    assert boot.var() == pytest.approx(expected_var, rel=0.03)


def test_hierarchical_bootstrap_matches_an_item_by_item_loop():
    rng = np.random.default_rng(3)
    diffs = _diffs(rng, [60, 40], [0.2, 0.0])
    fast = hierarchical_bootstrap(diffs, resamples=20_000, seed=4)
    loop_rng = np.random.default_rng(5)
    slow = []
    for _ in range(20_000):  # the textbook definition, one item at a time
        chosen = loop_rng.integers(0, len(diffs), size=len(diffs))
        slow.append(np.mean([loop_rng.choice(diffs[s], size=len(diffs[s]), replace=True).mean() for s in chosen]))
    assert np.quantile(fast, [0.025, 0.5, 0.975]) == pytest.approx(np.quantile(slow, [0.025, 0.5, 0.975]), abs=0.01)


def test_gap_row_and_summary():
    rng = np.random.default_rng(6)
    diffs = _diffs(rng, [100, 100, 100], [0.2, 0.25, 0.15])
    row = gap_row(diffs, response_property="micro_average")
    gaps = [d.mean() for d in diffs]
    assert row["gap_mean"] == pytest.approx(np.mean(gaps)) and row["gap_sd"] == pytest.approx(np.std(gaps, ddof=1))
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(gaps, 0).pvalue)
    assert row["bootstrap_lower"] < row["gap_mean"] < row["bootstrap_upper"]
    assert row["items_per_seed"] == "100 100 100"
    paired = {
        ("m1", "m1", "m2"): {
            0: {"micro_average": ([True, True, False], [False, True, False]), "first_word": ([True], [False])},
            1: {"micro_average": ([True, False], [False, False])},
        }
    }
    rows = {r["response_property"]: r for r in gap_summary(paired)}
    assert rows["micro_average"]["seeds"] == 2 and rows["first_word"]["seeds"] == 1
    assert rows["micro_average"]["gap_mean"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_seed_summary_pools_runs_by_setup_and_property():
    rows = [
        {
            "object_model": "q",
            "meta_model": "q",
            "label": "untrained",
            "response_property": "micro_average",
            "accuracy": 0.3,
            "mode_baseline": 0.35,
            "beats_mode_p": 1.0,
            "degenerate_groups": 0,
            "count": 10,
        },
    ] + [
        {
            "object_model": f"q+lora:seed{s}/a",
            "meta_model": f"q+lora:seed{s}/a",
            "label": "self",
            "response_property": "first_word",
            "accuracy": a,
            "mode_baseline": 0.2,
            "beats_mode_p": p,
            "degenerate": d,
            "count": 10,
        }
        for s, a, p, d in [(0, 0.4, 0.01, False), (1, 0.2, 0.6, True), (2, 0.3, 0.2, False)]
    ]
    out = {r["label"]: r for r in seed_summary(rows)}
    s = out["self"]
    assert (s["target"], s["predictor"], s["seeds"]) == ("q", "q", 3)
    assert s["accuracy_mean"] == pytest.approx(0.3) and s["accuracy_sd"] == pytest.approx(0.1)
    assert s["lift_mean"] == pytest.approx(0.1) and s["seeds_beating_mode"] == 1 and s["seeds_degenerate"] == 1
    assert out["untrained"]["seeds"] == 1 and out["untrained"]["accuracy_sd"] is None


def test_matrix_table():
    from inward.analysis.seeds import matrix_table

    summary = [
        {
            "target": t,
            "predictor": p,
            "label": ("self" if p == t else "cross"),
            "response_property": prop,
            "seeds": 3,
            "accuracy_mean": acc,
            "accuracy_sd": 0.01,
            "mode_baseline_mean": 0.3,
            "seeds_beating_mode": 1,
        }
        for t, p, acc in (("a", "a", 0.5), ("a", "b", 0.4), ("b", "b", 0.45), ("b", "a", 0.47))
        for prop in ("micro_average", "first_character")
    ] + [
        {
            "target": "a",
            "predictor": "a",
            "label": "untrained",
            "response_property": "micro_average",
            "seeds": 1,
            "accuracy_mean": 0.2,
            "accuracy_sd": None,
            "mode_baseline_mean": 0.3,
            "seeds_beating_mode": 0,
        }
    ]
    m = matrix_table(summary)
    assert {(r["predictor"], r["target"], r["label"]) for r in m} == {
        ("a", "a", "self"),
        ("b", "a", "cross"),
        ("b", "b", "self"),
        ("a", "b", "cross"),
    }
