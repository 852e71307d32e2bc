"""Stage identity (inward.store.stages): a rerun into the same run directory reuses exactly the
stages whose inputs are unchanged, and a moved run directory reuses everything."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from test_study import config  # tests/experiments is on sys.path (pytest prepend mode)
from test_study_experiments import config as full_config

from inward.experiments.study import run_study
from inward.store.cache import ResponseCache


def _stages(out) -> dict[str, dict]:
    return json.loads((out / "run.json").read_text())["stages"]


def _recomputed(out) -> set[str]:
    return {rel for rel, s in _stages(out).items() if not s["reused"]}


def test_each_kind_of_change_reruns_exactly_its_dependent_stages(tmp_path, tiny_pair, monkeypatch):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    run_study(config(tiny_pair), out, cache=cache)
    assert _recomputed(out) == set(_stages(out))  # a new directory computes everything
    run_study(config(tiny_pair), out, cache=cache)
    assert _recomputed(out) == set()  # unchanged: everything reused

    # a training setting: untrained M1's stages stay, everything trained reruns
    lr = config(tiny_pair).finetune.to_json() | {"learning_rate": 2e-3}
    run_study(config(tiny_pair, finetune=lr), out, cache=cache)
    again = _recomputed(out)
    assert not any(rel.startswith(("models/", "eval/untrained")) for rel in again)
    assert any(rel.startswith("seed0/models/") and rel.endswith("self_ft/train_result.json") for rel in again)
    assert any(rel.startswith("seed0/eval/self-") for rel in again)
    assert any(rel.startswith("seed0/eval/cross-") for rel in again)
    reason = next(
        s["reason"]
        for rel, s in _stages(out).items()
        if rel.startswith("seed0/eval/self-") and rel.endswith("objects.jsonl")
    )
    assert "model" in reason  # the self-trained adapter changed

    # the held-out sample size: evaluation objects rerun, train-split objects and training do not
    run_study(config(tiny_pair, finetune=lr, n_eval=4), out, cache=cache)
    again = _recomputed(out)
    assert "eval/untrained-" in " ".join(again) and not any(
        "train_result" in rel or "objects_train" in rel for rel in again
    )
    reason = next(
        s["reason"]
        for rel, s in _stages(out).items()
        if rel.startswith("eval/untrained") and rel.endswith("objects.jsonl")
    )
    assert reason == "changed: strings"

    # an environment fact (the CPU thread count changes bf16 results): every generation stage reruns
    import inward.store.stages as stages

    real = stages.environment_facts
    monkeypatch.setattr(stages, "environment_facts", lambda: {**real(), "threads": 99})
    run_study(config(tiny_pair, finetune=lr, n_eval=4), out, cache=cache)
    jsonl = {rel for rel in _stages(out) if rel.endswith(".jsonl")}
    assert jsonl and jsonl <= _recomputed(out)
    assert all(_stages(out)[rel]["reason"] == "changed: environment" for rel in jsonl)


def test_a_moved_run_directory_reuses_every_stage(tmp_path, tiny_pair, monkeypatch):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    cfg = full_config(tiny_pair, seeds=[0])  # with calibration, behaviour change (a merged model) and scaling
    run_study(cfg, out, cache=cache)
    before = {
        n: (out / n).read_bytes()
        for n in (
            "results.csv",
            "comparisons.csv",
            "behaviour_change.csv",
            "calibration.csv",
            "scaling.csv",
            "seed_summary.csv",
            "results_symmetric.csv",
            "results_by_task.csv",
        )
    }
    for name in ("results.csv", "results_symmetric.csv", "results_by_task.csv"):
        rows = list(csv.DictReader(io.StringIO(before[name].decode())))
        assert all(len(r["object_fingerprint"]) == 12 and len(r["meta_fingerprint"]) == 12 for r in rows), name
        # untrained, self-trained and cross-trained predictors: three models, three fingerprints
        assert len({r["meta_fingerprint"] for r in rows}) == 3, name
        assert {r["object_fingerprint"] for r in rows if r["label"] == "cross"} == {
            r["meta_fingerprint"] for r in rows if r["label"] == "self"
        }, name
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    import peft

    def no_training(*a, **k):
        raise AssertionError("retrained after a move")

    monkeypatch.setattr(peft, "get_peft_model", no_training)
    run_study(cfg, moved, cache=ResponseCache(tmp_path / "empty.sqlite"))  # no cached model calls either
    assert _recomputed(moved) == set(), {r: s for r, s in _stages(moved).items() if not s["reused"]}
    for name, data in before.items():
        assert (moved / name).read_bytes() == data, name


def test_a_stage_without_a_key_is_recomputed(tmp_path, tiny_pair):
    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    run_study(config(tiny_pair), out, cache=cache)
    key = next(out.glob("eval/untrained-*/hypotheticals.jsonl.key.json"))
    key.unlink()  # as after a crash between the records and their key, or an older inward
    run_study(config(tiny_pair), out, cache=cache)
    rel = str(key.relative_to(out))[: -len(".key.json")]
    assert _stages(out)[rel]["reused"] is False and "no stage key" in _stages(out)[rel]["reason"]
    assert key.is_file()


@pytest.mark.parametrize("model", ["hf//abs/dir", "hf/./rel", "gguf//x/y.gguf"])
def test_model_identity_names_local_models_by_their_weights(model):
    from inward.store.stages import model_identity

    assert model_identity({"model": model, "weights_sha256": "ab"})["model"] == "local:ab"
    assert model_identity({"model": "hf/Qwen/Qwen2.5-0.5B", "weights_sha256": "ab"})["model"] == "hf/Qwen/Qwen2.5-0.5B"
    assert model_identity({"model": "bundled/gemma-3-270m"})["model"] == "bundled/gemma-3-270m"


def test_the_cpu_bf16_kernels_are_part_of_every_key(monkeypatch):
    """bf16 numbers differ between a CPU with AMX and one without (measured), so a stage or an
    adapter made on one is not reused on the other."""
    import inward.store.stages as stages
    from inward.train import TrainExample, lora

    examples = [TrainExample([{"role": "user", "content": "q"}], "a")]
    before = (
        lora.run_key({"model": "m"}, lora.TrainConfig(), examples),
        stages.digest({"x": 1, **stages.environment_facts()}),
    )
    facts = stages.cpu_facts()
    assert facts["bf16"] in ("amx_bf16", "avx512_bf16", "none") and facts["model"]
    other = "none" if facts["bf16"] == "amx_bf16" else "amx_bf16"
    monkeypatch.setattr(stages, "cpu_facts", lambda: {**facts, "bf16": other})
    after = (
        lora.run_key({"model": "m"}, lora.TrainConfig(), examples),
        stages.digest({"x": 1, **stages.environment_facts()}),
    )
    assert before[0] != after[0] and before[1] != after[1]


def test_first_seed_only_experiments_run_once_and_extend_to_every_seed_by_reuse(tmp_path, tiny_pair):
    """every_seed: false runs calibration and behaviour change on the first training seed only (the
    default preset, to fit its hour); switching it on later reuses seed 0's stages and adds seed 1's."""
    import csv

    cache = ResponseCache(tmp_path / "c.sqlite")
    out = tmp_path / "run"
    cal = {"n_exact": 4, "n_sampled": 2, "samples": 3, "properties": ["second_character"]}
    base = full_config(tiny_pair, scaling=None).model_dump(mode="json", by_alias=True)
    bc = base["behaviour_change"]
    once = full_config(
        tiny_pair, scaling=None, calibration={**cal, "every_seed": False}, behaviour_change={**bc, "every_seed": False}
    )
    run_study(once, out, cache=cache)
    notes = lambda: json.loads((out / "run.json").read_text())["notes"]  # noqa: E731
    seeds = lambda name: {r["seed"] for r in csv.DictReader((out / name).open())}  # noqa: E731
    assert seeds("calibration.csv") == {"", "0"}  # untrained (no seed) and seed 0's trained setups
    assert seeds("behaviour_change.csv") == {"0"}
    assert seeds("results.csv") == {"", "0", "1"}  # the verdict still gets both seeds
    assert not any("seed1" in rel and ("calibration" in rel or "behaviour_change" in rel) for rel in _stages(out))
    assert any("ran on training seed 0 only (every_seed: false)" in n for n in notes())
    assert not any(n.startswith("Behaviour change over 2 seeds") for n in notes())

    every = full_config(tiny_pair, scaling=None, calibration=cal, behaviour_change=bc)
    run_study(every, out, cache=cache)
    assert seeds("calibration.csv") == {"", "0", "1"} and seeds("behaviour_change.csv") == {"0", "1"}
    recomputed = _recomputed(out)
    assert any("calibration" in rel for rel in recomputed) and any("behaviour_change" in rel for rel in recomputed)
    assert all("seed1" in rel for rel in recomputed), sorted(recomputed)  # seed 0's stages are reused
    assert any(n.startswith("Behaviour change over 2 seeds") for n in notes())
    assert not any("every_seed: false" in n for n in notes())
