"""run.json: one pydantic model (inward.store.manifest.RunManifest) for study, evaluate and tune."""

from __future__ import annotations

import json

import pytest

from inward.errors import InwardError
from inward.store.manifest import RunManifest
from inward.store.rundir import RunDir, environment


def test_a_manifest_round_trips_and_leaves_out_what_a_command_did_not_produce(tmp_path):
    with RunDir(tmp_path / "run") as run:
        m = RunManifest(command="evaluate", spec={"model": "mock/x"}, environment=environment())
        m.write(run)
        data = json.loads(run.file("run.json").read_text())
        assert data["command"] == "evaluate" and data["status"] == "running"
        assert "verdicts" not in data and "stage_seconds" not in data  # study-only fields absent
        done = m.updated(status="complete", seconds={"object_level": 1.5})
        done.write(run)
        back = RunManifest.read(run)
        assert back == done and back.seconds == {"object_level": 1.5}


def test_a_wrong_field_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="status"):
        RunManifest(command="study", status="half-done", environment={})
    with pytest.raises(ValueError, match="command"):
        RunManifest(command="train", environment={})
    m = RunManifest(command="study", environment={})
    with pytest.raises(ValueError, match="stage_seconds"):
        m.updated(stage_seconds={"object-level": "slow"})
    with RunDir(tmp_path / "run") as run:
        run.write_json("run.json", {"command": "study", "environment": {}, "stage_seconds": ["not", "a", "dict"]})
        with pytest.raises(InwardError, match=r"run\.json: field stage_seconds.*move it away"):
            RunManifest.read(run)


def test_no_manifest_or_a_torn_one_reads_as_none(tmp_path):
    with RunDir(tmp_path / "run") as run:
        assert RunManifest.read(run) is None
        run.file("run.json").write_text('{"command": "stu')
        assert RunManifest.read(run) is None


def test_study_evaluate_and_tune_write_the_same_model(tmp_path):
    """Every run.json the commands write validates against RunManifest (tests of those commands
    write them; the study writes through it in every study test; here the smallest evaluate)."""
    from inward.experiments.evaluate import EvaluateSpec, run_evaluate
    from inward.store.cache import ResponseCache

    spec = EvaluateSpec(model="mock/m1", tasks=["animals"], properties=["first_character"], n=3)
    run_evaluate(spec, tmp_path / "ev", cache=ResponseCache(tmp_path / "c.sqlite"))
    with RunDir(tmp_path / "ev") as run:
        m = RunManifest.read(run)
    assert m is not None and m.command == "evaluate" and m.status == "complete"
    assert m.models and m.model_calls and m.seconds is not None
