from inward.models import Backend, DistributionConfig, GenerationConfig, resolve


def chat(user):
    return [{"role": "system", "content": ""}, {"role": "user", "content": user}]


FREE = chat("What is the next 5 animals in the following text?\nfox sheep duck\n")
CHAR = chat("What is the first character of the response you gave? Respond only with that character.")
TF = chat("Would your response be a palindrome? Answer true or false.")


def test_is_a_backend_and_deterministic():
    a, b = resolve("mock/m1"), resolve("mock/m1")
    assert isinstance(a, Backend)
    cfg = GenerationConfig(max_tokens=10)
    assert a.generate([FREE, CHAR, TF], cfg) == b.generate([FREE, CHAR, TF], cfg)


def test_short_answers_for_short_questions():
    out = resolve("mock/m1").generate([FREE, CHAR, TF], GenerationConfig(max_tokens=10))
    assert len(out[0][0].split()) >= 3
    assert len(out[1][0]) == 1
    assert out[2][0] in ("true", "false")


def test_different_names_behave_differently():
    prompts = [chat(f"Continue: {i}") for i in range(20)]
    cfg = GenerationConfig(max_tokens=10)
    assert resolve("mock/m1").generate(prompts, cfg) != resolve("mock/m2").generate(prompts, cfg)


def test_sampling_depends_on_seed_and_index_not_batch():
    m = resolve("mock/m1")
    cfg = GenerationConfig(max_tokens=8, temperature=1.0, n=4, seed=1)
    together = m.generate([FREE, CHAR], cfg)
    assert [len(r) for r in together] == [4, 4]
    assert m.generate([CHAR], cfg)[0] == together[1]
    assert len(set(together[0])) > 1
    assert m.generate([FREE], GenerationConfig(max_tokens=8, temperature=1.0, n=4, seed=2))[0] != together[0]
    assert m.generate([FREE], GenerationConfig(max_tokens=8, temperature=1.0, n=2, seed=1))[0] == together[0][:2]


def test_distributions():
    m = resolve("mock/m1")
    top = m.answer_distribution([FREE, CHAR], DistributionConfig(top_k=5))
    greedy = m.generate([FREE, CHAR], GenerationConfig(max_tokens=1))
    for d, g in zip(top, greedy):
        assert 0 < sum(d.values()) <= 1 and len(d) <= 5
        assert max(d, key=d.get) == g[0]
    cand = m.answer_distribution([TF], DistributionConfig(candidates=("true", "false")))[0]
    assert set(cand) == {"true", "false"} and abs(sum(cand.values()) - 1) < 1e-9


def test_stats_and_fingerprint():
    m = resolve("mock/m1")
    m.generate([FREE, CHAR], GenerationConfig(max_tokens=4, temperature=0.5, n=3))
    m.answer_distribution([FREE], DistributionConfig())
    s = m.stats
    assert (s.generate_calls, s.prompts_generated, s.completions_generated) == (1, 2, 6)
    assert (s.distribution_calls, s.prompts_scored) == (1, 1)
    fp = m.fingerprint()
    assert fp["backend"] == "mock" and fp["model"] == "mock/m1"
    assert fp != resolve("mock/m1", dtype="bfloat16").fingerprint()
    assert fp != resolve("mock/m1+lora:/x").fingerprint()
