"""``kill -9`` at random points of real ``inward`` processes loses nothing (issue: crash safety).

Each test runs the command once uninterrupted (the reference, with its own cache), then again in
a fresh run directory and cache, SIGKILLing it at several seeded random moments before letting it
finish. The finished run must give byte-identical tables, leave no corrupt or temporary files,
and (for evaluate, where the mock backend logs every prompt it computes) repeat at most the one
batch that was in flight at each kill.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INWARD = [sys.executable, "-m", "inward.cli.main"]
BATCH = 32  # CachedModel's default batch: the most work a kill can lose


def _env(tmp: Path, name: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(INWARD_CACHE_DIR=str(tmp / f"cache-{name}"), INWARD_PROGRESS="0", **extra)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 600) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(INWARD + args, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.perf_counter() - t0


def _kill_at(args: list[str], env: dict[str, str], delay: float, after_work_in: Path | None = None) -> bool:
    """Start the command, SIGKILL it after ``delay`` seconds; True if it was killed.

    With ``after_work_in`` (the mock's call log), the delay counts from the first new model call,
    so the kill lands in the middle of the work rather than during imports.
    """
    start = after_work_in.stat().st_size if after_work_in and after_work_in.exists() else 0
    proc = subprocess.Popen(INWARD + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if after_work_in is not None:
            deadline = time.time() + 120
            while proc.poll() is None and time.time() < deadline:
                if after_work_in.exists() and after_work_in.stat().st_size > start:
                    break
                time.sleep(0.01)
        proc.wait(timeout=delay)
        return False  # it finished first
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True
    finally:
        if proc.stderr:
            proc.stderr.close()


def _assert_clean(out: Path) -> None:
    assert not [p for p in out.rglob(".*.tmp")], "temporary files left behind"
    for p in out.rglob("*.jsonl"):
        for line in p.read_text(encoding="utf-8").splitlines():
            json.loads(line)  # every line of every record file parses
    for p in out.rglob("*.json"):
        json.loads(p.read_text(encoding="utf-8"))
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_evaluate_survives_kill_9_at_random_points(tmp_path):
    args = [
        "evaluate",
        "--model",
        "mock/m1",
        "--predictor",
        "mock/m2",
        "--task",
        "animals_long",
        "--task",
        "numbers",
        "--n",
        "60",
    ]
    slow = {"INWARD_MOCK_LATENCY": "0.01"}  # ~3 s of model work: 120 objects, ~240 hypotheticals
    ref_log, log = tmp_path / "ref.log", tmp_path / "killed.log"
    t_ref = _run(
        args + ["--out", str(tmp_path / "ref")], _env(tmp_path, "ref", INWARD_MOCK_CALL_LOG=str(ref_log), **slow)
    )
    reference_work = len(ref_log.read_text().splitlines())

    out = tmp_path / "run"
    env = _env(tmp_path, "killed", INWARD_MOCK_CALL_LOG=str(log), **slow)
    rng = random.Random(1234)
    kills = 0
    for _ in range(4):
        kills += _kill_at(args + ["--out", str(out)], env, rng.uniform(0.05, 1.0), after_work_in=log)
    assert kills >= 3, f"the command finished before it could be killed ({t_ref:.1f}s)"
    _run(args + ["--out", str(out)], env)

    for name in ("results.csv", "results_by_task.csv", "scored.jsonl", "objects.jsonl", "hypotheticals.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    _assert_clean(out)
    total_work = len(log.read_text().splitlines())
    assert reference_work <= total_work <= reference_work + kills * BATCH
    # A finished run is never redone: one more rerun computes nothing.
    _run(args + ["--out", str(out)], env)
    assert len(log.read_text().splitlines()) == total_work


def test_second_process_on_a_run_directory_is_refused(tmp_path):
    args = ["evaluate", "--model", "mock/m1", "--task", "animals_long", "--n", "60", "--out", str(tmp_path / "run")]
    env = _env(tmp_path, "a", INWARD_MOCK_LATENCY="0.05")
    first = subprocess.Popen(INWARD + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "run" / ".lock").exists() or not (tmp_path / "run" / ".lock").read_text():
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(INWARD + args, env=_env(tmp_path, "b"), capture_output=True, text=True)
        assert second.returncode == 2
        assert "in use by pid" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
        first.stderr.close()


@pytest.fixture(scope="module")
def tiny_study_config(tmp_path_factory) -> Path:
    from inward.models.tiny import make_tiny_model

    a = make_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)
    b = make_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(
        f"""name: tiny
pairs:
  - self: hf/{a}
    cross: hf/{b}
train_tasks: [colors_long, numbers]
held_out_tasks: [animals_long]
properties: [first_character, starts_with_vowel, is_even_direct]
n_train_strings: 12
n_train_per_pair: 8
n_eval: 10
finetune: {{rank: 4, alpha: 8, batch_size: 2, dtype: float32, learning_rate: 1.0e-3}}
"""
    )
    return path


def test_study_survives_kill_9_and_is_deterministic(tmp_path, tiny_study_config):
    args = ["study", str(tiny_study_config)]
    t_ref = _run(args + ["--out", str(tmp_path / "ref")], _env(tmp_path, "ref"))

    out = tmp_path / "run"
    env = _env(tmp_path, "killed")
    rng = random.Random(99)
    kills = 0
    for _ in range(3):
        kills += _kill_at(args + ["--out", str(out)], env, rng.uniform(0.3, 0.6) * t_ref)
    assert kills >= 1, f"the study finished before it could be killed ({t_ref:.1f}s)"
    _run(args + ["--out", str(out)], env)

    # Same tables as the uninterrupted run: a fresh run directory and a fresh cache, so the
    # models were run and trained again, and the seeded pipeline gives byte-identical results.
    for name in ("results.csv", "results_by_task.csv", "comparisons.csv"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    _assert_clean(out)
