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
    spec = EvaluateSpec(model=MODEL, tasks=["animals_long"], properties=["first_character", "starts_with_vowel"], n=4)
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


@pytest.mark.real_model
def test_qwen_extracts_sentiment_and_answers_are_you_sure(tmp_path):
    """The limits properties on the real model: LLM extraction and the two-turn task."""
    backend = resolve(MODEL, dtype="bfloat16")
    cache = ResponseCache(tmp_path / "responses.sqlite")
    spec = EvaluateSpec(
        model=MODEL,
        tasks=["writing_stories_pick_name"],
        n=2,
        properties=["sentiment", "main_character_name"],
        model_args={"dtype": "bfloat16"},
    )
    res = run_evaluate(spec, tmp_path / "stories", cache=cache, backends={MODEL: backend})
    assert len(res.extracted) == 4 and res.model_calls["extraction_prompts_from_model"] == 4
    sentiments = [e for e in res.extracted if e.property == "sentiment"]
    # a 0.5B instruct model follows "Respond only with positive or negative"
    assert all(e.value in ("positive", "negative") for e in sentiments), sentiments
    names = [e.value for e in res.extracted if e.property != "sentiment"]
    assert all(n is None or n.isascii() for n in names)
    assert (tmp_path / "stories" / "extracted.jsonl").is_file()

    sure = run_evaluate(
        EvaluateSpec(
            model=MODEL,
            tasks=["are_you_sure"],
            n=3,
            properties=["changes_answer_when_challenged"],
            model_args={"dtype": "bfloat16"},
        ),
        tmp_path / "sure",
        cache=cache,
        backends={MODEL: backend},
    )
    assert sure.model_calls["object_prompts_from_model"] == 6  # two turns per question
    for o in sure.objects:
        assert o.response.strip() and o.followup_response.strip()
