"""The response cache and the run directory."""

from __future__ import annotations

import multiprocessing

import pytest

from inward.errors import InwardError
from inward.models import GenerationConfig, resolve
from inward.store.cache import CachedModel, ResponseCache, cache_key
from inward.store.rundir import RunDir, read_jsonl


def prompt(text: str) -> list[dict]:
    return [{"role": "system", "content": ""}, {"role": "user", "content": text}]


def test_key_covers_model_prompt_config_and_sample():
    fp = {"backend": "x", "weights_sha256": "a", "precision": "float32"}
    base = cache_key("generate", fp, prompt("q"), {"max_tokens": 4}, 0)
    assert base == cache_key("generate", dict(reversed(fp.items())), prompt("q"), {"max_tokens": 4}, 0)
    assert base != cache_key("generate", {**fp, "precision": "bfloat16"}, prompt("q"), {"max_tokens": 4}, 0)
    assert base != cache_key("generate", fp, prompt("q "), {"max_tokens": 4}, 0)
    assert base != cache_key("generate", fp, prompt("q"), {"max_tokens": 5}, 0)
    assert base != cache_key("generate", fp, prompt("q"), {"max_tokens": 4}, 1)
    assert base != cache_key("distribution", fp, prompt("q"), {"max_tokens": 4}, 0)


def test_second_call_is_served_from_cache(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = resolve("mock/a")
    model = CachedModel(backend, cache, batch_size=3)
    prompts = [prompt(f"q{i}") for i in range(7)] + [prompt("q0")]  # one repeat
    first = model.generate(prompts, GenerationConfig(max_tokens=8))
    assert backend.stats.prompts_generated == 7  # the repeat was computed once
    again = CachedModel(backend, ResponseCache(tmp_path / "c.sqlite")).generate(prompts, GenerationConfig(max_tokens=8))
    assert again == first and first[0] == first[-1]
    assert backend.stats.prompts_generated == 7  # no new model calls


def test_samples_are_cached_per_index(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = resolve("mock/a")
    model = CachedModel(backend, cache)
    cfg = GenerationConfig(max_tokens=3, temperature=1.0, n=5, seed=3)
    a = model.generate([prompt("pick")], cfg)
    assert len(a[0]) == 5
    assert model.generate([prompt("pick")], cfg) == a
    assert backend.stats.prompts_generated == 1
    other = model.generate([prompt("pick")], GenerationConfig(max_tokens=3, temperature=1.0, n=5, seed=4))
    assert backend.stats.prompts_generated == 2 and len(other[0]) == 5


def test_unwritable_cache_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")  # a file where the cache folder should be (root-proof)
    with pytest.raises(InwardError, match="INWARD_CACHE_DIR"):
        ResponseCache(tmp_path / "file" / "c.sqlite")


def _hold_lock(path, started, release):
    with RunDir(path):
        started.set()
        release.wait(10)


def test_run_dir_refuses_a_second_process(tmp_path):
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lock, args=(tmp_path / "run", started, release))
    p.start()
    try:
        assert started.wait(10)
        with pytest.raises(InwardError, match="in use by pid"):
            with RunDir(tmp_path / "run"):
                pass
    finally:
        release.set()
        p.join(10)
    with RunDir(tmp_path / "run"):  # free again
        pass


def test_atomic_writes_leave_no_temp_files(tmp_path):
    with RunDir(tmp_path / "run") as run:
        run.write_jsonl("a.jsonl", [{"x": "05"}, {"x": None}])
        run.write_json("run.json", {"status": "complete"})
        run.write_csv("r.csv", [{"a": 0.1, "b": float("nan"), "p": 5.45e-27, "x": 1 / 3}], ["a", "b", "p", "x"])
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == [".lock", "a.jsonl", "r.csv", "run.json"]
    assert read_jsonl(tmp_path / "run" / "a.jsonl") == [{"x": "05"}, {"x": None}]
    assert (tmp_path / "run" / "r.csv").read_text() == "a,b,p,x\n0.1,,5.45e-27,0.3333333333\n"


def test_unwritable_out_dir_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InwardError, match="--out"):
        with RunDir(tmp_path / "file" / "run"):
            pass
