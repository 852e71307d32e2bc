"""The vLLM backend without vLLM: pure request/response mapping, and the whole backend driven
through a fake ``vllm`` module whose engine computes real logits with the tiny test checkpoint.

The fake engine follows vLLM's documented output shapes (``RequestOutput.outputs[0].token_ids``
including the stop token, ``logprobs`` as one ``{token id: Logprob(logprob, rank)}`` per
generated position with the sampled token added, ``prompt_logprobs`` with ``None`` first) and
rejects keyword arguments that vLLM's ``LLM``/``SamplingParams`` don't have. Because its logits
come from the same tiny model as the local backend, top-k and candidate distributions from the
vLLM backend must equal the local backend's: that checks the mapping end to end.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from inward.errors import InwardError
from inward.models import DistributionConfig, GenerationConfig, resolve
from inward.models import vllm_backend as vb
from inward.models.spec import parse_model_string

# ---- a fake vllm module ----------------------------------------------------------------

SAMPLING_FIELDS = {
    "n",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "max_tokens",
    "stop_token_ids",
    "logprobs",
    "prompt_logprobs",
    "skip_special_tokens",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
}
LLM_FIELDS = {
    "model",
    "dtype",
    "generation_config",
    "max_logprobs",
    "seed",
    "max_num_seqs",
    "enable_lora",
    "max_loras",
    "max_lora_rank",
}


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class SamplingParams:
    def __init__(self, **kw):
        unknown = set(kw) - SAMPLING_FIELDS
        assert not unknown, f"SamplingParams has no {unknown}"
        self.kw = {
            "n": 1,
            "temperature": 1.0,
            "top_p": 1.0,
            "seed": None,
            "logprobs": None,
            "prompt_logprobs": None,
            "stop_token_ids": [],
            "max_tokens": 16,
            **kw,
        }
        assert self.kw["n"] == 1, "the backend must send one request per completion"


class LoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        assert lora_int_id > 0
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path


def _entry(logp_row: torch.Tensor, chosen: int, k: int) -> dict[int, Logprob]:
    """vLLM's per-position dict: the chosen token with its true rank, then the top k."""
    order = torch.argsort(logp_row, descending=True)
    rank = int((order == chosen).nonzero()[0, 0]) + 1
    out = {chosen: Logprob(float(logp_row[chosen]), rank)}
    for r, t in enumerate(order[:k].tolist(), start=1):
        out[t] = Logprob(float(logp_row[t]), r)
    return out


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, **kw):
        unknown = set(kw) - LLM_FIELDS
        assert not unknown, f"LLM has no {unknown}"
        from transformers import AutoModelForCausalLM

        self.kw = kw
        self.model = AutoModelForCausalLM.from_pretrained(kw["model"], dtype=torch.float32).eval()
        self.calls: list[tuple[list, list, object]] = []
        FakeLLM.instances.append(self)

    def _logp(self, ids: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            return torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)

    def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=True):
        assert isinstance(sampling_params, list) and len(sampling_params) == len(prompts)
        self.calls.append((prompts, sampling_params, lora_request))
        outs = []
        for p, sp in zip(prompts, sampling_params):
            kw, ids = sp.kw, list(p["prompt_token_ids"])
            gen = torch.Generator().manual_seed(kw["seed"]) if kw["seed"] is not None else None
            prompt_lp = None
            if kw["prompt_logprobs"] is not None:
                full = self._logp(ids)
                prompt_lp = [None] + [_entry(full[k - 1], ids[k], kw["prompt_logprobs"]) for k in range(1, len(ids))]
            tokens, logprobs = [], []
            for _ in range(kw["max_tokens"]):
                row = self._logp(ids + tokens)[-1]
                if kw["temperature"] == 0:
                    t = int(row.argmax())
                else:
                    t = int(torch.multinomial(torch.softmax(row / kw["temperature"], -1), 1, generator=gen))
                if kw["logprobs"] is not None:
                    logprobs.append(_entry(row, t, kw["logprobs"]))
                tokens.append(t)
                if t in kw["stop_token_ids"]:
                    break
            outs.append(
                SimpleNamespace(
                    prompt_logprobs=prompt_lp, outputs=[SimpleNamespace(token_ids=tokens, logprobs=logprobs or None)]
                )
            )
        return outs


fake_vllm = SimpleNamespace(
    __name__="vllm", __version__="0.0-fake", LLM=FakeLLM, SamplingParams=SamplingParams, LoRARequest=LoRARequest
)


def backend(model: str, **kw) -> vb.VLLMBackend:
    return vb.VLLMBackend(parse_model_string(model), vllm_module=fake_vllm, **kw)


@pytest.fixture(scope="module")
def fake_tiny(tiny_dir):
    return backend(f"vllm/{tiny_dir}")


# ---- pure mapping -----------------------------------------------------------------------


def test_sampling_kwargs_greedy_and_seeded():
    greedy = GenerationConfig(max_tokens=7)
    rows = vb.generation_rows(["a", "b"], greedy)
    assert [(r.prompt, r.sample, r.seed) for r in rows] == [(0, 0, None), (1, 0, None)]
    kw = vb.sampling_kwargs(greedy, rows[0], [5, 9])
    assert kw["temperature"] == 0.0 and kw["seed"] is None and kw["max_tokens"] == 7
    assert kw["stop_token_ids"] == [5, 9] and kw["n"] == 1 and kw["repetition_penalty"] == 1.0

    sampled = GenerationConfig(max_tokens=3, temperature=0.8, top_p=0.9, n=3, seed=11)
    rows = vb.generation_rows(["a", "b"], sampled)
    assert [(r.prompt, r.sample) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    seeds = [r.seed for r in rows]
    assert len(set(seeds)) == 6 and all(0 <= s < 2**63 for s in seeds)
    # A seed depends on (seed, prompt text, sample index) only: not on n, not on the other prompts.
    fewer = vb.generation_rows(["b"], GenerationConfig(max_tokens=3, temperature=0.8, n=2, seed=11))
    assert [r.seed for r in fewer] == seeds[3:5]
    assert vb.generation_rows(["a"], GenerationConfig(max_tokens=3, temperature=0.8, seed=12))[0].seed != seeds[0]
    kw = vb.sampling_kwargs(sampled, rows[4], [5])
    assert (kw["temperature"], kw["top_p"], kw["seed"], kw["n"]) == (0.8, 0.9, seeds[4], 1)


def test_top_k_distribution_keeps_ranks_and_merges_equal_texts():
    position = {
        7: Logprob(math.log(0.05), rank=9),  # the sampled token, outside the top 3: dropped
        1: Logprob(math.log(0.5), rank=1),
        2: Logprob(math.log(0.2), rank=2),
        3: Logprob(math.log(0.1), rank=3),
    }
    texts = {1: "a", 2: " a", 3: "a", 7: "z"}
    dist = vb.top_k_distribution(position, 3, texts.__getitem__)
    assert list(dist) == ["a", " a"]
    assert dist["a"] == pytest.approx(0.6) and dist[" a"] == pytest.approx(0.2)
    with pytest.raises(InwardError, match="no logprobs"):
        vb.top_k_distribution(None, 3, texts.__getitem__)


def test_token_text_follows_the_local_rule():
    class Tok:
        def decode(self, ids, skip_special_tokens, clean_up_tokenization_spaces):
            assert skip_special_tokens and not clean_up_tokenization_spaces
            return {1: " cat", 2: "\ufffd", 3: ""}[ids[0]]

        def convert_ids_to_tokens(self, i):
            return "<0xE2>"

    assert [vb.token_text(Tok(), i) for i in (1, 2, 3)] == [" cat", "<0xE2>", ""]


def test_candidate_scoring_sums_candidate_positions_and_normalises():
    seqs = vb.candidate_sequences([10, 11], [[20], [21, 22]], end_id=99)
    assert seqs == [[10, 11, 20, 99], [10, 11, 21, 22, 99]]
    lp = [None, {11: Logprob(-9.0)}, {20: Logprob(-1.0)}, {99: Logprob(-0.5)}]
    assert vb.sequence_logprob(lp, seqs[0], start=2) == pytest.approx(-1.5)
    with pytest.raises(InwardError, match="expected 4"):
        vb.sequence_logprob(lp[:3], seqs[0], start=2)
    with pytest.raises(InwardError, match="no logprob for prompt token 3"):
        vb.sequence_logprob([None, {}, {20: Logprob(-1.0)}, {98: Logprob(-0.1)}], seqs[0], start=2)
    probs = vb.normalise(["x", "y"], [math.log(0.3), math.log(0.1)])
    assert probs == pytest.approx({"x": 0.75, "y": 0.25})


def test_lora_mapping():
    assert [vb.lora_rank_limit(r) for r in (1, 2, 8, 12, 16, 300, 512)] == [1, 8, 8, 16, 16, 320, 512]
    with pytest.raises(InwardError, match="above vLLM's largest"):
        vb.lora_rank_limit(1024)
    assert vb.lora_engine_kwargs({"r": 12}, "x") == {"enable_lora": True, "max_loras": 1, "max_lora_rank": 16}
    with pytest.raises(InwardError, match="'r'"):
        vb.lora_engine_kwargs({}, "adapter X")
    a = vb.lora_request_args("/ad", "0" * 64)
    b = vb.lora_request_args("/ad", "f" * 64)
    assert a["lora_int_id"] == 1 and 0 < b["lora_int_id"] < 2**31 and a["lora_name"] != b["lora_name"]


def test_engine_kwargs_turn_off_checkpoint_sampling_defaults():
    kw = vb.engine_kwargs("/m", "bfloat16", None, None)
    assert kw["generation_config"] == "vllm" and kw["max_logprobs"] == vb.MAX_LOGPROBS
    assert "max_num_seqs" not in kw and "enable_lora" not in kw
    kw = vb.engine_kwargs("/m", "float16", 8, {"enable_lora": True})
    assert kw["max_num_seqs"] == 8 and kw["enable_lora"] and kw["dtype"] == "float16"
    with pytest.raises(InwardError, match="top_k=101"):
        vb.top_k_kwargs(101)


# ---- model strings, args, and running without vLLM ----------------------------------------


def test_model_string_accepts_lora_for_vllm(tiny_dir, tmp_path):
    spec = parse_model_string(f"vllm/{tiny_dir}+lora:{tmp_path}/ad")
    assert spec.provider == "vllm" and spec.adapter == f"{tmp_path}/ad"
    with pytest.raises(InwardError, match="not a peft adapter"):
        resolve(f"vllm/{tiny_dir}+lora:{tmp_path}/ad")
    with pytest.raises(InwardError, match="does not exist"):
        resolve(f"vllm/{tmp_path}/nowhere")
    with pytest.raises(InwardError, match="dtype"):
        resolve(f"vllm/{tiny_dir}", dtype="int4")
    with pytest.raises(InwardError, match="CUDA_VISIBLE_DEVICES"):
        resolve(f"vllm/{tiny_dir}", device="cuda:1")
    with pytest.raises(InwardError, match="batch_size"):
        resolve(f"vllm/{tiny_dir}", batch_size="many")


def test_without_vllm_installed_resolving_works_and_use_says_how_to_install(tiny_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    model = resolve(f"vllm/{tiny_dir}")  # cheap: nothing imported or loaded yet
    assert isinstance(model, vb.VLLMBackend)
    prompt = [[{"role": "user", "content": "fox"}]]
    for call in (
        lambda: model.generate(prompt, GenerationConfig(max_tokens=2)),
        lambda: model.answer_distribution(prompt, DistributionConfig()),
        model.fingerprint,
    ):
        with pytest.raises(InwardError, match=r"pip install 'inward\[vllm\]'"):
            call()


# ---- the backend end to end, on the fake engine -------------------------------------------


def test_top_k_and_candidates_match_the_local_backend(fake_tiny, tiny, prompts):
    cfg = DistributionConfig(top_k=5)
    ours, local = fake_tiny.answer_distribution(prompts, cfg), tiny.answer_distribution(prompts, cfg)
    for a, b in zip(ours, local):
        assert list(a) == list(b)
        assert a == pytest.approx(b, abs=1e-5)
    cand = DistributionConfig(candidates=("fox", "sheep", " cat", "A"))
    ours, local = fake_tiny.answer_distribution(prompts, cand), tiny.answer_distribution(prompts, cand)
    for a, b in zip(ours, local):
        assert sum(a.values()) == pytest.approx(1.0)
        assert a == pytest.approx(b, abs=1e-5)
    assert fake_tiny.stats.prompts_scored == 2 * len(prompts)
    with pytest.raises(InwardError, match="distinct"):
        fake_tiny.answer_distribution(prompts, DistributionConfig(candidates=("a", "a")))


def test_greedy_generation_matches_local_and_sends_token_ids(fake_tiny, tiny, prompts):
    cfg = GenerationConfig(max_tokens=6)
    assert fake_tiny.generate(prompts, cfg) == tiny.generate(prompts, cfg)
    llm = FakeLLM.instances[-1]
    sent, params, lora = llm.calls[-1]
    tok = fake_tiny._tokenizer
    # The prompt is the rendered chat text's tokens, without special tokens added a second time.
    assert sent[0]["prompt_token_ids"] == tok(fake_tiny.render(prompts[0]), add_special_tokens=False)["input_ids"]
    assert params[0].kw["stop_token_ids"] == tok.convert_tokens_to_ids(["<|im_end|>"])
    assert lora is None
    assert llm.kw["generation_config"] == "vllm" and llm.kw["dtype"] == "bfloat16"


def test_seeded_samples_do_not_depend_on_batching_or_n(fake_tiny, prompts):
    cfg = GenerationConfig(max_tokens=4, temperature=1.5, n=3, seed=7)
    together = fake_tiny.generate(prompts[:3], cfg)
    alone = fake_tiny.generate(prompts[2:3], GenerationConfig(max_tokens=4, temperature=1.5, n=2, seed=7))
    assert alone[0] == together[2][:2]
    assert all(len(s) == 3 for s in together)
    assert len({s for samples in together for s in samples}) > 3  # seeds really differ per sample
    other_seed = fake_tiny.generate(prompts[:3], GenerationConfig(max_tokens=4, temperature=1.5, n=3, seed=8))
    assert other_seed != together


def test_lora_adapter_is_served_and_fingerprinted(tiny_dir, tmp_path, prompts):
    ad = tmp_path / "adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"r": 12, "lora_alpha": 24}))
    (ad / "adapter_model.safetensors").write_bytes(b"weights-1")
    model = backend(f"vllm/{tiny_dir}+lora:{ad}")
    fp = model.fingerprint()
    assert fp["backend"] == "vllm" and fp["vllm"] == "0.0-fake" and fp["precision"] == "bfloat16"
    assert fp["model"] == f"vllm/{tiny_dir}" and len(fp["weights_sha256"]) == 64
    assert fp["adapter_sha256"] and fp["chat_template"]["source"] == "model"
    model.generate(prompts[:2], GenerationConfig(max_tokens=2))
    llm = FakeLLM.instances[-1]
    assert (llm.kw["enable_lora"], llm.kw["max_lora_rank"], llm.kw["max_loras"]) == (True, 16, 1)
    lora = llm.calls[-1][2]
    assert lora.lora_path == str(ad.resolve()) and lora.lora_name == f"inward-{fp['adapter_sha256'][:12]}"

    (ad / "adapter_model.safetensors").write_bytes(b"weights-2")  # a retrained adapter
    again = backend(f"vllm/{tiny_dir}+lora:{ad}").fingerprint()
    assert again["adapter_sha256"] != fp["adapter_sha256"]
    assert backend(f"vllm/{tiny_dir}").fingerprint()["adapter_sha256"] is None
    assert backend(f"vllm/{tiny_dir}", dtype="float16").fingerprint()["precision"] == "float16"
