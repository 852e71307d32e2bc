"""A predictor x target matrix (``models:``) on three tiny random models."""

from __future__ import annotations

import csv
import json

from inward.experiments.study import run_study
from inward.experiments.study_config import parse_config
from inward.store.cache import ResponseCache


def test_models_run_every_ordered_pair_and_report_the_matrix(tmp_path, tiny_pair, tmp_path_factory):
    from inward.models.tiny import make_tiny_model

    third = f"hf/{make_tiny_model(tmp_path_factory.mktemp('tiny_c'), seed=2)}"
    models = [*tiny_pair, third]
    config = parse_config(
        {
            "name": "tiny-matrix",
            "models": models,
            "train_tasks": ["colors_long"],
            "held_out_tasks": ["animals_long"],
            "properties": ["first_character"],
            "n_train_strings": 6,
            "n_train_per_pair": 4,
            "n_eval": 5,
            "seeds": [0, 1],
            "finetune": {"rank": 4, "alpha": 8, "batch_size": 4, "dtype": "float32", "learning_rate": 1e-3},
        }
    )
    assert len(config.pairs) == 6
    out = tmp_path / "run"
    result = run_study(config, out, cache=ResponseCache(tmp_path / "c.sqlite"))

    trained = [
        (t["seed"], t["model"], t["about"].split("+lora:")[0])
        for t in json.loads((out / "run.json").read_text())["training"]
    ]
    for seed in (0, 1):  # per seed: three self finetunes, and each model cross-trained on each other
        mine = [(m, about) for s, m, about in trained if s == seed]
        assert sorted(mine) == sorted([(m, m) for m in models] + [(b, a) for a in models for b in models if a != b])
    matrix = list(csv.DictReader((out / "matrix.csv").open()))
    assert {(r["predictor"], r["target"]) for r in matrix} == {(p, t) for p in models for t in models}
    assert all((r["label"] == "self") == (r["predictor"] == r["target"]) for r in matrix)
    assert all(r["seeds"] == "2" for r in matrix)
    # one verdict per pair, then one per target over its two cross-predictors
    per_target = [v for v in result.verdicts if v.startswith("Target ")]
    assert [v.split(":")[0] for v in per_target] == [f"Target {m}" for m in models]
    assert all(v.count(" vs ") == 2 for v in per_target), per_target
    html = (out / "report.html").read_text()
    assert "Predictor × target" in html and html.count("<b>") >= 3  # the three diagonal cells
