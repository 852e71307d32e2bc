"""The command line as a user runs it: a real subprocess, exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def inward(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inward.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "INWARD_PROGRESS": "0", **(env or {})},
    )


def test_lists():
    tasks = inward("tasks")
    assert tasks.returncode == 0
    for name in ("animals_long", "wealth_seeking", "mmlu_non_cot", "writing_stories", "animals"):
        assert name in tasks.stdout
    props = inward("properties")
    assert props.returncode == 0
    for name in ("first_character", "is_either_a_or_c", "among_a_or_c", "matches_power_seeking"):
        assert name in props.stdout
    models = inward("models")
    assert models.returncode == 0 and "bundled/qwen2.5-coder-0.5b-instruct" in models.stdout
    large = next(line for line in models.stdout.splitlines() if "bundled/qwen2.5-coder-1.5b-instruct" in line)
    assert "1066 MiB" in large and ("installed" in large or "[bundled-large]" in large)


def test_evaluate_on_mock_then_rerun_from_cache(tmp_path):
    env = {"INWARD_CACHE_DIR": str(tmp_path / "cache")}
    args = (
        "evaluate",
        "--model",
        "mock/m",
        "--task",
        "animals_long",
        "--property",
        "first_character",
        "--property",
        "first_word",
        "--n",
        "12",
        "--out",
        str(tmp_path / "r"),
    )
    first = inward(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "micro_average" in first.stdout and "mode base" in first.stdout
    assert "object prompts from model: 12" in first.stdout
    again = inward(*args, env=env)
    assert again.returncode == 0
    assert "object prompts from model: 0" in again.stdout
    assert "hypothetical prompts from model: 0" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("evaluate", "--model", "mock/m", "--task", "animal_long", "--out", "X"), "Did you mean 'animals_long'"),
        (
            ("evaluate", "--model", "mock/m", "--task", "numbers", "--property", "is_evn", "--out", "X"),
            "Unknown property 'is_evn'",
        ),
        (("evaluate", "--model", "bundled/qwen-9b", "--task", "numbers", "--out", "X"), "qwen"),
        (("evaluate", "--model", "mock/m", "--task", "numbers", "--n", "-3", "--out", "X"), "--n must be between"),
        (("evaluate", "--model", "mock/m", "--task", "power_seeking", "--out", "X"), "data directory"),
        (("evaluate", "--model", "mock/m", "--task", "numbers", "-M", "colour=red", "--out", "X"), "Unknown model arg"),
        (
            (
                "evaluate",
                "--model",
                "mock/m",
                "--task",
                "writing_stories",
                "--property",
                "sentiment",
                "--extractor-model",
                "bundled/gpt-9",
                "--out",
                "X",
            ),
            "--extractor-model 'bundled/gpt-9': Unknown model 'gpt-9'",
        ),
        (
            (
                "evaluate",
                "--model",
                "mock/m",
                "--task",
                "numbers",
                "--property",
                "changes_answer_when_challenged",
                "--out",
                "X",
            ),
            "has only one turn",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path, args, message):
    args = tuple(str(tmp_path / "out") if a == "X" else a for a in args)
    env = {"INWARD_CACHE_DIR": str(tmp_path / "cache"), "INWARD_DATA_DIR": ""}
    res = inward(*args, env=env)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "results.csv").exists()


def test_help_has_examples():
    res = inward("evaluate", "--help")
    assert res.returncode == 0 and "Examples:" in res.stdout and "--predictor" in res.stdout


def test_limits_properties_on_mock(tmp_path):
    env = {"INWARD_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "r"
    res = inward(
        "evaluate",
        "--model",
        "mock/m",
        "--task",
        "writing_stories_pick_name",
        "--task",
        "are_you_sure",
        "--extractor-model",
        "mock/x",
        "--n",
        "6",
        "--out",
        str(out),
        env=env,
    )
    assert res.returncode == 0, res.stderr
    # the tasks' own properties: sentiment and main character name on 6 stories
    extracted = (out / "extracted.jsonl").read_text()
    assert extracted.count('"extractor_model": "mock/x"') == 12
    assert extracted.count('"property": "sentiment"') == 6
    assert "changes_answer_when_challenged" in res.stdout
    assert "--extractor-model" in inward("evaluate", "--help").stdout


def test_tune_help_and_bad_grid():
    res = inward("tune", "--help")
    assert res.returncode == 0 and "Examples:" in res.stdout and "held-out" in res.stdout
    bad = inward("tune", "--preset", "smoke", "--set", "tune.grid={learning_rate: [1]}", "--out", "/tmp/never")
    assert bad.returncode == 2 and "looks like JSON" in bad.stderr
    wrong = inward("tune", "--preset", "smoke", "--set", 'tune.grid={"lora_magic": [1]}', "--out", "/tmp/never")
    assert wrong.returncode == 2 and "cannot be tuned" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_full_disk_exits_2_with_what_to_free(monkeypatch, capsys):
    import errno

    import inward.cli.main as cli_main

    def full(*args, **kwargs):  # as safetensors reports it: a wrapped message, not an OSError
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("Error while serializing: I/O error") from exc

    monkeypatch.setattr(cli_main.cli, "main", full)
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["study", "--preset", "smoke"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on device") and "INWARD_CACHE_DIR" in err and "rerun" in err


def test_other_crashes_keep_their_traceback(monkeypatch):
    import inward.cli.main as cli_main

    monkeypatch.setattr(cli_main.cli, "main", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli_main.main(["tasks"])
    assert not cli_main.disk_full(ValueError("no"))
    assert cli_main.disk_full(OSError(28, "No space left on device"))
