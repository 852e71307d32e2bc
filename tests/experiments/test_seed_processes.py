"""Each training seed in a child process (``inward study``'s default), on tiny random models: the
same outputs as one process, the parent computing none of the seeds' stages itself."""

from __future__ import annotations

import json
import subprocess

import pytest
from test_study import config as study_config  # tests/experiments is on sys.path (pytest prepend mode)

from inward.errors import InwardError
from inward.experiments import seed_child
from inward.experiments.context import slug
from inward.experiments.study import run_study
from inward.store.cache import ResponseCache
from inward.store.rundir import RunDir


def config(tiny_pair, **over):
    return study_config(tiny_pair, seeds=[0, 1], **over)


@pytest.fixture(scope="module")
def template_less_pair(tiny_pair, tmp_path_factory):
    """M1 with a chat template, M2 without one: the study measures M2's prompt format at the
    first seed and keeps it for the others, which a child process must do too."""
    from inward.models.tiny import make_tiny_model

    return tiny_pair[0], f"hf/{make_tiny_model(tmp_path_factory.mktemp('no_template'), seed=2, chat_template=False)}"


def test_seed_processes_give_the_one_process_outputs(tmp_path, template_less_pair, monkeypatch):
    tiny_pair = template_less_pair
    cfg = config(tiny_pair, chat_format_examples=6)
    one = run_study(cfg, tmp_path / "one", cache=ResponseCache(tmp_path / "one.sqlite"))
    out = tmp_path / "children"
    kids = run_study(cfg, out, cache=ResponseCache(tmp_path / "kids.sqlite"), seed_processes=True)
    # the format was measured once, at the first seed, as in one process
    s1, s2 = slug(tiny_pair[0]), slug(tiny_pair[1])
    assert (out / "seed0" / "models" / s1 / "cross_ft" / s2 / "chat_formats.jsonl").is_file()
    assert not (out / "seed1" / "models" / s1 / "cross_ft" / s2 / "chat_formats.jsonl").exists()
    for name in ("results.csv", "comparisons.csv", "seed_summary.csv", "evidence.csv", "chat_formats.csv"):
        assert (out / name).read_text() == (tmp_path / "one" / name).read_text(), name
    assert kids.verdicts == one.verdicts
    # The parent read every seed's stage back from the children's files; it trained nothing itself.
    log = json.loads((out / "run.json").read_text())["stages"]
    seed_stages = {rel: entry for rel, entry in log.items() if rel.startswith("seed")}
    assert seed_stages and all(entry["reused"] for entry in seed_stages.values())
    assert not any(entry["reused"] for rel, entry in log.items() if not rel.startswith("seed"))
    # The children's stage seconds are in the run's: a seed's finetune took longer than a read.
    seconds = json.loads((out / "run.json").read_text())["stage_seconds"]
    finetune = next(v for k, v in seconds.items() if k.startswith("seed 1: self-prediction finetune"))
    assert finetune > 0.5
    # A rerun sends no finished seed to a child again (each left a marker), and changes nothing.
    assert (out / "seed0" / f"child-{slug(tiny_pair[0])}.json").is_file()
    before = (out / "results.csv").read_text()

    real_run = subprocess.run

    def no_child(command, *args, **kwargs):
        if "inward.experiments.seed_child" in command:
            raise AssertionError("a finished seed went to a child process again")
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", no_child)
    run_study(cfg, out, cache=ResponseCache(tmp_path / "kids.sqlite"), seed_processes=True)
    assert (out / "results.csv").read_text() == before


def test_seed_processes_refuse_given_backends(tmp_path, tiny_pair):
    with pytest.raises(ValueError, match="seed_processes"):
        run_study(config(tiny_pair), tmp_path / "run", backends={"x": object()}, seed_processes=True)


def test_a_borrowed_run_directory_must_be_held(tmp_path):
    with pytest.raises(InwardError, match="no process holds it"):
        with RunDir(tmp_path / "run", borrowed=True):
            pass
    with RunDir(tmp_path / "run"):  # held by this process, through another open file
        with RunDir(tmp_path / "run", borrowed=True) as borrowed:
            assert borrowed.path == tmp_path / "run"


def test_the_child_fails_cleanly_without_a_holder(tmp_path, tiny_pair, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config(tiny_pair).model_dump(mode="json", by_alias=True)))
    code = seed_child.main(
        [
            *("--run", str(tmp_path / "run"), "--config", str(cfg), "--cache", str(tmp_path / "c.sqlite")),
            *("--model", tiny_pair[0], "--seed", "0", "--result", str(tmp_path / "result.json")),
        ]
    )
    assert code == 1 and "no process holds it" in capsys.readouterr().err
    assert not (tmp_path / "result.json").exists()


def test_the_child_returns_only_its_seeds_stage_seconds(tmp_path, tiny_pair):
    """The child reads the shared stages back (the parent computed and timed them): their
    seconds must not join the parent's totals a second time."""
    out, cache = tmp_path / "run", tmp_path / "c.sqlite"
    run_study(study_config(tiny_pair, seeds=[0]), out, cache=ResponseCache(cache))  # the shared stages, and seed 0
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config(tiny_pair).model_dump(mode="json", by_alias=True)))
    with RunDir(out):  # the parent holds it
        code = seed_child.main(
            [
                *("--run", str(out), "--config", str(cfg), "--cache", str(cache)),
                *("--model", tiny_pair[0], "--seed", "1", "--result", str(tmp_path / "result.json")),
            ]
        )
    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["stage_seconds"] and all(name.startswith("seed 1: ") for name in result["stage_seconds"])
    assert result["peak_rss_mb"] > 0
