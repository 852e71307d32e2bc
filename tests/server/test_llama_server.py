"""The OpenAI-compatible backend against a REAL server: llama.cpp (llama-cpp-python[server])
serving the bundled Qwen2.5-Coder-0.5B GGUF on 127.0.0.1, started once per session.

- ``inward evaluate`` end to end through the CLI, with a fake key in the environment that must
  reach the server and must not reach the run directory or the cache;
- answer distributions read from the server's logprobs, consistent with its greedy answers;
- a run through a fault-injecting proxy (429 with Retry-After, 500, a hang past the client
  timeout, a dropped connection, a malformed body) that still completes, with every prompt
  computed and cached exactly once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from api_fakes import FaultProxy

pytestmark = pytest.mark.server

KEY = "sk-llama-DISTINCTIVE-51c3e2a9f0"


def _grep(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _cache_rows(cache_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(cache_dir / "responses.sqlite") as db:
        return db.execute("SELECT key, kind FROM entries").fetchall()


def test_evaluate_cli_end_to_end(llama_server, tmp_path):
    upstream_port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    cache, out = tmp_path / "cache", tmp_path / "run"
    env = {**os.environ, "INWARD_CACHE_DIR": str(cache), "INWARD_API_KEY": KEY, "INWARD_PROGRESS": "0"}
    with FaultProxy(upstream_port, {}) as proxy:  # no faults: it records what the client sent
        url = proxy.url
        cmd = [
            sys.executable,
            "-m",
            "inward.cli.main",
            "evaluate",
            "--model",
            f"openai-compatible/qwen@{url}",
            "--task",
            "animals_long",
            "--property",
            "first_character",
            "--n",
            "4",
            "--out",
            str(out),
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first_character" in done.stdout and KEY not in done.stdout + done.stderr
    objects = [json.loads(line) for line in (out / "objects.jsonl").read_text().splitlines()]
    assert len(objects) == 4 and len({o["string"] for o in objects}) == 4
    assert any(o["response"].strip() for o in objects)  # the real model answered
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    fp = run["models"][f"openai-compatible/qwen@{url}"]
    assert fp["answer_distribution"].startswith("logprobs") and fp["base_url"] == url
    # The key went to the server with every request, and nowhere else.
    assert set(proxy.auth_headers) == {f"Bearer {KEY}"} and len(proxy.auth_headers) >= 5
    assert _grep(out, KEY.encode()) == [] and _grep(cache, KEY.encode()) == []
    assert _grep(out, b"51c3e2a9f0") == [] and _grep(cache, b"51c3e2a9f0") == []


def test_answer_distribution_from_logprobs(llama_server):
    from inward.models import resolve
    from inward.models.base import DistributionConfig, GenerationConfig

    prompts = [
        [{"role": "user", "content": f"Name one {kind}. Answer with one word."}]
        for kind in ("animal", "colour", "country")
    ]
    with resolve(f"openai-compatible/qwen@{llama_server}", max_concurrency=2) as be:
        dists = be.answer_distribution(prompts, DistributionConfig(top_k=5))
        greedy = be.generate(prompts, GenerationConfig(max_tokens=4))
        fp = be.fingerprint()
    assert fp["answer_distribution"].startswith("logprobs")
    assert be.stats.extra["distribution_method"] == {"logprobs": 3}
    for d, (text,) in zip(dists, greedy):
        assert 1 <= len(d) <= 5 and all(0 < p <= 1 for p in d.values()) and sum(d.values()) <= 1 + 1e-6
        top = max(d, key=d.get)
        assert text.startswith(top), (text, d)  # greedy's first token is the most probable one


def test_run_survives_injected_faults(llama_server, tmp_path):
    from inward.experiments.evaluate import EvaluateSpec, run_evaluate
    from inward.models import resolve
    from inward.store.cache import ResponseCache

    upstream_port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    schedule = {2: "429", 4: "500", 6: "hang", 8: "drop", 10: "malformed"}
    cache_dir = tmp_path / "cache"
    with FaultProxy(upstream_port, schedule, retry_after="1", hang_seconds=8) as proxy:
        model = f"openai-compatible/qwen@{proxy.url}"
        args = {"max_concurrency": "2", "timeout": "6", "retry_base_delay": "0.05"}
        backend = resolve(model, **args)
        spec = EvaluateSpec(model=model, tasks=["animals_long"], properties=["first_character"], n=6, model_args=args)
        result = run_evaluate(
            spec, tmp_path / "run", cache=ResponseCache(cache_dir / "responses.sqlite"), backends={model: backend}
        )
        backend.close()
    assert sorted(proxy.faults()) == sorted(schedule.values())
    assert backend.stats.extra["retries_by_reason"] == {
        "rate_limit": 1,
        "server_error": 1,
        "timeout": 1,
        "connection": 1,
        "malformed": 1,
    }
    # No record lost or duplicated.
    assert len(result.objects) == 6 and len({o.string for o in result.objects}) == 6
    assert 1 <= len(result.hypotheticals) <= len(result.objects)
    assert len({h.string for h in result.hypotheticals}) == len(result.hypotheticals)
    # Every prompt reached the model exactly once (the probe aside) and is cached exactly once.
    forwarded = Counter(json.dumps(json.loads(b)["messages"], sort_keys=True) for b in proxy.bodies)
    probe = json.dumps([{"role": "user", "content": "Reply with one word: ok"}], sort_keys=True)
    forwarded.pop(probe, None)
    assert set(forwarded.values()) == {1}
    rows = _cache_rows(cache_dir)
    assert len(rows) == len(forwarded) == len(result.objects) + len(result.hypotheticals)
    assert backend.stats.prompts_generated == len(rows)


def test_calibration_distributions_through_the_server(llama_server, tmp_path):
    """Experiment 1b's collection on the served model: exact distributions from logprobs,
    sampled ones from seeded samples (llama.cpp ignores n, so one request per sample)."""
    from inward.experiments.calibration import collect_calibration
    from inward.models import resolve
    from inward.properties.registry import resolve_property
    from inward.store.cache import CachedModel, ResponseCache
    from inward.tasks import resolve_tasks

    (task,) = resolve_tasks("animals_long")
    prop = resolve_property("first_character", task.name)
    strings = [s.string for s in task.load("val", 3, 0, None, None)]
    backend = resolve(f"openai-compatible/qwen@{llama_server}", max_concurrency=2)
    model = CachedModel(backend, ResponseCache(tmp_path / "responses.sqlite"))
    records = collect_calibration(
        "self",
        model,
        model,
        task,
        [prop],
        strings,
        n_exact=3,
        n_sampled=2,
        samples=3,
        temperature=1.0,
        max_tokens=8,
        top_k=10,
        seed=0,
        scoring="paper",
        object_name="qwen-served",
        meta_name="qwen-served",
    )
    backend.close()
    assert Counter(r.method for r in records) == {"exact": 3, "sampled": 2}
    exact = [r for r in records if r.method == "exact"]
    assert sum(1 for r in exact if r.object_dist) >= 1  # first-token logprobs carried first characters
    assert backend.stats.extra["distribution_method"] == {"logprobs": 6}  # 3 object + 3 hypothetical
    assert backend.stats.extra.get("n_param_ignored") is True
