"""The local backend: a transformers causal LM on this machine (CPU, or CUDA when available).

Weights come from a plain safetensors checkpoint directory: bundled and ``gguf/`` models are
converted once (:func:`inward.models.bundled.converted_dir`), ``hf/`` models load with the
normal ``from_pretrained``. A ``+lora:<dir>`` adapter is merged into the weights: generating
through an unmerged peft adapter was measured 1.15x slower with weights that require grad, and
12x slower with the frozen weights peft leaves (benchmarks/unmerged_lora.py).

Decoding is fully specified by inward's :class:`GenerationConfig`: the checkpoint's own
``generation_config.json`` (Qwen's sets ``repetition_penalty=1.05``, ``top_k=20``...) is
deliberately replaced by an empty one, so no hidden default changes behaviour.

Batching: prompts are sorted longest first and left-padded, ``batch_size`` sequences at a time.
On fp32 CPU a prompt's greedy answer is the same batched or alone (a test checks it); in bf16,
padding can change rounding and so, rarely, a greedy token.

Shared prefix: the rows of a batch usually start with the same tokens (chat template and task
instruction, ~2/3 of an object-level prompt). That prefix runs once and its KV cache is repeated
for every row (:meth:`LocalBackend._prefix_cached`); the result is the same computation with the
same positions and masking, so it changes at most float rounding: fp32 outputs are tested equal
with and without it, but in bf16 that rounding flipped 16% of 96 Qwen greedy outputs, so bf16/fp16
fingerprints carry ``generation_layout`` (a new cache key; fp32 keys are unchanged).
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers import AutoConfig

from inward.errors import InwardError
from inward.models import chat
from inward.models.args import LocalArgs
from inward.models.args import cpu_count as _cpu_count  # the name trainers and tests use
from inward.models.args import parse as parse_args
from inward.models.base import BackendStats, DistributionConfig, GenerationConfig, Prompt
from inward.models.checkpoint import Checkpoint, merge_identity
from inward.models.precision import Resolution
from inward.models.sampling import SeededSampler, completion_rows
from inward.models.spec import ModelSpec


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS.

    glibc keeps freed memory of large tensors in its arenas, so without ``malloc_trim`` a study
    that loads and frees several models in one process keeps the high-water mark of all of them
    as resident memory.
    """
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


class LocalBackend(chat.Tokenized):
    """A transformers model behind inward's :class:`~inward.models.base.Backend` protocol.

    Model args (``-M key=value`` on the CLI; strings are accepted):
    ``dtype`` "auto" (default: float32, or bfloat16 where this machine runs the model's layers at
    least 1.3x faster in it, measured once per machine: :mod:`inward.models.precision`) |
    "float32" | "bfloat16" | "float16"; ``threads`` CPU threads (default: all
    cores); ``batch_size`` sequences per forward batch (default 32); ``device`` "auto" (CUDA if
    available) | "cpu" | "cuda[:N]". Nothing is loaded until first use. ``share_prefix`` (default true):
    run a generate batch's common prompt prefix (chat template, task instruction) once and reuse
    its KV cache for every row. Identical outputs in fp32; in bf16 it changes some greedy outputs
    (rounding), so bf16 fingerprints record the layout; ``-M share_prefix=false`` reproduces runs
    made before it existed. ``chat_format`` "auto" (default: the model's own chat template, else
    the default fallback) | "model" | "gemma" | "plain" | "qa" (see :mod:`inward.models.chat`;
    for a base model a study measures which fallback fits best).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        dtype: str = "auto",
        threads: int | str | None = None,
        batch_size: int | str = 32,
        device: str = "auto",
        share_prefix: bool | str = True,
        chat_format: str = "auto",
        engine: str = "torch",
    ):
        if spec.provider not in ("bundled", "gguf", "hf"):
            raise InwardError(f"LocalBackend cannot run {spec.raw!r}.")
        args = parse_args(
            LocalArgs,
            spec.raw,
            dict(
                dtype=dtype,
                threads=threads,
                batch_size=batch_size,
                device=device,
                share_prefix=share_prefix,
                chat_format=chat_format,
                engine=engine,
            ),
        )
        if args.engine != "torch":
            raise InwardError(f"LocalBackend is the torch engine; engine={args.engine} goes through models.resolve().")
        self.spec = spec
        self.checkpoint = Checkpoint(spec)  # the one place its weights load from
        self.model_string = spec.raw
        self.requested_dtype = args.dtype
        self._precision: Resolution | None = None
        self.threads = args.threads or _cpu_count()
        self.batch_size = args.batch_size
        self.device = self._resolve_device(args.device)
        self.share_prefix = args.share_prefix  # "flase" is an error, not True
        self.chat_choice = args.chat_format
        self._stats = BackendStats()
        self._tokenizer: Any = None
        self._model: Any = None
        self._fingerprint: dict[str, Any] | None = None
        self._format: chat.ChatFormat | None = None
        self._stop_ids: list[int] = []
        self._cache_kwarg = "cache"
        self._check_inputs()

    # ---- resolution (cheap checks now, heavy work on first use) -------------------------
    def _resolve_device(self, device: str) -> str:
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu" or device.startswith("cuda"):
            if device.startswith("cuda") and not torch.cuda.is_available():
                raise InwardError(f"Model arg device={device!r} but CUDA is not available here; use device=cpu.")
            return device
        raise InwardError(f"Model arg device={device!r}: expected auto, cpu or cuda[:N].")

    def _check_inputs(self) -> None:
        self.checkpoint.check()

    def checkpoint_dir(self) -> Path:
        """The base model's plain safetensors directory (converted once for bundled/GGUF)."""
        return self.checkpoint.directory()

    @property
    def precision(self) -> Resolution:
        """The precision this backend runs in, and why (``auto`` is resolved on first use)."""
        if self._precision is None:
            self._precision = self.checkpoint.precision(self.requested_dtype, torch.device(self.device).type)
        return self._precision

    @property
    def dtype(self) -> str:
        """The resolved precision's name: float32, bfloat16 or float16."""
        return self.precision.dtype

    def load(self) -> Any:
        """The model as this backend runs it (weights loaded on first use, adapter merged)."""
        return self._ensure_model()

    def _ensure_model(self) -> Any:
        if self._model is None:
            self._ensure_tokenizer()
            t0 = time.perf_counter()
            torch.set_num_threads(self.threads)
            self.install(self.checkpoint.load(self.dtype))
            self._stats.extra["load_seconds"] = round(time.perf_counter() - t0, 3)
        return self._model

    def install(self, model: Any) -> None:
        """Make ``model`` the backend's: inward's own (empty) generation config, device, eval."""
        model.generation_config = transformers.GenerationConfig(
            eos_token_id=self._stop_ids, pad_token_id=self._ensure_tokenizer().pad_token_id
        )
        self._model = model.to(self.device).eval()
        # transformers renamed forward's `past_key_values` to `cache` during 5.x.
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    # ---- protocol ----------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """Identity of (weights, backend, precision, adapter, chat template). Loads the tokenizer
        (and converts a bundled model once), never the weights."""
        if self._fingerprint is None:
            self._ensure_tokenizer()
            adapter_sha, adapter_cfg_sha = self.checkpoint.adapter_hashes()
            self._fingerprint = {
                "backend": "transformers",
                "model": self.spec.base,
                "weights_sha256": self.checkpoint.weights_sha256(),
                "precision": self.dtype,
                "adapter_sha256": adapter_sha,
                "adapter_config_sha256": adapter_cfg_sha,  # r and alpha change the merged weights
                "adapter_merge": merge_identity(self.dtype) if adapter_sha else None,
                "chat_template": self.chat_format.identity(),
                "stop_tokens": self._tokenizer.convert_ids_to_tokens(self._stop_ids),
                "device": torch.device(self.device).type,  # CPU and CUDA kernels round differently
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            }
            if self.share_prefix and self.dtype != "float32":
                # Shared-prefix KV reuse is exact in fp32 (tested), but in bf16/fp16 it changes
                # rounding and so some greedy outputs (measured: 16% of 96 Qwen bf16 prompts), so
                # those responses get their own cache key. fp32 keys are unchanged.
                self._fingerprint["generation_layout"] = "shared-prefix-kv-v1"
        return dict(self._fingerprint)

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        if not prompts:
            return []
        model, tok = self._ensure_model(), self._tokenizer
        t0 = time.perf_counter()  # inference only; loading is stats.extra["load_seconds"]
        texts = [self.render(p) for p in prompts]
        ids = tok(texts, add_special_tokens=False)["input_ids"]
        # One row per completion: (prompt index, sample index, seed or None for greedy).
        rows = completion_rows(texts, [len(x) for x in ids], config)
        results: list[list[str]] = [[""] * config.n for _ in prompts]
        new_tokens = 0
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            seqs = [ids[i] for i, _, _ in batch]
            kwargs: dict[str, Any] = {}
            p = _common_prefix(seqs) if self.share_prefix and len(batch) > 1 else 0
            # A sliding-window layer counts cache slots, and this layout moves the padding: only
            # equivalent while the whole sequence fits in the window (Gemma 3: 512 tokens).
            window = getattr(model.config, "sliding_window", None)
            if window and max(map(len, seqs)) + config.max_tokens > window:
                p = 0
            if p >= MIN_SHARED_PREFIX:
                input_ids, mask, kwargs[self._cache_kwarg] = self._prefix_cached(seqs, p)
            else:
                input_ids, mask = self._left_pad(seqs)
            if not config.greedy:
                seeds = [s for _, _, s in batch if s is not None]  # sampled rows all have one
                kwargs["logits_processor"] = [SeededSampler(seeds, config.temperature, config.top_p)]
            with torch.inference_mode():
                out = model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    do_sample=False,  # sampling, when asked for, happens in SeededSampler
                    max_new_tokens=config.max_tokens,
                    eos_token_id=self._stop_ids,
                    pad_token_id=tok.pad_token_id,
                    **kwargs,
                )
            for (i, j, _), seq in zip(batch, out[:, input_ids.shape[1] :].tolist()):
                seq = _cut_at_stop(seq, self._stop_ids)
                new_tokens += len(seq)
                results[i][j] = self.answer_text(seq)
            self._stats.extra["batches"] = self._stats.extra.get("batches", 0) + 1
        self._stats.add_generate(len(prompts), len(rows), time.perf_counter() - t0, tokens=new_tokens)
        return results

    def answer_distribution(self, prompts: Sequence[Prompt], config: DistributionConfig) -> list[dict[str, float]]:
        if not prompts:
            return []
        self._ensure_model()
        t0 = time.perf_counter()
        texts = [self.render(p) for p in prompts]
        ids = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        if config.candidates:
            out = self._candidate_distribution(ids, config.candidates)
        else:
            out = self._top_k_distribution(ids, config.top_k)
        self._stats.add_distribution(len(prompts), time.perf_counter() - t0)
        return out

    def num_layers(self) -> int:
        """Decoder layers of the model (hidden states 1..n are their outputs; 0 is the embedding)."""
        cfg = AutoConfig.from_pretrained(str(self.checkpoint_dir()))
        cfg = getattr(cfg, "text_config", None) or cfg
        return int(cfg.num_hidden_layers)

    def hidden_states(self, prompts: Sequence[Prompt], layers: Sequence[int], progress: Any = None) -> np.ndarray:
        """Residual-stream activations at the last prompt token (the state the first answer token
        is predicted from, generation prompt included), as float32 ``[prompt, layer, hidden]``.

        ``layers`` index transformers' ``hidden_states``: 0 is the embedding output, ``i`` the
        output of decoder layer ``i``. Batches are left-padded with explicit positions, as in
        :meth:`answer_distribution`, so each row's last position is its own last prompt token.
        """
        model = self._ensure_model()
        n_layers = self.num_layers()
        bad = [i for i in layers if not 0 <= i <= n_layers]
        if bad:
            raise InwardError(f"{self.model_string} has hidden states 0..{n_layers}; asked for layer(s) {bad}.")
        ids = self._tokenizer([self.render(p) for p in prompts], add_special_tokens=False)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # less padding per batch
        width = model.config.get_text_config().hidden_size
        out = np.zeros((len(ids), len(layers), width), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            input_ids, mask = self._left_pad([ids[i] for i in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                res = model(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=False,
                    logits_to_keep=1,
                    output_hidden_states=True,
                )
            stacked = torch.stack([res.hidden_states[i][:, -1, :] for i in layers], dim=1)
            out[batch] = stacked.float().cpu().numpy()
            if progress is not None:
                progress(len(batch))
        return out

    def close(self) -> None:
        """Free the weights (the backend reloads them if used again)."""
        self._model = None
        release_memory()

    # ---- internals ---------------------------------------------------------------------
    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        pad = self._tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], dtype=torch.long)
        return input_ids.to(self.device), mask.to(self.device)

    def _prefix_cached(self, seqs: list[list[int]], p: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Rows laid out as [shared prefix][left padding][own suffix], and the prefix's KV cache
        (computed once, as a batch of one) repeated for every row.

        ``generate`` then feeds only the tokens after the cache. Positions come from the attention
        mask (cumsum), so each token has the same position as in the plain left-padded layout, and
        the padding is masked either way: the same computation, minus recomputing the prefix for
        every row. Only float rounding can differ (fp32 greedy outputs are checked equal by a test).
        """
        pad = self._tokenizer.pad_token_id
        prefix = seqs[0][:p]
        width = max(len(s) for s in seqs)
        rows = [prefix + [pad] * (width - len(s)) + s[p:] for s in seqs]
        mask = [[1] * p + [0] * (width - len(s)) + [1] * (len(s) - p) for s in seqs]
        with torch.inference_mode():
            out = self._model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        cache.batch_repeat_interleave(len(seqs))
        ids_t = torch.tensor(rows, dtype=torch.long, device=self.device)
        return ids_t, torch.tensor(mask, dtype=torch.long, device=self.device), cache

    def _last_logits(self, seqs: list[list[int]]) -> torch.Tensor:
        """Float32 next-token logits after each (left-padded) sequence's last real token."""
        input_ids, mask = self._left_pad(seqs)
        # Explicit positions: a plain forward would count the left padding as positions (which
        # RoPE models shrug off, only relative positions reach attention, but absolute ones don't).
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self._model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
                logits_to_keep=1,
            )
        return out.logits[:, -1, :].float()

    def _top_k_distribution(self, ids: list[list[int]], top_k: int) -> list[dict[str, float]]:
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list[dict[str, float]] = [{} for _ in ids]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            probs = torch.softmax(self._last_logits([ids[i] for i in batch]), dim=-1)
            top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
            for i, p_row, t_row in zip(batch, top.values.tolist(), top.indices.tolist()):
                out[i] = self.answer_texts(list(zip(t_row, p_row)))
        return out

    def _candidate_distribution(self, ids: list[list[int]], candidates: tuple[str, ...]) -> list[dict[str, float]]:
        """Each candidate scored as the whole answer (its tokens, then the end of the turn).

        The prompt is run once and its KV cache shared by all candidates (scoring every
        prompt+candidate sequence from scratch costs a full prompt pass per candidate).
        """
        cand = self.candidate_ids(candidates)
        n_c, width = len(cand), max(len(c) for c in cand) - 1  # tokens fed after the prompt
        pad = self._tokenizer.pad_token_id
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        logp = torch.zeros(len(ids), n_c)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            input_ids, mask = self._left_pad([ids[i] for i in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                out = self._model(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=width > 0,
                    logits_to_keep=1,
                )
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]
            scores = torch.stack([first[:, c[0]] for c in cand], dim=1)  # [B, C]
            if width > 0:
                # Rows (prompt b, candidate c) continue b's cache with c's tokens but its last,
                # right-padded: padding after the real tokens cannot change their logits.
                cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
                cache.batch_repeat_interleave(n_c)
                feed = torch.tensor([c[:-1] + [pad] * (width + 1 - len(c)) for c in cand] * len(batch))
                real = torch.tensor([[1] * (len(c) - 1) + [0] * (width + 1 - len(c)) for c in cand] * len(batch))
                mask2 = torch.cat([mask.repeat_interleave(n_c, 0), real.to(mask.device)], dim=1)
                pos2 = positions[:, -1:].repeat_interleave(n_c, 0) + 1 + torch.arange(width, device=mask.device)
                with torch.inference_mode():
                    out2 = self._model(
                        input_ids=feed.to(mask.device),
                        attention_mask=mask2,
                        position_ids=pos2,
                        use_cache=False,
                        **{self._cache_kwarg: cache},
                    )
                rest = torch.log_softmax(out2.logits.float(), dim=-1).view(len(batch), n_c, width, -1)
                for c, toks in enumerate(cand):
                    for k, t in enumerate(toks[1:]):
                        scores[:, c] += rest[:, c, k, t]
            logp[batch] = scores.cpu()
        probs = torch.softmax(logp, dim=-1).tolist()
        return [dict(zip(candidates, row)) for row in probs]


MIN_SHARED_PREFIX = 8  # shorter common prefixes are not worth a separate prefix pass


def _common_prefix(seqs: list[list[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least one token of its own (generation
    needs a last prompt token to run)."""
    shortest = min(len(s) for s in seqs)
    first = seqs[0]
    p = 0
    while p < shortest - 1 and all(s[p] == first[p] for s in seqs):
        p += 1
    return p


def _cut_at_stop(seq: list[int], stop_ids: list[int]) -> list[int]:
    for k, t in enumerate(seq):
        if t in stop_ids:
            return seq[:k]
    return seq
