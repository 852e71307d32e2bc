"""Finetuning through OpenAI's hosted fine-tuning API: validate, upload, create, poll, resume.

OpenAI is winding this platform down (no new jobs from 2027-01-06; see docs/hosted-finetuning.md),
so this adapter is for people who still have access; open-weight LoRA (:mod:`inward.train.lora`)
is the main path. The files it uploads are the ``train.jsonl`` files ``inward study`` writes.

The lifecycle, as the paper ran it (spec §8.3) with the current API:

1. :func:`validate_jsonl` checks every line before anything is uploaded: ``{"messages": [...]}``
   with roles system/user/assistant, the last message the assistant's, string content (non-empty
   for user and assistant turns; the paper's empty system message is allowed), an optional
   per-assistant ``"weight"`` of 0 or 1, at least 10 examples, and no example shared between the
   training and validation files. Other top-level keys (the paper's ``"string"``, our ``"meta"``)
   are dropped from the uploaded copy, as the paper did.
2. ``files.create(purpose="fine-tune")`` for each file, then ``fine_tuning.jobs.create`` with
   ``method={"type": "supervised", "supervised": {"hyperparameters": {...}}}``.
3. ``fine_tuning.jobs.retrieve`` every ``poll_seconds`` until ``succeeded`` (the model id is
   then ``fine_tuned_model``), ``failed`` or ``cancelled``.

Paper defaults (:class:`OpenAIFinetuneConfig`): 1 epoch, learning-rate multiplier 2, batch size
``"auto"`` (OpenAI chose 20 for the paper's runs; App. A.1.1). For the behaviour-change finetune
the paper used multiplier 1 and batch 1.

Restarts: every step writes ``<out>/openai_finetune.json`` atomically (file ids, job id, status,
the fine-tuned model; never the API key). Rerunning with the same ``out`` directory resumes:
uploaded files are not uploaded again and an existing job is polled, not recreated. The one
window this cannot close is a crash after ``jobs.create`` was sent but before its answer was
saved; a rerun then creates a second job (the first shows up in OpenAI's job list).

On success the state file records ``model_string = "openai/<fine_tuned_model>"``, the string to
pass as ``inward evaluate --model``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inward.errors import InwardError

STATE_FILE = "openai_finetune.json"
STATE_VERSION = 1
MIN_EXAMPLES = 10
ROLES = ("system", "user", "assistant")
TERMINAL = ("succeeded", "failed", "cancelled")
INSTALL_HINT = "pip install 'inward[api]'"
SUFFIX_MAX = 64


@dataclass(frozen=True)
class OpenAIFinetuneConfig:
    """A supervised fine-tuning job. Hyperparameters are a number or ``"auto"``."""

    model: str  # the base model, e.g. "gpt-4.1-mini-2025-04-14"
    suffix: str | None = None  # up to 64 characters, appears in the model id ft:<base>:<org>:<suffix>:<id>
    seed: int | None = 0  # the paper passed seed 0
    n_epochs: int | str = 1
    batch_size: int | str = "auto"  # OpenAI picked 20 for the paper's datasets
    learning_rate_multiplier: float | str = 2.0

    def __post_init__(self) -> None:
        if not self.model or not isinstance(self.model, str):
            raise InwardError(
                "The base model for OpenAI fine-tuning is empty; pass e.g. --model gpt-4.1-mini-2025-04-14."
            )
        if self.suffix is not None and len(self.suffix) > SUFFIX_MAX:
            raise InwardError(
                f"Suffix {self.suffix!r} is {len(self.suffix)} characters; OpenAI allows at most {SUFFIX_MAX}."
            )
        for name, kind in (("n_epochs", int), ("batch_size", int), ("learning_rate_multiplier", float)):
            value = getattr(self, name)
            if value == "auto":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value <= 0
                or (kind is int and int(value) != value)
            ):
                raise InwardError(
                    f'{name}={value!r}: expected "auto" or a positive {"integer" if kind is int else "number"}.'
                )

    def hyperparameters(self) -> dict[str, Any]:
        def num(v: Any, kind: type) -> Any:
            return v if v == "auto" else kind(v)

        return {
            "n_epochs": num(self.n_epochs, int),
            "batch_size": num(self.batch_size, int),
            "learning_rate_multiplier": num(self.learning_rate_multiplier, float),
        }

    def job_kwargs(self, training_file: str, validation_file: str | None) -> dict[str, Any]:
        """Keyword arguments of ``client.fine_tuning.jobs.create``."""
        kw: dict[str, Any] = {
            "model": self.model,
            "training_file": training_file,
            "method": {"type": "supervised", "supervised": {"hyperparameters": self.hyperparameters()}},
        }
        if validation_file is not None:
            kw["validation_file"] = validation_file
        if self.suffix is not None:
            kw["suffix"] = self.suffix
        if self.seed is not None:
            kw["seed"] = self.seed
        return kw


@dataclass
class FinetuneState:
    """What ``<out>/openai_finetune.json`` holds. Enough to resume; no secrets."""

    config: dict[str, Any]
    training_path: str
    training_sha256: str
    validation_path: str | None = None
    validation_sha256: str | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    job_id: str | None = None
    status: str = "new"  # new | uploaded | <OpenAI job status>
    fine_tuned_model: str | None = None
    model_string: str | None = None  # "openai/<fine_tuned_model>" once succeeded
    error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # [{"status", "at"}] on each change
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---- validation ------------------------------------------------------------------------


def _canonical(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def validate_jsonl(path: Path | str, *, min_examples: int = MIN_EXAMPLES) -> list[dict[str, Any]]:
    """The upload rows (``{"messages": [...]}`` only) of a chat JSONL file, or an
    :class:`InwardError` naming the file and the 1-based line of the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InwardError(f"Finetuning file {str(path)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InwardError(f"Cannot read finetuning file {str(path)!r}: {exc}.") from None
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{path}: line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InwardError(f"{at} is not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list) or not row["messages"]:
            raise InwardError(f'{at}: expected {{"messages": [...]}} with at least one message.')
        messages = row["messages"]
        for k, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise InwardError(
                    f"{at}: message {k} has role {m.get('role') if isinstance(m, dict) else m!r}; "
                    f"expected one of {', '.join(ROLES)}."
                )
            if not isinstance(m.get("content"), str):
                raise InwardError(f"{at}: message {k} ({m['role']}) needs string content.")
            if m["role"] != "system" and not m["content"].strip():
                raise InwardError(f"{at}: message {k} ({m['role']}) has empty content.")
            if "weight" in m:
                if m["role"] != "assistant":
                    raise InwardError(f'{at}: message {k} ({m["role"]}) has a "weight"; only assistant messages may.')
                if m["weight"] not in (0, 1) or isinstance(m["weight"], bool):
                    raise InwardError(f"{at}: message {k} has weight {m['weight']!r}; OpenAI accepts 0 or 1.")
            extra = set(m) - {"role", "content", "weight", "name"}
            if extra:
                raise InwardError(f"{at}: message {k} has unexpected keys {sorted(extra)}.")
        if messages[-1]["role"] != "assistant":
            raise InwardError(
                f"{at}: the last message must be the assistant's answer, got role {messages[-1]['role']!r}."
            )
        if not any(m["role"] == "user" for m in messages):
            raise InwardError(f"{at}: no user message before the assistant's answer.")
        rows.append({"messages": messages, "_line": lineno})
    if len(rows) < min_examples:
        raise InwardError(
            f"{path} has {len(rows)} example(s); OpenAI fine-tuning needs at least {min_examples} "
            "(50-100 are recommended to start)."
        )
    return rows


def check_no_overlap(
    train: list[dict[str, Any]], train_path: Path | str, validation: list[dict[str, Any]], validation_path: Path | str
) -> None:
    """Validation examples must not also be training examples (same messages)."""
    seen = {_canonical(r["messages"]): r["_line"] for r in train}
    for r in validation:
        if (hit := seen.get(_canonical(r["messages"]))) is not None:
            raise InwardError(
                f"{validation_path}: line {r['_line']} is the same example as {train_path}: line {hit}; "
                "validation data must not overlap the training data."
            )


def upload_bytes(rows: list[dict[str, Any]]) -> bytes:
    """The uploaded file: one ``{"messages": [...]}`` per line, nothing else."""
    return "".join(json.dumps({"messages": r["messages"]}, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


# ---- state -------------------------------------------------------------------------------


def state_path(out_dir: Path | str) -> Path:
    return Path(out_dir) / STATE_FILE


def load_state(out_dir: Path | str) -> FinetuneState | None:
    path = state_path(out_dir)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
        return FinetuneState(**data)
    except (ValueError, TypeError) as exc:
        raise InwardError(
            f"{path} is not a readable inward fine-tuning state file ({exc}); move it away to start over."
        ) from None


def save_state(out_dir: Path | str, state: FinetuneState) -> None:
    """Write the state atomically (temp file + rename): a crash leaves the old or the new file."""
    path = state_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _set_status(state: FinetuneState, status: str) -> bool:
    if status == state.status:
        return False
    state.status = status
    state.history.append({"status": status, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return True


# ---- the API ----------------------------------------------------------------------------


def make_client(base_url: str | None = None) -> Any:
    """An ``openai.OpenAI`` client. The key comes from ``OPENAI_API_KEY`` only, and is never written."""
    try:
        import openai
    except ImportError as exc:
        raise InwardError(
            f"OpenAI fine-tuning needs the openai package ({exc}); install it with `{INSTALL_HINT}`."
        ) from exc
    if not os.environ.get("OPENAI_API_KEY"):
        raise InwardError("OPENAI_API_KEY is not set; export your OpenAI API key to use OpenAI fine-tuning.")
    return openai.OpenAI(base_url=base_url) if base_url else openai.OpenAI()


def _api_call(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # openai.APIError and friends; the SDK already retried transient ones
        if _is_transient(exc) or not type(exc).__module__.startswith("openai"):
            raise  # transient: the caller retries; not from the API: a bug to see in full
        status = getattr(exc, "status_code", None)
        raise InwardError(f"OpenAI API error while {what}{f' (HTTP {status})' if status else ''}: {exc}") from exc


def _is_transient(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in ("APIConnectionError", "APITimeoutError", "RateLimitError", "InternalServerError")


def _job_error(job: Any) -> str:
    err = getattr(job, "error", None)
    if err is None:
        return "no error details given"
    parts = [getattr(err, k, None) for k in ("code", "message", "param")]
    return "; ".join(f"{k}={v}" for k, v in zip(("code", "message", "param"), parts) if v) or str(err)


def _start(
    out_dir: Path, train_path: Path, validation_path: Path | None, config: OpenAIFinetuneConfig
) -> FinetuneState:
    """The state to continue from: the saved one (if it is the same job) or a fresh one."""
    for path in (train_path, validation_path):
        if path is not None and not path.is_file():
            raise InwardError(f"Finetuning file {str(path)!r} does not exist.")
    train_sha = hashlib.sha256(train_path.read_bytes()).hexdigest()
    val_sha = (
        hashlib.sha256(validation_path.read_bytes()).hexdigest()
        if validation_path and validation_path.exists()
        else None
    )
    cfg = asdict(config)
    state = load_state(out_dir)
    if state is not None:
        mismatch = [
            name
            for name, old, new in (
                ("training file", state.training_sha256, train_sha),
                ("validation file", state.validation_sha256, val_sha),
                ("config", state.config, cfg),
            )
            if old != new
        ]
        if mismatch:
            raise InwardError(
                f"{state_path(out_dir)} belongs to a job with a different {' and '.join(mismatch)}. "
                "Use another --out directory for a new job, or rerun with the original inputs to resume."
            )
        return state
    return FinetuneState(
        config=cfg,
        training_path=str(train_path),
        training_sha256=train_sha,
        validation_path=str(validation_path) if validation_path else None,
        validation_sha256=val_sha,
    )


def submit(
    client: Any,
    train_path: Path | str,
    out_dir: Path | str,
    config: OpenAIFinetuneConfig,
    *,
    validation_path: Path | str | None = None,
) -> FinetuneState:
    """Validate, upload (once) and create the job (once); returns the saved state."""
    out, train = Path(out_dir), Path(train_path)
    val = Path(validation_path) if validation_path else None
    state = _start(out, train, val, config)
    if state.job_id is not None:
        return state
    rows = validate_jsonl(train)
    if val is not None:
        val_rows = validate_jsonl(val, min_examples=1)
        check_no_overlap(rows, train, val_rows, val)
    if state.training_file_id is None:
        upload = (train.name, upload_bytes(rows))
        f = _api_call("uploading the training file", lambda: client.files.create(file=upload, purpose="fine-tune"))
        state.training_file_id = f.id
        save_state(out, state)
    if val is not None and state.validation_file_id is None:
        upload = (val.name, upload_bytes(val_rows))
        f = _api_call("uploading the validation file", lambda: client.files.create(file=upload, purpose="fine-tune"))
        state.validation_file_id = f.id
        save_state(out, state)
    _set_status(state, "uploaded")
    save_state(out, state)
    job_kwargs = config.job_kwargs(state.training_file_id, state.validation_file_id)
    job = _api_call("creating the fine-tuning job", lambda: client.fine_tuning.jobs.create(**job_kwargs))
    state.job_id = job.id
    _set_status(state, job.status)
    save_state(out, state)
    return state


def _absorb(state: FinetuneState, job: Any) -> bool:
    changed = _set_status(state, job.status)
    if job.status == "succeeded":
        if not job.fine_tuned_model:
            raise InwardError(f"Job {state.job_id} succeeded but reported no fine_tuned_model.")
        state.fine_tuned_model = job.fine_tuned_model
        state.model_string = f"openai/{job.fine_tuned_model}"
    elif job.status == "failed":
        state.error = _job_error(job)
    return changed


def _finish(state: FinetuneState, out_dir: Path) -> FinetuneState:
    if state.status == "failed":
        raise InwardError(
            f"OpenAI fine-tuning job {state.job_id} failed: {state.error}. Fix the cause, then start a new "
            f"job with another --out directory (or delete {state_path(out_dir)})."
        )
    if state.status == "cancelled":
        raise InwardError(
            f"OpenAI fine-tuning job {state.job_id} was cancelled. Start a new job with another --out "
            f"directory (or delete {state_path(out_dir)})."
        )
    return state


def wait(
    client: Any,
    out_dir: Path | str,
    *,
    poll_seconds: float = 30.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[FinetuneState], None] | None = None,
    max_transient_errors: int = 10,
) -> FinetuneState:
    """Poll the saved job until it ends; returns the state of a succeeded job, raises otherwise.

    ``timeout`` (seconds) stops waiting with an :class:`InwardError` that says how to resume.
    Connection and rate-limit errors are retried (with growing pauses) up to
    ``max_transient_errors`` times in a row.
    """
    out = Path(out_dir)
    state = load_state(out)
    if state is None or state.job_id is None:
        raise InwardError(f"No OpenAI fine-tuning job recorded in {out}; submit one first.")
    start, errors = time.monotonic(), 0
    while state.status not in TERMINAL:
        try:
            job = _api_call(f"checking job {state.job_id}", lambda: client.fine_tuning.jobs.retrieve(state.job_id))
            errors = 0
        except Exception as exc:
            if not _is_transient(exc):
                raise
            errors += 1
            if errors > max_transient_errors:
                raise InwardError(
                    f"OpenAI API unreachable while checking job {state.job_id} ({exc}); rerun to resume."
                ) from exc
            sleep(min(300.0, poll_seconds * 2**errors))
            continue
        if _absorb(state, job):
            save_state(out, state)
            if on_status:
                on_status(state)
        if state.status in TERMINAL:
            break
        if timeout is not None and time.monotonic() - start >= timeout:
            raise InwardError(
                f"Job {state.job_id} is still {state.status} after {timeout:g} s. Rerun the same command "
                "to resume polling (nothing is uploaded again)."
            )
        sleep(poll_seconds)
    return _finish(state, out)


def run(
    client: Any,
    train_path: Path | str,
    out_dir: Path | str,
    config: OpenAIFinetuneConfig,
    *,
    validation_path: Path | str | None = None,
    poll_seconds: float = 30.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[FinetuneState], None] | None = None,
) -> FinetuneState:
    """Submit (or resume) and wait: the whole job. Returns the state, ``state.model_string`` set."""
    state = submit(client, train_path, out_dir, config, validation_path=validation_path)
    if on_status:
        on_status(state)
    return wait(client, out_dir, poll_seconds=poll_seconds, timeout=timeout, sleep=sleep, on_status=on_status)


def cancel(client: Any, out_dir: Path | str) -> FinetuneState:
    """Cancel the job recorded in ``out_dir`` (a job that already ended is left as it is)."""
    out = Path(out_dir)
    state = load_state(out)
    if state is None or state.job_id is None:
        raise InwardError(f"No OpenAI fine-tuning job recorded in {out}; nothing to cancel.")
    if state.status in TERMINAL:
        return state
    job = _api_call(f"cancelling job {state.job_id}", lambda: client.fine_tuning.jobs.cancel(state.job_id))
    _absorb(state, job)
    save_state(out, state)
    return state
