"""``inward finetune openai`` against the fake OpenAI HTTP API of tests/train/test_openai_finetune.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("openai")

from inward.cli.main import main  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "_fake_openai_api", Path(__file__).parents[1] / "train" / "test_openai_finetune.py"
)
fake_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_api)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", fake_api.API_KEY)
    with fake_api.FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        yield fake


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_submit_then_resume_from_out_dir_then_model_string(tmp_path, server, capsys):
    train = fake_api.write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "ft"
    assert (
        run_cli(
            "finetune",
            "openai",
            "--train",
            str(train),
            "--model",
            "gpt-4o-mini-2024-07-18",
            "--suffix",
            "sp",
            "--out",
            str(out),
            "--no-wait",
        )
        == 0
    )
    assert "job ftjob-1: validating_files" in capsys.readouterr().out
    assert run_cli("finetune", "openai", "--out", str(out), "--poll-seconds", "0") == 0
    captured = capsys.readouterr()
    model_string = "openai/ft:gpt-4o-mini-2024-07-18:org-test:sp:1abc"
    assert captured.out.strip() == model_string
    assert "job ftjob-1: succeeded" in captured.err
    assert (out / "model_string.txt").read_text().strip() == model_string
    assert server.count("POST", "/v1/files") == 1 and server.count("POST", "/v1/fine_tuning/jobs") == 1
    hyper = server.created[0]["method"]["supervised"]["hyperparameters"]
    assert hyper == {"n_epochs": 1, "batch_size": "auto", "learning_rate_multiplier": 2.0}


def test_hyperparameters_and_cancel(tmp_path, server, capsys):
    train = fake_api.write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "ft"
    assert (
        run_cli(
            "finetune",
            "openai",
            "--train",
            str(train),
            "--model",
            "gpt-4o-mini",
            "--out",
            str(out),
            "--epochs",
            "3",
            "--batch-size",
            "1",
            "--lr-multiplier",
            "1",
            "--no-wait",
        )
        == 0
    )
    hyper = server.created[0]["method"]["supervised"]["hyperparameters"]
    assert hyper == {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.0}
    assert run_cli("finetune", "openai", "--out", str(out), "--cancel") == 0
    assert "job ftjob-1: cancelled" in capsys.readouterr().out
    assert json.loads((out / "openai_finetune.json").read_text())["status"] == "cancelled"
    assert run_cli("finetune", "openai", "--out", str(out), "--poll-seconds", "0") == 2
    assert "was cancelled" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "gpt-4o-mini"), "Pass both --train and --model"),
        ((), "No job recorded"),
        (("--model", "gpt-4o-mini", "--train", "{bad}"), "line 13 is not valid JSON"),
        (("--model", "gpt-4o-mini", "--train", "{train}", "--epochs", "lots"), "--epochs"),
    ],
)
def test_input_errors_exit_2_without_calling_the_api(tmp_path, server, capsys, args, message):
    train = fake_api.write_examples(tmp_path / "train.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(train.read_text() + "{not json\n")
    args = [a.format(bad=bad, train=train) for a in args]
    assert run_cli("finetune", "openai", "--out", str(tmp_path / "ft"), *args) == 2
    assert message in capsys.readouterr().err
    assert server.requests == []


def test_missing_api_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert run_cli("finetune", "openai", "--out", str(tmp_path / "ft")) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err
