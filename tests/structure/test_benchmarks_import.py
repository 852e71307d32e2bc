"""Every benchmark script imports: a module moved inside inward must not break them silently
(benchmarks/run.py imported task_properties from a module it had left, unnoticed until it was run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_benchmark_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the imports; main() is behind __name__ == "__main__"
    assert hasattr(module, "main")


def test_seed_seconds_split_a_run_into_seeds_and_shared_stages(tmp_path):
    import json

    sys.path.insert(0, str(BENCHMARKS[0].parent))
    import run

    stages = {
        "object-level train, m": 10.0,
        "untrained evaluation, m": 5.0,
        "calibration, untrained: m": 100.0,
        "seed 0: self-prediction finetune, m": 20.0,
        "seed 0: calibration, self: m": 50.0,
        "seed 0: behaviour change: shift finetune of m": 70.0,
        "seed 1: self-prediction finetune, m": 30.0,
        "seed 1: self evaluation, m": 2.0,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run.json").write_text(json.dumps({"stage_seconds": stages}))
    assert run.seed_seconds(tmp_path / "a") == ({0: 20.0, 1: 32.0}, 15.0)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.json").write_text(
        json.dumps({"stage_seconds": {"seed 1: x": 64.0, "object-level train": 30.0}})
    )
    cmp = run.compare_runs(tmp_path / "a", tmp_path / "b")
    assert cmp["seeds_compared"] == [1] and cmp["seed_ratio"] == 2.0 and cmp["shared_ratio"] == 2.0
