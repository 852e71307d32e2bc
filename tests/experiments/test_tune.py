"""inward tune on tiny random models: the grid, the table, and the split it selects on."""

from __future__ import annotations

import csv
import json

import pytest

from inward.errors import InwardError
from inward.experiments.study_config import parse_config
from inward.experiments.tune import grid_points, run_tune
from inward.store.cache import ResponseCache
from inward.tasks import get_task


def config(tiny_pair, **over):
    base = {
        "name": "tiny",
        "pairs": [{"self": tiny_pair[0], "cross": tiny_pair[1]}],
        "train_tasks": ["colors_long", "numbers"],
        "held_out_tasks": ["animals_long"],
        "properties": ["first_character", "starts_with_vowel", "is_even_direct"],
        "n_train_strings": 6,
        "n_train_per_pair": 4,
        "n_eval": 5,
        "finetune": {"rank": 4, "alpha": 8, "batch_size": 4, "dtype": "float32", "learning_rate": 1e-3},
        "tune": {"grid": {"learning_rate": [1e-3, 1e-2], "epochs": [1]}, "n_strings": 4},
    }
    base.update(over)
    return parse_config(base)


def test_grid_points_cover_every_combination():
    assert grid_points({"learning_rate": [1, 2], "epochs": [1, 3]}) == [
        {"learning_rate": 1, "epochs": 1},
        {"learning_rate": 1, "epochs": 3},
        {"learning_rate": 2, "epochs": 1},
        {"learning_rate": 2, "epochs": 3},
    ]


def test_tune_scores_every_point_on_held_out_train_strings(tmp_path, tiny_pair, monkeypatch):
    cfg = config(tiny_pair)
    loaded: list[tuple[str, str]] = []
    original = type(get_task("animals_long")).load

    def spy(self, split, *a, **k):
        loaded.append((self.name, split))
        return original(self, split, *a, **k)

    monkeypatch.setattr(type(get_task("animals_long")), "load", spy)
    rows = run_tune(cfg, tmp_path / "tune", cache=ResponseCache(tmp_path / "c.sqlite"))
    assert [r["point"] for r in rows] == ["learning_rate=0.001,epochs=1", "learning_rate=0.01,epochs=1"]
    assert sum(r["best"] for r in rows) == 1
    best = next(r for r in rows if r["best"])
    assert best["lift"] == max(r["lift"] for r in rows)  # accuracy above each point's own mode baseline
    assert all(r["lift"] == pytest.approx(r["micro_accuracy"] - r["mode_baseline"]) for r in rows)
    # the held-out (test) task is never loaded, and only the train split is
    assert {name for name, _ in loaded} <= {"colors_long", "numbers"} and {s for _, s in loaded} == {"train"}
    table = list(csv.DictReader((tmp_path / "tune" / "tune.csv").open()))
    assert [r["point"] for r in table] == [r["point"] for r in rows] and "learning_rate" in table[0]
    # scored strings are the 4 after the 6 training strings of each task; training never saw them
    for _row in rows:
        folder = tmp_path / "tune" / "points"
        scored = [json.loads(x) for f in folder.glob("*/scored.jsonl") for x in f.open()]
        assert scored and all(s["task"] in ("colors_long", "numbers") for s in scored)
    for task in ("colors_long", "numbers"):
        all10 = [s.string for s in get_task(task).load("train", 10, 0)]
        scored_strings = {
            json.loads(x)["string"]
            for f in (tmp_path / "tune" / "points").glob("*/scored.jsonl")
            for x in f.open()
            if json.loads(x)["task"] == task
        }
        assert scored_strings <= set(all10[6:]) and scored_strings
    # a rerun trains nothing and gives the same table
    import peft

    monkeypatch.setattr(peft, "get_peft_model", lambda *a, **k: pytest.fail("retrained"))
    before = (tmp_path / "tune" / "tune.csv").read_bytes()
    run_tune(cfg, tmp_path / "tune", cache=ResponseCache(tmp_path / "c.sqlite"))
    assert (tmp_path / "tune" / "tune.csv").read_bytes() == before


def test_untunable_key_is_an_error(tiny_pair):
    with pytest.raises(InwardError, match="cannot be tuned"):
        config(tiny_pair, tune={"grid": {"seed_of_doom": [1]}})
