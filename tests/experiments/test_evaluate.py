"""inward evaluate end to end on the mock backend: records, scoring, cache and resume."""

from __future__ import annotations

import csv
import json

import pytest

from inward.errors import InwardError
from inward.experiments.evaluate import EvaluateSpec, run_evaluate
from inward.models import resolve
from inward.report.columns import RESULTS
from inward.store.cache import CachedModel, ResponseCache


class Interrupt(Exception):
    pass


class FailingAfter:
    """Wraps a backend and raises after ``calls`` generate calls (a kill mid-run)."""

    def __init__(self, backend, calls: int):
        self.backend, self.calls = backend, calls
        self.model_string = backend.model_string

    def fingerprint(self):
        return self.backend.fingerprint()

    @property
    def stats(self):
        return self.backend.stats

    def generate(self, prompts, config):
        if self.calls == 0:
            raise Interrupt
        self.calls -= 1
        return self.backend.generate(prompts, config)

    def answer_distribution(self, prompts, config):
        return self.backend.answer_distribution(prompts, config)


SPEC = dict(
    model="mock/m1",
    tasks=["animals_long", "numbers"],
    properties=[],
    n=40,
)


def test_records_and_results(tmp_path):
    backend = resolve("mock/m1")
    res = run_evaluate(
        EvaluateSpec(**SPEC), tmp_path / "run", cache=ResponseCache(tmp_path / "c"), backends={"mock/m1": backend}
    )
    out = tmp_path / "run"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert tuple(rows[0]) == RESULTS.csv()
    assert rows[-1]["response_property"] == "micro_average"
    props = {r["response_property"] for r in rows}
    assert {"first_character", "first_word", "is_even_direct", "micro_average"} <= props
    assert all(r["label"] == "self" and r["object_model"] == "mock/m1" for r in rows)
    micro = rows[-1]
    assert int(micro["count"]) == sum(int(r["count"]) for r in rows[:-1])
    # the accuracy is what the scored records say
    scored = [json.loads(line) for line in (out / "scored.jsonl").open()]
    evaluable = [s for s in scored if s["evaluable"]]
    assert len(evaluable) == int(micro["count"])
    assert float(micro["accuracy"]) == pytest.approx(sum(bool(s["correct"]) for s in evaluable) / len(evaluable))
    # scoring: a correct row is a compliant answer equal (after cleaning) to the object value
    for s in evaluable:
        assert s["correct"] == (s["meta_compliant"] and s["answer_clean"] == s["object_clean"])
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["models"]["mock/m1"]["backend"] == "mock"
    assert res.model_calls["object_prompts_from_model"] == 80


def test_rerun_makes_no_model_calls_and_gives_identical_files(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    backend = resolve("mock/m1")
    run_evaluate(EvaluateSpec(**SPEC), tmp_path / "a", cache=cache, backends={"mock/m1": backend})
    calls = backend.stats.prompts_generated
    assert calls > 80  # objects plus hypotheticals
    run_evaluate(EvaluateSpec(**SPEC), tmp_path / "b", cache=cache, backends={"mock/m1": backend})
    assert backend.stats.prompts_generated == calls
    for name in ("results.csv", "results_by_task.csv", "scored.jsonl", "objects.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("fail_after", [0, 1, 3, 5])
def test_interrupted_run_resumes_without_repeating_calls(tmp_path, fail_after):
    reference = resolve("mock/m1")
    run_evaluate(
        EvaluateSpec(**SPEC), tmp_path / "ref", cache=ResponseCache(tmp_path / "c1"), backends={"mock/m1": reference}
    )
    cache = ResponseCache(tmp_path / "c2")
    inner = resolve("mock/m1")
    with pytest.raises(Interrupt):
        run_evaluate(
            EvaluateSpec(**SPEC), tmp_path / "run", cache=cache, backends={"mock/m1": FailingAfter(inner, fail_after)}
        )
    run_evaluate(EvaluateSpec(**SPEC), tmp_path / "run", cache=cache, backends={"mock/m1": inner})
    assert inner.stats.prompts_generated == reference.stats.prompts_generated  # nothing twice
    for name in ("results.csv", "scored.jsonl"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_cross_predictor_is_labelled_and_counted(tmp_path):
    res = run_evaluate(EvaluateSpec(**SPEC, predictor="mock/m2"), tmp_path / "run", cache=ResponseCache(tmp_path / "c"))
    assert {r["label"] for r in res.results} == {"cross"}
    assert {r["meta_model"] for r in res.results} == {"mock/m2"}
    assert res.model_calls["hypothetical_prompts_from_model"] > 0


def test_bad_input_fails_before_any_model_call(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    with pytest.raises(InwardError, match="Unknown task 'animalz_long'"):
        run_evaluate(EvaluateSpec(model="mock/m", tasks=["animalz_long"]), tmp_path / "r", cache=cache)
    with pytest.raises(InwardError, match="Unknown property"):
        run_evaluate(
            EvaluateSpec(model="mock/m", tasks=["numbers"], properties=["evenness"]), tmp_path / "r", cache=cache
        )
    with pytest.raises(InwardError, match="--n must be between"):
        run_evaluate(EvaluateSpec(model="mock/m", tasks=["numbers"], n=0), tmp_path / "r", cache=cache)
    with pytest.raises(InwardError, match="dataset target"):
        run_evaluate(
            EvaluateSpec(model="mock/m", tasks=["numbers"], properties=["matches_target"]), tmp_path / "r", cache=cache
        )
    assert not (tmp_path / "r").exists()


def test_release_task_runs(tmp_path, shared_dir):
    res = run_evaluate(
        EvaluateSpec(model="mock/m1", tasks=[f"release:{shared_dir / 'release_samples' / 'test'}"], n=10),
        tmp_path / "run",
        cache=ResponseCache(tmp_path / "c"),
    )
    assert {r["task"] for r in res.by_task} >= {"animals_long", "survival_instinct"}


def test_a_reused_stage_never_loads_its_model(tmp_path):
    """The shared evaluation asks its store for each stage; a store that has the records does not
    call ``compute``, so the model behind it is never loaded (a resumed study loads nothing)."""
    from inward.experiments.evaluate import EvalPlan, ModelHandle, evaluate, plan, write_only
    from inward.store.rundir import RunDir

    spec = EvaluateSpec(**SPEC)
    planned = plan(spec)
    ev_plan = EvalPlan({t.name: t for t, _ in planned}, {t.name: ps for t, ps in planned}, n=spec.n)
    cache = ResponseCache(tmp_path / "c")
    model = ModelHandle("mock/m1", lambda: CachedModel(resolve("mock/m1"), cache))
    with RunDir(tmp_path / "run") as run:
        first = evaluate(ev_plan, model, model, store=write_only(run))
    stored = {"objects.jsonl": first.objects, "hypotheticals.jsonl": first.hypotheticals}
    asked: list[tuple[str, dict]] = []

    def reuse(name, load_row, compute, facts):
        asked.append((name, facts()))
        return stored[name]

    def never():
        raise AssertionError("a reused stage loaded its model")

    unloaded = ModelHandle("mock/m1", never, identity=lambda: {"model": "mock/m1"})
    again = evaluate(ev_plan, unloaded, unloaded, store=reuse)
    assert [name for name, _ in asked] == ["objects.jsonl", "hypotheticals.jsonl"]
    assert asked[0][1]["stage"] == "objects" and asked[1][1]["model"] == {"model": "mock/m1"}
    assert again.scored("paper") == first.scored("paper") and first.scored("paper")


def test_evaluate_and_the_study_give_the_same_rows(tmp_path, tiny_pair):
    """`inward evaluate` and the study's untrained setup run one evaluation function: on the same
    model, strings and properties they ask the same prompts and score the same rows."""
    from test_study import config

    from inward.experiments.context import slug, task_properties
    from inward.experiments.study import run_study
    from inward.store.rundir import read_jsonl

    cfg = config(tiny_pair)
    run_study(cfg, tmp_path / "study", cache=ResponseCache(tmp_path / "c1"))
    m1 = tiny_pair[0]
    props = task_properties(cfg, cfg.held_out_tasks)
    spec = EvaluateSpec(
        model=m1,
        tasks=list(cfg.held_out_tasks),
        n=cfg.n_eval,
        seed=cfg.seed,
        properties=sorted({p.name for ps in props.values() for p in ps}),
    )
    run_evaluate(spec, tmp_path / "eval", cache=ResponseCache(tmp_path / "c2"))  # its own cache: real calls
    for name in ("objects.jsonl", "hypotheticals.jsonl", "scored.jsonl"):
        study = list(read_jsonl(tmp_path / "study" / "eval" / f"untrained-{slug(m1)}" / name))
        alone = list(read_jsonl(tmp_path / "eval" / name))
        assert study == alone and study, name
