"""The study config: one YAML file, validated by pydantic (unknown keys and wrong types are errors).

A config is a small diff from the defaults below. Derived sizes, for the ``default`` preset:
train examples per model = sum over train tasks of (its properties x n_train_per_pair).
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inward.errors import InwardError, UnknownNameError
from inward.properties import SCORINGS
from inward.train.lora import TrainConfig

PRESETS = ("default", "full", "smoke", "paper", "limits", "probes", "symmetric")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pair(Strict):
    """M1 (trained on itself) and M2 (trained on the same facts about M1ft)."""

    self_model: str = Field(alias="self")
    cross_model: str = Field(alias="cross")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Calibration(Strict):
    """Experiment 1b (spec §1.9): calibration of the hypothetical answer distribution.

    Run on the val strings of ``task`` for the untrained, self-trained and cross-trained setups.
    The exact method (one forward pass per prompt) runs on ``n_exact`` strings, the sampled method
    (``samples`` completions at ``temperature``, the paper's 20 at 1.0) on the first ``n_sampled``
    of them, so the two agree-or-not on that overlap. Either may be 0 (off), not both.
    """

    task: str = "animals"
    properties: list[str] = Field(["second_character"], min_length=1)
    n_exact: int = Field(200, ge=0, le=1_000_000)
    n_sampled: int = Field(30, ge=0, le=1_000_000)
    samples: int = Field(20, ge=2, le=1000)
    temperature: float = Field(1.0, gt=0.0, le=10.0)
    max_tokens: int = Field(3, ge=1, le=256)
    """Object-level token budget of the sampled method (the paper's 3)."""
    top_k: int = Field(20, ge=1, le=1000)
    """Next tokens read by the exact method."""
    top_behaviours: int = Field(3, ge=1, le=100)
    bins: int = Field(10, ge=1, le=1000)
    seed: int = 0
    every_seed: bool = True
    """Run for every training seed (the untrained setup runs once either way); false: the first
    seed's self- and cross-trained models only (the full preset, to keep it near an hour)."""

    @field_validator("n_sampled")
    @classmethod
    def _some(cls, v: int, info) -> int:
        if v == 0 and info.data.get("n_exact") == 0:
            raise ValueError("n_exact and n_sampled are both 0; set one of them > 0 or drop the section")
        return v


class BehaviourChange(Strict):
    """Experiment 2 (spec §1.8): M_C = self-trained M1 finetuned further on another model's
    object-level answers to the train-task prompts (train split); does M_C predict its new
    behaviour or its old one, on held-out strings whose behaviour changed?"""

    shift_model: str | None = None
    """Whose answers M_C learns (default: the pair's cross model, untrained)."""
    shift_temperature: float = Field(0.0, ge=0.0, le=10.0)
    """0: the shift model's greedy answers; above 0: one seeded sample per prompt at this
    temperature (a different behaviour from a model that would otherwise answer like M1)."""
    n_examples: int = Field(300, ge=1, le=1_000_000)
    """Shift finetuning examples (one per train-task string; at most n_train_strings per task)."""
    properties: list[str] | None = None
    """Properties evaluated on the held-out tasks (default: the study's properties)."""
    exclude_noncompliant: bool = True
    """Drop rows whose hypothetical answer is not compliant, as the paper's behaviour-change
    figure does (``exclude_noncompliant=True``); false keeps them, scored wrong, as Experiment 1 does."""
    entropy_adjust: bool = True
    """Also report the spec §6.4 down-sampled comparison (rows with adjustment=entropy), as the
    paper does."""
    finetune: TrainConfig | None = None
    """LoRA settings of the shift finetune (default: the study's ``finetune``)."""
    every_seed: bool = True
    """Shift and evaluate every training seed's self-trained model; false: the first seed's only
    (the full preset, to keep it near an hour)."""


class Scaling(Strict):
    """Cross-prediction data scaling (spec §1.7): cross-predictors trained on nested seeded
    prefixes of the main cross-predictor's data. The main cross-predictor (all the data) is the
    last point and is reused, not retrained; sizes at or above its size are dropped."""

    sizes: list[int] = Field([100, 250, 500], min_length=1)

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(s < 1 for s in v) or len(set(v)) != len(v):
            raise ValueError("must be distinct positive example counts, e.g. [100, 250, 500]")
        return sorted(v)


class PositiveControl(Strict):
    """A positive control (inward.experiments.positive_control): on a seeded ``share`` of the
    held-out items each predictor is asked the hypothetical after its own object-level answer, so
    the self-predictor sees the behaviour it is scored on and the cross-predictor does not."""

    share: float = Field(default=0.5, gt=0, le=1)
    seed: int = 0
    mode: Literal["context", "oracle"] = "context"
    """context: the hypothetical asked after the predictor's own answer (the model must read it);
    oracle: the predictor's answer on planted items is the property of its own answer, exactly."""


class Verdict(Strict):
    """The pre-registered headline (inward.analysis.verdict), declared before the run: the paired
    self − cross gap per training seed on ``metric``, under ``scoring``; a self advantage of
    ``margin`` (a fraction: 0.05 is 5 points of the metric: of accuracy, or 0.05 of kappa) or more is what the equivalence test rules
    out."""

    metric: Literal["micro_average", "kappa"] = "micro_average"
    """``micro_average``: accuracy over every scored row; ``kappa``: Cohen's kappa per (task,
    property), averaged weighted by rows (a constant answer scores 0, so a predictor that
    collapses onto one answer adds no gap whichever answer it picked). Gaps are in points
    (0.01 of accuracy or of kappa)."""
    scoring: str | None = None
    """Must equal the study's ``scoring`` (the verdict is computed on its scored rows); declared
    here so the preset states its headline in one place. None: the study's."""
    margin: float = Field(default=0.05, gt=0, lt=1)
    secondary: list[Literal["kappa", "micro_average"]] = ["kappa"]
    """Secondary outcomes, each reported after the verdict with its own 95% t-interval over the
    seeds (no reading): ``kappa`` or ``micro_average`` (see ``metric``). Both are also in
    results*.csv, and over seeds in seed_summary.csv."""


TUNABLE = ("rank", "alpha", "dropout", "learning_rate", "lr_schedule", "warmup_steps", "epochs", "batch_size")


class Probes(Strict):
    """White-box probes (docs/probes.md): per training seed, linear probes on residual-stream
    activations at the last prompt token of the self-trained M1 (object-level and hypothetical
    prompt) and the cross-trained M2 (hypothetical prompt), fitted on the self-predictor's
    training items and scored on the held-out rows against M1's actual property values."""

    depths: list[float] = Field([0.0, 0.25, 0.5, 0.75, 1.0], min_length=1)
    """Relative depths of the hidden states probed (0: embedding output, 1: last decoder layer);
    each model's layer is round(depth x its number of layers)."""
    top_k: int = Field(5, ge=1, le=1000)
    """Classes per property: its top_k most common train values; the rest are one 'other' class
    that is never counted correct."""
    folds: int = Field(3, ge=2, le=20)
    """Stratified cross-validation folds that choose the regularisation C on the train rows."""
    n_cs: int = Field(5, ge=1, le=50)
    """C values tried, log-spaced over [1e-4, 10] (standardised features)."""

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= d <= 1.0 for d in v):
            raise ValueError("each depth must be in [0, 1] (0: embedding output, 1: last layer)")
        return v


class Tune(Strict):
    """``inward tune``: choose the self-prediction finetune's settings on held-out strings of the
    *train* tasks, never on the test tasks. M1 (the first pair's self model) is trained on the
    study's own data for every point of ``grid`` (each a change to ``finetune``) and scored on
    ``n_strings`` further train-split strings per train task that the data never contains."""

    grid: dict[str, list[Any]] = {"learning_rate": [1e-4, 2e-4, 5e-4]}
    n_strings: int = Field(default=30, ge=1, le=100_000)

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        bad = sorted(set(v) - set(TUNABLE))
        if bad:
            raise ValueError(f"{bad} cannot be tuned; tunable finetune keys: {', '.join(TUNABLE)}")
        if not v or any(not values for values in v.values()):
            raise ValueError("needs at least one key with at least one value, e.g. {learning_rate: [1e-4, 2e-4]}")
        return v


class StudyConfig(Strict):
    name: str
    pairs: list[Pair] = Field(min_length=1)
    """(self, cross) pairs: each self model is trained on itself, each cross model on the same
    items about that self model's trained version. Or give ``models`` instead."""
    models: list[str] = []
    """A predictor x target matrix: every ordered pair of these models (each self-trained, and each
    cross-trained on every other's items). Sets ``pairs``; give one or the other."""
    train_tasks: list[str] = Field(min_length=1)
    held_out_tasks: list[str] = Field(min_length=1)
    properties: list[str] = Field(min_length=1)
    """Applied to every task whose paper properties include them (spec §1.6)."""
    n_train_strings: int = Field(100, ge=1, le=1_000_000)
    """Object-level strings per train task (train split) for building the finetuning data."""
    n_train_per_pair: int = Field(50, ge=1, le=1_000_000)
    """Finetuning examples per (train task, property)."""
    n_eval: int = Field(100, ge=1, le=1_000_000)
    """Val strings per held-out task."""
    seed: int = 0
    """The data seed: which strings are drawn for training pools and held-out evaluation (fixed
    across training seeds, so every seed is scored on the same items)."""
    seeds: list[int] = Field([0], min_length=1)
    """Training seeds. Each retrains every finetuned model (self, cross, data scaling, M_C) with
    that seed (it replaces ``finetune.seed``) and its own seeded draw of training examples from
    the same pool of ``n_train_strings`` strings per train task. The verdict is taken over them."""
    data_dir: str | None = None
    source: str | None = None
    scoring: str = "paper"
    finetune: TrainConfig = TrainConfig()
    """LoRA settings: the trainer's own config type (inward.train.lora.TrainConfig), every field
    validated; a study sets ``seed`` to each training seed."""
    cross_finetune: TrainConfig | None = None
    """Settings for the cross-predictor's finetune (default: the same as ``finetune``)."""
    model_args: dict[str, Any] = {}
    chat_format_examples: int = Field(48, ge=0, le=100_000)
    """A cross model without a chat template (a base model) is prompted in the fallback format
    with the lowest untrained answer loss on this many examples about the self-trained model,
    built from train-task strings beyond ``n_train_strings`` (so no model trains on them). 0:
    don't measure (the backend default, or ``model_args.chat_format``, is used)."""
    extractor_model: str | None = None
    """Model that extracts LLM properties (sentiment, writing_stories/main_character_name) from
    object-level responses with the paper's extraction prompts; default: the pair's untrained
    self model. Unused when no LLM property is evaluated."""
    calibration: Calibration | None = None
    """Experiment 1b; absent or null: off."""
    behaviour_change: BehaviourChange | None = None
    """Experiment 2; absent or null: off."""
    scaling: Scaling | None = None
    """Cross-prediction data scaling; absent or null: off."""
    probes: Probes | None = None
    """White-box probes (needs local models); absent or null: off."""
    tune: Tune | None = None
    """Used by ``inward tune`` only (absent: its defaults); ``inward study`` ignores it."""
    positive_control: PositiveControl | None = None
    """Plant a self advantage of known size (no training) and read it with the verdict; absent: off."""
    verdict: Verdict = Verdict()
    """The headline inference (metric, scoring, equivalence margin), pre-registered."""

    @model_validator(mode="before")
    @classmethod
    def _matrix(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("models"):
            return data
        models = data["models"]
        if not isinstance(models, list) or len(models) < 2 or len(set(map(str, models))) != len(models):
            raise ValueError("models: needs two or more distinct model strings (every ordered pair is run)")
        pairs = [{"self": a, "cross": b} for a in models for b in models if a != b]
        given = data.get("pairs")
        if given is not None and [(_get(p, "self"), _get(p, "cross")) for p in given] != [
            (p["self"], p["cross"]) for p in pairs
        ]:
            raise ValueError("give either models (every ordered pair) or pairs, not both")
        return {**data, "pairs": pairs}

    @property
    def first_seed(self) -> int:
        """The training seed whose outputs stand for the study where one seed is enough: sample
        outputs, the first-seed-only sections (``every_seed: false``), the untrained setups."""
        return self.seeds[0]

    def runs_on(self, seed: int, every_seed: bool) -> bool:
        """Whether a section with this ``every_seed`` setting runs on training seed ``seed``."""
        return every_seed or seed == self.first_seed

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("must be distinct integers, e.g. [0, 1, 2]")
        return v

    @field_validator("scoring")
    @classmethod
    def _scoring(cls, v: str) -> str:
        if v not in SCORINGS:
            raise ValueError(f"must be one of {SCORINGS}")
        return v

    @model_validator(mode="after")
    def _verdict_scoring(self) -> StudyConfig:
        if self.verdict.scoring is not None and self.verdict.scoring != self.scoring:
            raise ValueError(
                f"verdict.scoring is {self.verdict.scoring!r} but the study scores with scoring: "
                f"{self.scoring!r}; the verdict is computed on the study's scored rows, so set both alike."
            )
        return self

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v not in (None, "generated", "file"):
            raise ValueError("must be generated or file")
        return v


def _get(pair: Any, side: str) -> Any:
    """A pair's model from a dict (alias or field name) or a Pair."""
    if isinstance(pair, dict):
        return pair.get(side, pair.get(f"{side}_model"))
    return getattr(pair, f"{side}_model", None)


SECTIONS: dict[str, type] = {
    "finetune": TrainConfig,
    "cross_finetune": TrainConfig,
    "calibration": Calibration,
    "behaviour_change": BehaviourChange,
    "scaling": Scaling,
    "probes": Probes,
    "tune": Tune,
    "verdict": Verdict,
    "positive_control": PositiveControl,
}


def _field_names(section: type) -> list[str]:
    if dataclasses.is_dataclass(section):
        return [f.name for f in dataclasses.fields(section)]
    assert issubclass(section, BaseModel)  # the sections that are not dataclasses are pydantic models
    return list(section.model_fields)


def _format_validation(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            parent = str(e["loc"][-2]) if len(e["loc"]) > 1 else None
            section = SECTIONS.get(parent) if parent else None
            fields = ", ".join(_field_names(section or StudyConfig))
            where_ = f"keys of {parent}" if section else "top-level keys"
            lines.append(f"  {loc}: unknown key (misspelt?). Valid {where_}: {fields}.")
        elif not e["loc"]:  # a whole-config check: its input is the whole config
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return f"Invalid study config {where}:\n" + "\n".join(lines)


def parse_config(data: Any, where: str = "") -> StudyConfig:
    if not isinstance(data, dict):
        raise InwardError(f"Study config {where} must be a YAML mapping of keys to values.")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as e:
        raise InwardError(_format_validation(e, where)) from None


def load_config(path: str | Path) -> StudyConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InwardError(f"Cannot read the study config {str(path)!r}: {e.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InwardError(f"Study config {str(path)!r} is not valid YAML: {e}") from None
    return parse_config(data, repr(str(path)))


def preset(name: str) -> StudyConfig:
    if name not in PRESETS:
        raise UnknownNameError("preset", name, PRESETS, hint="Presets: " + ", ".join(PRESETS) + ".")
    text = resources.files("inward.experiments.presets").joinpath(f"{name}.yaml").read_text()
    return parse_config(yaml.safe_load(text), f"preset {name!r}")
