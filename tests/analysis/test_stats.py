"""Tests for inward.analysis.stats against scipy, statsmodels, pandas and hand-computed numbers."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats  # dev dependency: a missing one must fail, not skip
from statsmodels.stats import contingency_tables as sm_tables
from statsmodels.stats import proportion as sm_proportion

from inward.analysis.stats import (
    accuracy_summary,
    bootstrap_interval,
    calibration_mad,
    entropy_bits,
    equal_frequency_bins,
    mcnemar_test,
    mode_baseline,
    two_proportion_ztest,
)

bools = st.lists(st.booleans(), min_size=2, max_size=60)


# ---------------------------------------------------------------- accuracy_summary


def test_accuracy_summary_hand_computed():
    # mean 0.5; sample sd = sqrt(4 * 0.25 / 3) = 0.5773503; SEM = 0.2886751; error = 0.5658033
    s = accuracy_summary([True, True, False, False])
    assert s.accuracy == 0.5
    assert s.error == pytest.approx(0.5658032638, abs=1e-9)
    assert s.ci_lower == pytest.approx(0.5 - 0.5658032638, abs=1e-9)
    assert s.ci_upper == pytest.approx(0.5 + 0.5658032638, abs=1e-9)
    assert s.count == 4


@given(bools)
def test_error_is_196_scipy_sem(correct):
    s = accuracy_summary(correct, bootstrap_iterations=10)
    expected = 1.96 * scipy_stats.sem(np.asarray(correct, dtype=float))  # ddof=1
    assert s.accuracy == pytest.approx(np.mean(correct), abs=1e-12)
    assert s.error == pytest.approx(expected, abs=1e-12)


def test_other_confidence_uses_normal_quantile():
    correct = [True] * 30 + [False] * 70
    s = accuracy_summary(correct, confidence=0.9, bootstrap_iterations=10)
    z = scipy_stats.norm.ppf(0.95)
    assert s.error == pytest.approx(z * scipy_stats.sem(np.asarray(correct, dtype=float)))


def test_accuracy_summary_empty_and_single():
    empty = accuracy_summary([])
    assert empty.count == 0
    assert all(math.isnan(v) for v in (empty.accuracy, empty.error, empty.ci_lower, empty.bootstrap_lower))
    one = accuracy_summary([True])
    assert one.accuracy == 1.0 and one.count == 1
    assert math.isnan(one.error) and math.isnan(one.ci_upper)
    assert one.bootstrap_lower == one.bootstrap_upper == 1.0


def test_bootstrap_matches_paper_style_reference():
    # The paper's bootstrap_accuracy: default_rng(42), 1000 resamples with replacement,
    # np.percentile 2.5 / 97.5. Written independently here with rng.choice.
    data = np.array([1, 0, 1, 1, 0, 0, 1, 1, 1, 0] * 9, dtype=float)
    rng = np.random.default_rng(42)
    means = [rng.choice(data, size=data.size, replace=True).mean() for _ in range(1000)]
    expected = np.percentile(means, [2.5, 97.5])
    s = accuracy_summary(data.astype(bool))
    assert (s.bootstrap_lower, s.bootstrap_upper) == (expected[0], expected[1])


def test_bootstrap_is_deterministic_and_seeded():
    data = [True, False, True, True, False] * 7
    assert bootstrap_interval(data, seed=1) == bootstrap_interval(data, seed=1)
    assert bootstrap_interval(data, seed=1) != bootstrap_interval(data, seed=2)


def test_bootstrap_close_to_normal_interval_for_large_n():
    data = np.random.default_rng(0).random(4000) < 0.3
    s = accuracy_summary(data)
    assert s.bootstrap_lower == pytest.approx(s.ci_lower, abs=0.005)
    assert s.bootstrap_upper == pytest.approx(s.ci_upper, abs=0.005)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_accuracy_summary_properties(correct, seed):
    s = accuracy_summary(correct, bootstrap_iterations=50, seed=seed)
    assert 0.0 <= s.accuracy <= 1.0
    assert 0.0 <= s.bootstrap_lower <= s.bootstrap_upper <= 1.0
    assert s.count == len(correct)
    again = accuracy_summary(correct, bootstrap_iterations=50, seed=seed)
    assert (again.bootstrap_lower, again.bootstrap_upper) == (s.bootstrap_lower, s.bootstrap_upper)


# ---------------------------------------------------------------- mode baseline / entropy


def test_mode_baseline_hand_computed_and_ties():
    assert mode_baseline(["a", "b", "b", "c"]) == ("b", 0.5)
    assert mode_baseline(["b", "a", "a", "b"]) == ("b", 0.5)  # tie -> first seen
    assert mode_baseline(["x"]) == ("x", 1.0)
    with pytest.raises(ValueError):
        mode_baseline([])


@given(st.lists(st.sampled_from("abcd"), min_size=1, max_size=30))
def test_mode_baseline_matches_statistics_mode(values):
    modal, acc = mode_baseline(values)
    assert modal == statistics.mode(values)
    assert acc == values.count(modal) / len(values)


def test_entropy_hand_computed():
    assert entropy_bits(["a", "a", "b", "b"]) == 1.0
    assert entropy_bits(list("abcd")) == 2.0
    assert entropy_bits(["a", "a"]) == 0.0
    assert entropy_bits([]) == 0.0
    # p = (3/4, 1/4): 0.75 log2(4/3) + 0.25 log2(4) = 0.8112781
    assert entropy_bits(["a", "a", "a", "b"]) == pytest.approx(0.8112781245, abs=1e-9)


@given(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=50))
def test_entropy_matches_scipy(values):
    counts = [values.count(v) for v in sorted(set(values))]
    assert entropy_bits(values) == pytest.approx(scipy_stats.entropy(counts, base=2), abs=1e-12)


# ---------------------------------------------------------------- two-proportion z test


def test_ztest_hand_computed():
    # pooled 0.25; sd = sqrt(0.25 * 0.75 * (1/100 + 1/100)) = 0.0612372; z = 0.1 / sd
    z, p = two_proportion_ztest(30, 100, 20, 100)
    assert z == pytest.approx(1.6329931619, abs=1e-9)
    assert p == pytest.approx(0.1024704, abs=1e-7)


@pytest.mark.parametrize(
    "sa,na,sb,nb",
    [(30, 100, 20, 100), (5, 10, 9, 12), (320, 1000, 494, 1000), (1, 50, 0, 7), (7, 7, 0, 3)],
)
def test_ztest_matches_statsmodels(sa, na, sb, nb):
    z_ref, p_ref = sm_proportion.proportions_ztest([sa, sb], [na, nb])
    z, p = two_proportion_ztest(sa, na, sb, nb)
    assert z == pytest.approx(z_ref, rel=1e-12)
    assert p == pytest.approx(p_ref, rel=1e-9, abs=1e-15)


@given(st.data())
def test_ztest_matches_statsmodels_and_is_antisymmetric(data):
    na, nb = data.draw(st.integers(1, 500)), data.draw(st.integers(1, 500))
    sa, sb = data.draw(st.integers(0, na)), data.draw(st.integers(0, nb))
    z, p = two_proportion_ztest(sa, na, sb, nb)
    z_swapped, p_swapped = two_proportion_ztest(sb, nb, sa, na)
    if (sa + sb) in (0, na + nb):
        assert math.isnan(z) and math.isnan(p)  # zero pooled variance, as statsmodels
        return
    z_ref, p_ref = sm_proportion.proportions_ztest([sa, sb], [na, nb])
    assert z == pytest.approx(z_ref, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(p_ref, rel=1e-7, abs=1e-15)
    assert z_swapped == pytest.approx(-z, abs=1e-12)
    assert p_swapped == pytest.approx(p, abs=1e-15)
    assert 0.0 <= p <= 1.0


def test_ztest_rejects_bad_counts():
    with pytest.raises(ValueError):
        two_proportion_ztest(5, 4, 1, 2)
    with pytest.raises(ValueError):
        two_proportion_ztest(0, 0, 1, 2)


# ---------------------------------------------------------------- McNemar


def _table(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]


def test_mcnemar_hand_computed():
    # 5 discordant pairs all favouring A: p = 2 * 0.5**5 = 0.0625
    a = [True] * 5 + [True, False]
    b = [False] * 5 + [True, False]
    t = mcnemar_test(a, b)
    assert (t.count, t.a_only, t.b_only) == (7, 5, 0)
    assert t.p_value == 0.0625
    assert t.mean_difference == pytest.approx(5 / 7)
    assert (t.accuracy_a, t.accuracy_b) == pytest.approx((6 / 7, 1 / 7))
    assert mcnemar_test([True, False], [True, False]).p_value == 1.0  # no discordant pairs


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=80))
def test_mcnemar_matches_statsmodels_and_scipy(pairs):
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    t = mcnemar_test(a, b)
    ref = sm_tables.mcnemar(_table(a, b), exact=True)
    assert t.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    diffs = np.asarray(a, float) - np.asarray(b, float)
    assert t.mean_difference == pytest.approx(diffs.mean(), abs=1e-12)
    half = 1.96 * scipy_stats.sem(diffs)
    assert t.ci_lower == pytest.approx(diffs.mean() - half, abs=1e-12, nan_ok=True)
    assert t.ci_upper == pytest.approx(diffs.mean() + half, abs=1e-12, nan_ok=True)
    swapped = mcnemar_test(b, a)
    assert swapped.p_value == t.p_value
    assert swapped.mean_difference == pytest.approx(-t.mean_difference, abs=1e-12)


def test_mcnemar_large_counts_match_statsmodels():
    table = [[100, 4100], [3900, 200]]
    a = [True] * 4200 + [False] * 4100
    b = [True] * 100 + [False] * 4100 + [True] * 3900 + [False] * 200
    assert _table(a, b) == table
    ref = sm_tables.mcnemar(table, exact=True).pvalue
    assert mcnemar_test(a, b).p_value == pytest.approx(ref, rel=1e-9)


def test_mcnemar_rejects_unequal_lengths():
    with pytest.raises(ValueError):
        mcnemar_test([True], [True, False])


# ---------------------------------------------------------------- calibration bins


def test_bins_hand_computed_two_bins():
    # Median of 0.1..1.0 is 0.55: [0.1, 0.55] holds 0.1..0.5, (0.55, 1.0] holds 0.6..1.0.
    x = [i / 10 for i in range(1, 11)]
    y = [0.0] * 5 + [1.0] * 5
    bins = equal_frequency_bins(x, y, q=2)
    assert [(b.count, b.mean_y) for b in bins] == [(5, 0.0), (5, 1.0)]
    assert [b.mean_x for b in bins] == pytest.approx([0.3, 0.8])
    assert [b.lower for b in bins] == pytest.approx([0.1, 0.55])
    assert [b.upper for b in bins] == pytest.approx([0.55, 1.0])
    # MAD = (|0.3 - 0| + |0.8 - 1|) / 2 * 100 = 25
    assert calibration_mad(x, y, q=2) == pytest.approx(25.0)


def test_bins_hand_computed_duplicate_edges_and_empty_bins():
    # x = [0, 0, 0, 1]: deciles 0 (x7), 0.1, 0.4, 0.7, 1.0 -> edges [0, .1, .4, .7, 1]
    bins = equal_frequency_bins([0, 0, 0, 1], [1, 0, 0, 1], q=10)
    assert [(b.count, b.mean_x) for b in bins] == [(3, 0.0), (1, 1.0)]
    assert bins[0].mean_y == pytest.approx(1 / 3)
    assert bins[0].upper == pytest.approx(0.1) and bins[1].lower == pytest.approx(0.7)
    assert calibration_mad([0, 0, 0, 1], [1, 0, 0, 1]) == pytest.approx(100 / 6)
    # x = [0, 10]: edges 0, 1, ..., 10; only [0, 1] and (9, 10] are occupied
    bins = equal_frequency_bins([0, 10], [0, 1])
    assert [(b.lower, b.upper, b.count, b.mean_x, b.mean_y) for b in bins] == [
        (0.0, 1.0, 1, 0.0, 0.0),
        (9.0, 10.0, 1, 10.0, 1.0),
    ]


def test_bins_right_closed_and_lowest_included():
    # Quartile edges of 1..5 are 1, 2, 3, 4, 5: bins [1,2], (2,3], (3,4], (4,5]
    bins = equal_frequency_bins([1, 2, 3, 4, 5], [0, 0, 0, 0, 0], q=4)
    assert [b.count for b in bins] == [2, 1, 1, 1]
    assert [b.mean_x for b in bins] == [1.5, 3.0, 4.0, 5.0]


def test_bin_edges_use_pandas3_rounded_up_levels():
    # level 1/3 is nudged up one ulp before the quantile, as pandas >= 3 qcut does; the plain
    # np.quantile(x, 1/3) would be 0.016666666666666663.
    (first,) = equal_frequency_bins([0.0, 0.05], [0.0, 0.0], q=3)[:1]
    assert first.upper == 0.016666666666666666


def test_bins_degenerate_inputs():
    assert equal_frequency_bins([0.5, 0.5, 0.5], [1, 0, 1]) == ()  # pandas: all NaN bins
    # ... except q=1, where pandas keeps both (equal) edges: one bin [0.5, 0.5]
    (only,) = equal_frequency_bins([0.5, 0.5, 0.5], [1, 0, 1], q=1)
    assert (only.lower, only.upper, only.count, only.mean_x) == (0.5, 0.5, 3, 0.5)
    assert math.isnan(calibration_mad([0.5, 0.5], [0.1, 0.2]))
    assert equal_frequency_bins([], []) == ()
    with pytest.raises(ValueError):
        equal_frequency_bins([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        equal_frequency_bins([0.1, float("nan")], [0.1, 0.2])


def test_perfect_calibration_has_zero_mad():
    x = np.linspace(0, 1, 101)
    assert calibration_mad(x, x) == pytest.approx(0.0, abs=1e-12)


probabilities = st.one_of(
    st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.95, 1.0]),
    st.floats(0.0, 1.0, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(probabilities, st.floats(0.0, 1.0)), min_size=1, max_size=60),
    st.integers(1, 12),
)
def test_bins_match_pandas_qcut(pairs, q):
    pd = pytest.importorskip("pandas")
    x = pd.Series([p[0] for p in pairs])
    y = pd.Series([p[1] for p in pairs])
    ours = equal_frequency_bins(list(x), list(y), q=q)
    codes, edges = pd.qcut(x, q=q, duplicates="drop", retbins=True, labels=False)
    if codes.isna().all():
        assert ours == ()
        return
    grouped = pd.DataFrame({"x": x, "y": y, "bin": codes}).groupby("bin")
    means = grouped.mean()
    sizes = grouped.size()
    assert len(ours) == len(means)
    for b, (code, row) in zip(ours, means.iterrows()):
        assert (b.lower, b.upper) == (edges[int(code)], edges[int(code) + 1])
        assert b.count == sizes[code]
        assert b.mean_x == pytest.approx(row["x"], rel=1e-12, abs=1e-15)
        assert b.mean_y == pytest.approx(row["y"], rel=1e-12, abs=1e-15)
    paper_mad = float(np.mean(np.abs(100 * means["x"].to_numpy() - 100 * means["y"].to_numpy())))
    assert calibration_mad(list(x), list(y), q=q) == pytest.approx(paper_mad, abs=1e-9)


def test_beats_mode_p_matches_scipy_one_sided_binomial():
    import random

    from scipy.stats import binomtest

    from inward.analysis.stats import beats_mode_p

    rng = random.Random(3)
    for _ in range(30):
        n = rng.randint(1, 60)
        correct = [rng.random() < 0.5 for _ in range(n)]
        mode = [rng.random() < 0.5 for _ in range(n)]
        a = sum(c and not m for c, m in zip(correct, mode))
        b = sum(m and not c for c, m in zip(correct, mode))
        expected = binomtest(a, a + b, 0.5, alternative="greater").pvalue if a + b else 1.0
        assert beats_mode_p(correct, mode) == pytest.approx(expected, rel=1e-12)
    # a predictor that always gives the modal answer never beats the mode
    assert beats_mode_p([True, False, True], [True, False, True]) == 1.0


def test_top_answer_and_degenerate_flag_in_results():
    from inward.analysis.results import results_table
    from inward.records import ScoredRecord

    def row(task, obj, ans):
        return ScoredRecord(
            task, "starts_with_vowel", f"s{obj}{ans}{task}", "M", "P", "", obj, True, ans, True, obj == ans, obj, ans
        )

    # "false" 9 times in 10, right at the mode: degenerate, no evidence of beating the mode
    rows = [row("t", "false", "false")] * 7 + [row("t", "true", "false")] * 2 + [row("t", "true", "true")]
    table = {r["response_property"]: r for r in results_table(rows, label="self")}
    prop = table["starts_with_vowel"]
    assert prop["top_answer"] == "false" and prop["top_answer_share"] == pytest.approx(0.9)
    assert prop["degenerate"] is True and prop["mode_baseline"] == pytest.approx(0.7)
    assert prop["accuracy"] == pytest.approx(0.8) and prop["beats_mode_p"] == pytest.approx(0.5)
    assert table["micro_average"]["degenerate_groups"] == 1 and table["micro_average"]["degenerate"] == ""
