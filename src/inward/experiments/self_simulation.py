"""The self-simulation split, a plugin that runs with every study (no config section).

A finetuned self-predictor can gain by changing its own behaviour to match its predictions rather
than by reading its behaviour: on a 32B model, all of a LoRA's first-character gain came from items
whose answer changed. So beside the verdict, per training seed: the self-predictor's accuracy on
held-out items whose object-level property changed with finetuning (untrained M1 vs M1ft) and on
those whose property did not, and how often it matches the untrained behaviour it was trained on
(:func:`inward.analysis.probes.self_simulation`; rows in self_simulation.csv).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from inward.analysis.probes import self_simulation

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.study_config import StudyConfig


class SelfSimulationExperiment:
    name = "self_simulation"

    def enabled(self, config: StudyConfig) -> bool:
        return True

    def applies(self, config: StudyConfig, seed: int) -> bool:
        return True

    def check(self, ctx: Study) -> None:
        pass

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        rows = self_simulation(out.seed, out.target, out.self_rows, out.untrained_rows)
        ctx.rows.simulation += [asdict(r) for r in rows]
