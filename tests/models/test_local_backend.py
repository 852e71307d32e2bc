"""The local backend's contract, checked on a tiny random checkpoint (fp32, CPU)."""

import random

import pytest
import torch

from inward.errors import InwardError
from inward.models import Backend, DistributionConfig, GenerationConfig, resolve
from inward.models.paths import file_sha256


def chat(user, system=""):
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


GREEDY = GenerationConfig(max_tokens=8)
SAMPLED = GenerationConfig(max_tokens=6, temperature=1.0, n=3, seed=7)


def test_is_a_backend_and_lazy(tiny_dir):
    b = resolve(f"hf/{tiny_dir}")
    assert isinstance(b, Backend)
    assert b._model is None  # constructing loads nothing
    b.fingerprint()
    assert b._model is None  # nor does the fingerprint


def test_greedy_batched_equals_one_at_a_time(tiny, prompts):
    batched = tiny.generate(prompts, GREEDY)
    alone = [tiny.generate([p], GREEDY)[0] for p in prompts]
    assert batched == alone
    assert all(len(r) == 1 and isinstance(r[0], str) for r in batched)
    assert len({r[0] for r in batched}) > 1  # not a constant output


def test_order_preserved_under_permutation(tiny, prompts):
    base = tiny.generate(prompts, GREEDY)
    perm = list(range(len(prompts)))
    random.Random(1).shuffle(perm)
    shuffled = tiny.generate([prompts[i] for i in perm], GREEDY)
    assert shuffled == [base[i] for i in perm]


def test_sampling_is_seeded_and_independent_of_batching(tiny, prompts):
    together = tiny.generate(prompts, SAMPLED)
    assert all(len(r) == SAMPLED.n for r in together)
    assert together == tiny.generate(prompts, SAMPLED)
    # Alone, in another batch mix, with another batch size: same samples.
    alone = [tiny.generate([p], SAMPLED)[0] for p in prompts[:3]]
    assert alone == together[:3]
    other = resolve(tiny.model_string, batch_size=5)
    other._tokenizer, other._model, other._format, other._stop_ids = (
        tiny._tokenizer,
        tiny._model,
        tiny._format,
        tiny._stop_ids,
    )
    assert other.generate(prompts[::-1], SAMPLED) == together[::-1]
    # Sample i depends on (seed, prompt, i) only, not on how many samples were asked for.
    two = tiny.generate(prompts, GenerationConfig(max_tokens=6, temperature=1.0, n=2, seed=7))
    assert [r[:2] for r in together] == two
    # Different seed, different samples; samples of one prompt differ from each other.
    reseeded = tiny.generate(prompts, GenerationConfig(max_tokens=6, temperature=1.0, n=3, seed=8))
    assert reseeded != together
    assert any(len(set(r)) > 1 for r in together)


def test_top_p_keeps_only_the_nucleus(tiny, prompts):
    # With a tiny nucleus only the most likely token survives: sampling equals greedy.
    nucleus = GenerationConfig(max_tokens=6, temperature=1.0, top_p=1e-6, n=2, seed=3)
    greedy = tiny.generate(prompts, GenerationConfig(max_tokens=6))
    assert tiny.generate(prompts, nucleus) == [[g[0], g[0]] for g in greedy]


def test_top_k_distribution_matches_greedy_and_batching(tiny, prompts):
    dists = tiny.answer_distribution(prompts, DistributionConfig(top_k=10))
    first = tiny.generate(prompts, GenerationConfig(max_tokens=1))
    compared = 0
    for d, f in zip(dists, first):
        assert 0 < sum(d.values()) <= 1 + 1e-6
        assert len(d) <= 10 and all(p > 0 for p in d.values())
        if "\ufffd" not in f[0]:  # a partial UTF-8 token is keyed by its raw token string
            assert max(d, key=d.get) == f[0]
            compared += 1
    assert compared >= 4
    alone = [tiny.answer_distribution([p], DistributionConfig(top_k=10))[0] for p in prompts]
    for a, d in zip(alone, dists):
        assert a.keys() == d.keys()
        assert all(abs(a[k] - d[k]) < 1e-4 for k in a)


def _reference_candidate_probs(backend, prompt, candidates):
    """Unbatched, uncached scoring of prompt+candidate+end, to check the fast path against."""
    tok, model = backend._tokenizer, backend._model
    ids = tok(backend.render(prompt), add_special_tokens=False)["input_ids"]
    scores = []
    for c in candidates:
        cand = tok(c, add_special_tokens=False)["input_ids"] + [backend.stop_ids[0]]
        with torch.inference_mode():
            logits = model(torch.tensor([ids + cand])).logits[0].float()
        logp = torch.log_softmax(logits, -1)[len(ids) - 1 : -1]
        scores.append(logp.gather(-1, torch.tensor(cand).unsqueeze(-1)).sum())
    return dict(zip(candidates, torch.softmax(torch.stack(scores), -1).tolist()))


def test_candidate_distribution(tiny, prompts):
    cands = ("fox", "A", "sheep duck", "", "true")
    dists = tiny.answer_distribution(prompts, DistributionConfig(candidates=cands))
    for p, d in zip(prompts, dists):
        assert list(d) == list(cands)
        assert abs(sum(d.values()) - 1) < 1e-6
        ref = _reference_candidate_probs(tiny, p, cands)
        assert all(abs(ref[c] - d[c]) < 1e-4 for c in cands), (ref, d)
    with pytest.raises(InwardError, match="distinct"):
        tiny.answer_distribution(prompts[:1], DistributionConfig(candidates=("a", "a")))


def test_stats_count_real_work(tiny_dir, prompts):
    b = resolve(f"hf/{tiny_dir}", batch_size=4)
    b.generate(prompts, GREEDY)
    b.generate(prompts[:2], SAMPLED)
    b.answer_distribution(prompts[:3], DistributionConfig())
    s = b.stats
    assert (s.generate_calls, s.prompts_generated, s.completions_generated) == (2, 9, 7 + 6)
    assert (s.distribution_calls, s.prompts_scored) == (1, 3)
    assert s.seconds > 0 and s.extra["tokens_generated"] > 0


def test_fingerprint_identifies_precision_and_template(tiny_dir):
    f32 = resolve(f"hf/{tiny_dir}").fingerprint()
    bf16 = resolve(f"hf/{tiny_dir}", dtype="bfloat16").fingerprint()
    assert f32["precision"] == "float32" and bf16["precision"] == "bfloat16"
    assert f32 != bf16
    assert f32["weights_sha256"] == bf16["weights_sha256"] == resolve(f"hf/{tiny_dir}").fingerprint()["weights_sha256"]
    assert f32["backend"] == "transformers" and f32["model"] == f"hf/{tiny_dir}"
    assert f32["adapter_sha256"] is None
    assert f32["chat_template"]["source"] == "model" and len(f32["chat_template"]["sha256"]) == 64
    assert f32["stop_tokens"] == ["<|im_end|>"]


@pytest.fixture(scope="module")
def adapter_dir(tiny_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    # init_lora_weights=False: random B, so the adapter actually changes the model.
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(model, cfg).save_pretrained(str(out))
    return out


def test_adapter_is_merged_and_fingerprinted(tiny_dir, adapter_dir, prompts):
    base = resolve(f"hf/{tiny_dir}")
    tuned = resolve(f"hf/{tiny_dir}+lora:{adapter_dir}")
    fp = tuned.fingerprint()
    assert fp["adapter_sha256"] == file_sha256(adapter_dir / "adapter_model.safetensors")
    assert fp["model"] == f"hf/{tiny_dir}" and tuned.model_string.endswith(f"+lora:{adapter_dir}")
    assert fp != base.fingerprint()
    assert tuned.generate(prompts, GREEDY) != base.generate(prompts, GREEDY)
    # Merged: plain linear layers, no peft wrappers left to slow generation down.
    assert not any("lora" in name for name, _ in tuned._model.named_modules())
    # and weights that require grad, as a plain load (frozen ones make CPU prefill 7x slower)
    assert all(p.requires_grad for p in tuned._model.parameters())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_merge_equals_the_fp32_merge(tiny_dir, adapter_dir, dtype, monkeypatch):
    # The merge reads each target weight from the checkpoint in fp32, adds the delta and rounds
    # once: the same tensors as merging into a whole fp32 model and copying it into a bf16 one.
    tuned = resolve(f"hf/{tiny_dir}+lora:{adapter_dir}", dtype=dtype)
    with monkeypatch.context() as m:
        m.setattr(tuned.checkpoint, "merged_via_fp32", lambda p: pytest.fail("fell back to the fp32 merge"))
        direct = tuned.load().state_dict()
    via_fp32 = tuned.checkpoint.merged_via_fp32(dtype).state_dict()
    assert direct.keys() == via_fp32.keys()
    for name, value in via_fp32.items():
        assert value.dtype == getattr(torch, dtype) and torch.equal(direct[name], value), name
    assert all(p.requires_grad for p in tuned._model.parameters())
    base = resolve(f"hf/{tiny_dir}", dtype=dtype).load().state_dict()
    changed = [n for n in base if not torch.equal(base[n], direct[n])]
    assert changed and all(any(t in n for t in ("q_proj", "v_proj", "down_proj")) for n in changed)


def test_adapter_the_direct_merge_cannot_take_is_merged_in_fp32(tiny_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False, use_dora=True)
    get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_dir)), cfg).save_pretrained(str(tmp_path))
    tuned = resolve(f"hf/{tiny_dir}+lora:{tmp_path}", dtype="bfloat16")
    calls = []
    fallback = tuned.checkpoint.merged_via_fp32
    tuned.checkpoint.merged_via_fp32 = lambda p: calls.append(1) or fallback(p)  # type: ignore[method-assign]
    model = tuned.load()  # DoRA: falls back to the fp32 merge
    assert calls == [1]
    assert not any("lora" in name for name, _ in model.named_modules())
    reference = fallback("bfloat16").state_dict()
    assert all(torch.equal(v, reference[n]) for n, v in model.state_dict().items())
    base = resolve(f"hf/{tiny_dir}", dtype="bfloat16").load().state_dict()
    assert any(not torch.equal(base[n], v) for n, v in reference.items())


def test_bad_adapter_path(tiny_dir, tmp_path):
    with pytest.raises(InwardError, match="adapter"):
        resolve(f"hf/{tiny_dir}+lora:{tmp_path}")


def test_close_frees_and_reloads(tiny_dir, prompts):
    b = resolve(f"hf/{tiny_dir}")
    first = b.generate(prompts[:2], GREEDY)
    b.close()
    assert b._model is None
    assert b.generate(prompts[:2], GREEDY) == first


def test_completion_is_not_stripped(tiny, monkeypatch):
    # Force the first generated token to be a space-prefixed one and check it survives decoding.
    tok = tiny._tokenizer
    space_tok = tok(" fox", add_special_tokens=False)["input_ids"]
    assert len(space_tok) == 1
    from transformers import LogitsProcessor

    class Force(LogitsProcessor):
        def __call__(self, input_ids, scores):
            out = torch.full_like(scores, float("-inf"))
            out[:, space_tok[0]] = 0
            return out

    real_generate = tiny._model.generate
    monkeypatch.setattr(tiny._model, "generate", lambda **kw: real_generate(logits_processor=[Force()], **kw))
    out = tiny.generate([chat("hi")], GenerationConfig(max_tokens=2))
    assert out == [[" fox fox"]]


def test_checkpoint_generation_defaults_are_ignored(tiny_dir, tmp_path, prompts):
    # Checkpoints ship decoding defaults (Qwen: repetition_penalty=1.05, top_k=20 ...); inward's
    # GenerationConfig must be the whole decoding spec, so a hostile one changes nothing.
    import json
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(tiny_dir, hostile)
    cfg = {
        "do_sample": True,
        "temperature": 5.0,
        "repetition_penalty": 3.0,
        "no_repeat_ngram_size": 1,
        "min_new_tokens": 8,
        "bad_words_ids": [[5], [6]],
    }
    (hostile / "generation_config.json").write_text(json.dumps(cfg))
    assert resolve(f"hf/{hostile}").generate(prompts, GREEDY) == resolve(f"hf/{tiny_dir}").generate(prompts, GREEDY)


def test_shared_prefix_reuse_changes_no_output(tiny_dir):
    """A batch's common prompt prefix is computed once and its cache reused: fp32 greedy and
    sampled outputs are exactly those of the plain left-padded batch."""
    from inward.models import local, parse_model_string

    instruction = "What is the next 5 animals in the following text? Respond only with the next 5 animals.\n"
    prompts = [chat(instruction + s) for s in ["cat dog", "fox", "owl bat eel yak", "a b c d e f g", "sheep"]]
    on = resolve(f"hf/{tiny_dir}", batch_size=5, threads=1)
    off = local.LocalBackend(parse_model_string(f"hf/{tiny_dir}"), batch_size=5, threads=1, share_prefix=False)
    ids = on.tokenizer([on.render(p) for p in prompts], add_special_tokens=False)["input_ids"]
    assert local._common_prefix(ids) >= local.MIN_SHARED_PREFIX  # the fast path is really taken
    for config in (GenerationConfig(max_tokens=8), SAMPLED):
        assert on.generate(prompts, config) == off.generate(prompts, config)
    assert on.generate(prompts, GREEDY) == [on.generate([p], GREEDY)[0] for p in prompts]


def test_shared_prefix_reuse_on_a_sliding_window_architecture(tiny_dir):
    """Gemma 3 (hybrid sliding-window cache): prefix reuse changes no fp32 output either, with the
    window larger than the prompts (reuse taken) and smaller (reuse skipped)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from inward.models import local, parse_model_string

    instruction = "What is the next 5 animals in the following text? Respond only with the next 5 animals.\n"
    prompts = [chat(instruction + s) for s in ["cat dog", "fox", "owl bat eel yak", "sheep"]]
    for window in (512, 24):
        on = resolve(f"hf/{tiny_dir}", batch_size=4, threads=1)
        off = local.LocalBackend(parse_model_string(f"hf/{tiny_dir}"), batch_size=4, threads=1, share_prefix=False)
        torch.manual_seed(0)
        for b in (on, off):
            b.load()
        config = Gemma3TextConfig(
            vocab_size=on._model.config.vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=4,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            sliding_window=window,
        )
        gemma = Gemma3ForCausalLM(config).eval()
        gemma.generation_config = on._model.generation_config
        on._model = off._model = gemma
        for cfg in (GenerationConfig(max_tokens=8), SAMPLED):
            assert on.generate(prompts, cfg) == off.generate(prompts, cfg)


def test_prefix_reuse_is_in_the_fingerprint_only_where_it_can_change_outputs(tiny_dir):
    from inward.models import local, parse_model_string

    spec = parse_model_string(f"hf/{tiny_dir}")
    fp32 = local.LocalBackend(spec).fingerprint()
    assert "generation_layout" not in fp32  # exact in fp32: cached fp32 responses stay valid
    bf16 = local.LocalBackend(spec, dtype="bfloat16").fingerprint()
    plain = local.LocalBackend(spec, dtype="bfloat16", share_prefix=False).fingerprint()
    assert bf16["generation_layout"] == "shared-prefix-kv-v1" and "generation_layout" not in plain


@pytest.mark.parametrize("value, expected", [("false", False), ("OFF", False), (True, True), ("1", True)])
def test_share_prefix_parses_booleans(tiny_dir, value, expected):
    assert resolve(f"hf/{tiny_dir}", share_prefix=value).share_prefix is expected


def test_misspelt_boolean_model_arg_is_an_error(tiny_dir):
    with pytest.raises(InwardError, match="share_prefix='flase'"):
        resolve(f"hf/{tiny_dir}", share_prefix="flase")


def test_progress_off_silences_transformers_bars(tiny_dir, monkeypatch, capsys):
    import transformers

    monkeypatch.setenv("INWARD_PROGRESS", "0")
    transformers.utils.logging.enable_progress_bar()
    backend = resolve(f"hf/{tiny_dir}", threads=1)
    backend.generate([[{"role": "user", "content": "fox"}]], GenerationConfig(max_tokens=2))
    assert not transformers.utils.logging.is_progress_bar_enabled()
    assert "Loading weights" not in capsys.readouterr().err
    transformers.utils.logging.enable_progress_bar()


def test_hidden_states_batched_equal_each_prompt_alone(tiny, prompts):
    """Left padding and explicit positions give every row its own last-token state: batched
    activations equal a plain forward of each prompt alone, at every layer asked for."""
    import numpy as np

    layers = [0, 1, tiny.num_layers()]
    acts = tiny.hidden_states(prompts, layers)
    assert acts.shape == (len(prompts), 3, tiny._model.config.hidden_size) and acts.dtype == np.float32
    tok = tiny._tokenizer
    for i, p in enumerate(prompts):
        ids = tok([tiny.render(p)], add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = tiny._model(input_ids=ids, output_hidden_states=True)
        for j, layer in enumerate(layers):
            np.testing.assert_allclose(acts[i, j], out.hidden_states[layer][0, -1].float().numpy(), atol=1e-4)
    assert not np.allclose(acts[0, 2], acts[1, 2])  # different prompts, different states
    with pytest.raises(InwardError, match="layer"):
        tiny.hidden_states(prompts[:1], [tiny.num_layers() + 1])
