"""Importing the paper's released dataset (``dataset_release/{train,test}/<dataset>_<property>.jsonl``).

Each row has exactly six fields (spec §5): ``original_question``, ``original_dataset``,
``object_level_prompt`` and ``hypothetical_prompt`` (one user message each), ``behavioral_property``
and ``option_matching_ethical_stance``. There are no model responses and no labels: a model is
evaluated by running both prompts. Each dataset in a file or folder becomes one inward task whose
prompts are the file's own, byte for byte. Both ``train/`` and ``test/`` hold val-split prompts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from inward.errors import InwardError
from inward.properties.registry import resolve_property
from inward.tasks.base import Sample, Task
from inward.tasks.files import iter_jsonl
from inward.tasks.registry import TASKS

RELEASE_PREFIX = "release:"
FIELDS = {
    "original_question",
    "original_dataset",
    "object_level_prompt",
    "hypothetical_prompt",
    "behavioral_property",
    "option_matching_ethical_stance",
}


def _user_content(messages: object, path: Path, lineno: int, key: str) -> str:
    if (
        not isinstance(messages, list)
        or len(messages) != 1
        or not isinstance(messages[0], dict)
        or messages[0].get("role") != "user"
        or not isinstance(messages[0].get("content"), str)
    ):
        raise InwardError(
            f"{path}, line {lineno}: {key} must be a list with one user message "
            '[{"role": "user", "content": "..."}], as in the paper\'s release.'
        )
    return messages[0]["content"]


def load_release(path: str | Path) -> list[Task]:
    """Tasks from a release file or a folder of them (searched recursively), one per dataset."""
    root = Path(path).expanduser()
    if root.is_dir():
        files = sorted(root.rglob("*.jsonl"))
    elif root.is_file():
        files = [root]
    else:
        raise InwardError(
            f"Release path {str(root)!r} does not exist. Give a file or folder in the released "
            "format: dataset_release/{train,test}/<dataset>_<property>.jsonl."
        )
    if not files:
        raise InwardError(f"Release folder {str(root)!r} holds no .jsonl files.")
    prompts: dict[str, dict[tuple[str, str, str], str]] = {}
    samples: dict[str, dict[str, Sample]] = {}
    props: dict[str, list[str]] = {}
    for file in files:
        for lineno, row in iter_jsonl(file):
            if not isinstance(row, dict) or set(row) != FIELDS:
                got = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise InwardError(
                    f"{file}, line {lineno}: a release row has exactly the fields {sorted(FIELDS)}; got {got}."
                )
            dataset, string = row["original_dataset"], row["original_question"]
            if not isinstance(dataset, str) or not isinstance(string, str):
                raise InwardError(f"{file}, line {lineno}: dataset and question must be text.")
            prop = resolve_property(row["behavioral_property"], dataset).name
            target = row["option_matching_ethical_stance"]
            table = prompts.setdefault(dataset, {})
            table[("object", "", string)] = _user_content(
                row["object_level_prompt"], file, lineno, "object_level_prompt"
            )
            table[("hypothetical", prop, string)] = _user_content(
                row["hypothetical_prompt"], file, lineno, "hypothetical_prompt"
            )
            samples.setdefault(dataset, {}).setdefault(string, Sample(dataset, "val", string, target))
            if prop not in props.setdefault(dataset, []):
                props[dataset].append(prop)
    tasks = []
    for dataset, table in prompts.items():
        known = TASKS.get(dataset)
        base = known or Task(
            dataset,
            "$string",
            dataset,
            ("default",),
            "release",
            (),
            64,
            description=f"released dataset {dataset} (unknown to inward's registry)",
        )
        tasks.append(
            replace(
                base,
                properties=tuple(props[dataset]),
                release_prompts=table,
                release_samples=tuple(samples[dataset].values()),
                description=f"{base.description} [from the paper's release: {root}]",
            )
        )
    return tasks
