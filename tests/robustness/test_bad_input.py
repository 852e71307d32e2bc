"""Bad input through the real command line: exit 2, one message naming the input and the fix,
no traceback, and nothing written half-way. Also: garbage model outputs are scored, not crashed on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from inward.experiments.evaluate import EvaluateSpec, run_evaluate
from inward.models import resolve
from inward.store.cache import ResponseCache


def inward(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inward.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "INWARD_PROGRESS": "0", **(env or {})},
    )


def refused(res: subprocess.CompletedProcess, *phrases: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    for phrase in phrases:
        assert phrase in res.stderr, (phrase, res.stderr)


STUDY = """name: bad
pairs: [{self: mock/a, cross: mock/b}]
train_tasks: [colors_long]
held_out_tasks: [animals_long]
properties: [first_character]
"""


@pytest.mark.parametrize(
    ("extra", "phrases"),
    [
        ("n_evl: 5\n", ("n_evl", "unknown key (misspelt?)", "n_eval")),
        ("n_eval: many\n", ("n_eval", "valid integer", "'many'")),
        ("n_eval: 0\n", ("n_eval", "greater than or equal to 1")),
        ("finetune: {rnak: 4}\n", ("finetune.rnak", "unknown key", "Valid keys of finetune", "rank")),
        (
            "behaviour_change: {finetune: {lr: 1}}\n",
            ("behaviour_change.finetune.lr", "unknown key", "Valid keys of finetune", "learning_rate"),
        ),
        ("finetune: {rank: 0}\n", ("finetune", "rank must be >= 1")),
    ],
    ids=[
        "misspelt-key",
        "wrong-type",
        "out-of-range",
        "misspelt-nested-key",
        "misspelt-deeper-key",
        "finetune-out-of-range",
    ],
)
def test_bad_study_config(tmp_path, extra, phrases):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(STUDY + extra)
    res = inward("study", cfg, "--out", tmp_path / "out", env={"INWARD_CACHE_DIR": str(tmp_path / "c")})
    refused(res, str(cfg), *phrases)
    assert not (tmp_path / "out").exists()  # refused before the run directory was made


def test_study_config_that_is_not_yaml(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text("name: [unclosed\n")
    refused(inward("study", cfg, "--out", tmp_path / "out"), "not valid YAML")


@pytest.mark.parametrize(
    ("content", "phrases"),
    [
        ('{"string": "ok", "target": "A"}\n{"str\n', ("val_power_seeking.jsonl, line 2", "not valid JSON")),
        ('{"text": "no string field"}\n', ("val_power_seeking.jsonl, line 1", 'missing the text field "string"')),
        (None, ("val_power_seeking.jsonl",)),  # an empty data directory
    ],
    ids=["malformed-line", "missing-field", "empty-dir"],
)
def test_bad_data_files(tmp_path, content, phrases):
    data = tmp_path / "data"
    data.mkdir()
    if content is not None:
        (data / "val_power_seeking.jsonl").write_text(content)
    res = inward(
        "evaluate",
        "--model",
        "mock/m",
        "--task",
        "power_seeking",
        "--data-dir",
        data,
        "--out",
        tmp_path / "out",
        env={"INWARD_CACHE_DIR": str(tmp_path / "c")},
    )
    refused(res, *phrases)
    assert not (tmp_path / "out" / "results.csv").exists()


def test_missing_data_dir(tmp_path):
    res = inward(
        "evaluate",
        "--model",
        "mock/m",
        "--task",
        "power_seeking",
        "--data-dir",
        tmp_path / "nope",
        "--out",
        tmp_path / "out",
    )
    refused(res, "does not exist")


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = inward(
        "evaluate",
        "--model",
        "mock/m",
        "--task",
        "numbers",
        "--n",
        "3",
        "--out",
        blocker / "run",
        env={"INWARD_CACHE_DIR": str(tmp_path / "c")},
    )
    refused(res, "Cannot write", "--out")


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 96 KiB tmpfs, so that writes really fail with ENOSPC (needs mount rights: root)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (no root); ENOSPC is unit-tested in tests/store")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_full_disk_is_a_clear_error_and_leaves_only_whole_files(tmp_path, tiny_filesystem):
    res = inward(
        "evaluate",
        "--model",
        "mock/m",
        "--task",
        "animals_long",
        "--task",
        "numbers",
        "--n",
        "300",
        "--out",
        tiny_filesystem / "run",
        env={"INWARD_CACHE_DIR": str(tmp_path / "c")},
    )
    refused(res, "disk is full", "--out")
    run = tiny_filesystem / "run"
    assert not list(run.glob(".*.tmp"))
    for p in run.glob("*.jsonl"):  # whatever was written is whole
        for line in p.read_text().splitlines():
            json.loads(line)


class GarbageBackend:
    """Answers every prompt with hostile text: empty, huge, binary, odd unicode."""

    OUTPUTS = [
        "",
        "x" * 200_000,
        "\x00\xff\x01binary\x7f",
        "\u202e\u200b\ud7ff\U0001f600 e\u0301",
        " ",
        "\n\n",
        "<script>alert(1)</script>",
    ]

    def __init__(self):
        self.inner = resolve("mock/garbage")
        self.model_string = "mock/garbage"
        self.i = 0

    def fingerprint(self):
        return {**self.inner.fingerprint(), "garbage": True}

    @property
    def stats(self):
        return self.inner.stats

    def generate(self, prompts, config):
        out = []
        for _ in prompts:
            out.append([self.OUTPUTS[self.i % len(self.OUTPUTS)]] * config.n)
            self.i += 1
        return out

    def answer_distribution(self, prompts, config):
        return self.inner.answer_distribution(prompts, config)


def test_garbage_model_outputs_are_scored_never_crash(tmp_path):
    spec = EvaluateSpec(model="mock/garbage", tasks=["animals_long", "numbers", "english_words_long"], n=14)
    res = run_evaluate(
        spec, tmp_path / "run", cache=ResponseCache(tmp_path / "c"), backends={"mock/garbage": GarbageBackend()}
    )
    objects = [json.loads(x) for x in (tmp_path / "run" / "objects.jsonl").read_text().splitlines()]
    by_response = {o["response"]: o for o in objects}
    assert set(by_response) == set(GarbageBackend.OUTPUTS)
    for bad in ("", " ", "\n\n", "x" * 200_000, "\x00\xff\x01binary\x7f"):
        assert by_response[bad]["compliant"] is False, repr(bad[:20])
    scored = [json.loads(x) for x in (tmp_path / "run" / "scored.jsonl").read_text().splitlines()]
    # every evaluable row was judged, and a garbage hypothetical answer is never "correct"
    for row in scored:
        if row["evaluable"]:
            assert row["correct"] is (row["meta_compliant"] and row["answer_clean"] == row["object_clean"])
    assert res.results[-1]["response_property"] == "micro_average"


def test_bad_model_string_through_study_config(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(STUDY.replace("mock/a", "bundld/qwen"))
    res = inward("study", cfg, "--out", tmp_path / "out", env={"INWARD_CACHE_DIR": str(tmp_path / "c")})
    refused(res, "bundld")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fox sheep", False),
        ("", False),
        ("\n\n", True),
        (" \t ", True),
        ("x" * 20_001, True),
        ("x" * 20_000, False),
        ("a\x00b", True),
        ("caf\u00e9 \U0001f600\n", False),
        ("\ufffd", True),
        ("abc\u202e", True),
        ("\ud800", True),
        ("\ue000", True),
        ("tab\tnew\nline\r", False),
    ],
)
def test_unreadable_guard(text, expected):
    from inward.properties.compliance import failed_checks, unreadable

    assert unreadable(text) is expected
    # it applies whatever the groups, after the paper's own checks
    assert ("unreadable" in failed_checks(text, ["default"])) is expected
    assert ("unreadable" in failed_checks(text, [])) is expected


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"temperature": 12.0}, "temperature must be in [0, 10]"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 0.0, "n": 3}, "use n=1"),
        ({"temperature": 1.0, "n": 0}, "n (samples per prompt)"),
    ],
)
def test_out_of_range_generation_settings_are_input_errors(kwargs, phrase):
    from inward.errors import InwardError
    from inward.models.base import GenerationConfig

    with pytest.raises(InwardError, match=re.escape(phrase)):
        GenerationConfig(**{"max_tokens": 3, **kwargs})
