"""The study config: one YAML file, validated by pydantic (unknown keys and wrong types are errors).

A config is a small diff from the defaults below. Derived sizes, for the ``default`` preset:
train examples per model = sum over train tasks of (its properties x n_train_per_pair).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inward.errors import InwardError, UnknownNameError
from inward.properties import SCORINGS
from inward.train.lora import TrainConfig

PRESETS = ("default", "smoke", "paper")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pair(Strict):
    """M1 (trained on itself) and M2 (trained on the same facts about M1ft)."""

    self_model: str = Field(alias="self")
    cross_model: str = Field(alias="cross")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Finetune(Strict):
    """LoRA settings (see inward.train.lora.TrainConfig for what each does)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    learning_rate: float = 2e-4
    lr_schedule: str = "linear"
    warmup_steps: int = 0
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(8, ge=1)
    max_length: int = 256
    dtype: str = "auto"
    seed: int = 0

    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.model_dump())


class StudyConfig(Strict):
    name: str
    pairs: list[Pair] = Field(min_length=1)
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
    data_dir: str | None = None
    source: str | None = None
    scoring: str = "paper"
    finetune: Finetune = Finetune()
    cross_finetune: Finetune | None = None
    """Settings for the cross-predictor's finetune (default: the same as ``finetune``)."""
    model_args: dict[str, Any] = {}

    @field_validator("scoring")
    @classmethod
    def _scoring(cls, v: str) -> str:
        if v not in SCORINGS:
            raise ValueError(f"must be one of {SCORINGS}")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v not in (None, "generated", "file"):
            raise ValueError("must be generated or file")
        return v


def _format_validation(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            fields = ", ".join(StudyConfig.model_fields)
            lines.append(f"  {loc}: unknown key (misspelt?). Valid top-level keys: {fields}.")
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
