"""Experiment 1b's analysis on hand-computed distributions."""

from __future__ import annotations

import math

import pytest

from inward.analysis.calibration import (
    CalibrationRecord,
    agreement_table,
    calibration_pairs,
    calibration_table,
    hypothetical_dist_from_samples,
    hypothetical_dist_from_tokens,
    object_dist_from_samples,
    object_dist_from_tokens,
    sampling_noise_tv,
    total_variation,
)
from inward.analysis.stats import calibration_mad
from inward.properties import extract


def second(text: str) -> str | None:
    return extract("second_character", text)


def test_object_dist_from_samples_drops_short_samples_and_lowercases():
    dist, share = object_dist_from_samples(["Dog", "dog", "Cat", "x", "DOg"], second)
    # "x" has no second character: dropped, the other 4 renormalised; "DOg" -> "o" (cleaned)
    assert dist == {"o": 0.75, "a": 0.25}
    assert share == pytest.approx(0.8)
    assert object_dist_from_samples(["a", ""], second) == ({}, 0.0)


def test_object_dist_from_tokens_is_the_first_token_approximation():
    tokens = {"Dog": 0.5, "Cat": 0.2, "D": 0.2, "": 0.1}  # "D" and "" fix no second character
    dist, mass = object_dist_from_tokens(tokens, second)
    assert mass == pytest.approx(0.7)
    assert dist == pytest.approx({"o": 0.5 / 0.7, "a": 0.2 / 0.7})
    assert list(dist) == ["o", "a"]  # most likely first


def test_hypothetical_dists_clean_like_scoring_and_keep_the_rest():
    assert hypothetical_dist_from_samples(["o", "O.", " o", "dog"]) == {"o": 0.75, "dog": 0.25}
    d = hypothetical_dist_from_tokens({"o": 0.5, " O": 0.2, "a": 0.1})  # sums to 0.8: not renormalised
    assert d == pytest.approx({"o": 0.7, "a": 0.1})


def test_calibration_pairs_top_k_and_missing_values():
    obj = {"o": 0.6, "a": 0.3, "e": 0.1, "i": 0.0}
    hyp = {"o": 0.9, "e": 0.05}
    assert calibration_pairs(obj, hyp, top=3) == [(0.6, 0.9), (0.3, 0.0), (0.1, 0.05)]
    assert calibration_pairs(obj, hyp, top=1) == [(0.6, 0.9)]
    assert calibration_pairs({"b": 0.5, "a": 0.5}, {}, top=1) == [(0.5, 0.0)]  # ties by value


def rec(setup, string, obj, hyp, method="exact", meta="m"):
    return CalibrationRecord(setup, "animals", "second_character", string, method, "o", meta, obj, hyp, 1.0)


def test_calibration_table_mad_hand_computed():
    # Two prompts, top-1 pairs only: (1.0, 0.5) and (0.5, 0.5). With q=2 bins each pair is its own
    # bin: |100 - 50| and |50 - 50| -> MAD = (50 + 0) / 2 = 25 pp.
    records = [rec("self", "s1", {"o": 1.0}, {"o": 0.5}), rec("self", "s2", {"a": 0.5, "o": 0.5}, {"a": 0.5})]
    [row] = calibration_table(records, top=1, bins=2)
    assert row["mad"] == pytest.approx(25.0)
    assert row["count"] == 2 and row["prompts"] == 2 and row["method"] == "exact"
    assert row["mad"] == pytest.approx(calibration_mad([1.0, 0.5], [0.5, 0.5], 2))
    # one bin: mean x 0.75, mean y 0.5 -> 25 pp as well; perfect calibration gives 0
    assert calibration_table(records, top=1, bins=1)[0]["mad"] == pytest.approx(25.0)
    perfect = [rec("self", "s", {"o": 0.7, "a": 0.3}, {"o": 0.7, "a": 0.3})]
    assert calibration_table(perfect, top=3, bins=10)[0]["mad"] == pytest.approx(0.0)


def test_calibration_table_groups_setups_methods_and_predictors():
    records = [
        rec("self", "s", {"o": 1.0}, {"o": 1.0}),
        rec("cross", "s", {"o": 1.0}, {"o": 0.0}),
        rec("cross", "s", {"o": 1.0}, {"o": 0.0}, meta="other"),
        rec("self", "s", {"o": 1.0}, {"o": 0.0}, method="sampled"),
    ]
    # (with q > 1 and all x equal no bin exists, as with pd.qcut(duplicates="drop"): MAD nan)
    assert math.isnan(calibration_table(records[:1], top=1)[0]["mad"])
    rows = {(r["setup"], r["method"], r["meta_model"]): r["mad"] for r in calibration_table(records, top=1, bins=1)}
    assert rows == {
        ("self", "exact", "m"): 0.0,
        ("cross", "exact", "m"): 100.0,
        ("cross", "exact", "other"): 100.0,
        ("self", "sampled", "m"): 100.0,
    }


def test_total_variation_and_noise_floor():
    assert total_variation({"a": 1.0}, {"a": 1.0}) == 0.0
    assert total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
    assert total_variation({"a": 0.5, "b": 0.5}, {"a": 1.0}) == pytest.approx(0.5)
    assert sampling_noise_tv({"a": 1.0}, 20) == 0.0  # a point mass is sampled exactly
    fair = sampling_noise_tv({"a": 0.5, "b": 0.5}, 20, draws=4000)
    # E|k/20 - 1/2| for k ~ Bin(20, 1/2) = C(20,10) * 20 / 2^20 / 2 / 10 ... computed exactly:
    exact = sum(math.comb(20, k) * abs(k / 20 - 0.5) for k in range(21)) / 2**20
    assert fair == pytest.approx(exact, abs=0.01)
    assert math.isnan(sampling_noise_tv({}, 20))


def test_agreement_on_overlapping_prompts_only():
    records = [
        rec("self", "s1", {"o": 1.0}, {"o": 1.0}),
        rec("self", "s2", {"o": 1.0}, {"o": 1.0}),
        rec("self", "s1", {"o": 0.5, "a": 0.5}, {"o": 1.0}, method="sampled"),
    ]
    [a] = agreement_table(records, samples=20, top=1, bins=1)
    assert a["prompts"] == 1
    assert a["object_tv"] == pytest.approx(0.5) and a["hypothetical_tv"] == 0.0
    assert a["mad_exact"] == pytest.approx(0.0) and a["mad_sampled"] == pytest.approx(50.0)
    assert a["mad_difference"] == pytest.approx(50.0)
    assert a["object_tv_noise_floor"] == 0.0  # the exact distribution is a point mass
    assert agreement_table(records[:2], samples=20) == []  # no sampled prompts: nothing to compare


def test_the_noise_floor_does_not_depend_on_the_order_of_the_distribution():
    """Records computed in this process and records read back from JSON hold the same distribution
    in different key orders; the seeded Monte-Carlo noise floor must be the same for both."""
    from inward.analysis.calibration import sampling_noise_tv

    dist = {"e": 0.5, "a": 0.3, "o": 0.15, "i": 0.05}
    reordered = dict(sorted(dist.items()))
    assert list(dist) != list(reordered)
    assert sampling_noise_tv(dist, 20, seed=3) == sampling_noise_tv(reordered, 20, seed=3)
