"""One training seed of a study, in a fresh process: ``python -m inward.experiments.seed_child``.

Started by :func:`inward.experiments.study.run_in_child` (``inward study`` runs every seed this
way), never by hand. It borrows the run directory its parent holds (:class:`RunDir` with
``borrowed=True``), takes the chat formats its parent measured at an earlier seed (as one
process would keep them), reads the seed-independent stages back (they are done), computes the
seed's stages and optional experiments, and writes what its parent needs to fold in, as JSON to
``--result``: the seed's stage seconds, each stage's peak resident memory, and this process's
peak. The run's tables, run.json and report stay the parent's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inward.errors import InwardError
from inward.experiments.context import Study
from inward.experiments.study import enabled_experiments, seed_stages, shared_stages
from inward.experiments.study_config import parse_config
from inward.memory import peak_rss_mb
from inward.store.cache import ResponseCache
from inward.store.rundir import RunDir, atomic_write_text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inward.experiments.seed_child", description=__doc__)
    ap.add_argument("--run", required=True, help="the run directory (held by the parent)")
    ap.add_argument("--config", required=True, help="the study config as JSON")
    ap.add_argument("--cache", required=True, help="the response cache file")
    ap.add_argument("--model", required=True, help="M1, the self model whose seed this is")
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--result", required=True, help="where to write the JSON result")
    ap.add_argument(
        "--format-args",
        default="{}",
        help="JSON: the chat format per base model that the parent measured at an earlier seed",
    )
    args = ap.parse_args(argv)
    try:
        config = parse_config(json.loads(Path(args.config).read_text()), args.config)
        with RunDir(args.run, borrowed=True) as run:
            ctx = Study(config, run, ResponseCache(args.cache))
            ctx.format_args.update(json.loads(args.format_args))
            experiments = enabled_experiments(ctx)
            obj_train = shared_stages(ctx, args.model)  # read back: the parent computed and timed them
            ctx.stage_seconds.clear()  # so only the seed's own stages go back to the parent's totals
            ctx.stage_peaks.clear()
            seed_stages(ctx, args.model, args.seed, obj_train, experiments)
    except InwardError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    result = {"stage_seconds": ctx.stage_seconds, "stage_peak_rss_mb": ctx.stage_peaks, "peak_rss_mb": peak_rss_mb()}
    atomic_write_text(Path(args.result), json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
