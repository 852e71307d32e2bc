"""Calibration, behaviour change and data scaling inside ``inward study``, on tiny random models."""

from __future__ import annotations

import csv
import json

import pytest

from inward.errors import InwardError
from inward.experiments.context import slug
from inward.experiments.study import run_study
from inward.experiments.study_config import parse_config, preset
from inward.store.cache import ResponseCache


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
        "calibration": {"n_exact": 4, "n_sampled": 2, "samples": 3, "properties": ["second_character"]},
        # the tiny models' hypotheticals are gibberish, so keep non-compliant rows (scored wrong)
        # to exercise the table; the paper's dropping is tested in tests/analysis
        "behaviour_change": {
            "n_examples": 6,
            "entropy_adjust": True,
            "exclude_noncompliant": False,
            "finetune": {
                "rank": 4,
                "alpha": 8,
                "batch_size": 4,
                "dtype": "float32",
                "learning_rate": 5e-2,
                "epochs": 3,
            },
        },
        "scaling": {"sizes": [2, 5]},
        "seeds": [0, 1],
    }
    base.update(over)
    return parse_config(base)


def test_study_with_all_experiments_runs_and_resumes(tmp_path, tiny_pair, monkeypatch):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    result = run_study(config(tiny_pair), out, cache=cache)
    s1 = slug(tiny_pair[0])

    cal = list(csv.DictReader((out / "calibration.csv").open()))
    assert {(r["setup"], r["method"]) for r in cal} == {
        (s, m) for s in ("untrained", "self", "cross") for m in ("exact", "sampled")
    }
    # untrained once (no training seed), self and cross once per training seed
    assert sorted((r["seed"], r["setup"]) for r in cal if r["method"] == "exact") == [
        ("", "untrained"),
        ("0", "cross"),
        ("0", "self"),
        ("1", "cross"),
        ("1", "self"),
    ]
    assert all(r["response_property"] == "second_character" for r in cal)
    exact = [r for r in cal if r["method"] == "exact"]
    assert all(int(r["prompts"]) == 4 for r in exact)
    for r in cal:  # a MAD is a mean of |x - y| in percentage points
        assert r["mad"] == "" or 0.0 <= float(r["mad"]) <= 100.0
    assert any(r["mad"] != "" for r in exact), "no exact-method MAD was computed at all"
    agree = list(csv.DictReader((out / "calibration_agreement.csv").open()))
    assert {r["setup"] for r in agree} == {"untrained", "self", "cross"} and len(agree) == 5
    assert all(int(r["prompts"]) == 2 and 0.0 <= float(r["object_tv"]) <= 1.0 for r in agree)
    records = [json.loads(x) for x in (out / "calibration" / "seed0" / f"self-{s1}" / "records.jsonl").open()]
    with_dist = [r for r in records if r["object_dist"]]
    assert with_dist, "every object distribution is empty"
    for r in with_dist:
        assert abs(sum(r["object_dist"].values()) - 1.0) < 1e-6

    bc = list(csv.DictReader((out / "behaviour_change.csv").open()))
    assert bc, "the tiny shift finetune should change some behaviour"
    assert {r["adjustment"] for r in bc} <= {"none", "entropy"}
    micro = [r for r in bc if r["response_property"] == "micro_average" and r["adjustment"] == "none"]
    assert [r["seed"] for r in micro] == ["0", "1"] and all(int(r["count"]) > 0 for r in micro)
    micro = micro[:1]
    # every scored item is a shifted one: old and new object values differ
    old = [json.loads(x) for x in (out / "seed0" / "behaviour_change" / s1 / "scored_old.jsonl").open()]
    new = [json.loads(x) for x in (out / "seed0" / "behaviour_change" / s1 / "scored_new.jsonl").open()]
    assert [(o["task"], o["property"], o["string"]) for o in old] == [
        (n["task"], n["property"], n["string"]) for n in new
    ]
    assert all(o["object_clean"] != n["object_clean"] for o, n in zip(old, new))
    assert all(not (o["correct"] and n["correct"]) for o, n in zip(old, new))
    assert float(micro[0]["predicts_old_accuracy"]) == pytest.approx(
        sum(bool(o["correct"]) for o in old if o["evaluable"]) / sum(o["evaluable"] for o in old)
    )

    sc = list(csv.DictReader((out / "scaling.csv").open()))
    assert {r["seed"] for r in sc} == {"0", "1"}
    sc = [r for r in sc if r["seed"] == "0"]
    cross = [r for r in sc if r["label"] == "cross"]
    main = json.loads(
        (out / "seed0" / "models" / s1 / "cross_ft" / slug(tiny_pair[1]) / "train_result.json").read_text()
    )
    assert [int(r["n_train"]) for r in cross] == [2, 5, main["n_examples"]]
    assert len([r for r in sc if r["label"] == "self"]) == 1
    first = [r for r in result.scaling if r["seed"] == 0]
    assert [(str(r["n_train"]), r["label"]) for r in first] == [(r["n_train"], r["label"]) for r in sc]
    assert [float(r["accuracy"]) for r in first] == pytest.approx([float(r["accuracy"]) for r in sc])
    # scaling slices are prefixes of the main cross-predictor's data
    main_data = (
        (out / "seed0" / "models" / s1 / "cross_ft" / slug(tiny_pair[1]) / "train.jsonl").read_text().splitlines()
    )
    for n in (2, 5):
        part = (out / "seed0" / "models" / s1 / "scaling" / slug(tiny_pair[1]) / f"n{n}" / "train.jsonl").read_text()
        assert part.splitlines() == main_data[:n]

    html = (out / "report.html").read_text()
    for heading in ("Calibration (Experiment 1b)", "Behaviour change (Experiment 2)", "Cross-prediction data scaling"):
        assert heading in html
    figs = {p.name for p in (out / "figures").glob("*.png")}
    assert f"behaviour_change_{s1}.png" in figs and f"calibration_{s1}_second_character.png" in figs
    assert any(f.startswith("scaling_") for f in figs)
    notes = json.loads((out / "run.json").read_text())["notes"]
    assert any("total-variation" in n for n in notes) and any("Behaviour change" in n for n in notes)
    assert any(n.startswith("Behaviour change over 2 seeds") for n in notes)
    assert any(n.startswith("Calibration MAD over training seeds") for n in notes)
    # the shift finetunes of the two seeds saw different draws of the shift data
    shift = [(out / f"seed{k}" / "behaviour_change" / s1 / "shift_ft" / "train.jsonl").read_text() for k in (0, 1)]
    assert shift[0] != shift[1]
    # the main results do not depend on the new sections
    assert "scaling" not in (out / "results_symmetric.csv").read_text()

    # resume: no training, no model calls, same tables
    import peft

    def no_training(*a, **k):
        raise AssertionError("retrained")

    monkeypatch.setattr(peft, "get_peft_model", no_training)
    before = {n: (out / n).read_bytes() for n in ("calibration.csv", "behaviour_change.csv", "scaling.csv")}
    run_study(config(tiny_pair), out, cache=cache)
    for n, data in before.items():
        assert (out / n).read_bytes() == data, n


def test_sections_off_by_default_and_errors_name_the_key(tiny_pair, tmp_path):
    c = config(tiny_pair, calibration=None, behaviour_change=None, scaling=None)
    assert c.calibration is None and c.behaviour_change is None and c.scaling is None
    with pytest.raises(InwardError, match="calibration.n_exakt: unknown key.*Valid keys of calibration"):
        config(tiny_pair, calibration={"n_exakt": 3})
    with pytest.raises(InwardError, match="scaling.sizes"):
        config(tiny_pair, scaling={"sizes": [5, 5]})
    with pytest.raises(InwardError, match="both 0"):
        config(tiny_pair, calibration={"n_exact": 0, "n_sampled": 0})
    with pytest.raises(InwardError, match="calibration.properties: 'first_character'"):
        run_study(
            config(tiny_pair, calibration={"properties": ["first_character"]}),
            tmp_path / "r",
            cache=ResponseCache(tmp_path / "c"),
        )


def test_presets_enable_the_experiments():
    for name in ("full", "smoke", "paper"):
        p = preset(name)
        assert p.calibration is not None and p.behaviour_change is not None
    # data scaling: in smoke (so CI runs it) and paper; the default's hour goes to seeds instead
    assert preset("smoke").scaling is not None and preset("default").scaling is None
    assert len(preset("paper").scaling.sizes) >= 3  # + the main cross-predictor: >= 4 points
