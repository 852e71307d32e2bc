"""The pre-registered verdict (inward.analysis.verdict): one inference over training seeds, three
readings with one interval each, a learning gate, Holm-corrected per-property p-values, and error
rates checked by simulation through the same function the study calls."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from inward.analysis.verdict import Gate, expected_half_width, gate, holm, infer, simulate


def test_the_intervals_and_tests_agree_with_scipy_and_statsmodels():
    gaps = [0.12, 0.03, 0.08, -0.01, 0.06]
    v = infer(gaps, margin=0.05)
    ci = stats.ttest_1samp(gaps, 0.0).confidence_interval(0.95)
    assert (v.lower95, v.upper95) == pytest.approx((ci.low, ci.high))
    assert v.p_value == pytest.approx(stats.ttest_1samp(gaps, 0.0).pvalue)
    p_tost, lower, upper = DescrStatsW(np.array(gaps)).ttost_mean(-0.05, 0.05)
    assert v.p_tost == pytest.approx(p_tost) and v.p_no_advantage == pytest.approx(upper[1])
    ci90 = stats.ttest_1samp(gaps, 0.0).confidence_interval(0.90)
    assert (v.lower90, v.upper90) == pytest.approx((ci90.low, ci90.high))


@pytest.mark.parametrize(
    ("gaps", "reading", "interval"),
    [
        ([0.10, 0.12, 0.09, 0.11], "self advantage", "95% interval"),
        ([0.004, -0.006, 0.001, 0.003, -0.002], "no self advantage", "90% interval"),
        ([0.217, 0.030, 0.085], "inconclusive", "95% interval"),  # the default study's three seeds
        ([-0.10, -0.12, -0.09, -0.11], "no self advantage", "90% interval"),  # cross beats self
        ([0.08], "one seed", None),
    ],
)
def test_three_readings_each_with_exactly_one_interval(gaps, reading, interval):
    v = infer(gaps)
    assert v.reading == reading
    sentence = v.sentence()
    assert sentence.lower().startswith(reading)
    assert sentence.count("interval") == (1 if interval else 0) and (interval is None or interval in sentence)
    assert "bootstrap" not in sentence and "power" not in sentence


def test_the_learning_gate_is_in_the_sentence():
    weak = gate("cross-predictor", [0.30, 0.25, 0.28], [0.35, 0.35, 0.30])
    strong = gate("self-predictor", [0.50, 0.45, 0.55], [0.35, 0.35, 0.30])
    assert weak == Gate("cross-predictor", pytest.approx(-0.0567, abs=1e-3), 0, 3) and not weak.passed
    v = infer([0.2, 0.2, 0.2], gates=[strong, weak])
    assert "the cross-predictor (-5.7 points over its mode baseline) does not beat its mode baseline" in v.sentence()
    assert "predictor weakness, not privileged access" in v.sentence()
    assert "both predictors beat" in infer([0.2, 0.2, 0.2], gates=[strong]).sentence()


def test_holm_matches_statsmodels():
    ps = [0.019, 0.2, 0.04, 0.5, 0.011]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    assert holm([0.01, float("nan")])[0] == pytest.approx(0.01)


@pytest.mark.parametrize("seeds", [3, 5, 10, 20])
def test_error_rates_by_simulation_at_the_measured_spreads(seeds):
    # The default study's measured spreads: seed-level sd of the gap ~9.4 points, item-level sd of
    # a paired difference ~0.55 over 600 scored rows per seed (2.2 points of item noise per seed).
    spread = dict(seed_sd=0.094, item_sd=0.55, items=600, runs=3000, rng_seed=seeds)
    null = simulate(seeds, 0.0, **spread)
    assert null.false_positive_rate <= 0.06
    assert null.coverage95 >= 0.93
    planted = simulate(seeds, 0.10, **spread)
    assert planted.coverage95 >= 0.93
    assert abs(planted.power - planted.predicted_power) <= 0.05, planted


def test_expected_half_width_shrinks_with_seeds_like_the_simulated_intervals():
    per_seed = 0.096
    widths = [expected_half_width(n, per_seed) for n in (3, 10, 18)]
    assert widths[0] > widths[1] > widths[2]
    rng = np.random.default_rng(1)
    runs = [infer(list(rng.normal(0, per_seed, 10))) for _ in range(3000)]
    simulated = np.mean([(v.upper95 - v.lower95) / 2 for v in runs])
    assert simulated == pytest.approx(widths[1], rel=0.03)


def test_per_target_verdicts_of_a_matrix_use_the_same_readings():
    from inward.analysis.verdict import target_verdicts

    win, flat = infer([0.10, 0.12, 0.14]), infer([0.03, -0.02, 0.01])
    (a,) = target_verdicts([("a", "b", win), ("a", "c", flat)])
    assert a.startswith("Target a: its own self-trained predictor reads self advantage against 1 of 2 other predictors")
    assert "vs b: self advantage, +12.0 points, 95% interval [+7.0, +17.0]" in a
    assert "vs c: " + flat.reading in a
