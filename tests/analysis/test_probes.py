"""Linear probes: labels, fitting and scoring, summaries over seeds (checked against scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from inward.analysis.probes import (
    OTHER,
    ProbeSettings,
    encode,
    label_space,
    mode_flags,
    probe_contrast,
    probe_summary,
    score_probe,
)

SETTINGS = ProbeSettings(top_k=3, folds=3, n_cs=3, seed=0)


def test_label_space_keeps_top_k_with_enough_rows_and_breaks_ties_by_value():
    values = ["b"] * 5 + ["a"] * 5 + ["c"] * 4 + ["d"] * 1
    assert label_space(values, top_k=3, min_count=3) == ["a", "b", "c"]
    assert label_space(values, top_k=2, min_count=3) == ["a", "b"]
    assert label_space(values, top_k=10, min_count=2) == ["a", "b", "c"]  # "d" has one row
    assert encode(["a", "d", "c"], ["a", "c"]) == ["a", OTHER, "c"]


def test_mode_flags_per_task_property_group():
    groups = [("t1", "p")] * 3 + [("t2", "p")] * 2
    values = ["x", "x", "y", "y", "z"]
    # t1's mode is x; t2 ties y/z and the first seen (y) wins, as in mode_baseline
    assert mode_flags(groups, values) == [True, True, False, True, False]


def _blobs(n_per_class: int, classes: list[str], dim: int, separation: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(size=dim) * separation for c in classes}
    xs, ys = [], []
    for c in classes:
        xs.append(centres[c] + rng.normal(size=(n_per_class, dim)))
        ys += [c] * n_per_class
    return np.vstack(xs), ys


def test_a_probe_reads_separable_classes_and_not_noise():
    x_tr, y_tr = _blobs(30, ["a", "b", "c"], 20, separation=3.0, seed=0)
    x_te, y_te = _blobs(20, ["a", "b", "c"], 20, separation=3.0, seed=0)  # same centres
    s = score_probe("p", x_tr, y_tr, x_te, y_te, [("t", "p")] * len(y_te), SETTINGS)
    assert s.accuracy > 0.95 and s.classes == 3 and s.c is not None
    assert s.mode_baseline == pytest.approx(1 / 3)
    # labels shuffled against the features: nothing to read, held-out accuracy near chance
    rng = np.random.default_rng(1)
    noise = score_probe(
        "p", rng.normal(size=(90, 20)), y_tr, rng.normal(size=(60, 20)), y_te, [("t", "p")] * 60, SETTINGS
    )
    assert noise.accuracy < 0.6


def test_other_is_never_counted_correct():
    # four classes, top_k=2: rows of c and d become OTHER in training; a test row whose value is
    # "c" and whose prediction is OTHER must score wrong
    x_tr, y_tr = _blobs(10, ["a", "b", "c", "d"], 5, separation=5.0, seed=2)
    x_te, y_te = _blobs(5, ["a", "b", "c", "d"], 5, separation=5.0, seed=2)
    s = score_probe("p", x_tr, y_tr, x_te, y_te, [("t", "p")] * 20, ProbeSettings(top_k=2, folds=3, n_cs=3))
    assert s.classes == 3  # a, b and OTHER
    for ok, value in zip(s.correct, y_te):
        if value in ("c", "d"):
            assert not ok
    assert s.accuracy <= 0.5 + 1e-9


def test_a_single_train_class_gives_a_constant_probe():
    x = np.zeros((6, 4))
    s = score_probe("p", x, ["a"] * 6, x[:4], ["a", "a", "b", "a"], [("t", "p")] * 4, SETTINGS)
    assert s.c is None and s.accuracy == 0.75 and s.top_answer_share == 1.0


def _row(seed, source, depth, acc, layer=1):
    return {
        "seed": seed,
        "target": "m1",
        "cross_model": "m2",
        "source": source,
        "layer": layer,
        "depth": depth,
        "property": "micro_average",
        "accuracy": acc,
        "mode_baseline": 0.3,
        "beats_mode_p": 0.01 if acc > 0.5 else 0.5,
        "self_ft_accuracy": 0.4,
        "cross_ft_accuracy": 0.2,
    }


def test_summary_and_contrast_over_seeds_match_numpy_and_scipy():
    own = [0.62, 0.55, 0.71]
    cross = [0.40, 0.47, 0.45]
    rows = [_row(s, "self/hypothetical", 0.5, a) for s, a in enumerate(own)]
    rows += [_row(s, "cross/hypothetical", 0.5, a, layer=9) for s, a in enumerate(cross)]
    rows.append({**_row(0, "self/hypothetical", 0.5, 0.99), "property": "first_character"})  # not micro: ignored
    summary = {r["source"]: r for r in probe_summary(rows, "micro_average")}
    assert summary["self/hypothetical"]["accuracy_mean"] == pytest.approx(np.mean(own))
    assert summary["self/hypothetical"]["accuracy_sd"] == pytest.approx(np.std(own, ddof=1))
    assert summary["self/hypothetical"]["seeds_beating_mode"] == 3
    assert summary["cross/hypothetical"]["seeds_beating_mode"] == 0
    (c,) = probe_contrast(rows, "micro_average")
    diffs = np.array(own) - np.array(cross)
    assert c["self_minus_cross_mean"] == pytest.approx(diffs.mean())
    assert c["self_minus_cross_sd"] == pytest.approx(diffs.std(ddof=1))
    ref = stats.ttest_1samp(diffs, 0)
    assert c["p_value"] == pytest.approx(ref.pvalue)
    assert (c["ci_lower"], c["ci_upper"]) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert (c["self_layer"], c["cross_layer"]) == (1, 9)
    one = probe_contrast([r for r in rows if r["seed"] == 0], "micro_average")
    assert one[0]["seeds"] == 1 and math.isnan(one[0]["p_value"]) and one[0]["self_minus_cross_sd"] is None


def test_too_few_other_rows_are_left_out_and_no_class_at_all_is_a_constant_other():
    """Seen in the smoke preset: one train value outside the top classes made an OTHER class of one
    row, which stratified cross-validation cannot split."""
    x_tr, y_tr = _blobs(6, ["a", "b"], 4, separation=5.0, seed=3)
    x_tr = np.vstack([x_tr, np.zeros((1, 4))])
    y_tr = [*y_tr, "z"]  # one row of a rare value -> OTHER with a single row
    x_te, y_te = _blobs(3, ["a", "b"], 4, separation=5.0, seed=3)
    s = score_probe("p", x_tr, y_tr, x_te, y_te, [("t", "p")] * 6, SETTINGS)
    assert s.n_train == 12 and s.classes == 2 and s.accuracy > 0.8
    none = score_probe("p", x_tr[:2], ["q", "r"], x_te, y_te, [("t", "p")] * 6, SETTINGS)  # each value once
    assert none.accuracy == 0.0 and none.c is None and none.top_answer_share == 1.0
