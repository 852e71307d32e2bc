"""``inward tune``."""

from __future__ import annotations

import click

from inward.cli.study import load_study_config, study_config_options

EPILOG = """\b
Examples:
  inward tune --preset default --out runs/tune        # learning rates 1e-4, 2e-4, 5e-4
  inward tune --preset default --set tune.grid='{"learning_rate": [2e-4, 5e-4], "epochs": [1, 2]}' \\
      --set n_train_per_pair=40 --out runs/tune-small
The selection never sees the held-out tasks: it scores on further train-split strings of the
train tasks. Rerunning the same command resumes.
"""


@click.command(epilog=EPILOG)
@study_config_options
def tune(config, preset, out, overrides, data_dir):
    """Choose the self-prediction finetune's settings (the config's `tune.grid`) on held-out
    strings of the train tasks: the highest accuracy above the mode baseline. Writes tune.csv
    (one row per setting, `best` marked) to --out."""
    from inward.experiments.tune import run_tune

    cfg = load_study_config(config, preset, overrides, data_dir)
    rows = run_tune(cfg, out)
    for r in rows:
        mark = "  <- best" if r["best"] else ""
        click.echo(
            f"{r['point']:40s} {100 * r['micro_accuracy']:5.1f}% ± {100 * r['micro_error']:.1f} "
            f"(mode {100 * r['mode_baseline']:.1f}%, lift {100 * r['lift']:+.1f}, n={r['count']}){mark}"
        )
    best = next(r for r in rows if r["best"])
    sets = " ".join(f"--set finetune.{k}={best[k]}" for k in (cfg.tune.grid if cfg.tune else {"learning_rate": 0}))
    click.echo(f"wrote {out}/tune.csv; to use the best: inward study ... {sets}")
