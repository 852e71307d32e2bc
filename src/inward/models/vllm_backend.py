"""``vllm/<model>[+lora:<adapter dir>]``: vLLM's offline engine behind the same batched protocol.

``<model>`` is a Hugging Face hub id or a local checkpoint directory (``vllm//abs/dir``,
``vllm/./dir``). vLLM is an optional extra (``pip install 'inward[vllm]'``, on a machine with a
GPU); this module imports without it and raises :class:`InwardError` with that hint only when a
backend is actually used.

How inward's requests become vLLM requests (the pure functions below, unit-tested with fakes):

- **Prompts.** Rendered by :mod:`inward.models.chat` exactly as the local backend renders them
  (the model's chat template, or inward's documented fallback), tokenized with
  ``add_special_tokens=False`` and sent as token ids (``{"prompt_token_ids": [...]}``). Sending
  the text instead would let vLLM add a second BOS token in front of templates that write their
  own, and ``llm.chat`` would not apply inward's fallback templates; token ids make the prompt
  identical to the local backend's.
- **Decoding.** ``GenerationConfig`` maps to ``SamplingParams`` with every other knob neutral
  (no top-k, min-p or penalties), and the engine is built with ``generation_config="vllm"`` so a
  checkpoint's ``generation_config.json`` (Qwen's sets ``repetition_penalty=1.05``) changes
  nothing, as in the local backend. Stop tokens are the chat template's end-of-turn and EOS.
  Completion text is decoded by us from the returned token ids (cut at the first stop token,
  ``skip_special_tokens=True``, no clean-up), the same call the local backend makes.
- **Seeds.** Each completion is its own request with ``n=1`` and
  ``seed = sample_seed(seed, prompt text, sample index)`` (the local backend's function, reduced
  to 63 bits). vLLM gives every seeded request its own generator, so sample ``i`` of a prompt
  gets the same random draws whatever else is in the batch. (vLLM's own ``n>1`` would seed the
  children ``seed + index``, tying sample ``i`` of one request to sample 0 of another.)
  What vLLM does **not** promise: bit-identical logits across batch compositions. Batched GPU
  kernels can round differently depending on what else is scheduled, so a greedy token or a
  draw sitting on a boundary can change between runs with different batches, unless vLLM's
  batch-invariant mode is on (``VLLM_BATCH_INVARIANT=1`` in versions that have it). Samples
  from this backend also differ from the local backend's (different sampler, different
  kernels); the fingerprint keeps the two apart.
- **Top-k answer distribution.** A one-token greedy generation with ``logprobs=top_k``. vLLM's
  default ``logprobs_mode`` is ``raw_logprobs`` (log-softmax of the raw logits, before
  temperature or penalties), which is the local backend's ``softmax(logits)``. Token ids are
  decoded with the local backend's rule: special tokens become ``""``, a token that is only part
  of a UTF-8 character keeps its raw token string; tokens with the same text are summed.
  At most :data:`MAX_LOGPROBS` tokens (the engine's ``max_logprobs``).
- **Candidates.** Each candidate is scored as the whole answer: the prompt's token ids, the
  candidate's tokens and the template's end-of-turn token are sent as one prompt with
  ``prompt_logprobs=1``; the candidate's log-probability is the sum over its positions, and the
  results are renormalised over the candidates (softmax), as in the local backend. vLLM's prefix
  cache shares the prompt's work across candidates where the version allows it.
- **LoRA.** ``+lora:<dir>`` is served unmerged by vLLM's LoRA kernels (fast there, unlike peft):
  the engine is built with ``enable_lora=True``, ``max_loras=1`` and ``max_lora_rank`` the
  adapter's ``r`` rounded up to a rank vLLM supports; each request carries
  ``LoRARequest(name, int id, path)``, with name and id derived from the adapter's sha256.

Model args: ``dtype`` "bfloat16" (default) | "float16" | "float32"; ``batch_size`` becomes the
engine's ``max_num_seqs`` (default: vLLM's); ``device`` "auto" or "cuda" (vLLM uses the GPUs in
``CUDA_VISIBLE_DEVICES``); ``threads`` is accepted and ignored (vLLM manages its own).
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inward.errors import InwardError
from inward.models import chat
from inward.models.base import BackendStats, DistributionConfig, GenerationConfig, Prompt
from inward.models.spec import ModelSpec

INSTALL_HINT = "pip install 'inward[vllm]'"
DTYPES = ("bfloat16", "float16", "float32")
MAX_LOGPROBS = 100  # the engine's max_logprobs: the largest top_k answer_distribution accepts
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm.config.lora.MaxLoRARanks
SEED_BITS = 63

# ---- optional import -------------------------------------------------------------------


def import_vllm() -> Any:
    """The ``vllm`` module, or an :class:`InwardError` that says how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise InwardError(
            f"vllm/ models need vLLM, which is not installed ({exc}). Install it with "
            f"`{INSTALL_HINT}` on a machine with a supported GPU (vLLM brings its own torch build, "
            "so use a separate environment from the CPU install), or use hf/<checkpoint> to run "
            "the same model with the local transformers backend."
        ) from exc
    return vllm


# ---- pure mapping: inward requests -> vLLM requests -> protocol outputs ------------------


@dataclass(frozen=True)
class Row:
    """One vLLM request of a ``generate`` call: completion ``sample`` of prompt ``prompt``."""

    prompt: int
    sample: int
    seed: int | None  # None for greedy


def vllm_seed(seed: int, prompt_text: str, index: int) -> int:
    """Per-sample seed: the local backend's :func:`sample_seed`, in 63 bits (a signed int64)."""
    from inward.models.sampling import sample_seed

    return sample_seed(seed, prompt_text, index) & ((1 << SEED_BITS) - 1)


def generation_rows(prompt_texts: Sequence[str], config: GenerationConfig) -> list[Row]:
    """One row per completion, prompt-major: ``rows[i * n + j]`` is sample ``j`` of prompt ``i``."""
    return [
        Row(i, j, None if config.greedy else vllm_seed(config.seed, text, j))
        for i, text in enumerate(prompt_texts)
        for j in range(config.n)
    ]


def _neutral() -> dict[str, Any]:
    # Explicit, so no default of any vLLM version or checkpoint can change decoding.
    return {"n": 1, "repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0, "min_p": 0.0}


def sampling_kwargs(config: GenerationConfig, row: Row, stop_ids: Sequence[int]) -> dict[str, Any]:
    """``SamplingParams(**kwargs)`` for one completion row."""
    kw = _neutral()
    kw.update(max_tokens=config.max_tokens, stop_token_ids=list(stop_ids), skip_special_tokens=True)
    if config.greedy:
        kw.update(temperature=0.0, top_p=1.0, seed=None)
    else:
        if row.seed is None:
            raise ValueError("a sampling row needs a seed")
        kw.update(temperature=config.temperature, top_p=config.top_p, seed=row.seed)
    return kw


def top_k_kwargs(top_k: int) -> dict[str, Any]:
    """``SamplingParams`` for reading the next-token distribution: one greedy token, top-k logprobs."""
    if not 1 <= top_k <= MAX_LOGPROBS:
        raise InwardError(
            f"top_k={top_k} is out of range for vllm/ models: expected 1..{MAX_LOGPROBS} (the engine's max_logprobs)."
        )
    kw = _neutral()
    kw.update(max_tokens=1, temperature=0.0, top_p=1.0, logprobs=top_k)
    return kw


def candidate_kwargs() -> dict[str, Any]:
    """``SamplingParams`` for scoring a prompt+candidate sequence through its prompt logprobs."""
    kw = _neutral()
    kw.update(max_tokens=1, temperature=0.0, top_p=1.0, prompt_logprobs=1)
    return kw


def tokens_prompt(token_ids: Sequence[int]) -> dict[str, list[int]]:
    """vLLM's ``TokensPrompt`` (a TypedDict, so a plain dict is the real thing)."""
    return {"prompt_token_ids": list(token_ids)}


def cut_at_stop(token_ids: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
    """Tokens before the first stop token (vLLM includes a stop token id in ``token_ids``)."""
    stops = set(stop_ids)
    out: list[int] = []
    for t in token_ids:
        if t in stops:
            break
        out.append(t)
    return out


def decode_completion(tokenizer: Any, token_ids: Sequence[int], stop_ids: Sequence[int]) -> str:
    """The completion text, decoded exactly as the local backend decodes it (nothing stripped)."""
    return tokenizer.decode(
        cut_at_stop(token_ids, stop_ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
    )


def token_text(tokenizer: Any, token_id: int) -> str:
    """A token as answer text (the local backend's rule): special tokens are "", a token that is
    only part of a UTF-8 character keeps its raw token string instead of "\\ufffd"."""
    text = tokenizer.decode([token_id], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    if "\ufffd" in text:
        return tokenizer.convert_ids_to_tokens(token_id)
    return text


def _logprob_value(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def top_k_distribution(
    position: Mapping[int, Any] | None, top_k: int, text_of: Callable[[int], str], where: str = ""
) -> dict[str, float]:
    """Decoded top-k distribution from the logprobs of one generated position.

    ``position`` maps token id to a ``Logprob`` (``.logprob``, ``.rank``). vLLM puts the sampled
    token in as well, with its true rank, so only ranks ``<= top_k`` are kept (for a greedy token
    that is the same set). Probabilities of tokens that decode to the same text are summed.
    """
    if not position:
        raise InwardError(f"vLLM returned no logprobs{' for ' + where if where else ''}; was logprobs set?")
    entries = [(tid, lp) for tid, lp in position.items() if getattr(lp, "rank", None) is None or lp.rank <= top_k]
    entries.sort(key=lambda kv: -_logprob_value(kv[1]))
    dist: dict[str, float] = {}
    for tid, lp in entries[:top_k]:
        text = text_of(int(tid))
        dist[text] = dist.get(text, 0.0) + math.exp(_logprob_value(lp))
    return dict(sorted(dist.items(), key=lambda kv: -kv[1]))


def candidate_sequences(
    prompt_ids: Sequence[int], candidate_ids: Sequence[Sequence[int]], end_id: int
) -> list[list[int]]:
    """Prompt + candidate tokens + end-of-turn, one sequence per candidate."""
    return [list(prompt_ids) + list(c) + [end_id] for c in candidate_ids]


def sequence_logprob(prompt_logprobs: Sequence[Any], sequence: Sequence[int], start: int, where: str = "") -> float:
    """Sum of log P(sequence[k] | sequence[:k]) for k >= start, from vLLM's ``prompt_logprobs``
    (one ``{token id: Logprob}`` per prompt position; position 0 is None)."""
    if prompt_logprobs is None or len(prompt_logprobs) != len(sequence):
        got = None if prompt_logprobs is None else len(prompt_logprobs)
        raise InwardError(
            f"vLLM returned prompt logprobs for {got} positions, expected {len(sequence)}"
            f"{' (' + where + ')' if where else ''}."
        )
    total = 0.0
    for k in range(start, len(sequence)):
        position = prompt_logprobs[k]
        if not position or sequence[k] not in position:
            raise InwardError(f"vLLM gave no logprob for prompt token {k}{' (' + where + ')' if where else ''}.")
        total += _logprob_value(position[sequence[k]])
    return total


def normalise(candidates: Sequence[str], logps: Sequence[float]) -> dict[str, float]:
    """Softmax of candidate log-probabilities (renormalised over the candidates)."""
    top = max(logps)
    weights = [math.exp(x - top) for x in logps]
    total = sum(weights)
    return {c: w / total for c, w in zip(candidates, weights)}


def lora_rank_limit(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that fits an adapter of rank ``rank``."""
    for r in LORA_RANKS:
        if r >= rank:
            return r
    raise InwardError(f"LoRA rank {rank} is above vLLM's largest max_lora_rank ({LORA_RANKS[-1]}).")


def lora_engine_kwargs(adapter_config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``LLM(...)`` kwargs that let the engine serve one adapter with this ``adapter_config.json``."""
    rank = adapter_config.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise InwardError(f"{where}: adapter_config.json has no positive integer 'r' (LoRA rank), got {rank!r}.")
    return {"enable_lora": True, "max_loras": 1, "max_lora_rank": lora_rank_limit(rank)}


def lora_request_args(adapter_path: str, adapter_sha256: str) -> dict[str, Any]:
    """``LoRARequest(**kwargs)``: a name and a positive int id that identify the adapter's weights."""
    return {
        "lora_name": f"inward-{adapter_sha256[:12]}",
        "lora_int_id": int(adapter_sha256[:7], 16) + 1,  # vLLM needs an id > 0; 28 bits fit int32
        "lora_path": adapter_path,
    }


def engine_kwargs(
    model_path: str, dtype: str, max_num_seqs: int | None, lora: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``LLM(**kwargs)``: decoding defaults from inward only, logprobs room for top-k reads."""
    kw: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype,
        "generation_config": "vllm",  # ignore the checkpoint's sampling defaults
        "max_logprobs": MAX_LOGPROBS,
        "seed": 0,
    }
    if max_num_seqs is not None:
        kw["max_num_seqs"] = max_num_seqs
    if lora:
        kw.update(lora)
    return kw


# ---- the backend -----------------------------------------------------------------------


class VLLMBackend:
    """vLLM's offline ``LLM`` behind :class:`~inward.models.base.Backend` (see the module doc).

    Nothing heavy happens at construction: the tokenizer loads for :meth:`fingerprint` and
    rendering, the engine (and the ``vllm`` import) on the first ``generate`` or
    ``answer_distribution``. ``vllm_module`` replaces ``import vllm`` (tests pass a fake).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        dtype: str = "bfloat16",
        threads: Any = None,  # noqa: ARG002 - accepted so one -M set works for every backend
        batch_size: int | str | None = None,
        device: str = "auto",
        share_prefix: Any = None,  # noqa: ARG002 - a local-backend arg; vLLM caches prefixes itself
        chat_format: str = "auto",
        vllm_module: Any = None,
    ):
        if spec.provider != "vllm":
            raise InwardError(f"VLLMBackend cannot run {spec.raw!r}.")
        from inward.models.args import VllmArgs, parse

        args = parse(
            VllmArgs,
            spec.raw,
            dict(
                dtype=dtype,
                threads=threads,
                batch_size=batch_size,
                device=device,
                share_prefix=share_prefix,
                chat_format=chat_format,
            ),
        )
        dtype = args.dtype
        self.max_num_seqs: int | None = args.batch_size
        self.chat_choice = args.chat_format
        self.spec = spec
        self.model_string = spec.raw
        self.dtype = str(dtype)
        self._vllm = vllm_module
        self._stats = BackendStats()
        self._llm: Any = None
        self._tokenizer: Any = None
        self._format: chat.ChatFormat | None = None
        self._stop_ids: list[int] = []
        self._checkpoint: Path | None = None
        self._fingerprint: dict[str, Any] | None = None
        self._adapter_sha: tuple[str, str] | None = None
        self._check_inputs()

    # ---- inputs and identity ---------------------------------------------------------
    def _check_inputs(self) -> None:
        from inward.models.checkpoint import looks_local

        name = self.spec.name
        if looks_local(name) and not Path(name).expanduser().is_dir():
            raise InwardError(f"Checkpoint directory {name!r} does not exist (from {self.spec.raw!r}).")
        if self.spec.adapter is not None:
            adir = Path(self.spec.adapter).expanduser()
            if not (adir / "adapter_config.json").is_file():
                raise InwardError(
                    f"LoRA adapter {self.spec.adapter!r} is not a peft adapter directory "
                    "(expected adapter_config.json and adapter_model.safetensors inside)."
                )

    def _checkpoint_dir(self) -> Path:
        """A local directory for the weights: hub ids are downloaded once (safetensors only),
        so the weights hashed into the fingerprint are the weights vLLM loads."""
        if self._checkpoint is None:
            from inward.models.checkpoint import hub_snapshot, looks_local

            name = self.spec.name
            self._checkpoint = Path(name).expanduser() if looks_local(name) else hub_snapshot(name)
        return self._checkpoint

    def _adapter_hashes(self) -> tuple[str, str] | None:
        if self.spec.adapter is None:
            return None
        if self._adapter_sha is None:
            from inward.models.paths import adapter_config_sha256, file_sha256

            adir = Path(self.spec.adapter).expanduser()
            weights = adir / "adapter_model.safetensors"
            if not weights.is_file():
                raise InwardError(
                    f"LoRA adapter {self.spec.adapter!r} has no adapter_model.safetensors (vLLM loads only that)."
                )
            self._adapter_sha = (file_sha256(weights), adapter_config_sha256(adir / "adapter_config.json"))
        return self._adapter_sha

    def _ensure_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoConfig, AutoTokenizer

            ckpt = str(self._checkpoint_dir())
            tok = AutoTokenizer.from_pretrained(ckpt)
            self._format = chat.chat_format(tok, AutoConfig.from_pretrained(ckpt).model_type, self.chat_choice)
            self._stop_ids = chat.stop_token_ids(tok, self._format)
            self._tokenizer = tok
        return self._tokenizer

    def _chat_format(self) -> chat.ChatFormat:
        """The chat format, set by :meth:`_ensure_tokenizer` (every caller has run it first)."""
        assert self._format is not None, "the chat format is set when the tokenizer loads"
        return self._format

    def _module(self) -> Any:
        if self._vllm is None:
            self._vllm = import_vllm()
        return self._vllm

    def _lora_engine_kwargs(self) -> dict[str, Any] | None:
        if self.spec.adapter is None:
            return None
        path = Path(self.spec.adapter).expanduser() / "adapter_config.json"
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InwardError(f"Cannot read {str(path)!r}: {exc}.") from exc
        return lora_engine_kwargs(cfg, f"LoRA adapter {self.spec.adapter!r}")

    def _lora_request(self) -> Any:
        hashes = self._adapter_hashes()
        if hashes is None:
            return None
        path = str(Path(self.spec.adapter).expanduser().resolve())  # type: ignore[arg-type]
        mod = self._module()
        cls = getattr(mod, "LoRARequest", None) or importlib.import_module(f"{mod.__name__}.lora.request").LoRARequest
        return cls(**lora_request_args(path, hashes[0]))

    def _ensure_llm(self) -> Any:
        if self._llm is None:
            vllm = self._module()
            self._ensure_tokenizer()
            kwargs = engine_kwargs(
                str(self._checkpoint_dir()), self.dtype, self.max_num_seqs, self._lora_engine_kwargs()
            )
            t0 = time.perf_counter()
            try:
                self._llm = vllm.LLM(**kwargs)
            except Exception as exc:
                raise InwardError(f"vLLM could not load {self.spec.raw!r}: {type(exc).__name__}: {exc}") from exc
            self._stats.extra["load_seconds"] = round(time.perf_counter() - t0, 3)
        return self._llm

    @property
    def stats(self) -> BackendStats:
        return self._stats

    def fingerprint(self) -> dict[str, Any]:
        """(weights, backend + version, precision, adapter, chat template). Imports vLLM for its
        version (so a missing install fails here, with the hint), never loads the engine."""
        if self._fingerprint is None:
            from inward.models.checkpoint import dir_weights_sha256

            version = getattr(self._module(), "__version__", "unknown")
            self._ensure_tokenizer()
            hashes = self._adapter_hashes()
            self._fingerprint = {
                "backend": "vllm",
                "deterministic": False,  # logits depend on the batch mix unless VLLM_BATCH_INVARIANT=1
                "vllm": version,
                "model": self.spec.base,
                "weights_sha256": dir_weights_sha256(self._checkpoint_dir()),
                "precision": self.dtype,
                "adapter_sha256": hashes[0] if hashes else None,
                "adapter_config_sha256": hashes[1] if hashes else None,
                "adapter_merge": "vllm-lora-unmerged" if hashes else None,
                "chat_template": self._chat_format().identity(),
                "stop_tokens": self._tokenizer.convert_ids_to_tokens(self._stop_ids),
                "logprobs_mode": "raw_logprobs",
            }
        return dict(self._fingerprint)

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees (generation prompt included); same as the local backend."""
        return chat.render(self._ensure_tokenizer(), self._chat_format(), prompt)

    def _prompt_ids(self, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        texts = [self.render(p) for p in prompts]
        ids = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        return texts, [list(x) for x in ids]

    def _run(self, token_lists: Sequence[Sequence[int]], params: Sequence[Any]) -> list[Any]:
        llm = self._ensure_llm()
        lora = self._lora_request()
        outputs = llm.generate(
            [tokens_prompt(t) for t in token_lists], sampling_params=list(params), lora_request=lora, use_tqdm=False
        )
        if len(outputs) != len(token_lists):
            raise InwardError(f"vLLM returned {len(outputs)} outputs for {len(token_lists)} requests.")
        return list(outputs)

    # ---- protocol ----------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        if not prompts:
            return []
        self._ensure_llm()
        t0 = time.perf_counter()
        texts, ids = self._prompt_ids(prompts)
        rows = generation_rows(texts, config)
        sp = self._module().SamplingParams
        params = [sp(**sampling_kwargs(config, r, self._stop_ids)) for r in rows]
        outputs = self._run([ids[r.prompt] for r in rows], params)
        results: list[list[str]] = [[""] * config.n for _ in prompts]
        new_tokens = 0
        for row, out in zip(rows, outputs):
            token_ids = list(out.outputs[0].token_ids)
            new_tokens += len(cut_at_stop(token_ids, self._stop_ids))
            text = decode_completion(self._tokenizer, token_ids, self._stop_ids)
            results[row.prompt][row.sample] = chat.strip_answer_prefix(self._chat_format(), text)
        self._stats.add_generate(len(prompts), len(rows), time.perf_counter() - t0, tokens=new_tokens)
        return results

    def answer_distribution(self, prompts: Sequence[Prompt], config: DistributionConfig) -> list[dict[str, float]]:
        if not prompts:
            return []
        if config.candidates and len(set(config.candidates)) != len(config.candidates):
            raise InwardError(f"Answer candidates must be distinct, got {list(config.candidates)}.")
        kwargs = candidate_kwargs() if config.candidates else top_k_kwargs(config.top_k)
        self._ensure_llm()
        t0 = time.perf_counter()
        _, ids = self._prompt_ids(prompts)
        sp = self._module().SamplingParams
        tok = self._tokenizer
        if config.candidates:
            prefix = self._chat_format().answer_prefix
            cand_ids = [tok(prefix + c, add_special_tokens=False)["input_ids"] for c in config.candidates]
            seqs = [s for p in ids for s in candidate_sequences(p, cand_ids, self._stop_ids[0])]
            outputs = self._run(seqs, [sp(**kwargs)] * len(seqs))
            n_c = len(config.candidates)
            out = []
            for i, p in enumerate(ids):
                logps = [
                    sequence_logprob(
                        outputs[i * n_c + c].prompt_logprobs,
                        seqs[i * n_c + c],
                        len(p),
                        f"prompt {i}, candidate {config.candidates[c]!r}",
                    )
                    for c in range(n_c)
                ]
                out.append(normalise(config.candidates, logps))
        else:
            outputs = self._run(ids, [sp(**kwargs)] * len(ids))
            out = [
                top_k_distribution(
                    o.outputs[0].logprobs[0] if o.outputs[0].logprobs else None,
                    config.top_k,
                    lambda t: chat.strip_answer_prefix(self._chat_format(), token_text(tok, t)),
                    f"prompt {i}",
                )
                for i, o in enumerate(outputs)
            ]
        self._stats.add_distribution(len(prompts), time.perf_counter() - t0)
        return out

    def close(self) -> None:
        """Drop the engine (vLLM frees GPU memory when it is garbage-collected)."""
        self._llm = None
        import gc

        gc.collect()

    def __enter__(self) -> VLLMBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
