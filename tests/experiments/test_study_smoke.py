"""The smoke preset end to end on the real bundled models (Qwen 0.5B and Gemma 270M), as CI runs it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.real_model
def test_smoke_preset_end_to_end(tmp_path):
    out = tmp_path / "smoke"
    env = {**os.environ, "INWARD_PROGRESS": "0"}
    # Uses the machine's cache: on CI's fresh machine every stage really runs; locally, cached
    # generations are reused but the finetunes run again (a new --out folder).
    res = subprocess.run([sys.executable, "-m", "inward.cli.main", "study", "--preset", "smoke",
                          "--out", str(out)], capture_output=True, text=True, timeout=1500, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "self vs cross (micro average)" in res.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["label"] for r in rows} == {"untrained", "self", "cross"}
    assert all(int(r["count"]) > 0 for r in rows)
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert [t["model"] for t in manifest["training"]] == [
        "bundled/qwen2.5-coder-0.5b-instruct", "bundled/gemma-3-270m"]
    html = (out / "report.html").read_text()
    assert "Self-prediction" in html and "<script" not in html
    assert (out / "comparisons.csv").is_file()
