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

from inward.analysis.probes import self_simulation, simulation_summary
from inward.experiments.plugin import Plugin

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig


class SelfSimulationExperiment(Plugin):
    name = "self_simulation"

    def enabled(self, config: StudyConfig) -> bool:
        return True

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        rows = self_simulation(out.seed, out.target, out.self_rows, out.untrained_rows)
        ctx.rows.simulation += [asdict(r) for r in rows]

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        return {"simulation": simulation_summary(rows.simulation)}

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        from inward.analysis.probes import SIMULATION_COLUMNS
        from inward.experiments.rows import Outputs
        from inward.report.html import SIMULATION, part, table

        parts = [part(table(SIMULATION, tables["simulation"]), sub="Self-simulation split", intro=SIMULATION_INTRO)]
        return Outputs(
            csvs=[("self_simulation.csv", rows.simulation, SIMULATION_COLUMNS)],
            verdict_parts=parts if rows.simulation else [],
        )


SIMULATION_INTRO = (
    "A self-predictor can gain by changing its behaviour to fit its predictions instead of reading "
    "it. On held-out rows: how often the self-trained model's hypothetical answer equals the property "
    "of its own object-level answer now, and of the untrained model's answer (the behaviour its "
    "training data described); then separately on the rows where finetuning changed that property "
    "and on the rows where it did not. A gain that lives only on changed rows is self-simulation, "
    "not introspection. Mean over training seeds."
)
