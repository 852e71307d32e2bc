"""``inward``: the command group and its error handling.

Errors caused by input (:class:`InwardError`) print one paragraph and exit 2, without a
traceback; an interrupt exits 130 and says that rerunning resumes.
"""

from __future__ import annotations

import sys

import click

from inward import __version__
from inward.cli.evaluate import evaluate
from inward.cli.finetune import finetune
from inward.cli.listing import cache, models, properties, tasks
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
    inward tune ...              choose finetuning settings on held-out train-task strings
    inward finetune openai ...   a hosted OpenAI fine-tuning job (resumable)
    inward cache stats|clear     the response cache
    """


for command in (tasks, properties, models, evaluate, study, tune, finetune, cache):
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


if __name__ == "__main__":
    main()
