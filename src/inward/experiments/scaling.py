"""Cross-prediction data scaling (config section ``scaling``): the cross-predictor retrained on
nested prefixes of its own training data, so a self advantage can be read against how much the
cross-predictor gains from more data about the target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from inward.analysis.results import MICRO, results_table
from inward.records import ObjectRecord, ScoredRecord
from inward.train.datasets import nested_slices
from inward.train.examples import TrainExample

if TYPE_CHECKING:
    from inward.experiments.study import Study


@dataclass(frozen=True)
class ScalingRow:
    """One point of the curve: a predictor's micro-average accuracy after ``n_train`` examples
    (``label`` "cross"; the self-predictor's point is "self", at its own number of examples).
    A row of scaling.csv (``inward.report.columns.SCALING``)."""

    seed: int
    n_train: int | str
    accuracy: float
    error: float
    predictor: str
    target: str
    label: str
    mode_baseline: float
    count: int


def _point(seed: int, n_train: int | str, rows: list[ScoredRecord], label: str) -> ScalingRow:
    m = next(r for r in results_table(rows, label=label) if r["response_property"] == MICRO)
    return ScalingRow(seed, n_train, m["accuracy"], m["error"], m["meta_model"], m["object_model"], label,
                      m["mode_baseline"], m["count"])  # fmt: skip


def run_scaling(ctx: Study, m1: str, m1ft: str, m2: str, examples: list[TrainExample],
                ft_objects: list[ObjectRecord], self_rows: list[ScoredRecord], cross_rows: list[ScoredRecord],
                seed: int, self_examples: int | str) -> list[ScalingRow]:  # fmt: skip
    """``examples``: the main cross-predictor's data, in its order (nested prefixes of it). Each
    smaller size is a keyed finetune and evaluation stage; the full size is the main cross run."""
    from inward.experiments.study import prefix, slug

    c, s1, s2 = ctx.config, slug(m1), slug(m2)
    sizes = [n for n in c.scaling.sizes if n < len(examples)]
    points: list[ScalingRow] = []
    for size, chunk in zip(sizes, nested_slices(examples, sizes)):
        folder = f"{prefix(seed)}models/{s1}/scaling/{s2}/n{size}"
        with ctx.stage(f"seed {seed}: data scaling, {m2} on {size} examples about {m1} self-trained"):
            m2n = ctx.train(m2, chunk, folder, c.cross_finetune or c.finetune,
                            f"{ctx.shown(m1ft)} (first {size} examples)", purpose="data scaling", seed=seed)  # fmt: skip
            _, rows = ctx.evaluate(f"scaling-{s1}-{s2}-n{size}", m1ft, m2n, ft_objects, other_scoring=False,
                                   seed=seed)  # fmt: skip
        ctx.release(m2n)
        points.append(_point(seed, size, rows, "cross"))
    points.append(_point(seed, len(examples), cross_rows, "cross"))
    points.append(_point(seed, self_examples, self_rows, "self"))
    return points
