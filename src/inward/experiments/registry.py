"""The experiments a study runs on each training seed's outputs, in this order (see
:mod:`inward.experiments.plugin`). A new experiment is one module and one line here."""

from __future__ import annotations

from inward.experiments.behaviour_change import BehaviourChangeExperiment
from inward.experiments.calibration import CalibrationExperiment
from inward.experiments.plugin import Experiment
from inward.experiments.positive_control import PositiveControlExperiment
from inward.experiments.probes import ProbesExperiment
from inward.experiments.scaling import ScalingExperiment
from inward.experiments.self_simulation import SelfSimulationExperiment

EXPERIMENTS: tuple[Experiment, ...] = (
    SelfSimulationExperiment(),
    ProbesExperiment(),
    ScalingExperiment(),
    CalibrationExperiment(),
    BehaviourChangeExperiment(),
    PositiveControlExperiment(),
)
