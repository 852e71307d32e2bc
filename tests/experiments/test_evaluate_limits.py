"""inward evaluate on the paper's negative-result properties: LLM extraction and two turns."""

from __future__ import annotations

import dataclasses
import json

import pytest

from inward.errors import InwardError
from inward.experiments.evaluate import EvaluateSpec, collect_objects, run_evaluate
from inward.models import resolve
from inward.models.base import BackendStats
from inward.records import FollowupObjectRecord, ObjectRecord
from inward.store.cache import CachedModel, ResponseCache
from inward.tasks import get_task
from inward.tasks.registry import ARE_YOU_SURE


class Scripted:
    """Answers by a function of the whole prompt; records every prompt it is given."""

    def __init__(self, answer, name="scripted/m"):
        self.answer, self.model_string = answer, name
        self.prompts: list[list[dict]] = []
        self._stats = BackendStats()

    @property
    def stats(self):
        return self._stats

    def fingerprint(self):
        return {"backend": "scripted", "name": self.model_string}

    def generate(self, prompts, config):
        self.prompts += [list(p) for p in prompts]
        return [[self.answer(p)] for p in prompts]

    def answer_distribution(self, prompts, config):
        raise NotImplementedError


def stubborn_then_caving(prompt):
    """First answer A; after "Are you sure?" B for questions with 'plus', else A again."""
    if prompt[-1]["content"] == ARE_YOU_SURE:
        return "B" if " plus " in prompt[1]["content"] else "A"
    return "A"


def test_two_turn_objects(tmp_path):
    backend = Scripted(stubborn_then_caving)
    model = CachedModel(backend, ResponseCache(tmp_path / "c"))
    records = collect_objects(model, [get_task("are_you_sure")], "val", 12)
    assert len(records) == 12 and all(isinstance(r, FollowupObjectRecord) for r in records)
    assert len(backend.prompts) == 24  # two turns per question
    second = backend.prompts[12]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[:2] == backend.prompts[0] and second[2]["content"] == "A"
    assert second[3]["content"] == ARE_YOU_SURE
    for r in records:
        assert r.response == "A" and r.target in tuple("ABCD")
        assert r.followup_response == ("B" if " plus " in r.string else "A")


def test_one_turn_task_records_keep_their_form(tmp_path):
    records = collect_objects(
        CachedModel(resolve("mock/m"), ResponseCache(tmp_path / "c")), [get_task("animals_long")], "val", 3
    )
    assert all(type(r) is ObjectRecord for r in records)
    assert set(dataclasses.asdict(records[0])) == {
        "task",
        "split",
        "string",
        "target",
        "model",
        "response",
        "compliant",
        "failed_checks",
    }


def test_are_you_sure_end_to_end(tmp_path):
    backend = Scripted(lambda p: "false" if "Would you change" in p[-1]["content"] else stubborn_then_caving(p))
    res = run_evaluate(
        EvaluateSpec(model="scripted/m", tasks=["are_you_sure"], properties=["changes_answer_when_challenged"], n=30),
        tmp_path / "run",
        cache=ResponseCache(tmp_path / "c"),
        backends={"scripted/m": backend},
    )
    rows = [json.loads(line) for line in (tmp_path / "run" / "objects.jsonl").open()]
    assert all("followup_response" in r for r in rows)
    changed = sum(" plus " in r["string"] for r in rows)
    assert 0 < changed < 30
    # the predictor always says "false" (no change): right exactly on the unchanged rows
    micro = res.results[-1]
    assert micro["count"] == 30 and micro["accuracy"] == pytest.approx(1 - changed / 30)
    assert micro["mode_baseline"] == pytest.approx(max(changed, 30 - changed) / 30)
    assert not (tmp_path / "run" / "extracted.jsonl").exists()


def sentiment_world(prompt):
    """The object model writes stories; the extractor calls 'sad' stories negative."""
    user = prompt[-1]["content"]
    if user.startswith("Please classifiy the sentiment"):
        return "negative" if "sad" in user or "cautionary" in user else "Positive."
    if user.startswith("What is the name of the main character"):
        return "'Ada'"
    if "sentiment of your response" in user:
        return "positive"
    if "name of the main character" in user:
        return "Ada"
    instruction = user.split("instructions: ", 1)[1].split("\n", 1)[0]
    return f"Once upon a time Ada was {'sad' if 'sad' in user else 'glad'}. ({instruction})"


def test_llm_properties_are_extracted_written_and_scored(tmp_path):
    obj_model = Scripted(sentiment_world, "scripted/m")
    extractor = Scripted(sentiment_world, "scripted/x")
    spec = EvaluateSpec(
        model="scripted/m",
        tasks=["writing_stories"],
        n=40,
        properties=["sentiment", "main_character_name", "more_than_10_words"],
        extractor_model="scripted/x",
    )
    cache = ResponseCache(tmp_path / "c")
    backends = {"scripted/m": obj_model, "scripted/x": extractor}
    res = run_evaluate(spec, tmp_path / "run", cache=cache, backends=backends)
    out = tmp_path / "run"
    extracted = [json.loads(line) for line in (out / "extracted.jsonl").open()]
    assert len(extracted) == 80 and {e["extractor_model"] for e in extracted} == {"scripted/x"}
    assert {e["property"] for e in extracted} == {"sentiment", "writing_stories/main_character_name"}
    # only the extractor saw extraction prompts; the object model answered the rest
    assert all(
        p[-1]["content"].startswith(("Please classifiy", "What is the name of the main")) for p in extractor.prompts
    )
    assert not any(p[-1]["content"].startswith("Please classifiy") for p in obj_model.prompts)
    scored = [json.loads(line) for line in (out / "scored.jsonl").open()]
    by = {(s["property"], s["string"]): s for s in scored}
    for e in extracted:
        assert by[(e["property"], e["string"])]["object_value"] == e["value"]
    sentiment = [s for s in scored if s["property"] == "sentiment"]
    negative = sum(s["object_value"] == "negative" for s in sentiment)
    assert 0 < negative < 40
    row = {r["response_property"]: r for r in res.results}
    assert row["sentiment"]["accuracy"] == pytest.approx(1 - negative / 40)  # always "positive"
    assert row["writing_stories/main_character_name"]["accuracy"] == 1.0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["extractor_model"] == "scripted/x" and "scripted/x" in manifest["models"]
    assert res.model_calls["extraction_prompts_from_model"] == 80
    # a rerun is served from the cache, extraction included, and gives the same files
    again = run_evaluate(spec, tmp_path / "again", cache=cache, backends=backends)
    assert again.model_calls["extraction_prompts_from_model"] == 0
    for name in ("extracted.jsonl", "scored.jsonl", "results.csv"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_extractor_defaults_to_the_object_model(tmp_path):
    backend = Scripted(sentiment_world, "scripted/m")
    res = run_evaluate(
        EvaluateSpec(model="scripted/m", tasks=["writing_stories"], n=5, properties=["sentiment"]),
        tmp_path / "run",
        cache=ResponseCache(tmp_path / "c"),
        backends={"scripted/m": backend},
    )
    assert {e.extractor_model for e in res.extracted} == {"scripted/m"}
    assert any(p[-1]["content"].startswith("Please classifiy") for p in backend.prompts)


def test_python_properties_ignore_the_extractor(tmp_path):
    res = run_evaluate(
        EvaluateSpec(
            model="mock/m", tasks=["animals_long"], n=4, properties=["first_character"], extractor_model="bundled/nope"
        ),
        tmp_path / "run",
        cache=ResponseCache(tmp_path / "c"),
    )
    assert res.extracted == [] and "extraction_prompts_from_model" not in res.model_calls
    assert not (tmp_path / "run" / "extracted.jsonl").exists()


@pytest.mark.parametrize(
    ("extractor", "message"),
    [
        ("bundled/qwen-9b", r"--extractor-model 'bundled/qwen-9b': Unknown model 'qwen-9b'"),
        ("gpt-4", "--extractor-model 'gpt-4': Model string 'gpt-4' has no provider prefix"),
        ("nosuch/x", "Unknown model provider 'nosuch'"),
    ],
)
def test_unknown_extractor_fails_before_any_model_call(tmp_path, extractor, message):
    backend = Scripted(sentiment_world)
    with pytest.raises(InwardError, match=message):
        run_evaluate(
            EvaluateSpec(
                model="scripted/m", tasks=["writing_stories"], n=3, properties=["sentiment"], extractor_model=extractor
            ),
            tmp_path / "r",
            cache=ResponseCache(tmp_path / "c"),
            backends={"scripted/m": backend},
        )
    assert backend.prompts == [] and not (tmp_path / "r").exists()


def test_followup_property_needs_a_two_turn_task(tmp_path):
    with pytest.raises(InwardError, match="has only one turn"):
        run_evaluate(
            EvaluateSpec(model="mock/m", tasks=["animals_long"], properties=["changes_answer_when_challenged"]),
            tmp_path / "r",
            cache=ResponseCache(tmp_path / "c"),
        )


def test_limits_preset_is_consistent(monkeypatch):
    """limits.yaml: generated tasks only, every property applies to a task, and the rest of the
    config validates (``extractor_model`` is the one key the study config gains for it)."""
    from importlib import resources

    import yaml

    from inward.experiments.study_config import parse_config
    from inward.models import parse_model_string
    from inward.properties import resolve_property

    text = resources.files("inward.experiments.presets").joinpath("limits.yaml").read_text()
    data = yaml.safe_load(text)
    parse_model_string(data["extractor_model"])
    tasks = [get_task(t) for t in data["train_tasks"] + data["held_out_tasks"]]
    assert all(t.generator for t in tasks)  # no --data-dir needed
    monkeypatch.delenv("INWARD_DATA_DIR", raising=False)
    for t in tasks:
        assert len(t.load("val", data["n_eval"], data["seed"])) == data["n_eval"]
    held_out = [get_task(t) for t in data["held_out_tasks"]]
    for name in data["properties"]:
        prop = resolve_property(name)
        assert any(prop.name in t.properties for t in tasks), name
    limits = {
        "writing_stories/main_character_name",
        "sentiment",
        "how_many_words_bins",
        "changes_answer_when_challenged",
    }
    assert limits <= {p for t in held_out for p in t.properties}
    assert limits <= {resolve_property(p).name for p in data["properties"]}
    rest = {k: v for k, v in data.items() if k != "extractor_model"}
    assert parse_config(rest, "limits").name == "limits"
