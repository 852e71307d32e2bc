"""Model fidelity: each bundled model, as inward loads it, is the model llama.cpp runs from the
same GGUF file (llama.cpp comes with the `server` extra, which `make test` installs).

Tolerances, from the measurement in docs/training.md (2-core CPU, this test's own inputs):
- mean NLL on the paragraph: transformers fp32 vs llama.cpp differed by 0.024 (Gemma) and 0.001
  (Qwen) nats/token, bf16 by 0.029 and 0.004. The weights are the same numbers (dequantising
  Q4_K is exact); llama.cpp additionally rounds activations to 8 bits inside its Q4_K dot
  products. 0.06 nats/token is twice the largest difference seen, and far below what a real
  conversion fault does (a wrong norm offset, a missing embedding scale or an untied LM head
  moves the mean by whole nats).
- greedy decoding, 12 tokens: identical on 5 of 6 (model, prompt) pairs; Gemma's "Once upon a
  time" story diverged after 4 tokens at a near-tie ("a little girl named Lily" vs "a man named
  John"). The test asks for the first 3 tokens everywhere and all 12 on two of three prompts.
"""

from __future__ import annotations

import math

import pytest

from inward.models import bundled, chat
from inward.models import fidelity as F

pytestmark = pytest.mark.real_model
MODELS = ["qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time"]


@pytest.fixture(scope="module", params=MODELS)
def engines(request):
    pytest.importorskip("llama_cpp", reason="llama.cpp comes with the server extra (make test installs it)")
    from transformers import AutoTokenizer

    name = request.param
    if bundled.missing_packages(name):
        pytest.skip(f"bundled model {name} is not installed")
    checkpoint = bundled.converted_dir(name)
    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    llm = F.llama_cpp_model(bundled.gguf_path(name))
    yield name, checkpoint, tok, llm
    llm.close()


def test_tokenisation_and_paragraph_loss_match_llama_cpp(engines):
    name, checkpoint, tok, llm = engines
    ids = tok(F.PARAGRAPH, add_special_tokens=True)["input_ids"]
    assert llm.tokenize(F.PARAGRAPH.encode(), add_bos=tok.bos_token_id is not None) == ids
    reference = F.llama_cpp_nll(llm, ids)
    mean_ref = sum(reference) / len(reference)
    assert 1.5 < mean_ref < 6, f"{name}: llama.cpp's own loss on plain English is implausible: {mean_ref:.2f}"
    for dtype in ("float32", "bfloat16"):
        ours = F.transformers_nll(F.transformers_model(checkpoint, dtype), ids)
        mean = sum(ours) / len(ours)
        assert abs(mean - mean_ref) < 0.06, f"{name} {dtype}: {mean:.4f} vs llama.cpp {mean_ref:.4f} nats/token"


def test_greedy_continuations_match_llama_cpp(engines):
    name, checkpoint, tok, llm = engines
    model = F.transformers_model(checkpoint)
    agree = []
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=True)["input_ids"]
        ours, theirs = F.greedy_tokens_transformers(model, ids, 12), F.greedy_tokens_llama_cpp(llm, ids, 12)
        k = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), 12)
        assert k >= 3, f"{name} {prompt!r}: {tok.decode(ours)!r} vs llama.cpp {tok.decode(theirs)!r}"
        agree.append(k == 12)
    assert sum(agree) >= 2, f"{name}: full 12-token agreement on only {sum(agree)} of {len(PROMPTS)} prompts"


def test_gemma_end_of_turn_costs_more_than_a_uniform_guess_in_both_engines():
    """The ~20-nat first-step loss of the old Gemma cross-predictor was the model, not inward:
    llama.cpp gives base Gemma's <end_of_turn> the same ~31 nats after an answer."""
    pytest.importorskip("llama_cpp", reason="llama.cpp comes with the server extra (make test installs it)")
    from transformers import AutoTokenizer

    name = "gemma-3-270m"
    if bundled.missing_packages(name):
        pytest.skip(f"bundled model {name} is not installed")
    checkpoint = bundled.converted_dir(name)
    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    llm = F.llama_cpp_model(bundled.gguf_path(name))
    prompt = [
        {"role": "user", "content": "What is the first character of the word 'fox'? Respond only with that character."}
    ]
    text = chat.render(tok, chat.FALLBACKS["gemma"], prompt) + "f"
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<end_of_turn>")]
    ours, theirs = F.transformers_nll(F.transformers_model(checkpoint), ids)[-1], F.llama_cpp_nll(llm, ids)[-1]
    llm.close()
    assert ours > math.log(len(tok)) and theirs > math.log(len(tok))
    assert ours == pytest.approx(theirs, abs=0.5)
