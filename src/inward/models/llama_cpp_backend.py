"""The llama.cpp engine: a ``bundled/`` or ``gguf/`` model run on its GGUF file by llama.cpp, on CPU.

inward's torch path dequantises the bundled Q4_K_M GGUF into a float32 checkpoint; llama.cpp runs
the quantised file itself (Q4_K/Q6_K weights, activations quantised to 8 bits inside its dot
products), so both run the same weights with different arithmetic. How far apart their outputs
are is measured by tests/models/test_llama_cpp_fidelity.py against bf16's own deviation.

- **Same tokens.** Prompts are rendered and tokenised by the same Hugging Face tokenizer and chat
  format as the torch engine (:func:`inward.models.chat.load_tokenizer`); llama.cpp is fed token
  ids, never text.
- **Adapters unmerged.** A ``+lora:`` peft adapter is converted once to a GGUF LoRA adapter
  (:mod:`inward.models.gguf_lora`) and applied at runtime by llama.cpp, scale 1 (alpha / r).
- **Batch-invariant by construction, and recorded.** llama.cpp's output can depend on how tokens
  are batched (ggml-org/llama.cpp#6950, #7052). Measured here on Qwen 0.5B (next-token logits,
  largest logit about 17): with llama.cpp's defaults, one decoding step of 4 or more sequences
  differed from the same step alone by up to 0.42; the repacked Q4_K weights (a separate GEMM for
  4+ tokens) and flash attention cause it. With both off (``use_extra_bufts = false``,
  ``flash_attn_type = disabled``), steps of 1 to 16 sequences gave bit-identical logits, and
  greedy generation was about 8% slower than with repacked weights (7.6 s vs 7.0 s for 16
  object-level prompts). Evaluating a prompt in two calls (a shared prefix, then the rest) still
  moved its logits by up to 0.36, depending on the prompt and the split, and so did evaluating 4
  prompts together in one call (each in its own stream) instead of one by one; so each prompt is
  evaluated whole, in one call, in its own KV stream (``kv_unified = false``: attention never
  runs over another sequence's cells); only decoding steps are batched, one token per active
  sequence, and no prefix is shared (the torch engine shares one). Tests check that greedy
  outputs and samples are the same bytes alone, in a batch and in another order. The layout's
  name is in the fingerprint (``generation_layout``), so outputs of another layout never share a
  cache key.
- **Sampling** uses the torch engine's seeded sampler row by row, so sample ``i`` of a prompt
  depends only on (seed, prompt, i).

Needs llama-cpp-python (the ``server`` extra: ``make setup-server``). CPU only.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inward.errors import InwardError
from inward.models import chat
from inward.models.args import LocalArgs, cpu_count
from inward.models.args import parse as parse_args
from inward.models.base import BackendStats, DistributionConfig, GenerationConfig, Prompt
from inward.models.checkpoint import Checkpoint
from inward.models.spec import ModelSpec

LAYOUT = "llama.cpp-stream-per-sequence-no-repack-no-fa-v1"
CHUNK = 512  # prompt tokens per decode call, fixed
MAX_SEQUENCES = 64  # a decoding step (one token each) must fit one call of at most 256 tokens
_INITIALISED = False


def available() -> bool:
    """Whether llama-cpp-python is installed (the ``server`` extra)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _lib() -> Any:
    global _INITIALISED
    try:
        import llama_cpp
    except ImportError as exc:
        raise InwardError(
            "engine=llama.cpp needs llama-cpp-python: `make setup-server` (builds it once, about 4 min on "
            "2 cores), or use engine=torch."
        ) from exc
    if not _INITIALISED:
        llama_cpp.llama_backend_init()
        _silence(llama_cpp)
        _INITIALISED = True
    return llama_cpp


_LOG_CALLBACK: Any = None


def _silence(lib: Any) -> None:
    """llama.cpp logs every load to stderr; keep only errors."""
    global _LOG_CALLBACK

    @lib.llama_log_callback
    def _log(level: int, text: bytes, user_data: Any) -> None:
        if level == 4:  # GGML_LOG_LEVEL_ERROR (0 none, 1 debug, 2 info, 3 warn, 4 error, 5 cont)
            os.write(2, text)

    _LOG_CALLBACK = _log  # keep a reference: llama.cpp calls it later
    lib.llama_log_set(_log, ctypes.c_void_p(0))


class LlamaCppBackend(chat.Tokenized):
    """A GGUF model run by llama.cpp behind inward's :class:`~inward.models.base.Backend` protocol.

    Model args: ``engine=llama.cpp`` selects it; ``threads`` (default: all cores); ``batch_size``
    sequences decoded together (default 16); ``chat_format`` as for the torch engine. ``dtype``
    must be ``auto``: llama.cpp runs the GGUF file's own weight types.
    """

    def __init__(self, spec: ModelSpec, **model_args: Any):
        if spec.provider not in ("bundled", "gguf"):
            raise InwardError(
                f"engine=llama.cpp runs GGUF files: bundled/ or gguf/ models, not {spec.raw!r}. "
                "Use engine=torch for hf/ checkpoints."
            )
        # The local engines' -M args (inward.models.args.LocalArgs); 16 sequences decode together.
        args = parse_args(LocalArgs, spec.raw, {"batch_size": 16, **model_args, "engine": "llama.cpp"})
        if args.dtype != "auto":
            raise InwardError(
                f"Model arg dtype={args.dtype} with engine=llama.cpp for {spec.raw!r}: llama.cpp runs the "
                "GGUF file's own weight types. Drop dtype, or use engine=torch to pick a precision."
            )
        if args.batch_size > MAX_SEQUENCES:
            raise InwardError(
                f"Model arg batch_size={args.batch_size} with engine=llama.cpp for {spec.raw!r}: it decodes at "
                f"most {MAX_SEQUENCES} sequences together (one KV stream each). Use batch_size={MAX_SEQUENCES} or less."
            )
        if args.device not in ("auto", "cpu"):
            raise InwardError(f"engine=llama.cpp runs on the CPU here; got device={args.device!r}.")
        self.spec = spec
        self.checkpoint = Checkpoint(spec)
        self.checkpoint.check()
        self.model_string = spec.raw
        self.threads = args.threads or cpu_count()
        self.batch_size = args.batch_size
        self.chat_choice = args.chat_format
        self._stats = BackendStats()
        self._tokenizer: Any = None
        self._format: chat.ChatFormat | None = None
        self._stop_ids: list[int] = []
        self._model: Any = None
        self._lora: Any = None
        self._ctx: Any = None
        self._ctx_shape: tuple[int, int] = (0, 0)
        self._n_vocab = 0
        self._fingerprint: dict[str, Any] | None = None

    # ---- identity ------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """The weights' own GGUF types, as a precision name (``gguf``)."""
        return "gguf"

    def gguf_file(self) -> Path:
        return self.checkpoint.gguf_file()

    def fingerprint(self) -> dict[str, Any]:
        """Identity of (GGUF weights, engine, adapter, chat template, batch layout)."""
        if self._fingerprint is None:
            import llama_cpp

            self._ensure_tokenizer()
            adapter_sha, adapter_cfg_sha = self.checkpoint.adapter_hashes()
            self._fingerprint = {
                "backend": "llama.cpp",
                "model": self.spec.base,
                "weights_sha256": self.checkpoint.weights_sha256(),
                "precision": "gguf",
                "adapter_sha256": adapter_sha,
                "adapter_config_sha256": adapter_cfg_sha,
                "adapter_merge": "unmerged-gguf-lora-v1" if adapter_sha else None,
                "chat_template": self.chat_format.identity(),
                "stop_tokens": self._tokenizer.convert_ids_to_tokens(self._stop_ids),
                "device": "cpu",
                "llama_cpp_python": llama_cpp.__version__,
                "generation_layout": LAYOUT,
            }
        return dict(self._fingerprint)

    # ---- loading -------------------------------------------------------------------------
    def load(self) -> Any:
        """The llama.cpp model handle (loaded on first use, adapter attached)."""
        if self._model is None:
            lib = _lib()
            self._ensure_tokenizer()
            t0 = time.perf_counter()
            params = lib.llama_model_default_params()
            params.n_gpu_layers = 0
            params.use_extra_bufts = False  # no repacked weights: see the module doc
            model = lib.llama_model_load_from_file(str(self.gguf_file()).encode(), params)
            if not model:
                raise InwardError(f"llama.cpp could not load {self.gguf_file()} (from {self.spec.raw!r}).")
            self._model = model
            self._n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model))
            if self.spec.adapter is not None:
                from inward.models.gguf_lora import gguf_adapter

                path = gguf_adapter(self.spec.adapter, self.gguf_file())
                self._lora = lib.llama_adapter_lora_init(model, str(path).encode())
                if not self._lora:
                    raise InwardError(f"llama.cpp could not load the LoRA adapter {self.spec.adapter!r} ({path}).")
            self._stats.extra["load_seconds"] = round(time.perf_counter() - t0, 3)
        return self._model

    def _context(self, n_seq: int, per_seq: int) -> Any:
        """A context with ``n_seq`` KV streams of at least ``per_seq`` cells each (reused if big enough)."""
        lib = _lib()
        self.load()
        if self._ctx is not None and self._ctx_shape[0] >= n_seq and self._ctx_shape[1] >= per_seq:
            lib.llama_memory_clear(lib.llama_get_memory(self._ctx), True)
            return self._ctx
        self._free_context()
        n_seq = max(n_seq, self._ctx_shape[0])
        per_seq = max(256, 1 << (max(per_seq, self._ctx_shape[1]) - 1).bit_length())
        p = lib.llama_context_default_params()
        p.n_ctx = n_seq * per_seq
        p.n_seq_max = n_seq
        p.n_batch = p.n_ubatch = min(CHUNK, p.n_ctx)  # a prompt up to CHUNK tokens is one call
        p.n_threads = p.n_threads_batch = self.threads
        p.kv_unified = False  # one KV stream per sequence: its attention never sees another's cells
        p.swa_full = True  # sliding-window layers keep every cell: the same cells whatever the batch
        p.no_perf = True
        p.flash_attn_type = 0  # disabled: see the module doc (the flash-attention path is not batch-invariant)
        ctx = lib.llama_init_from_model(self._model, p)
        if not ctx:
            raise InwardError(f"llama.cpp could not create a context of {n_seq} x {per_seq} tokens.")
        if self._lora:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._lora)
            scales = (ctypes.c_float * 1)(1.0)
            if lib.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
                raise InwardError(f"llama.cpp could not apply the LoRA adapter {self.spec.adapter!r}.")
        self._ctx, self._ctx_shape = ctx, (n_seq, per_seq)
        return ctx

    def _free_context(self) -> None:
        if self._ctx is not None:
            _lib().llama_free(self._ctx)
            self._ctx = None

    def close(self) -> None:
        """Free the context, adapter and weights (reloaded if used again)."""
        self._free_context()
        self._ctx_shape = (0, 0)
        if self._model is not None:
            lib = _lib()
            if self._lora:
                lib.llama_adapter_lora_free(self._lora)
                self._lora = None
            lib.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass

    # ---- low-level steps -----------------------------------------------------------------
    def _decode(self, tokens: Sequence[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, sequence, want logits) rows."""
        lib = _lib()
        batch = lib.llama_batch_init(len(tokens), 0, 1)
        try:
            for k, (tok, pos, seq, logits) in enumerate(tokens):
                batch.token[k] = tok
                batch.pos[k] = pos
                batch.n_seq_id[k] = 1
                batch.seq_id[k][0] = seq
                batch.logits[k] = 1 if logits else 0
            batch.n_tokens = len(tokens)
            rc = lib.llama_decode(self._ctx, batch)
        finally:
            lib.llama_batch_free(batch)
        if rc != 0:
            raise InwardError(f"llama.cpp decode failed (code {rc}) on {len(tokens)} tokens of {self.spec.raw!r}.")

    def _prefill(self, ids: Sequence[int], seq: int, start: int) -> np.ndarray:
        """Evaluate ``ids[start:]`` in sequence ``seq`` (positions from ``start``), in calls of
        :data:`CHUNK` tokens whatever the context's size (the split of a prompt changes its logits,
        so it must not depend on the batch); returns the float32 logits after the last token."""
        chunk = CHUNK
        rows = [(t, start + k, seq, False) for k, t in enumerate(ids[start:])]
        rows[-1] = rows[-1][:3] + (True,)
        for a in range(0, len(rows), chunk):
            self._decode(rows[a : a + chunk])
        return self._logits(len(rows[a : a + chunk]) - 1)

    def _logits(self, index: int) -> np.ndarray:
        lib = _lib()
        ptr = lib.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).astype(np.float32, copy=True)

    def _truncate(self, seq: int, keep: int) -> None:
        lib = _lib()
        if not lib.llama_memory_seq_rm(lib.llama_get_memory(self._ctx), seq, keep, -1):
            raise InwardError("llama.cpp could not drop tokens from a sequence.")

    def _encode(self, prompts: Sequence[Prompt]) -> tuple[list[str], list[list[int]]]:
        tok = self._ensure_tokenizer()
        texts = [chat.render(tok, self.chat_format, p) for p in prompts]
        return texts, [list(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]

    # ---- protocol ------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        from inward.models.sampling import SeededSampler, completion_rows

        if not prompts:
            return []
        self.load()
        t0 = time.perf_counter()
        texts, ids = self._encode(prompts)
        rows = completion_rows(texts, [len(x) for x in ids], config)
        results: list[list[str]] = [[""] * config.n for _ in prompts]
        stop = set(self._stop_ids)
        new_tokens = 0
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            seqs = [ids[i] for i, _, _ in batch]
            longest = max(len(s) for s in seqs)
            self._context(len(batch), longest + config.max_tokens + 1)
            # Each prompt whole, in one call, in its own stream: splitting a prompt over calls (a
            # shared prefix, then the rest) changes the logits (module doc), so nothing is shared.
            logits = [self._prefill(seq, s, 0) for s, seq in enumerate(seqs)]
            samplers = [
                None if seed is None else SeededSampler([seed], config.temperature, config.top_p)
                for _, _, seed in batch
            ]
            out: list[list[int]] = [[] for _ in batch]
            active = list(range(len(batch)))
            while active:
                nxt_active = []
                step = []
                for s in active:
                    token = _choose(logits[s], samplers[s])
                    if token in stop:
                        continue
                    out[s].append(token)
                    if len(out[s]) >= config.max_tokens:
                        continue
                    step.append((token, len(seqs[s]) + len(out[s]) - 1, s, True))
                    nxt_active.append(s)
                if step:
                    self._decode(step)
                    for k, (_, _, s, _) in enumerate(step):
                        logits[s] = self._logits(k)
                active = nxt_active
            for (i, j, _), seq in zip(batch, out):
                new_tokens += len(seq)
                results[i][j] = self.answer_text(seq)
            self._stats.extra["batches"] = self._stats.extra.get("batches", 0) + 1
        self._stats.add_generate(len(prompts), len(rows), time.perf_counter() - t0, tokens=new_tokens)
        return results

    def answer_distribution(self, prompts: Sequence[Prompt], config: DistributionConfig) -> list[dict[str, float]]:
        if not prompts:
            return []
        self.load()
        t0 = time.perf_counter()
        _, ids = self._encode(prompts)
        cand = self.candidate_ids(config.candidates) if config.candidates else []
        longest = max(len(s) for s in ids) + max((len(c) for c in cand), default=0) + 1
        self._context(1, longest)
        out: list[dict[str, float]] = []
        for seq in ids:
            self._truncate(0, 0)  # each prompt whole, in one call (module doc)
            first = _log_softmax(self._prefill(seq, 0, 0))
            if not cand:
                out.append(self._top_k(first, config.top_k))
                continue
            scores = []
            for c in cand:
                total = float(first[c[0]])
                if len(c) > 1:
                    rows = [(t, len(seq) + k, 0, True) for k, t in enumerate(c[:-1])]
                    self._decode(rows)
                    for k, t in enumerate(c[1:]):
                        total += float(_log_softmax(self._logits(k))[t])
                    self._truncate(0, len(seq))  # drop the candidate: stream 0 holds the prompt again
                scores.append(total)
            probs = np.exp(np.asarray(scores) - max(scores))
            probs /= probs.sum()
            out.append(dict(zip(config.candidates, probs.tolist())))
        self._stats.add_distribution(len(prompts), time.perf_counter() - t0)
        return out

    def _top_k(self, logp: np.ndarray, top_k: int) -> dict[str, float]:
        k = min(top_k, logp.shape[-1])
        top = np.argpartition(-logp, k - 1)[:k]
        top = top[np.argsort(-logp[top], kind="stable")]
        return self.answer_texts([(t, float(np.exp(logp[t]))) for t in top.tolist()])


def _choose(logits: np.ndarray, sampler: Any) -> int:
    if sampler is None:
        return int(np.argmax(logits))
    import torch

    return int(sampler(None, torch.from_numpy(logits).unsqueeze(0)).argmax())


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max()
    return x - np.log(np.exp(x).sum())
