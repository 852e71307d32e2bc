"""``inward``: the command group and its error handling.

Errors caused by input (:class:`InwardError`) print one paragraph and exit 2, without a
traceback; so does a full disk, with what to free; an interrupt exits 130 and says that rerunning
resumes.
"""

from __future__ import annotations

import errno
import sys

import click

from inward import __version__
from inward.cli.evaluate import evaluate
from inward.cli.finetune import finetune
from inward.cli.listing import cache, models, properties, tasks
from inward.cli.plan import plan
from inward.cli.study import study
from inward.cli.tune import tune
from inward.errors import InwardError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "INWARD"})
@click.version_option(__version__, prog_name="inward")
def cli() -> None:
    """Measure whether language models can introspect (Looking Inward, Binder, Chua et al. 2024).

    \b
    inward tasks                 list object-level tasks
    inward properties            list behaviour properties
    inward models                list bundled models and model-string forms
    inward evaluate ...          object-level + hypothetical run, scored
    inward study ...             self- vs cross-prediction finetuning study, with a report
    inward plan ...              a study's wall time and verdict precision before it runs
    inward tune ...              choose finetuning settings on held-out train-task strings
    inward finetune openai ...   a hosted OpenAI fine-tuning job (resumable)
    inward cache stats|clear     the response cache
    """


for command in (tasks, properties, models, evaluate, study, plan, tune, finetune, cache):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="inward", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted. Rerun the same command to resume: finished work is cached.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted. Rerun the same command to resume: finished work is cached.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except InwardError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except Exception as e:
        if not disk_full(e):
            raise
        click.echo(DISK_FULL.format(e), err=True)
        sys.exit(2)


DISK_FULL = (
    "error: no space left on device ({}). Free some disk and rerun the same command: finished "
    "work is kept and resumes. The big files are converted models in the cache folder "
    "(INWARD_CACHE_DIR, default ~/.cache/inward; 2.5 GB for Qwen 0.5B, 6.7 GB for Qwen 1.5B) and "
    "the adapters and merged checkpoints in a study's --out folder; set INWARD_CACHE_DIR or --out "
    "to a disk with room."
)


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from, is a full disk (errno ENOSPC, or a
    library's wrapped message of it, as safetensors raises)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    main()
