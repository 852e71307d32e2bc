"""The task registry, data-file loading and the release importer."""

from __future__ import annotations

import json

import pytest

from inward.errors import InwardError
from inward.properties import resolve_property
from inward.properties.compliance import GROUPS
from inward.tasks import PAPER_HELD_OUT_TASKS, PAPER_TRAIN_TASKS, TASKS, get_task, resolve_tasks


def test_paper_split_is_registered():
    assert set(PAPER_TRAIN_TASKS) == {
        "wikipedia_long",
        "countries_long",
        "colors_long",
        "wealth_seeking",
        "power_seeking",
        "arc_challenge_non_cot",
        "numbers",
    }
    assert set(PAPER_HELD_OUT_TASKS) == {
        "animals_long",
        "english_words_long",
        "stories_sentences",
        "mmlu_non_cot",
        "survival_instinct",
        "myopic_reward",
    }
    assert {"writing_stories", "animals"} <= set(TASKS)


@pytest.mark.parametrize("name", list(TASKS))
def test_task_is_consistent(name):
    t = TASKS[name]
    assert set(t.exclusion_rule_groups) <= set(GROUPS)
    for p in t.properties:
        prop = resolve_property(p, t.name)
        assert not prop.needs_target or t.has_target, (name, p)
    assert t.max_tokens >= 1


def test_unknown_task_suggests():
    with pytest.raises(InwardError, match="Did you mean 'animals_long'"):
        get_task("animal_long")


def test_generated_task_needs_no_data_dir(monkeypatch):
    monkeypatch.delenv("INWARD_DATA_DIR", raising=False)
    samples = get_task("animals_long").load("val", 5, seed=1)
    assert len(samples) == 5 and all(s.string.endswith(" ") for s in samples)
    assert samples == get_task("animals_long").load("val", 5, seed=1)
    train = {s.string for s in get_task("animals_long").load("train", 500, seed=1)}
    val = {s.string for s in get_task("animals_long").load("val", 500, seed=1)}
    assert not train & val


def test_file_task_reads_the_data_dir(data_dir):
    a = get_task("power_seeking").load("val", 10, seed=0, data_dir=data_dir)
    b = get_task("power_seeking").load("val", 20, seed=0, data_dir=data_dir)
    assert a == b[:10]  # nested
    assert all(s.target in ("A", "B") for s in b)
    assert len(get_task("power_seeking").load("val", None, data_dir=data_dir)) == 493
    # the paper's files can stand in for a generator
    assert len(get_task("animals_long").load("val", 3, data_dir=data_dir, source="file")) == 3


def test_missing_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("INWARD_DATA_DIR", raising=False)
    with pytest.raises(InwardError, match="--data-dir"):
        get_task("power_seeking").load("val", 3)
    with pytest.raises(InwardError, match="does not exist"):
        get_task("power_seeking").load("val", 3, data_dir=tmp_path / "nope")
    with pytest.raises(InwardError, match="val_power_seeking.jsonl"):
        get_task("power_seeking").load("val", 3, data_dir=tmp_path)  # empty folder


def test_malformed_data_file_names_file_and_line(tmp_path):
    (tmp_path / "val_power_seeking.jsonl").write_text('{"string": "ok", "target": "A"}\n{"str\n')
    with pytest.raises(InwardError, match=r"val_power_seeking.jsonl, line 2: not valid JSON"):
        get_task("power_seeking").load("val", 3, data_dir=tmp_path)
    (tmp_path / "val_power_seeking.jsonl").write_text('{"text": "no string field"}\n')
    with pytest.raises(InwardError, match=r"line 1: missing the text field \"string\""):
        get_task("power_seeking").load("val", 3, data_dir=tmp_path)


def test_strings_stay_strings(tmp_path):
    (tmp_path / "val_numbers.jsonl").write_text(
        "\n".join(json.dumps({"string": s}) for s in ["05", "NA", "null", "8"]) + "\n"
    )
    got = {s.string for s in get_task("numbers").load("val", None, data_dir=tmp_path, source="file")}
    assert got == {"05", "NA", "null", "8"}


def test_release_import(shared_dir):
    tasks = {t.name: t for t in resolve_tasks(f"release:{shared_dir / 'release_samples'}")}
    assert set(tasks) >= {"animals_long", "wealth_seeking", "arc_challenge_non_cot"}
    animals = tasks["animals_long"]
    assert animals.properties == ("first_character",)
    samples = animals.load("val", 7)
    assert len(samples) == 7 and samples == animals.load("val", 7)
    with pytest.raises(InwardError, match="val-split prompts only"):
        animals.load("train", 3)
    assert tasks["wealth_seeking"].properties == ("matches_wealth_seeking",)
    assert {s.target for s in tasks["wealth_seeking"].release_samples} <= {"A", "B"}


def test_release_rejects_a_wrong_schema(tmp_path):
    (tmp_path / "x_first_character.jsonl").write_text(json.dumps({"original_question": "q"}) + "\n")
    with pytest.raises(InwardError, match="exactly the fields"):
        resolve_tasks(f"release:{tmp_path}")
    with pytest.raises(InwardError, match="does not exist"):
        resolve_tasks(f"release:{tmp_path / 'missing'}")
