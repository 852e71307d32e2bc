"""``inward evaluate``."""

from __future__ import annotations

import click

from inward.cli.options import parse_key_values

EPILOG = """\b
Examples:
  inward evaluate --model bundled/qwen2.5-coder-0.5b-instruct --task animals_long \\
      --property first_character --property first_word --n 100 --out runs/eval
  inward evaluate --model M --predictor P --task animals_long --out runs/cross
  inward evaluate --model M --task release:../shared/release_samples/test --out runs/rel
  inward evaluate --model M --task writing_stories_pick_name \\
      --property main_character_name --property sentiment --extractor-model X --out runs/limits
  inward evaluate --model M --task are_you_sure --property changes_answer_when_challenged \\
      --out runs/sure
"""


@click.command(epilog=EPILOG)
@click.option("--model", "model", required=True, help="Object-level model M (a model string).")
@click.option("--predictor", help="Model P answering the hypotheticals (default: M).")
@click.option("--task", "tasks", multiple=True, required=True, help="Task name or release:PATH (repeatable).")
@click.option(
    "--property",
    "properties",
    multiple=True,
    help="Behaviour property (repeatable; default: the task's paper properties).",
)
@click.option("--split", default="val", show_default=True, type=click.Choice(["train", "val"]))
@click.option("--n", default=100, show_default=True, type=int, help="Strings per task.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for choosing strings.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option(
    "--data-dir", type=click.Path(), help="Folder with the paper's {train,val}_<name>.jsonl (or INWARD_DATA_DIR)."
)
@click.option(
    "--source",
    type=click.Choice(["generated", "file"]),
    help="For sequence tasks: inward's generator (default) or the data file.",
)
@click.option(
    "--scoring",
    default="paper",
    show_default=True,
    type=click.Choice(["paper", "symmetric"]),
    help="paper: clean only the hypothetical answer; symmetric: clean both sides.",
)
@click.option(
    "--extractor-model",
    help="Model that extracts LLM properties (sentiment, main_character_name) from M's responses with the paper's extraction prompts (default: M itself). Ignored when no LLM property is asked for.",
)
@click.option("-M", "model_args", multiple=True, metavar="KEY=VALUE", help="Model argument, e.g. -M dtype=bfloat16.")
def evaluate(
    model, predictor, tasks, properties, split, n, seed, out, data_dir, source, scoring, extractor_model, model_args
):
    """Run M on object-level prompts and P on hypotheticals, and score P's predictions of M.

    Writes objects.jsonl, extracted.jsonl (LLM properties only), hypotheticals.jsonl,
    scored.jsonl, results.csv (one row per property plus a micro average), results_by_task.csv
    and run.json to --out. Every model call is cached (INWARD_CACHE_DIR): a rerun makes no model calls and a killed run resumes.
    """
    from inward.experiments.evaluate import EvaluateSpec, run_evaluate
    from inward.report.table import format_results

    spec = EvaluateSpec(
        model=model,
        predictor=predictor,
        tasks=list(tasks),
        properties=list(properties),
        split=split,
        n=n,
        seed=seed,
        data_dir=data_dir,
        source=source,
        scoring=scoring,
        model_args=parse_key_values(model_args, "-M"),
        extractor_model=extractor_model,
    )
    result = run_evaluate(spec, out)
    click.echo(format_results(result.results))
    click.echo(format_calls(result.model_calls, result.seconds))
    click.echo(f"wrote {result.out}/results.csv")


def format_calls(calls: dict[str, int], seconds: dict[str, float]) -> str:
    parts = [f"{k.replace('_', ' ')}: {v}" for k, v in calls.items()]
    times = ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
    return "model calls: " + "; ".join(parts) + f"\ntime: {times}"
