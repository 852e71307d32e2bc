"""The Task record and the Sample it yields.

A task is an object-level prompt template (with ``$string``) plus where its strings come from:
either one of inward's seeded generators (the sequence tasks) or ``{train,val}_<file>.jsonl`` in
a data directory (third-party data, read at run time and never shipped).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inward.errors import InwardError

SPLITS = ("train", "val")
DATA_DIR_ENV = "INWARD_DATA_DIR"


@dataclass(frozen=True)
class Sample:
    """One object-level item: a string to fill into the task prompt, and its dataset target."""

    task: str
    split: str
    string: str
    target: str | None = None


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    """The object-level prompt template; ``$string`` is filled with ``string.Template``."""
    data_file: str
    """Stem of ``{split}_<data_file>.jsonl`` in the data directory."""
    exclusion_rule_groups: tuple[str, ...]
    role: str
    """``train`` / ``held-out`` in the paper's main experiment, or ``calibration`` / ``side``."""
    properties: tuple[str, ...]
    """The properties the paper evaluated on this task (spec §1.6)."""
    max_tokens: int
    """Object-level token budget (the paper had none; a cap keeps CPU runs bounded)."""
    generator: str | None = None
    """Name of inward's generator; tasks with one need no data directory by default."""
    has_target: bool = False
    version: int = 1
    description: str = ""
    notes: str = ""
    release_prompts: Mapping[tuple[str, str, str], str] | None = field(default=None, compare=False, repr=False)
    """For tasks imported from the paper's release: exact user contents by
    (kind, property, string), kind being "object" or "hypothetical" (property "" for object)."""
    release_samples: tuple[Sample, ...] = field(default=(), compare=False, repr=False)
    followup: str | None = None
    """A second user turn for two-turn tasks: after the model's object-level response, this
    message is sent (with the conversation so far) and the answer is recorded as the object
    record's ``followup_response`` (e.g. "Are you sure?", docs/faithfulness.md)."""

    @property
    def source(self) -> str:
        if self.release_prompts is not None:
            return "release"
        return "generated" if self.generator else "file"

    def load(
        self,
        split: str,
        n: int | None = None,
        seed: int = 0,
        data_dir: str | Path | None = None,
        source: str | None = None,
    ) -> list[Sample]:
        """The first ``n`` samples of ``split`` in a seeded order (all of them if n is None).

        ``source`` overrides where strings come from: "generated" (inward's generator) or "file"
        (the paper's jsonl in the data directory). Nested: a larger n extends a smaller one.
        """
        if split not in SPLITS:
            raise InwardError(f"Unknown split {split!r} for task {self.name!r}: use train or val.")
        if n is not None and n < 1:
            raise InwardError(f"--n must be a positive number of strings, got {n}.")
        source = source or ("file" if self.generator is None else "generated")
        if self.release_prompts is not None:
            if split != "val":
                raise InwardError(
                    f"Task {self.name!r} comes from the paper's released dataset, which holds "
                    "val-split prompts only (its train/ folder too); use --split val."
                )
            return _seeded_prefix(list(self.release_samples), f"{self.name}:release:{seed}", n)
        if source == "generated":
            if self.generator is None:
                raise InwardError(f"Task {self.name!r} has no generator; it reads data files.")
            from inward.tasks.generators import generate, target_of

            if n is None:
                raise InwardError(f"Task {self.name!r} is generated: give a number of strings.")
            strings = generate(self.generator, split, n, seed)
            return [Sample(self.name, split, s, target_of(self.generator, s)) for s in strings]
        if source != "file":
            raise InwardError(f"Unknown source {source!r} for task {self.name!r}: generated or file.")
        from inward.tasks.files import read_jsonl_strings

        path = resolve_data_dir(data_dir, self.name) / f"{split}_{self.data_file}.jsonl"
        rows = read_jsonl_strings(path, task=self.name, need_target=self.has_target)
        samples = [Sample(self.name, split, s, t) for s, t in rows]
        return _seeded_prefix(samples, f"{self.name}:{split}:{seed}", n)


def _seeded_prefix(samples: list[Sample], seed: str, n: int | None) -> list[Sample]:
    """A seeded shuffle cut to n: the same seed gives nested prefixes for growing n."""
    random.Random(seed).shuffle(samples)
    return samples if n is None else samples[:n]


def resolve_data_dir(data_dir: str | Path | None, task: str) -> Path:
    """The data directory from the argument or ``INWARD_DATA_DIR``, checked to exist."""
    raw = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not raw:
        raise InwardError(
            f"Task {task!r} reads the paper's data files ({{train,val}}_<name>.jsonl), and no "
            f"data directory was given. Pass --data-dir DIR or set {DATA_DIR_ENV}=DIR, where DIR "
            "holds the paper's evals/datasets files (for example ../shared/datasets)."
        )
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise InwardError(
            f"The data directory {str(path)!r} (needed by task {task!r}) does not exist or is not "
            f"a directory. Pass --data-dir DIR or set {DATA_DIR_ENV} to the folder that holds "
            "the paper's {train,val}_<name>.jsonl files."
        )
    return path
