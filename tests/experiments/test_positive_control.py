"""The positive control (inward.experiments.positive_control): the hypothetical asked after the
predictor's own answer on a seeded share of held-out items, read by the study's verdict."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest

from inward.analysis.positive_control import ControlRow, control_verdicts
from inward.experiments.positive_control import planted, with_own_answer
from inward.experiments.study import run_study
from inward.experiments.study_config import parse_config
from inward.prompts import hypothetical_prompt, object_prompt
from inward.store.cache import ResponseCache
from inward.tasks import get_task


def test_the_planted_prompt_is_the_object_turn_then_the_hypothetical():
    task = get_task("animals_long")
    messages = with_own_answer(task, "first_character", "fox sheep", "duck cow")
    assert messages[:2] == object_prompt(task, "fox sheep")
    assert messages[2] == {"role": "assistant", "content": "duck cow"}
    assert messages[3] == hypothetical_prompt(task, "first_character", "fox sheep")[-1]


def test_planted_items_are_a_seeded_share():
    items = [("animals_long", f"s{i}") for i in range(40)]
    half = planted(items, 0.5, seed=0)
    assert len(half) == 20 and half == planted(list(reversed(items)), 0.5, seed=0)
    assert half != planted(items, 0.5, seed=1) and len(planted(items, 1.0, seed=0)) == 40


def test_the_control_reading_and_the_planted_size():
    rows = [
        ControlRow(s, "t", "c", 0.5, "context", 50, 100, gap, gap + 0.2, 0.2, 0.4, 1.0, 0.4, 0.4)
        for s, gap in enumerate([0.01, -0.02, 0.0, 0.02])
    ]
    (sentence,) = control_verdicts(rows, 0.05)
    assert "Positive control (t vs c, 50% of held-out items" in sentence
    assert "Self advantage: +20.2 points, 95% interval" in sentence
    assert "the study's own +0.2 points plus the planted advantage measured in this run, +20.0 points" in sentence
    assert "on its own lies inside the 95% interval" in sentence
    # under a kappa verdict the control reads its kappa gaps
    kappa_rows = [replace(r, kappa_gap_plain=0.1, kappa_gap_controlled=0.4 + r.seed / 100) for r in rows]
    (sentence,) = control_verdicts(kappa_rows, 0.05, "kappa")
    assert "Self advantage: +41.5 points" in sentence and "the study's own +10.0 points" in sentence
    assert "this run, +31.5 points" in sentence and "interval (kappa)" in sentence


def test_a_study_with_the_control_writes_its_rows_and_verdict_and_reuses_them(tmp_path, tiny_pair):
    config = parse_config(
        {
            "name": "tiny-control",
            "pairs": [{"self": tiny_pair[0], "cross": tiny_pair[1]}],
            "train_tasks": ["colors_long"],
            "held_out_tasks": ["animals_long"],
            "properties": ["first_character", "starts_with_vowel"],
            "n_train_strings": 6,
            "n_train_per_pair": 4,
            "n_eval": 6,
            "seeds": [0, 1],
            "finetune": {"rank": 4, "alpha": 8, "batch_size": 4, "dtype": "float32", "learning_rate": 1e-3},
            "positive_control": {"share": 0.5},
        }
    )
    out = tmp_path / "run"
    result = run_study(config, out, cache=ResponseCache(tmp_path / "c.sqlite"))
    rows = list(csv.DictReader((out / "positive_control.csv").open()))
    assert [r["seed"] for r in rows] == ["0", "1"]
    for r in rows:
        assert 0 < int(r["planted_rows"]) < int(r["rows"])
        size = float(r["gap_controlled"]) - float(r["gap_plain"])
        assert float(r["planted_size"]) == pytest.approx(size)
    # the plain kappa gap is the verdict's: self − cross kappa of results.csv's micro rows
    results = [r for r in csv.DictReader((out / "results.csv").open()) if r["response_property"] == "micro_average"]
    kappas = {(r["label"], r["seed"]): float(r["kappa"]) for r in results}
    for r in rows:
        expected = kappas[("self", r["seed"])] - kappas[("cross", r["seed"])]
        assert float(r["kappa_gap_plain"]) == pytest.approx(expected)
    assert any(v.startswith("Positive control (") for v in result.verdicts)
    log = json.loads((out / "run.json").read_text())["stages"]
    assert any("positive_control" in k for k in log)
    again = run_study(config, out, cache=ResponseCache(tmp_path / "c.sqlite"))  # every stage reused
    assert again.verdicts == result.verdicts
    log = json.loads((out / "run.json").read_text())["stages"]
    assert all(v["reused"] for k, v in log.items() if "positive_control" in k)


def test_the_oracle_construction_reports_the_property_of_the_own_answer():
    from inward.experiments.positive_control import report_own
    from inward.records import ObjectRecord, ScoredRecord

    own = [ObjectRecord("animals_long", "val", "fox", None, "m2", "Duck cow", True, ())]
    row = ScoredRecord("animals_long", "first_character", "fox", "m1", "m2", "Goat", "G", True, "x", True, False)
    (h,) = report_own(own, [row], "m2")
    assert (h.answer, h.compliant, h.model) == ("D", True, "m2")
