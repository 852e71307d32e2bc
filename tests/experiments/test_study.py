"""inward study end to end on tiny random models (seconds): DAG, outputs, resume, config errors."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from inward.errors import InwardError
from inward.experiments.context import Study, slug
from inward.experiments.study import run_study
from inward.experiments.study_config import load_config, parse_config, preset
from inward.store.cache import ResponseCache
from inward.store.rundir import RunDir


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
    }
    base.update(over)
    return parse_config(base)


def test_study_runs_and_resumes(tmp_path, tiny_pair, monkeypatch):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    result = run_study(config(tiny_pair), out, cache=cache)
    labels = {r["label"] for r in result.results}
    assert labels == {"untrained", "self", "cross"}
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["label"] for r in rows} == labels
    assert (out / "comparisons.csv").read_text().startswith("seed,response_property,self_accuracy")
    symmetric = list(csv.DictReader((out / "results_symmetric.csv").open()))
    assert {r["label"] for r in symmetric} == labels  # the other normalisation, side by side
    assert [r["count"] for r in symmetric] == [r["count"] for r in rows]
    html = (out / "report.html").read_text()
    assert "untrained" in html.lower() and "<script" not in html
    assert list((out / "figures").glob("*.png"))
    s1 = slug(tiny_pair[0])
    upload = [json.loads(line) for line in (out / "seed0" / "models" / s1 / "self_ft" / "train.jsonl").open()]
    assert upload and all(set(line) == {"messages"} for line in upload)
    train = [json.loads(line) for line in (out / "seed0" / "models" / s1 / "self_ft" / "train_examples.jsonl").open()]
    assert [line["messages"] for line in train] == [line["messages"] for line in upload]
    assert all(line["messages"][-1]["role"] == "assistant" for line in train)
    # targets are the properties of the model's own train-split responses
    objects = {
        json.loads(line)["string"]: json.loads(line) for line in (out / "models" / s1 / "objects_train.jsonl").open()
    }
    from inward.properties import extract

    for line in train:
        meta = line["meta"]
        obj = objects[meta["string"]]
        assert obj["split"] == "train"
        assert extract(meta["property"], obj["response"], target=obj["target"]) == line["messages"][-1]["content"]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["training"]) == 2
    assert len(manifest["models"]) == 3  # M1, M1ft, M2cross
    for fp in manifest["models"].values():  # dtype auto, resolved once and recorded with its reason
        choice = fp["precision_choice"]
        assert choice["requested"] == "auto" and choice["dtype"] == fp["precision"] == "float32", choice

    # resume after everything: no training, no model calls, same tables
    import peft

    def no_training(*a, **k):
        raise AssertionError("retrained")

    original = peft.get_peft_model
    monkeypatch.setattr(peft, "get_peft_model", no_training)  # the trainer imports it at call time
    before = (out / "results.csv").read_bytes()
    again = run_study(config(tiny_pair), out, cache=cache)
    assert (out / "results.csv").read_bytes() == before
    assert again.results == result.results
    assert json.loads((out / "run.json").read_text())["models"] == manifest["models"]

    # a fresh run directory gives byte-identical tables (model names do not embed the path)
    monkeypatch.setattr(peft, "get_peft_model", original)
    run_study(config(tiny_pair), tmp_path / "elsewhere", cache=cache)
    for name in ("results.csv", "results_by_task.csv", "comparisons.csv"):
        assert (tmp_path / "elsewhere" / name).read_bytes() == (out / name).read_bytes(), name


def test_interrupt_after_finetune_does_not_retrain(tmp_path, tiny_pair, monkeypatch):
    import inward.experiments.study as study_mod

    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    original = study_mod.Study.evaluate
    calls = {"n": 0}

    def failing_evaluate(self, setup, *a, **k):
        if setup.startswith("self-"):
            raise KeyboardInterrupt  # killed right after the self-prediction finetune
        return original(self, setup, *a, **k)

    monkeypatch.setattr(study_mod.Study, "evaluate", failing_evaluate)
    with pytest.raises(KeyboardInterrupt):
        run_study(config(tiny_pair), out, cache=cache)
    assert (out / "seed0" / "models" / slug(tiny_pair[0]) / "self_ft" / "train_result.json").is_file()
    monkeypatch.setattr(study_mod.Study, "evaluate", original)

    import peft

    real = peft.get_peft_model

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(peft, "get_peft_model", counting)
    run_study(config(tiny_pair), out, cache=cache)
    assert calls["n"] == 1  # only the cross-predictor trained; M1's finetune was reused


def test_config_errors_name_the_key(tmp_path, tiny_pair):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\npairs: [{self: a, cross: b}]\ntrain_tasks: [numbers]\n"
        "held_out_tasks: [animals_long]\nproperties: [first_character]\nn_evl: 3\n"
    )
    with pytest.raises(InwardError, match="n_evl: unknown key"):
        load_config(bad)
    bad.write_text(
        "name: x\npairs: [{self: a, cross: b}]\ntrain_tasks: [numbers]\n"
        "held_out_tasks: [animals_long]\nproperties: [first_character]\nn_eval: many\n"
    )
    with pytest.raises(InwardError, match="n_eval"):
        load_config(bad)
    with pytest.raises(InwardError, match="Did you mean 'smoke'"):
        preset("smok")
    with pytest.raises(InwardError, match="applies to task"):
        run_study(
            config(tiny_pair, properties=["is_even_direct"], train_tasks=["numbers"]),
            tmp_path / "r",
            cache=ResponseCache(tmp_path / "c"),
        )


def test_presets_are_valid():
    d = preset("default")
    assert d.pairs[0].self_model == "bundled/qwen2.5-coder-0.5b-instruct"
    assert d.pairs[0].cross_model == "bundled/gemma-3-270m"
    assert set(d.train_tasks) == {"colors_long", "countries_long", "numbers"}
    assert set(d.held_out_tasks) == {"animals_long", "english_words_long"}
    assert preset("smoke").n_eval < d.n_eval
    assert len(d.seeds) >= 3 and len(preset("smoke").seeds) == 2  # the verdict is over seeds
    assert "wikipedia_long" in preset("paper").train_tasks
    limits = preset("limits")
    assert {"writing_stories_pick_name", "are_you_sure"} <= set(limits.held_out_tasks)
    assert {"sentiment", "changes_answer_when_challenged"} <= set(limits.properties)
    from inward.experiments.context import task_properties

    task_properties(limits, limits.held_out_tasks)  # every held-out task gets a property
    # the full preset is the default with calibration and behaviour change, on three seeds
    full = preset("full")
    assert d.calibration is None and d.behaviour_change is None and len(d.seeds) == 8
    assert full.calibration is not None and full.behaviour_change is not None
    extras = {"calibration": full.calibration, "behaviour_change": full.behaviour_change}
    assert d.model_copy(update={"name": "full", "seeds": [0, 1, 2], **extras}) == full
    assert d.verdict.metric == "kappa" and d.verdict.secondary == ["micro_average"]
    assert full.behaviour_change.shift_temperature == 1.0
    # the probes preset is the full one plus probes: its other stages reuse a full run's
    with_probes = preset("probes")
    assert full.probes is None and with_probes.probes is not None
    assert full.model_copy(update={"name": "probes", "probes": with_probes.probes}) == with_probes
    sym = preset("symmetric")  # both directions of the fair pair and a Gemma row, the default's data and settings
    small, large = "bundled/qwen2.5-coder-0.5b-instruct", "bundled/qwen2.5-coder-1.5b-instruct"
    gemma = d.pairs[0].cross_model
    assert [(p.self_model, p.cross_model) for p in sym.pairs] == [
        (small, large),
        (small, gemma),
        (large, small),
        (large, gemma),
    ]
    assert sym.chat_format_examples == d.chat_format_examples  # Gemma prompted as in the default study
    assert (sym.n_train_per_pair, sym.n_eval, sym.seeds, sym.finetune, sym.verdict) == (
        d.n_train_per_pair,
        d.n_eval,
        full.seeds,
        d.finetune,
        d.verdict,
    )


def test_base_cross_model_gets_its_chat_format_by_measurement(tmp_path, tiny_pair, tmp_path_factory):
    """A template-less cross model is prompted in the fallback with the lowest untrained loss on
    held-out train-task examples; the table is written and the choice is in its fingerprint."""
    from inward.models.tiny import make_tiny_model

    base = f"hf/{make_tiny_model(tmp_path_factory.mktemp('tiny_base'), seed=2, chat_template=False)}"
    cfg = config((tiny_pair[0], base), chat_format_examples=6)
    run_study(cfg, tmp_path / "run", cache=ResponseCache(tmp_path / "c.sqlite"))
    rows = list(csv.DictReader((tmp_path / "run" / "chat_formats.csv").open()))
    assert [r["chat_format"] for r in rows] and {r["chat_format"] for r in rows} == {"plain", "qa"}
    losses = [float(r["label_loss"]) for r in rows]
    assert losses == sorted(losses) and [r["chosen"] for r in rows] == ["True", "False"]
    assert len({r["n_examples"] for r in rows}) == 1 and 1 <= int(rows[0]["n_examples"]) <= 6
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    cross = [fp for name, fp in manifest["models"].items() if name.startswith(base + "+lora:")]
    assert cross and cross[0]["chat_template"]["source"] == f"fallback:{rows[0]['chat_format']}"
    # the measurement used train-task strings that no model was trained on
    s1, s2 = slug(tiny_pair[0]), slug(base)
    held = {
        json.loads(line)["string"]
        for line in (tmp_path / "run" / "seed0" / "models" / s1 / "cross_ft" / s2 / "chat_format_objects.jsonl").open()
    }
    trained = {
        json.loads(line)["meta"]["string"]
        for line in (tmp_path / "run" / "seed0" / "models" / s1 / "cross_ft" / s2 / "train_examples.jsonl").open()
    }
    assert held - trained and trained <= held  # the first n strings are shared, the rest are new


def test_explicit_chat_format_skips_the_measurement(tmp_path, tiny_pair, tmp_path_factory):
    from inward.models.tiny import make_tiny_model

    base = f"hf/{make_tiny_model(tmp_path_factory.mktemp('tiny_base2'), seed=2, chat_template=False)}"
    cfg = config((tiny_pair[0], base), model_args={"chat_format": "qa"})
    run_study(cfg, tmp_path / "run", cache=ResponseCache(tmp_path / "c.sqlite"))
    assert not (tmp_path / "run" / "chat_formats.csv").exists()
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {fp["chat_template"]["source"] for name, fp in manifest["models"].items() if name.startswith(base)} == {
        "fallback:qa"
    }


def test_stage_seconds_accumulate_across_resumed_runs(tmp_path, tiny_pair):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    run_study(config(tiny_pair), out, cache=cache)
    first = json.loads((out / "run.json").read_text())["stage_seconds"]
    assert first and all(v > 0 for v in first.values())
    run_study(config(tiny_pair), out, cache=cache)  # everything reused: each stage adds a little
    second = json.loads((out / "run.json").read_text())
    assert set(second["stage_seconds"]) == set(first)
    for name, seconds in first.items():
        assert second["stage_seconds"][name] == pytest.approx(seconds + second["stage_seconds_this_run"][name])
    assert sum(second["stage_seconds_this_run"].values()) < sum(first.values())  # the rerun did no real work
    if sys.platform.startswith("linux"):  # each stage's peak memory: the rerun keeps the first session's
        peaks = json.loads((out / "run.json").read_text())["stage_peak_rss_mb"]
        assert set(peaks) == set(first) and all(peaks[k] > 0 for k in peaks)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak windows use /proc/self/clear_refs")
def test_stage_peaks_reset_per_stage_and_nest(tmp_path, tiny_pair, touched):
    with RunDir(tmp_path / "run") as run:
        ctx = Study(config(tiny_pair), run, ResponseCache(tmp_path / "c.sqlite"))
        with ctx.stage("outer"):
            with ctx.stage("inner"):
                touched(256).close()  # 256 MiB resident, then returned to the system
        with ctx.stage("after"):
            pass
    p = ctx.stage_peaks
    assert p["inner"] - p["after"] >= 200  # the window restarted at "after": the 256 MiB are not in it
    assert p["outer"] >= p["inner"]  # the inner stage's peak counts towards the outer one


def test_seeds_retrain_every_model_on_equal_evidence_and_give_a_verdict(tmp_path, tiny_pair):
    out = tmp_path / "run"
    result = run_study(
        config(tiny_pair, seeds=[3, 7], n_train_strings=10), out, cache=ResponseCache(tmp_path / "c.sqlite")
    )
    s1, s2 = slug(tiny_pair[0]), slug(tiny_pair[1])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {(r["label"], r["seed"]) for r in rows} == {
        ("untrained", ""),
        ("self", "3"),
        ("self", "7"),
        ("cross", "3"),
        ("cross", "7"),
    }
    # every training seed: its own finetune seed and its own draw from the same string pool
    data = {}
    for seed in (3, 7):
        ft = out / f"seed{seed}" / "models" / s1 / "self_ft"
        assert json.loads((ft / "train_result.json").read_text())["config"]["seed"] == seed
        data[seed] = [json.loads(x)["meta"] for x in (ft / "train_examples.jsonl").open()]
        # equal evidence: the cross-predictor trains on the self-predictor's items, in its order,
        # except the items evidence.csv counts as dropped
        cross = [json.loads(x)["meta"] for x in (ft.parent / "cross_ft" / s2 / "train_examples.jsonl").open()]
        keys = [(m["task"], m["property"], m["string"]) for m in data[seed]]
        cross_keys = [(m["task"], m["property"], m["string"]) for m in cross]
        assert cross_keys == [k for k in keys if k in set(cross_keys)]
        dropped = [json.loads(x) for x in (ft.parent / "cross_ft" / s2 / "dropped_items.jsonl").open()]
        assert len(dropped) + len(cross_keys) == len(keys)
        evidence = [r for r in csv.DictReader((out / "evidence.csv").open()) if r["seed"] == str(seed)]
        assert sum(int(r["self_examples"]) for r in evidence) == len(keys)
        assert sum(int(r["cross_examples"]) for r in evidence) == len(cross_keys)
    assert data[3] != data[7]
    # the held-out items are the same for every seed
    evals = [
        {
            (json.loads(x)["task"], json.loads(x)["string"])
            for x in (out / f"seed{seed}" / "eval" / f"self-{s1}" / "objects.jsonl").open()
        }
        for seed in (3, 7)
    ]
    assert evals[0] == evals[1]

    summary = list(csv.DictReader((out / "seed_summary.csv").open()))
    micro = {r["label"]: r for r in summary if r["response_property"] == "micro_average"}
    assert micro["untrained"]["seeds"] == "1" and micro["self"]["seeds"] == micro["cross"]["seeds"] == "2"
    per_seed = [
        float(r["accuracy"]) for r in rows if r["label"] == "self" and r["response_property"] == "micro_average"
    ]
    assert float(micro["self"]["accuracy_mean"]) == pytest.approx(sum(per_seed) / 2)
    gaps = {r["response_property"]: r for r in csv.DictReader((out / "seed_comparisons.csv").open())}
    comps = [r for r in csv.DictReader((out / "comparisons.csv").open()) if r["response_property"] == "micro_average"]
    assert gaps["micro_average"]["seeds"] == "2"
    assert gaps["micro_average"]["items_per_seed"] == " ".join(r["paired_count"] for r in comps)
    assert float(gaps["micro_average"]["gap_mean"]) == pytest.approx(sum(float(r["difference"]) for r in comps) / 2)
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["seeds"] == [3, 7] and manifest["verdicts"] == result.verdicts
    assert "over 2 seeds" in result.verdicts[0] and manifest["notes"][0] == result.verdicts[0]
    assert any(k.startswith("seed 7: self-prediction finetune") for k in manifest["stage_seconds"])
    html = (out / "report.html").read_text()
    assert "Verdict over training seeds" in html and "secondary: bootstrap 95%" in html
    assert 'alt="verdict"' in html  # the per-seed gaps, the interval and the equivalence band
    # the self-simulation split runs with every study (no probes section here), next to the verdict
    sim = list(csv.DictReader((out / "self_simulation.csv").open()))
    assert {r["seed"] for r in sim} == {"3", "7"} and "Self-simulation split" in html
    (detail,) = manifest["verdict"]
    assert detail["reading"] in ("self advantage", "no self advantage", "inconclusive") and len(detail["gaps"]) == 2
    assert detail["sentence"] in result.verdicts[0] and detail["margin"] == 0.05
    # the declared secondary (kappa, the default) follows with its own interval, not a reading
    kappas = {(r["label"], r["seed"]): float(r["kappa"]) for r in rows if r["response_property"] == "micro_average"}
    k_gaps = [kappas[("self", s)] - kappas[("cross", s)] for s in ("3", "7")]
    (secondary,) = [v for v in result.verdicts if v.startswith("Secondary (declared")]
    assert f"Cohen's kappa: {100 * sum(k_gaps) / 2:+.1f} points" in secondary and "over 2 seeds" in secondary

    # kappa as the headline: the same stages; the verdict is on the kappa gaps, accuracy secondary
    kappa_first = config(
        tiny_pair, seeds=[3, 7], n_train_strings=10, verdict={"metric": "kappa", "secondary": ["micro_average"]}
    )
    again = run_study(kappa_first, out, cache=ResponseCache(tmp_path / "c.sqlite"))
    (detail,) = json.loads((out / "run.json").read_text())["verdict"]
    assert detail["gaps"] == pytest.approx(k_gaps)
    assert "cross-trained (Cohen's kappa, " in again.verdicts[0]
    assert any(v.startswith("Secondary (declared") and "micro-average accuracy" in v for v in again.verdicts)


def test_one_seed_says_it_gives_no_verdict(tmp_path, tiny_pair):
    result = run_study(config(tiny_pair), tmp_path / "run", cache=ResponseCache(tmp_path / "c.sqlite"))
    assert result.verdicts and "One seed: self − cross" in result.verdicts[0]
    with pytest.raises(InwardError, match="seeds"):
        config(tiny_pair, seeds=[1, 1])
