"""Cohen's kappa, the verdict's declared secondary: a constant answer scores 0."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import cohen_kappa_score

from inward.analysis.results import grouped_kappa, kappa, results_table
from inward.records import ScoredRecord


def scored(values, answers, task="animals_long", prop="first_character"):
    return [
        ScoredRecord(task, prop, f"s{i}", "obj", "m", "resp", v, True, a, a is not None, a == v, v, a)
        for i, (v, a) in enumerate(zip(values, answers))
    ]


def test_kappa_matches_sklearn_and_a_constant_answer_scores_zero():
    rng = random.Random(0)
    values = [rng.choice("abc") for _ in range(200)]
    answers = [v if rng.random() < 0.6 else rng.choice("abc") for v in values]
    assert kappa(scored(values, answers)) == pytest.approx(cohen_kappa_score(values, answers))
    constant = ["a"] * 200  # the mode of a skewed target: high accuracy, no information
    skewed = ["a"] * 170 + ["b"] * 30
    rows = scored(skewed, constant)
    assert sum(r.correct for r in rows) / len(rows) == 0.85 and kappa(rows) == 0.0
    assert kappa(scored(values, values)) == 1.0


def test_non_compliant_answers_are_their_own_category_and_never_agree():
    rows = scored(["a", "b", "a", "b"], ["a", "b", None, None])
    # p_o = 2/4; answers a, b, <non-compliant> x2 against values a x2, b x2 -> p_e = (1*2 + 1*2) / 16
    assert kappa(rows) == pytest.approx((0.5 - 0.25) / (1 - 0.25))


def test_pooled_rows_count_chance_agreement_within_each_group():
    a = scored(["x"] * 10, ["x"] * 10, task="t1")  # constant on both sides: kappa 0 by definition
    b = scored(["p", "q"] * 5, ["p", "q"] * 5, task="t2")  # perfect: 1
    assert grouped_kappa(a + b) == pytest.approx(0.5)
    micro = [r for r in results_table(a + b, label="self") if r["response_property"] == "micro_average"][0]
    assert micro["kappa"] == pytest.approx(0.5) and micro["accuracy"] == 1.0
