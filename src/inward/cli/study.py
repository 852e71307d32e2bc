"""``inward study``."""

from __future__ import annotations

import click

from inward.cli.options import parse_key_values

EPILOG = """\b
Examples:
  inward study --preset default --out runs/default      # the main job, 8 seeds (about an hour on 2 CPU cores)
  inward study --preset full --out runs/full            # 3 seeds, plus calibration and behaviour change
  inward study --preset smoke --out runs/smoke          # the same pipeline at tiny sizes
  inward study --preset probes --out runs/full          # add white-box probes to a finished full run
  inward study my_study.yaml --out runs/mine
  inward study --preset default --set n_eval=50 --out runs/quick
  inward study --preset default --set 'seeds=[0,1,2,3,4]' --out runs/five  # 5 training seeds
  inward study --preset default --budget 60m --from runs/default --out runs/hour  # seeds that fit an hour
Rerunning the same command resumes an interrupted study. Each training seed runs in a fresh
child process (--one-process: all in this one).
"""


def load_study_config(config, preset, overrides, data_dir):
    """A study config from a file or preset, with ``--set`` overrides and ``--data-dir`` applied."""
    from inward.errors import InwardError
    from inward.experiments.study_config import PRESETS, load_config, parse_config
    from inward.experiments.study_config import preset as load_preset

    if bool(config) == bool(preset):
        raise InwardError(f"Give either a CONFIG file or --preset NAME ({', '.join(PRESETS)}).")
    cfg = load_config(config) if config else load_preset(preset)
    if overrides or data_dir:
        data = cfg.model_dump(by_alias=True)
        for key, value in parse_key_values(overrides, "--set").items():
            if key == "models":  # a matrix replaces the config's pairs
                data.pop("pairs", None)
            target = data
            *parents, leaf = key.split(".")
            for p in parents:
                if not isinstance(target.get(p), dict):  # absent or null (an optional section)
                    target[p] = {}
                target = target[p]
            target[leaf] = value
        if data_dir:
            data["data_dir"] = data_dir
        cfg = parse_config(data, "(after --set)")
    return cfg


def study_config_options(command):
    """CONFIG or --preset, --out, --set and --data-dir: the options of every study-config command."""
    for option in reversed(
        [
            click.argument("config", required=False, type=click.Path(dir_okay=False)),
            click.option(
                "--preset", help="A built-in config: default, full, smoke, paper, limits, probes or symmetric."
            ),
            click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory."),
            click.option(
                "--set",
                "overrides",
                multiple=True,
                metavar="KEY=VALUE",
                help="Override a config key, e.g. --set n_eval=50 or --set finetune.epochs=2.",
            ),
            click.option(
                "--data-dir", type=click.Path(), help="Folder with the paper's data files (or INWARD_DATA_DIR)."
            ),
        ]
    ):
        command = option(command)
    return command


@click.command(epilog=EPILOG)
@study_config_options
@click.option(
    "--budget",
    help="A wall-time budget (60m, 1.5h): run as many training seeds (0, 1, 2, ...) as the pilot "
    "run given with --from predicts will fit (inward plan shows the arithmetic).",
)
@click.option("--from", "pilot", type=click.Path(file_okay=False), help="The pilot run folder for --budget.")
@click.option(
    "--one-process",
    is_flag=True,
    help="Run every training seed in this process. By default each seed runs in a fresh child process: "
    "in one process the later seeds trained up to ~18% slower, with peak memory growing seed by seed.",
)
def study(config, preset, out, overrides, data_dir, budget, pilot, one_process):
    """Self- vs cross-prediction (Experiment 1): finetune M1 on itself, M2 on M1's facts,
    compare both on held-out tasks. Writes results.csv, comparisons.csv, figures/ and
    report.html to --out."""
    from inward.experiments.study import run_study
    from inward.report.table import format_results

    cfg = load_study_config(config, preset, overrides, data_dir)
    if budget or pilot:
        cfg = seeds_within_budget(cfg, budget, pilot)
    result = run_study(cfg, out, seed_processes=not one_process)
    for label in ("untrained", "self", "cross"):
        rows = [r for r in result.results if r["label"] == label and r["seed"] in (None, cfg.first_seed)]
        if rows:
            click.echo(f"\n== {label}" + ("" if label == "untrained" else f", training seed {cfg.first_seed}") + " ==")
            click.echo(format_results(rows))
    for c in result.comparisons:
        if c["response_property"] == "micro_average":
            click.echo(
                f"\nself vs cross (micro average), seed {c['seed']}: {100 * c['self_accuracy']:.1f}% vs "
                f"{100 * c['cross_accuracy']:.1f}%, z-test p={c['p_value']:.3g}, "
                f"McNemar p={c['mcnemar_p']:.3g}, n={c['paired_count']}"
            )
    groups: dict[str, float] = {}
    for name, seconds in result.stage_seconds.items():
        group = name.split(":", 1)[0] if name.startswith("seed ") else "shared stages"
        groups[group] = groups.get(group, 0.0) + seconds
    click.echo(
        "\nstage times (this run; every stage in run.json): "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in groups.items())
    )
    click.echo("\n== verdict over training seeds ==")
    for v in result.verdicts:
        click.echo(v)
    click.echo(f"wrote {result.out}/report.html")


def seeds_within_budget(cfg, budget: str | None, pilot: str | None):
    """``cfg`` with as many training seeds as fit ``budget`` by the pilot run's measured times."""
    from inward.analysis.plan import load_pilot, parse_duration, seeds_for_budget, skipped_sections
    from inward.errors import InwardError

    if not (budget and pilot):
        raise InwardError("--budget and --from go together: --budget 60m --from RUN (a pilot run of this config).")
    try:
        seconds = parse_duration(budget)
    except ValueError as exc:
        raise InwardError(f"--budget: {exc}") from exc
    measured, _ = load_pilot(pilot, skipped_sections(cfg), cfg.verdict.metric)
    n = seeds_for_budget(measured, seconds)
    if n < 2:
        raise InwardError(
            f"--budget {budget}: the pilot {pilot} predicts {n} seed(s) fit, and a verdict needs 2 or more; "
            "give more time or a smaller config (inward plan shows the times)."
        )
    click.echo(f"--budget {budget}: {n} training seeds fit by the pilot's times (seeds 0..{n - 1}).", err=True)
    return cfg.model_copy(update={"seeds": list(range(n))})
