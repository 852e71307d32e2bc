"""The verdict's per-seed gaps on the declared metric, on hand-built rows (no models)."""

from __future__ import annotations

import pytest

from inward.experiments.outputs import seed_gaps
from inward.experiments.rows import StudyRows

A, B, G = "bundled/a", "bundled/b", "bundled/g"


def row(label: str, seed: int, target: str, predictor: str, accuracy: float, kappa: float) -> dict:
    own = f"{target}+lora:seed{seed}/{target}/self_ft/adapter"
    meta = own if label == "self" else f"{predictor}+lora:seed{seed}/{target}/cross_ft/{predictor}/adapter"
    return {
        "seed": seed,
        "label": label,
        "response_property": "micro_average",
        "object_model": own,
        "meta_model": meta,
        "accuracy": accuracy,
        "kappa": kappa,
    }


def test_kappa_gaps_pair_each_seed_target_and_cross_predictor():
    seeds = [7, 3]  # config order, not sorted
    results = []
    for k, seed in enumerate(seeds):
        results += [
            row("self", seed, A, A, 0.5, 0.30 + k / 10),
            row("cross", seed, A, B, 0.4, 0.10),
            row("cross", seed, A, G, 0.3, 0.05 + k / 100),
            row("self", seed, B, B, 0.6, 0.50),
            row("cross", seed, B, A, 0.2, 0.20 - k / 10),
            {**row("self", seed, A, A, 0.9, 0.9), "response_property": "first_word"},  # not the micro row
        ]
    results.append({**row("untrained", 0, A, A, 0.2, 0.0), "seed": None, "object_model": A, "meta_model": A})
    rows = StudyRows(example_seed=0, results=results)
    by_seed = {seed: {} for seed in seeds}
    assert seed_gaps("kappa", rows, A, B, by_seed) == pytest.approx([0.20, 0.30])
    assert seed_gaps("kappa", rows, A, G, by_seed) == pytest.approx([0.25, 0.34])
    assert seed_gaps("kappa", rows, B, A, by_seed) == pytest.approx([0.30, 0.40])
    # a seed without both rows, or with a kappa that is not a number, gives no gap
    rows.results = [r for r in results if not (r["seed"] == 3 and r["label"] == "cross")]
    assert seed_gaps("kappa", rows, A, B, by_seed) == pytest.approx([0.20])
    rows.results = [{**r, "kappa": float("nan")} if r["seed"] == 7 and r["label"] == "cross" else r for r in results]
    assert seed_gaps("kappa", rows, A, B, by_seed) == pytest.approx([0.30])


def test_micro_average_gaps_are_the_paired_mean_difference():
    rows = StudyRows(example_seed=0)
    by_seed = {1: {"micro_average": ([1, 1, 0, 0], [0, 1, 0, 1])}, 0: {"micro_average": ([1, 0], [0, 0])}}
    assert seed_gaps("micro_average", rows, A, B, by_seed) == pytest.approx([0.0, 0.5])
