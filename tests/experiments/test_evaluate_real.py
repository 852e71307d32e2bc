"""End to end on the real bundled Qwen2.5-Coder-0.5B-Instruct (minutes on a CPU)."""

from __future__ import annotations

import json

import pytest

from inward.experiments.evaluate import EvaluateSpec, run_evaluate
from inward.models import resolve
from inward.store.cache import ResponseCache

MODEL = "bundled/qwen2.5-coder-0.5b-instruct"


@pytest.mark.real_model
def test_qwen_predicts_itself_and_reruns_from_cache(tmp_path):
    backend = resolve(MODEL)
    cache = ResponseCache(tmp_path / "responses.sqlite")  # fresh: the model must really run
    spec = EvaluateSpec(model=MODEL, tasks=["animals_long"],
                        properties=["first_character", "starts_with_vowel"], n=4)
    first = run_evaluate(spec, tmp_path / "a", cache=cache, backends={MODEL: backend})
    assert first.model_calls["object_prompts_from_model"] == 4
    # a real model answers the object-level task with animal words
    for obj in first.objects:
        assert obj.response.strip() and obj.response.split()[0].isalpha()
    assert first.model_calls["hypothetical_prompts_from_model"] > 0
    micro = first.results[-1]
    assert micro["response_property"] == "micro_average" and micro["count"] > 0
    assert 0.0 <= micro["accuracy"] <= 1.0
    fp = json.loads((tmp_path / "a" / "run.json").read_text())["models"][MODEL]
    assert fp["weights_sha256"].startswith("1d9614638d18024d")

    generated = backend.stats.prompts_generated
    again = run_evaluate(spec, tmp_path / "b", cache=cache, backends={MODEL: backend})
    assert backend.stats.prompts_generated == generated  # no model calls on the rerun
    assert again.model_calls["object_prompts_from_model"] == 0
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()
