"""LoRA finetuning of a local model on (prompt, completion) examples: a small hand-written loop.

Why not TRL's ``SFTTrainer``: our examples have prompts of ~60-100 tokens and answers of 1-3
tokens, so almost all of a standard step's logits (vocab 151k) are for positions that carry no
loss. This loop runs the decoder, picks the hidden states of the answer positions only, and
applies the LM head there. Everything else is textbook: AdamW, linear warmup then linear decay
(or constant), length-bucketed batches, peft ``LoraConfig`` + ``get_peft_model``.

What the model is trained on is exactly what inference shows it. For each example:

- ``prompt_ids`` = tokens of :meth:`LocalBackend.render` (the same chat template or fallback the
  local backend uses, generation prompt included, no extra special tokens);
- ``completion_ids`` = tokens of ``render(prompt) + completion`` after that prefix, then the
  template's end-of-turn token (the first stop token of :func:`inward.models.chat.stop_token_ids`,
  e.g. ``<|im_end|>`` for Qwen), so the model learns to stop where generation stops;
- labels are ``-100`` on every prompt token: **the loss is only on the answer tokens**.

If tokenising prompt+completion together does not start with ``prompt_ids`` (a token merges
across the boundary) the example cannot be trained faithfully and :class:`InwardError` is raised.

Run directory (``out_dir``)::

    checkpoint/         every save_every_steps: trainable weights, AdamW state, step, RNG, losses
    adapter/            the finished peft adapter (adapter_config.json + adapter_model.safetensors)
    train_result.json   written LAST; its presence means "done" and a rerun returns it as is

Checkpoints carry a sha256 of (base model identity, training config, examples); resuming with
anything different is refused. The adapter loads for inference as
``<model_string>+lora:<out_dir>/adapter`` (the local backend merges it into the weights).

Default config, with numbers for the paper's 400-example datasets: batch 8 gives 50 steps per
epoch; a hypothetical prompt is ~80 tokens, so a step sees ~650 tokens but computes the LM head
on only ~16-24 positions (answer tokens + end token).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from inward.errors import InvalidValueError, InwardError
from inward.memory import peak_rss_mb
from inward.models.checkpoint import Checkpoint, peft_quietly
from inward.train.examples import TrainExample, check_example

log = logging.getLogger("inward.train")

IGNORE = -100  # label of positions that carry no loss (prompt tokens, padding)
RESULT_FILE = "train_result.json"
CHECKPOINT_DIR = "checkpoint"
ADAPTER_DIR = "adapter"
BUCKET_BATCHES = 32  # sort by (group, length) within windows of this many batches, then shuffle the batches
FORMAT_VERSION = 2  # bump when a change would make old checkpoints resume differently
ATTENTIONS = ("auto", "eager", "sdpa")  # TrainConfig.attention

ProgressFn = Callable[[int, int, float], None]
"""``progress(step, total_steps, loss)``, called after every optimizer step (step counts from 1)."""


@dataclass(frozen=True)
class TrainConfig:
    """LoRA finetuning settings. Defaults follow the feasibility probe in models.md.

    With N examples: steps per epoch = ceil(N / batch_size); total steps = epochs x that.
    ``save_every_steps`` does not define the run; every other field does, ``threads`` as the
    number actually used (None: every core this process may use), since the thread count changes
    bf16 reductions.
    """

    rank: int = 16  # LoRA r
    alpha: int = 32  # LoRA alpha; the update is scaled by alpha / rank = 2
    dropout: float = 0.0  # LoRA dropout
    target_modules: str | tuple[str, ...] = "all-linear"  # every linear layer but the LM head
    learning_rate: float = 2e-4  # peak AdamW LR (betas 0.9/0.999, eps 1e-8, no weight decay)
    lr_schedule: str = "linear"  # "linear": warmup then linear decay to 0 | "constant": warmup then flat
    warmup_steps: int = 0
    epochs: int = 1
    batch_size: int = 8  # sequences per optimizer step (no gradient accumulation)
    max_length: int = 256  # tokens of prompt + answer + end token; longer examples are an error
    dtype: str = (
        "auto"  # "auto" (bfloat16 where measured >= 1.3x faster here: inward.models.precision) | "bfloat16" | "float32"
    )
    seed: int = 0  # LoRA init, batch order, dropout
    save_every_steps: int = 25  # checkpoint cadence for resume (0: only at the end)
    threads: int | None = None  # torch CPU threads; None: all cores available to this process
    # Attention kernel: "auto" (eager on CPU, sdpa on CUDA) | "eager" | "sdpa". On 2 CPU cores in
    # bf16, eager trained the default study's examples 1.16x (Qwen 0.5B) and 1.04x (Gemma 270M)
    # as fast as sdpa (whose flash backward was 11% of a Qwen step), and the same in float32
    # (benchmarks/train_kernels.py, benchmarks/README.md).
    attention: str = "auto"
    # With a bfloat16 base: run the adapter's matmuls in bfloat16 too (torch.autocast) instead of
    # casting each layer's input up to float32; the adapter's weights, gradients and AdamW state
    # stay float32 either way. With eager attention: 1.34x (Qwen) and 1.11x (Gemma) against sdpa
    # without it. No effect on a float32 base.
    autocast: bool = True

    # a study config validates this type as its `finetune` section: unknown keys are errors there
    __pydantic_config__ = {"extra": "forbid"}

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise InvalidValueError(f"TrainConfig: {what}.")

        need(self.rank >= 1, f"rank must be >= 1, got {self.rank}")
        need(self.alpha > 0, f"alpha must be > 0, got {self.alpha}")
        need(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        need(
            self.lr_schedule in ("linear", "constant"),
            f"lr_schedule must be 'linear' or 'constant', got {self.lr_schedule!r}",
        )
        need(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.max_length >= 2, f"max_length must be >= 2, got {self.max_length}")
        need(
            self.dtype in ("auto", "bfloat16", "float32"),
            f"dtype must be auto, bfloat16 or float32, got {self.dtype!r}",
        )
        need(self.save_every_steps >= 0, f"save_every_steps must be >= 0, got {self.save_every_steps}")
        need(self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}")
        need(self.attention in ATTENTIONS, f"attention must be {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if not isinstance(self.target_modules, str):  # lists from JSON/YAML become tuples
            object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["target_modules"], tuple):
            d["target_modules"] = list(d["target_modules"])
        return d

    def identity(self) -> dict[str, Any]:
        """The fields that define the trained weights (hashed into the run key)."""
        d = self.to_json()
        del d["threads"], d["save_every_steps"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainResult:
    """What a finished training run produced; stored as ``out_dir/train_result.json``."""

    model_string: str
    adapter_path: str
    adapter_model_string: str  # ``<model_string>+lora:<adapter_path>``, for inward.models.resolve
    config: dict[str, Any]
    run_key: str  # sha256 of (base model identity, config.identity(), examples)
    dtype: str  # the resolved training dtype of the base weights (the adapter is kept in float32)
    device: str
    n_examples: int
    steps: int
    steps_per_epoch: int
    losses: list[float]  # mean answer-token cross-entropy of each optimizer step
    final_loss: float  # mean of the last epoch's step losses
    train_seconds: float  # optimizer steps only (summed over resumed sessions)
    load_seconds: float  # loading + wrapping the model in the last session
    examples_per_second: float
    tokens_per_second: float  # real (non-padding) tokens through the model per second
    tokens: int
    label_tokens: int  # tokens that carried loss (answers + end tokens), summed over steps
    resumed_from_step: int | None = None
    peak_rss_mb: float = 0.0  # peak resident memory of the process (includes earlier work in it)
    versions: dict[str, str] = field(default_factory=dict)
    attention: str = ""  # the resolved attention kernel (TrainConfig.attention)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- dtype and threads -------------------------------------------------------------------------


def resolve_dtype(name: str, checkpoint: Checkpoint | None = None) -> str:
    """The precision a finetune trains in: a named one as is; ``auto`` resolved for the base
    model's layer sizes by the resolver inference uses too (:mod:`inward.models.precision`), so
    training and generation pick the same precision on one machine."""
    if name != "auto":
        return name
    if checkpoint is None:
        raise ValueError("resolving dtype auto needs the model's checkpoint (its layer sizes are timed)")
    return checkpoint.precision("auto").dtype


def resolve_attention(name: str, device: str) -> str:
    """The attention kernel a finetune trains with: a named one as is; ``auto`` is eager on CPU
    (faster at the study's short sequences, see :class:`TrainConfig`) and sdpa on CUDA."""
    return name if name != "auto" else ("eager" if device == "cpu" else "sdpa")


# ---- base model and tokenisation ---------------------------------------------------------------


@dataclass
class BaseModel:
    """A local base model resolved the way inference resolves it (see :mod:`inward.models.local`)."""

    backend: Any  # LocalBackend: used for its render() and checkpoint resolution, never for weights
    tokenizer: Any
    checkpoint: Path
    end_id: int  # the template's end-of-turn token: appended to every completion
    pad_id: int
    answer_prefix: str = ""  # the chat format's text before an answer (" " after "Assistant:")

    def identity(self) -> dict[str, Any]:
        """What of the base model determines training; a local-path model is named by its
        weights hash, so a moved run directory keeps its run keys."""
        from inward.store.stages import model_identity

        fp = model_identity(self.backend.fingerprint())
        return {k: fp[k] for k in ("model", "weights_sha256", "chat_template", "stop_tokens")}


def load_base(model_string: str, model_args: dict[str, Any] | None = None) -> BaseModel:
    """Resolve ``model_string`` (``bundled/``, ``hf/``, ``gguf/``; no adapter) to its checkpoint and
    tokenizer, through the local backend so that training renders prompts as inference does.

    ``model_args`` are the local backend's (only ``chat_format`` changes what training sees).
    """
    from inward.models import parse_model_string, resolve
    from inward.models.local import LocalBackend

    spec = parse_model_string(model_string)
    if spec.adapter is not None:
        raise InwardError(
            f"train_lora trains a new adapter on a base model, but {model_string!r} already has one. "
            f"Train on {spec.base!r} instead."
        )
    if spec.provider not in ("bundled", "hf", "gguf"):
        raise InwardError(f"LoRA training needs a local model (bundled/, hf/ or gguf/), got {model_string!r}.")
    fmt_args = {k: v for k, v in (model_args or {}).items() if k == "chat_format"}
    backend = resolve(model_string, **fmt_args)
    assert isinstance(backend, LocalBackend)  # a local provider, checked above
    tok, stop_ids = backend.tokenizer, backend.stop_ids
    pad = tok.pad_token_id if tok.pad_token_id is not None else stop_ids[-1]
    return BaseModel(backend, tok, backend.checkpoint_dir(), stop_ids[0], pad, backend.chat_format.answer_prefix)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens; the token ids on answer tokens + end token


def encode_example(base: BaseModel, example: TrainExample, max_length: int | None = None) -> Encoded:
    """Token ids and labels of one example (see the module docstring). Raises on a prefix mismatch."""
    tok = base.tokenizer
    prompt_text = base.backend.render(example.prompt)
    prompt_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
    # The format's answer prefix (the space after "Assistant:" in the plain formats) belongs to
    # the answer, as generation produces it; the model's own templates have none.
    full_ids = tok(prompt_text + base.answer_prefix + example.completion, add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    if full_ids[:n] != prompt_ids:
        k = next((i for i, (a, b) in enumerate(zip(full_ids, prompt_ids)) if a != b), min(n, len(full_ids)))
        raise InwardError(
            f"Tokenising prompt+completion does not start with the prompt's own tokens (first difference "
            f"at token {k} of {n}: prompt has {tok.convert_ids_to_tokens(prompt_ids[k : k + 3])}, "
            f"together {tok.convert_ids_to_tokens(full_ids[k : k + 3])}), so the answer labels would be "
            f"misaligned. Completion {example.completion!r} merges with the end of the prompt "
            f"{prompt_text[-20:]!r}; change the completion (e.g. strip leading whitespace) or the template."
        )
    answer = full_ids[n:]
    if not answer:
        raise InwardError(f"Completion {example.completion!r} tokenises to nothing.")
    ids = prompt_ids + answer + [base.end_id]
    if max_length is not None and len(ids) > max_length:
        raise InwardError(
            f"An example is {len(ids)} tokens long (prompt {n}, answer {len(answer)} + end token), more "
            f"than max_length={max_length}. Raise TrainConfig.max_length; examples are never truncated."
        )
    return Encoded(ids, [IGNORE] * n + answer + [base.end_id])


def batch_plan(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, groups: Sequence[str] | None = None
) -> list[list[int]]:
    """Example indices of each batch of one epoch: shuffled, sorted within windows of
    ``BUCKET_BATCHES`` batches by (``groups[i]``, length), then the batches shuffled. A pure
    function of its arguments, so a resumed run rebuilds exactly the same batches.

    Sorting by length means less padding; sorting by group first (:func:`prompt_group`: the
    instruction line, so one task's prompts) gives each batch a longer common prompt prefix,
    which :func:`label_logits` computes once for the batch. On the default study's self-training
    set, that cut the tokens a step computes by 1.36x (``benchmarks/train_batches.py``)."""
    rng = random.Random(f"inward-train:{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: (groups[i] if groups else "", lengths[i]))
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def prompt_group(example: TrainExample) -> str:
    """The batching key of an example: its system text and the first line of its last user
    message (a trailing line break ignored). The generated tasks' prompts start with their
    instruction line and hypotheticals quote the object-level prompt whole, so there this is the
    task: the longest prompt part shared with other examples. See :func:`batch_groups` for the
    prompts where it is not."""
    system = "".join(m["content"] for m in example.prompt if m["role"] == "system")
    user = next((m["content"] for m in reversed(example.prompt) if m["role"] == "user"), "")
    first, newline, _ = user.rstrip("\n").partition("\n")
    return system + "\x00" + (first if newline else "")


def batch_groups(examples: Sequence[TrainExample]) -> list[str] | None:
    """Each example's :func:`prompt_group`, where it is shared: a key that only one example has
    (a one-line prompt, or a task whose prompt starts with the item itself, such as the paper's
    wealth_seeking) becomes "" and such examples are batched by length only, as grouping by their
    whole text would sort them alphabetically and give every epoch the same batches. None when
    ``GROUP_BATCHES`` is off."""
    if not GROUP_BATCHES:
        return None
    from collections import Counter

    keys = [prompt_group(ex) for ex in examples]
    counts = Counter(keys)
    return [k if counts[k] > 1 else "" for k in keys]


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (padding labelled IGNORE)."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in items]
    labels = [e.labels + [IGNORE] * (width - len(e.labels)) for e in items]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in items]
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


GROUP_BATCHES = True  # batch by prompt_group, then length (see batch_plan); off for ablations
SHARE_PREFIX = True  # compute a batch's common prompt prefix once (see answer_loss); off for ablations
MIN_SHARED_PREFIX = 4  # shorter common prefixes are not worth a second decoder call


def shared_prefix_length(batch: dict[str, Any]) -> int:
    """Tokens at the start that every row of the batch has in common and that no loss needs the
    hidden state of (position t's hidden state predicts label t+1, so the prefix ends at least one
    token before the first label of every row). 0 when there is nothing worth sharing."""
    ids, labels = batch["input_ids"], batch["labels"]
    if ids.shape[0] < 2:
        return 0
    same = (ids == ids[:1]).all(dim=0) & (batch["attention_mask"] == 1).all(dim=0)
    p = int(same.long().cumprod(0).sum())  # length of the run of True from the start
    first_label = int((labels != IGNORE).long().argmax(dim=1).min())
    p = min(p, first_label - 1)
    return p if p >= MIN_SHARED_PREFIX else 0


def answer_loss(model: Any, batch: dict[str, Any], share_prefix: bool | None = None) -> Any:
    """Mean cross-entropy over labelled positions (see :func:`label_logits`)."""
    import torch.nn.functional as F

    logits, targets = label_logits(model, batch, share_prefix)
    return F.cross_entropy(logits, targets)


def label_logits(model: Any, batch: dict[str, Any], share_prefix: bool | None = None) -> tuple[Any, Any]:
    """Float32 logits at the labelled positions only, and their target tokens (row-major: row 0's
    labels first), computing the LM head only where labels are (a 262k-token vocabulary times
    every prompt position would be the largest tensor of a step).

    ``model`` is a causal LM (or a peft wrapper around one). Position t predicts token t+1.

    Shared prefix: rows of a batch usually begin with the same tokens (chat template, the
    hypothetical preamble, and, since batches are length-bucketed, often the same task
    instruction: ~45 of ~78 tokens). That prefix is run once, as a batch of one, and its key/value
    cache is repeated for every row, which then runs only its own suffix. The maths is the same
    (causal attention: prefix states never see the suffix; gradients from every row flow back
    through the repeated cache into the one prefix pass); only float rounding differs (a test
    checks loss and gradients against the plain pass in fp32).
    """
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = lm.get_decoder()
    share = SHARE_PREFIX if share_prefix is None else share_prefix
    p = shared_prefix_length(batch) if share else 0
    if p:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        pre = decoder(input_ids=ids[:1, :p], use_cache=True)
        cache = pre.cache if getattr(pre, "cache", None) is not None else pre.past_key_values
        cache.batch_repeat_interleave(ids.shape[0])
        # transformers renamed forward's `past_key_values` to `cache` during 5.x
        cache_kw = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
        positions = torch_arange(p, ids.shape[1], ids.device).expand(ids.shape[0], -1)
        hidden = decoder(
            input_ids=ids[:, p:],
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_kw: cache},
        ).last_hidden_state
        targets = batch["labels"][:, p + 1 :]
    else:
        hidden = decoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).last_hidden_state
        targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    logits = lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    cap = getattr(lm.config, "final_logit_softcapping", None)  # gemma-style logit soft-capping
    if cap:
        logits = (logits / cap).tanh() * cap
    return logits, targets[keep]


def torch_arange(start: int, end: int, device: Any) -> Any:
    import torch

    return torch.arange(start, end, device=device).unsqueeze(0)


def lr_factor(config: TrainConfig, step: int, total_steps: int) -> float:
    """The LR multiplier after ``step`` optimizer steps: linear warmup, then flat or linear to 0."""
    if step < config.warmup_steps:
        return (step + 1) / (config.warmup_steps + 1)
    if config.lr_schedule == "constant":
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - config.warmup_steps))


# ---- run identity and checkpoints --------------------------------------------------------------


def _threads_available() -> int:
    from inward.models.local import _cpu_count

    return _cpu_count()


def run_key(base_identity: dict[str, Any], config: TrainConfig, examples: Sequence[TrainExample]) -> str:
    """sha256 of everything that determines the trained adapter (example ``meta`` excluded)."""
    h = hashlib.sha256()
    # the thread count changes bf16 reductions, hence the trained weights
    from inward.store.stages import cpu_facts

    # and so do the CPU's bf16 kernels (AMX or not)
    head = {
        "format": FORMAT_VERSION,
        "model": base_identity,
        "config": config.identity(),
        "threads": config.threads or _threads_available(),
        "cpu": cpu_facts(),
    }
    if not GROUP_BATCHES:  # the ablation's batches differ (keys of grouped runs are unchanged)
        head["batches"] = "length"
    h.update(json.dumps(head, sort_keys=True).encode())
    for ex in examples:
        h.update(b"\n")
        h.update(json.dumps([ex.prompt, ex.completion], sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Put directory ``tmp`` at ``dest``; at every instant one of ``dest`` or ``dest.old`` is whole."""
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def _save_checkpoint(out_dir: Path, state: dict[str, Any]) -> None:
    import torch

    tmp = out_dir / f".{CHECKPOINT_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / "state.pt")
    info = {k: state[k] for k in ("run_key", "step", "total_steps")}
    (tmp / "checkpoint.json").write_text(json.dumps(info, indent=2))
    _replace_dir(tmp, out_dir / CHECKPOINT_DIR)


def _load_checkpoint(out_dir: Path) -> dict[str, Any] | None:
    import torch

    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):  # .old: interrupted mid-replace
        path = out_dir / name / "state.pt"
        if path.is_file():
            return torch.load(path, weights_only=True)
    return None


class RunMismatch(InwardError):
    """A finished or checkpointed training run in ``out_dir`` was made from other inputs."""


def _mismatch(what: Path, stored: str, key: str) -> InwardError:
    return RunMismatch(
        f"{what} belongs to a different training run (run key {stored[:12]}..., this one {key[:12]}...): "
        "the base model, training config or examples differ. Use a new output directory, or delete "
        f"{what} to start over."
    )


# ---- training ----------------------------------------------------------------------------------


def train_lora(
    model_string: str,
    examples: Sequence[TrainExample],
    config: TrainConfig,
    out_dir: Path | str,
    progress: ProgressFn | None = None,
    model_args: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``examples`` (loss on answer tokens only) and save it in ``out_dir``.

    ``model_args``: the local backend's args the model is used with (its ``chat_format`` decides
    how prompts are rendered, so the adapter must be evaluated with the same one).

    Resumes from ``out_dir/checkpoint`` when one exists for the same run; returns the stored
    result without training when ``out_dir/train_result.json`` exists for the same run. Raises
    :class:`InwardError` when either belongs to a different run.

    The steps: check the examples and key the run; return a stored result if there is one; build
    the model, optimizer and schedule; resume a checkpoint; run the optimizer steps; save the
    adapter, then the result marker.
    """
    out_dir = Path(out_dir)
    examples = list(examples)
    if not examples:
        raise InwardError("train_lora needs at least one example.")
    for i, ex in enumerate(examples):
        check_example(ex, f"example {i}")

    base = load_base(model_string, model_args)
    dtype = resolve_dtype(
        config.dtype, base.backend.checkpoint
    )  # auto differs between machines: the key holds the result
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    attention = resolve_attention(config.attention, device)
    key = run_key({**base.identity(), "dtype": dtype, "attention": attention}, config, examples)
    stored = _stored_result(out_dir, key, model_string)
    if stored is not None:
        return stored

    from inward.models.local import _cpu_count

    encoded = [encode_example(base, ex, config.max_length) for ex in examples]
    lengths = [len(e.input_ids) for e in encoded]
    groups = batch_groups(examples)
    steps_per_epoch = math.ceil(len(encoded) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    threads = config.threads or _cpu_count()
    torch.set_num_threads(threads)
    log.info(
        "train %s: %d examples, %d epoch(s) x %d steps of batch %d = %d steps; ~%.0f tokens/step, "
        "~%.1f answer tokens/step; dtype %s, %s attention, %d threads",
        model_string,
        len(encoded),
        config.epochs,
        steps_per_epoch,
        config.batch_size,
        total_steps,
        sum(lengths) / steps_per_epoch,
        sum(sum(t != IGNORE for t in e.labels) for e in encoded) / steps_per_epoch,
        dtype,
        attention,
        threads,
    )

    t_load = time.perf_counter()
    run = _build(model_string, base, config, dtype, attention, device, total_steps)
    load_seconds = time.perf_counter() - t_load
    state = _resume(out_dir, key, run, total_steps)
    _optimize(
        run,
        state,
        encoded,
        lengths,
        groups,
        config,
        base.pad_id,
        device,
        steps_per_epoch,
        total_steps,
        out_dir,
        key,
        progress,
    )
    adapter = _save_adapter(run.model, out_dir)

    import peft
    import transformers

    last_epoch = state.losses[-steps_per_epoch:]
    seconds = state.seconds
    result = TrainResult(
        model_string=model_string,
        adapter_path=str(adapter.resolve()),
        adapter_model_string=f"{model_string}+lora:{adapter.resolve()}",
        config=config.to_json(),
        run_key=key,
        dtype=dtype,
        attention=attention,
        device=device,
        n_examples=len(encoded),
        steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        losses=state.losses,
        final_loss=sum(last_epoch) / len(last_epoch),
        train_seconds=round(seconds, 3),
        load_seconds=round(load_seconds, 3),
        examples_per_second=state.examples / seconds if seconds else 0.0,
        tokens_per_second=state.tokens / seconds if seconds else 0.0,
        tokens=state.tokens,
        label_tokens=state.label_tokens,
        resumed_from_step=state.resumed_from,
        peak_rss_mb=peak_rss_mb(),
        versions={"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    )
    _write_result(out_dir, result)
    log.info(
        "trained %s: final loss %.4f, %.2f examples/s, adapter %s",
        out_dir,
        result.final_loss,
        result.examples_per_second,
        adapter,
    )
    return result


def _stored_result(out_dir: Path, key: str, model_string: str) -> TrainResult | None:
    """The finished run in ``out_dir`` if it is this run (its adapter where it is now); None if
    there is none; :class:`RunMismatch` if it is another run's."""
    marker = out_dir / RESULT_FILE
    if not marker.is_file():
        return None
    stored = TrainResult.from_json(json.loads(marker.read_text()))
    if stored.run_key != key:
        raise _mismatch(marker, stored.run_key, key)
    log.info("%s exists: returning the stored result, not retraining", marker)
    adapter = (out_dir / ADAPTER_DIR).resolve()  # where it is now (the folder may have moved)
    return replace(stored, adapter_path=str(adapter), adapter_model_string=f"{model_string}+lora:{adapter}")


@dataclass
class _Run:
    """The trainable model and what steps it."""

    model: Any
    params: list[Any]  # trainable (adapter) parameters
    names: list[str]  # their names, in the same order (checkpoint keys)
    optimizer: Any
    scheduler: Any
    autocast: bool = False  # forward passes under torch.autocast(bfloat16) (TrainConfig.autocast)


@dataclass
class _State:
    """Progress of a run: what a checkpoint saves and a resume restores (with the RNG state)."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0  # optimizer-step time only
    examples: int = 0
    tokens: int = 0
    label_tokens: int = 0
    resumed_from: int | None = None


def _build(
    model_string: str, base: BaseModel, config: TrainConfig, dtype: str, attention: str, device: str, total_steps: int
) -> _Run:
    """The base model with a fresh LoRA adapter (seeded init), AdamW and the LR schedule."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    model = base.backend.checkpoint.load_base(dtype, attention=attention)
    if getattr(model.config, "quantization_config", None) is not None:
        # e.g. a GGUF conversion that kept its quantization_config: the weights would stay packed
        # and run through dequantising kernels, and the trained adapter would not match them.
        raise InwardError(
            f"The checkpoint {str(base.checkpoint)!r} of {model_string!r} loads as a quantized model "
            f"({type(model.config.quantization_config).__name__}); LoRA training needs plain weights. "
            "For a bundled/gguf model, delete that cached conversion so it is rebuilt."
        )
    target = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=target,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with peft_quietly():
        model = get_peft_model(model, lora)  # adapter weights in float32 even over a bf16 base
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(config, step, total_steps))
    return _Run(model, params, names, optimizer, scheduler, autocast=config.autocast and dtype == "bfloat16")


def _resume(out_dir: Path, key: str, run: _Run, total_steps: int) -> _State:
    """Restore this run's checkpoint into ``run`` (weights, optimizer, schedule, RNG) and return
    its progress; a fresh state when there is none; :class:`RunMismatch` for another run's."""
    import torch

    ckpt = _load_checkpoint(out_dir)
    if ckpt is None:
        return _State()
    if ckpt["run_key"] != key:
        raise _mismatch(out_dir / CHECKPOINT_DIR, ckpt["run_key"], key)
    with torch.no_grad():
        for n, p in zip(run.names, run.params):
            p.copy_(ckpt["weights"][n])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"])
    log.info("resuming %s from step %d of %d", out_dir, ckpt["step"], total_steps)
    return _State(
        step=ckpt["step"],
        losses=list(ckpt["losses"]),
        seconds=ckpt["seconds"],
        examples=ckpt["examples"],
        tokens=ckpt["tokens"],
        label_tokens=ckpt["label_tokens"],
        resumed_from=ckpt["step"],
    )


def _checkpoint(out_dir: Path, key: str, run: _Run, state: _State, total_steps: int) -> None:
    import torch

    _save_checkpoint(
        out_dir,
        {
            "run_key": key,
            "step": state.step,
            "total_steps": total_steps,
            "losses": state.losses,
            "weights": {n: p.detach().clone() for n, p in zip(run.names, run.params)},
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "seconds": state.seconds,
            "examples": state.examples,
            "tokens": state.tokens,
            "label_tokens": state.label_tokens,
        },
    )


def _optimize(
    run: _Run,
    state: _State,
    encoded: list[Encoded],
    lengths: list[int],
    groups: list[str] | None,
    config: TrainConfig,
    pad_id: int,
    device: str,
    steps_per_epoch: int,
    total_steps: int,
    out_dir: Path,
    key: str,
    progress: ProgressFn | None,
) -> None:
    """The optimizer steps from ``state.step`` to the end, checkpointing every
    ``save_every_steps``. One progress bar: a caller that follows progress draws its own."""
    from contextlib import nullcontext

    import torch

    from inward.progress import progress_bar

    plans: dict[int, list[list[int]]] = {}
    own_bar = progress_bar(len(encoded) * config.epochs, "train") if progress is None else nullcontext(lambda k: None)
    with own_bar as bar:
        bar(state.examples)
        while state.step < total_steps:
            epoch, k = divmod(state.step, steps_per_epoch)
            if epoch not in plans:
                plans = {epoch: batch_plan(lengths, config.batch_size, config.seed, epoch, groups)}
            idx = plans[epoch][k]
            batch = {name: t.to(device) for name, t in collate([encoded[i] for i in idx], pad_id).items()}
            t0 = time.perf_counter()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=run.autocast):
                loss = answer_loss(run.model, batch)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            run.scheduler.step()
            state.seconds += time.perf_counter() - t0
            state.step += 1
            state.losses.append(float(loss.detach()))
            state.examples += len(idx)
            state.tokens += int(batch["attention_mask"].sum())
            state.label_tokens += int((batch["labels"] != IGNORE).sum())
            if config.save_every_steps and state.step % config.save_every_steps == 0 and state.step < total_steps:
                _checkpoint(out_dir, key, run, state, total_steps)
            bar(len(idx))
            if progress is not None:
                progress(state.step, total_steps, state.losses[-1])


def _save_adapter(model: Any, out_dir: Path) -> Path:
    """The adapter, written under a temporary name and moved into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{ADAPTER_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    adapter = out_dir / ADAPTER_DIR
    _replace_dir(tmp, adapter)
    return adapter


def _write_result(out_dir: Path, result: TrainResult) -> None:
    """The result marker, last: it means everything before it is complete."""
    marker = out_dir / RESULT_FILE
    tmp_marker = marker.with_name(f".{RESULT_FILE}.tmp-{os.getpid()}")
    tmp_marker.write_text(json.dumps(result.to_json(), indent=2))
    os.replace(tmp_marker, marker)
    for leftover in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old", ADAPTER_DIR + ".old"):
        shutil.rmtree(out_dir / leftover, ignore_errors=True)
