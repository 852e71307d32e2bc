"""What an experiment of a study is: a plugin over the study context.

The study (:mod:`inward.experiments.study`) trains and evaluates the self- and cross-predictors of
each target and training seed, then hands the outputs of that seed, as one typed
:class:`SeedOutputs`, to every registered experiment (:mod:`inward.experiments.registry`) that is
switched on and applies to that seed. An experiment owns its config section (``enabled``), when it
runs (``applies``), a check before any model runs (``check``), its run (``run``), which adds its
typed rows to the study's rows (:class:`inward.experiments.rows.StudyRows`), the tables derived
from them once every stage has run (``summarise``, pure) and what it adds to the study's outputs
(``outputs``: CSVs, notes, verdict lines and report sections; ``figures``). The study's outputs
(:mod:`inward.experiments.outputs`) loop over the experiments without knowing any of them.

Adding an experiment is one module with a class that satisfies :class:`Experiment`, and one line
in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig
    from inward.records import ObjectRecord, ScoredRecord
    from inward.train.examples import TrainExample


@dataclass(frozen=True)
class CrossOutputs:
    """One cross-predictor of a target and training seed: M2, M2 trained on facts about M1ft, its
    training data, and its scored hypotheticals about M1ft's held-out behaviour."""

    model: str  # M2, untrained
    trained: str  # M2cross, the adapter model string
    examples: list[TrainExample]
    rows: list[ScoredRecord]


@dataclass(frozen=True)
class SeedOutputs:
    """What the main experiment produced for one target M1 and one training seed."""

    seed: int
    first: bool  # the config's first training seed
    target: str  # M1, untrained
    self_trained: str  # M1ft, the adapter model string
    self_examples: int  # how many examples M1ft trained on
    train_objects: list[ObjectRecord]  # M1ft's object-level answers on the train strings
    eval_objects: list[ObjectRecord]  # M1ft's object-level answers on the held-out strings
    self_rows: list[ScoredRecord]  # M1ft predicting M1ft, held out
    untrained_rows: list[ScoredRecord]  # untrained M1 predicting M1, held out
    cross: tuple[CrossOutputs, ...]  # one per configured pair of this target, in config order

    @property
    def cross_models(self) -> dict[str, str]:
        """M2 → M2cross."""
        return {c.model: c.trained for c in self.cross}


class Experiment(Protocol):
    """A section of a study that runs on the outputs of each training seed."""

    name: str  # the config section's key (StudyConfig field), e.g. "calibration"

    def enabled(self, config: StudyConfig) -> bool:
        """Whether the study's config switches this experiment on."""
        ...

    def applies(self, config: StudyConfig, seed: int) -> bool:
        """Whether it runs on training seed ``seed`` (e.g. the first seed only)."""
        ...

    def check(self, ctx: Study) -> None:
        """Fail before any model runs when the section names something that does not exist."""
        ...

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        """Run on one target and training seed; add the rows to ``ctx.rows``."""
        ...

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        """Tables derived from the rows once every stage has run (pure)."""
        ...

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        """Its CSVs, notes, verdict lines and report sections."""
        ...

    def figures(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> dict[str, bytes]:
        """Its figures (PNG bytes), by file stem."""
        ...


class Plugin:
    """Defaults for an experiment whose config section has its own name: on when the section is
    set, on every training seed, nothing to check, no figures. Subclasses override what differs."""

    name: str

    def enabled(self, config: StudyConfig) -> bool:
        return getattr(config, self.name, None) is not None

    def applies(self, config: StudyConfig, seed: int) -> bool:
        return self.enabled(config)

    def check(self, ctx: Study) -> None:
        return None

    def figures(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> dict[str, bytes]:
        return {}
