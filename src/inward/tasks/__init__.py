"""Object-level tasks: the registry, inward's seeded generators and the data-file loaders."""

from __future__ import annotations

from inward.tasks.base import DATA_DIR_ENV, SPLITS, Sample, Task
from inward.tasks.registry import (
    PAPER_HELD_OUT_TASKS,
    PAPER_TRAIN_TASKS,
    TASKS,
    get_task,
    task_names,
)
from inward.tasks.release import RELEASE_PREFIX, load_release


def resolve_tasks(name: str) -> list[Task]:
    """A registered task, or every dataset of a release file or folder given as ``release:PATH``."""
    if name.startswith(RELEASE_PREFIX):
        return load_release(name[len(RELEASE_PREFIX) :])
    return [get_task(name)]


__all__ = [
    "DATA_DIR_ENV",
    "PAPER_HELD_OUT_TASKS",
    "PAPER_TRAIN_TASKS",
    "RELEASE_PREFIX",
    "SPLITS",
    "TASKS",
    "Sample",
    "Task",
    "get_task",
    "load_release",
    "resolve_tasks",
    "task_names",
]
