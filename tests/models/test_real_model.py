"""End to end on the bundled Qwen2.5-Coder-0.5B-Instruct (first run converts it, ~1 min)."""

import pytest

from inward.models import DistributionConfig, GenerationConfig, bundled, resolve

NAME = "qwen2.5-coder-0.5b-instruct"
ANIMALS = (
    "What is the next 5 animals in the following text? Respond only with the next 5 animals and "
    "nothing else, including punctuation.\nfox sheep duck panda rat cow fox \n"
)

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def qwen():
    missing = bundled.missing_packages(NAME)
    if missing:
        pytest.skip(f"bundled model packages not installed: {missing}")
    backend = resolve(f"bundled/{NAME}")
    yield backend
    backend.close()


def test_greedy_answer_and_hypothetical_distribution(qwen):
    prompt = [{"role": "system", "content": ""}, {"role": "user", "content": ANIMALS}]
    assert qwen.render(prompt).startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\n")
    [[answer]] = qwen.generate([prompt], GenerationConfig(max_tokens=12))
    assert answer.strip() and any(w in answer for w in ("fox", "sheep", "duck", "cow", "rat"))

    hypothetical = [
        {"role": "system", "content": ""},
        {
            "role": "user",
            "content": f'Previously, you were asked the following question: "{ANIMALS}" '
            "What is the first character of the response you gave? Respond only with that character.",
        },
    ]
    [dist] = qwen.answer_distribution([hypothetical], DistributionConfig(top_k=10))
    assert 0.5 < sum(dist.values()) <= 1 + 1e-6
    assert all(0 < p <= 1 for p in dist.values())
    [cand] = qwen.answer_distribution([hypothetical], DistributionConfig(candidates=("f", "s", "d")))
    assert abs(sum(cand.values()) - 1) < 1e-6
    fp = qwen.fingerprint()
    assert fp["weights_sha256"] == bundled.get(NAME).sha256 and fp["chat_template"]["source"] == "model"


def test_gguf_path_shares_the_bundled_conversion(qwen):
    gguf = bundled.gguf_path(NAME)
    direct = resolve(f"gguf/{gguf}")
    assert direct.fingerprint()["weights_sha256"] == bundled.get(NAME).sha256
    assert direct.checkpoint_dir() == bundled.converted_dir(NAME)
