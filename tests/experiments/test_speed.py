"""`inward models --measure`: measured load and generation speed, stored per machine and shown."""

from __future__ import annotations

from dataclasses import replace

from click.testing import CliRunner

from inward.cli.listing import models
from inward.experiments.speed import _save, measure, stored
from inward.models.tiny import make_tiny_model


def test_a_measurement_is_stored_per_machine_and_shown_by_inward_models(tmp_path, monkeypatch):
    monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path / "cache"))
    model = f"hf/{make_tiny_model(tmp_path / 'tiny', seed=0)}"
    speed = measure(model, dtype="float32", n=4)
    assert speed.prompts == 4 and speed.generated_tokens >= 4
    assert speed.load_seconds > 0 and speed.generate_seconds > 0 and speed.tokens_per_second > 0
    assert stored(model, dtype="float32") == speed
    assert stored(model, dtype="bfloat16") is None  # another precision is another measurement
    assert stored(model, dtype="float32", threads=speed.threads + 1) is None

    listing = CliRunner().invoke(models, [])
    assert listing.exit_code == 0, listing.output
    assert "speed here: not measured on this machine (inward models --measure)" in listing.output
    _save(replace(speed, model="bundled/gemma-3-270m", dtype="bfloat16"))
    listing = CliRunner().invoke(models, [])
    gemma = listing.output.split("bundled/gemma-3-270m", 1)[1].split("bundled/", 1)[0]
    assert f"speed here: load {speed.load_seconds:.1f} s, greedy {speed.tokens_per_second:.1f} tokens/s" in gemma


def test_measure_with_auto_records_the_resolved_precision_and_why(tmp_path, monkeypatch):
    monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path / "cache"))
    model = f"hf/{make_tiny_model(tmp_path / 'tiny', seed=0)}"
    speed = measure(model, n=2)  # dtype auto: resolved (a 32 x 64 test model: float32), then timed
    assert speed.dtype == "float32" and "too small" in speed.precision
    assert stored(model) == speed and stored(model, dtype="float32") == speed
    assert "precision: float32" in speed.line()
