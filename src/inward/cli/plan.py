"""``inward plan``: a study's wall time and verdict precision before it runs, from a pilot run."""

from __future__ import annotations

import click

from inward.cli.study import load_study_config

EPILOG = """\b
Examples:
  inward plan --preset default --from runs/default                # time and ±interval for its seeds
  inward plan --preset default --from runs/default --budget 60m   # how many seeds fit an hour
  inward plan --preset default --from runs/default --set 'seeds=[0,1,2,3,4,5,6,7,8,9]'
The pilot (--from) is a finished or partial run of the same config on this machine: its stage
times and the spread of its per-seed gaps are the measurements the plan scales.
"""


def config_differences(planned: dict, pilot_config: dict) -> list[str]:
    """Top-level config keys where the pilot ran something else, other than those the plan
    accounts for: the seeds, the verdict (the spread is taken on the planned metric) and the
    sections the planned config switches off (their stages are left out)."""
    from inward.analysis.plan import SECTION_STAGES

    off = {k for k in SECTION_STAGES if planned.get(k) is None}
    keys = (set(planned) | set(pilot_config)) - {"seeds", "name", "verdict"} - off
    return sorted(k for k in keys if planned.get(k) != pilot_config.get(k))


@click.command(epilog=EPILOG)
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", help="A built-in config: default, full, smoke, paper, limits, probes or symmetric.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, as in study.")
@click.option("--data-dir", type=click.Path(), help="Folder with the paper's data files (or INWARD_DATA_DIR).")
@click.option("--from", "pilot", required=True, type=click.Path(file_okay=False), help="A pilot study run folder.")
@click.option("--budget", help="A wall-time budget (60m, 1.5h): how many seeds fit.")
def plan(config, preset, overrides, data_dir, pilot, budget):
    """Predicted wall time and 95% interval half-width of a study config, before it runs."""
    from inward.analysis.plan import load_pilot, parse_duration, plan_lines, skipped_sections

    cfg = load_study_config(config, preset, overrides, data_dir)
    measured, data = load_pilot(pilot, skipped_sections(cfg), cfg.verdict.metric)
    differ = config_differences(cfg.model_dump(mode="json", by_alias=True), data.get("config") or {})
    for line in plan_lines(measured, len(cfg.seeds), parse_duration(budget) if budget else None):
        click.echo(line)
    if differ:
        click.echo(f"Note: the pilot's config differs in {', '.join(differ)}; its times and spread may not carry over.")
