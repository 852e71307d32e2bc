"""The probes section inside ``inward study``, on a pair of tiny random models."""

from __future__ import annotations

import csv
import json

from safetensors import safe_open

from inward.experiments.context import slug
from inward.experiments.study import run_study
from inward.experiments.study_config import parse_config
from inward.store.cache import ResponseCache


def config(tiny_pair, **over):
    base = {
        "name": "tiny-probes",
        "pairs": [{"self": tiny_pair[0], "cross": tiny_pair[1]}],
        "train_tasks": ["colors_long", "countries_long"],
        "held_out_tasks": ["animals_long"],
        "properties": ["first_character", "second_character"],
        "n_train_strings": 12,
        "n_train_per_pair": 10,
        "n_eval": 8,
        "finetune": {"rank": 4, "alpha": 8, "batch_size": 4, "dtype": "float32", "learning_rate": 1e-3},
        "seeds": [0, 1],
        "probes": {"depths": [0.0, 0.5, 1.0], "top_k": 3, "folds": 2, "n_cs": 2},
    }
    base.update(over)
    return parse_config(base)


def _csv(path):
    return list(csv.DictReader(path.open()))


def test_probes_section_writes_activations_probes_and_control_and_resumes(tmp_path, tiny_pair):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    run_study(config(tiny_pair), out, cache=cache)
    s1, s2 = slug(tiny_pair[0]), slug(tiny_pair[1])

    # activations: one file per source, layers by depth (the tiny model has 2 layers: 0, 1, 2)
    for stem, kind in (("self", "object"), ("self", "hypothetical"), (f"cross-{s2}", "hypothetical")):
        path = out / "seed1" / "probes" / s1 / f"{stem}-{kind}.safetensors"
        assert path.is_file() and path.with_name(path.name + ".key.json").is_file()
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata()
            assert meta["prompt"] == kind and json.loads(meta["layers"]) == [0, 1, 2]
            rows = json.loads(meta["rows"])
            assert f.get_tensor(f.keys()[0]).shape[0] == len(rows) > 0
            assert all(len(r) == (2 if kind == "object" else 3) for r in rows)

    rows = _csv(out / "probes.csv")
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {r["source"] for r in rows} == {"self/object", "self/hypothetical", "cross/hypothetical"}
    assert {r["layer"] for r in rows} == {"0", "1", "2"} and {r["depth"] for r in rows} == {"0.0", "0.5", "1.0"}
    micro = [r for r in rows if r["property"] == "micro_average"]
    assert len(micro) == 2 * 3 * 3  # seeds x sources x layers
    for r in micro:
        assert 0.0 <= float(r["accuracy"]) <= 1.0 and int(r["n_test"]) > 0 and int(r["n_train"]) > 0
    # every probe of a seed is scored on the same test rows as the finetuned predictors
    scored = [json.loads(x) for x in (out / "seed0" / "eval" / f"self-{s1}" / "scored.jsonl").open()]
    n_eval = sum(1 for r in scored if r["evaluable"])
    assert all(int(r["n_test"]) == n_eval for r in micro if r["seed"] == "0")
    self_correct = sum(bool(r["correct"]) for r in scored if r["evaluable"]) / n_eval
    assert all(abs(float(r["self_ft_accuracy"]) - self_correct) < 1e-9 for r in micro if r["seed"] == "0")
    # layer 0 is the embedding of the same last template token for every prompt: a constant probe
    # input, so its prediction is one class for all rows
    for r in rows:
        if r["layer"] == "0" and r["property"] != "micro_average":
            assert float(r["top_answer_share"]) == 1.0

    summary = _csv(out / "probe_summary.csv")
    assert len(summary) == 3 * 3 and all(r["seeds"] == "2" for r in summary)
    contrast = _csv(out / "probe_contrast.csv")
    assert [r["depth"] for r in contrast] == ["0.0", "0.5", "1.0"] and all(r["seeds"] == "2" for r in contrast)
    sim = _csv(out / "self_simulation.csv")
    assert {r["seed"] for r in sim} == {"0", "1"} and "micro_average" in {r["property"] for r in sim}
    for r in sim:
        assert int(r["changed"]) <= int(r["n"])
        if int(r["changed"]) < int(r["n"]):  # accuracy where finetuning left the behaviour alone
            assert 0.0 <= float(r["unchanged_agree_now"]) <= 1.0
    report = (out / "report.html").read_text()
    assert "White-box probes" in report and "Self-simulation split" in report
    assert (out / "figures" / f"probes_{s1}_{s2}.png").is_file()

    # a rerun reuses every activation file and probe table
    before = (out / "probes.csv").read_bytes()
    run_study(config(tiny_pair), out, cache=cache)
    stages = json.loads((out / "run.json").read_text())["stages"]
    probe_stages = {k: v for k, v in stages.items() if "/probes/" in k or k.startswith("seed0/probes")}
    assert probe_stages and all(v["reused"] for v in probe_stages.values()), probe_stages
    assert (out / "probes.csv").read_bytes() == before
    # a changed probe setting refits the probes but reuses the activations
    run_study(
        config(tiny_pair, probes={"depths": [0.0, 0.5, 1.0], "top_k": 2, "folds": 2, "n_cs": 2}), out, cache=cache
    )
    stages = json.loads((out / "run.json").read_text())["stages"]
    assert all(v["reused"] for k, v in stages.items() if k.endswith(".safetensors"))
    assert not any(v["reused"] for k, v in stages.items() if "/probes/" in k and k.endswith(".jsonl"))
