"""The smoke preset end to end on the real bundled models (Qwen 0.5B and Gemma 270M), as CI runs it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.real_model
def test_smoke_preset_end_to_end(tmp_path):
    out = tmp_path / "smoke"
    env = {**os.environ, "INWARD_PROGRESS": "0"}
    # Uses the machine's cache: on CI's fresh machine every stage really runs; locally, cached
    # generations are reused but the finetunes run again (a new --out folder).
    res = subprocess.run(
        [sys.executable, "-m", "inward.cli.main", "study", "--preset", "smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "self vs cross (micro average)" in res.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["label"] for r in rows} == {"untrained", "self", "cross"}
    assert all(int(r["count"]) > 0 for r in rows)
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete"
    main = [t for t in manifest["training"] if "purpose" not in t]
    assert [(t["seed"], t["model"]) for t in main] == [
        (seed, m) for seed in (0, 1) for m in ("bundled/qwen2.5-coder-0.5b-instruct", "bundled/gemma-3-270m")
    ]
    assert (
        sorted(t["purpose"] for t in manifest["training"] if "purpose" in t)
        == ["behaviour change"] * 2 + ["data scaling"] * 4
    )
    # equal evidence: the cross-predictor of each seed saw its self-predictor's items but the dropped ones
    for seed in (0, 1):
        self_n, cross_n = (t["n_examples"] for t in main if t["seed"] == seed)
        ev = [r for r in csv.DictReader((out / "evidence.csv").open()) if r["seed"] == str(seed)]
        assert sum(int(r["self_examples"]) for r in ev) == self_n
        assert sum(int(r["cross_examples"]) for r in ev) == cross_n
    assert "verdict over training seeds" in res.stdout and "over 2 seeds" in res.stdout
    gaps = list(csv.DictReader((out / "seed_comparisons.csv").open()))
    assert any(r["response_property"] == "micro_average" and r["seeds"] == "2" for r in gaps)
    html = (out / "report.html").read_text()
    assert "Self-prediction" in html and "<script" not in html
    assert (out / "comparisons.csv").is_file()

    # Experiment 1b: MAD per setup, both methods, on the real models
    cal = list(csv.DictReader((out / "calibration.csv").open()))
    assert {(r["setup"], r["method"]) for r in cal} == {
        (s, m) for s in ("untrained", "self", "cross") for m in ("exact", "sampled")
    }
    assert len(cal) == 2 * 5  # untrained once, self and cross per seed
    assert all(r["mad"] != "" and 0 <= float(r["mad"]) <= 100 for r in cal)
    # the first-token approximation fixed a value for part of the mass (~0.6 measured for Qwen)
    assert all(0 < float(r["mean_object_mass"]) <= 1 for r in cal)
    assert (out / "calibration_agreement.csv").is_file()
    # Experiment 2: the table exists; its rows (if any behaviour shifted) are well formed
    bc = list(csv.DictReader((out / "behaviour_change.csv").open()))
    for r in bc:
        assert 0 <= float(r["predicts_old_accuracy"]) + float(r["predicts_new_accuracy"]) <= 1.0
    # data scaling: two slices and the main cross-predictor, plus the self-prediction line
    sc = [r for r in csv.DictReader((out / "scaling.csv").open()) if r["seed"] == "0"]
    assert [int(r["n_train"]) for r in sc if r["label"] == "cross"][:2] == [4, 10]
    assert len([r for r in sc if r["label"] == "cross"]) == 3 and any(r["label"] == "self" for r in sc)
    for heading in (
        "Calibration (Experiment 1b)",
        "Behaviour change (Experiment 2)",
        "Cross-prediction data scaling",
        "White-box probes",
    ):
        assert heading in html
    # probes: activations of both real models (Qwen: 24 layers, Gemma 3: 18) at depths 0.5 and 1
    probes = [r for r in csv.DictReader((out / "probes.csv").open()) if r["property"] == "micro_average"]
    layers = {(r["source"], r["layer"]) for r in probes}
    assert layers == {(s, str(n)) for s in ("self/object", "self/hypothetical") for n in (12, 24)} | {
        ("cross/hypothetical", "9"),
        ("cross/hypothetical", "18"),
    }
    assert all(0 <= float(r["accuracy"]) <= 1 and int(r["n_test"]) > 0 for r in probes)
    assert {r["seed"] for r in probes} == {"0", "1"}
