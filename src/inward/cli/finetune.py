"""``inward finetune openai``: a hosted OpenAI fine-tuning job, resumable from its --out folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from inward.errors import InwardError

T = TypeVar("T", int, float)


def _hyper(value: str, name: str, kind: Callable[[str], T]) -> T | str:
    if value == "auto":
        return value
    try:
        return kind(value)
    except ValueError:
        raise click.BadParameter(
            f"expected 'auto' or a {'whole ' if kind is int else ''}number, got {value!r}", param_hint=name
        ) from None


@click.group()
def finetune() -> None:
    """Finetune on a hosted API (local LoRA finetuning runs inside `inward study`)."""


@finetune.command(
    "openai",
    epilog="""\b
Examples:
  export OPENAI_API_KEY=...
  inward finetune openai --train runs/study/models/<slug>/self_ft/train.jsonl \\
      --model gpt-4.1-mini-2025-04-14 --suffix self-pred --out runs/ft-openai
  inward finetune openai --out runs/ft-openai            # resume polling after a restart
  inward finetune openai --out runs/ft-openai --cancel   # cancel the job
  inward evaluate --model "$(cat runs/ft-openai/model_string.txt)" ...

OpenAI is winding fine-tuning down (no new jobs from 2027-01-06); see docs/hosted-finetuning.md.
""",
)
@click.option(
    "--train",
    "train_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Chat JSONL to train on (e.g. the train.jsonl that `inward study` writes).",
)
@click.option(
    "--validation",
    "validation_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Optional validation JSONL; must not share examples with --train.",
)
@click.option("--model", help="Base model to finetune, e.g. gpt-4.1-mini-2025-04-14.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the job state; rerunning with it resumes the same job.",
)
@click.option("--suffix", help="Up to 64 characters, added to the fine-tuned model's name.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", default="1", show_default=True, help="n_epochs: a whole number or 'auto' (paper: 1).")
@click.option(
    "--batch-size", default="auto", show_default=True, help="A whole number or 'auto' (paper: auto, which was 20)."
)
@click.option("--lr-multiplier", default="2", show_default=True, help="learning_rate_multiplier or 'auto' (paper: 2).")
@click.option("--poll-seconds", type=float, default=30.0, show_default=True)
@click.option("--timeout", type=float, default=None, help="Stop waiting after this many seconds (rerun to resume).")
@click.option("--no-wait", is_flag=True, help="Submit the job and return without polling.")
@click.option("--cancel", "do_cancel", is_flag=True, help="Cancel the job recorded in --out.")
@click.option("--base-url", envvar="OPENAI_BASE_URL", help="API base URL (default: OpenAI's; env OPENAI_BASE_URL).")
def openai_cmd(
    train_path,
    validation_path,
    model,
    out_dir,
    suffix,
    seed,
    epochs,
    batch_size,
    lr_multiplier,
    poll_seconds,
    timeout,
    no_wait,
    do_cancel,
    base_url,
) -> None:
    """Fine-tune an OpenAI model on a chat JSONL file and print its model string.

    Validates the file, uploads it once, creates the job once, and polls it until it ends. The
    job's state is kept in --out/openai_finetune.json (never the API key); on success the model
    string (openai/ft:...) is printed and written to --out/model_string.txt.
    """
    from inward.train import openai_finetune as oft

    client = oft.make_client(base_url)

    def report(state: oft.FinetuneState) -> None:
        click.echo(f"job {state.job_id}: {state.status}", err=True)

    if do_cancel:
        state = oft.cancel(client, out_dir)
        click.echo(f"job {state.job_id}: {state.status}")
        return
    saved = oft.load_state(out_dir)
    if train_path is None and model is None:
        if saved is None:
            raise InwardError(f"No job recorded in {out_dir}: pass --train and --model to start one.")
        state = oft.wait(client, out_dir, poll_seconds=poll_seconds, timeout=timeout, on_status=report)
    else:
        if train_path is None or model is None:
            raise InwardError("Pass both --train and --model to start a job (or only --out to resume one).")
        config = oft.OpenAIFinetuneConfig(
            model=model,
            suffix=suffix,
            seed=seed,
            n_epochs=_hyper(epochs, "--epochs", int),
            batch_size=_hyper(batch_size, "--batch-size", int),
            learning_rate_multiplier=_hyper(lr_multiplier, "--lr-multiplier", float),
        )
        if no_wait:
            state = oft.submit(client, train_path, out_dir, config, validation_path=validation_path)
            click.echo(f"job {state.job_id}: {state.status}. Rerun with --out {out_dir} to wait for it.")
            return
        state = oft.run(
            client,
            train_path,
            out_dir,
            config,
            validation_path=validation_path,
            poll_seconds=poll_seconds,
            timeout=timeout,
            on_status=report,
        )
    assert state.model_string is not None  # wait and run return only a succeeded job, which has one
    (Path(out_dir) / "model_string.txt").write_text(state.model_string + "\n")
    click.echo(state.model_string)
