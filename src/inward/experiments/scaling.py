"""Cross-prediction data scaling (config section ``scaling``): the cross-predictor retrained on
nested prefixes of its own training data, so a self advantage can be read against how much the
cross-predictor gains from more data about the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inward.analysis.scaling import ScalingRow, _point
from inward.experiments.plugin import Plugin
from inward.records import ObjectRecord, ScoredRecord
from inward.train.datasets import nested_slices
from inward.train.examples import TrainExample

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig


def run_scaling(
    ctx: Study,
    m1: str,
    m1ft: str,
    m2: str,
    examples: list[TrainExample],
    ft_objects: list[ObjectRecord],
    self_rows: list[ScoredRecord],
    cross_rows: list[ScoredRecord],
    seed: int,
    self_examples: int | str,
) -> list[ScalingRow]:
    """``examples``: the main cross-predictor's data, in its order (nested prefixes of it). Each
    smaller size is a keyed finetune and evaluation stage; the full size is the main cross run."""
    from inward.experiments.context import prefix, slug

    c, s1, s2 = ctx.config, slug(m1), slug(m2)
    section = c.scaling
    assert section is not None  # the plugin runs only when the scaling section is set
    sizes = [n for n in section.sizes if n < len(examples)]
    points: list[ScalingRow] = []
    for size, chunk in zip(sizes, nested_slices(examples, sizes)):
        folder = f"{prefix(seed)}models/{s1}/scaling/{s2}/n{size}"
        with ctx.stage(f"seed {seed}: data scaling, {m2} on {size} examples about {m1} self-trained"):
            m2n = ctx.train(
                m2,
                chunk,
                folder,
                c.cross_finetune or c.finetune,
                f"{ctx.shown(m1ft)} (first {size} examples)",
                purpose="data scaling",
                seed=seed,
            )
            _, rows = ctx.evaluate(f"scaling-{s1}-{s2}-n{size}", m1ft, m2n, ft_objects, other_scoring=False, seed=seed)
        ctx.release(m2n)
        points.append(_point(seed, size, rows, "cross"))
    points.append(_point(seed, len(examples), cross_rows, "cross"))
    points.append(_point(seed, self_examples, self_rows, "self"))
    return points


class ScalingExperiment(Plugin):
    """Cross-prediction data scaling as a study plugin (config section ``scaling``), for every
    cross-predictor of the target and every training seed."""

    name = "scaling"

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        for cross in out.cross:
            ctx.rows.scaling += run_scaling(
                ctx,
                out.target,
                out.self_trained,
                cross.model,
                cross.examples,
                out.eval_objects,
                out.self_rows,
                cross.rows,
                out.seed,
                out.self_examples,
            )

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        from dataclasses import asdict

        return {"scaling": [asdict(r) for r in rows.scaling]}

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        from inward.experiments import notes as N
        from inward.experiments.rows import Outputs
        from inward.report import columns as C
        from inward.report.html import Section, part, table

        scaling = tables["scaling"]
        return Outputs(
            csvs=[("scaling.csv", scaling, C.SCALING.csv())],
            notes=N.scaling_notes(scaling),
            sections=[Section("Cross-prediction data scaling", [part(table(C.SCALING, scaling))])],
        )

    def figures(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> dict[str, bytes]:
        from inward.experiments.calibration import of_target
        from inward.experiments.context import slug
        from inward.report import figures as fig

        first, figures, scaling = config.first_seed, dict[str, bytes](), tables["scaling"]
        for pair in config.pairs:
            mine = [
                r
                for r in scaling
                if of_target(r["target"], pair.self_model)
                and (r["label"] == "self" or r["predictor"].startswith(pair.cross_model))
                and r["seed"] == first
            ]
            figures[f"scaling_{slug(pair.self_model)}_{slug(pair.cross_model)}"] = fig.scaling_curve(
                mine,
                title=f"Cross-prediction data scaling: {pair.cross_model} predicting "
                f"{pair.self_model} self-trained (seed {first})",
            )
        return figures
