"""``inward tune``: choose finetuning settings on held-out strings of the train tasks.

Hyperparameters chosen on the test tasks would leak the answer into the verdict, so the
selection uses only the train tasks' *train split*, cut in two by the tasks' nested seeded
order:

- strings ``[0, n_train_strings)``: M1's object-level answers there are the training data,
  built exactly as ``inward study`` builds its self-prediction data;
- strings ``[n_train_strings, n_train_strings + tune.n_strings)``: the tuning strings. Each
  trained model answers them at object level (its own new behaviour) and is asked the
  hypotheticals about them; accuracy is scored against its own answers, as in the study.

For every point of ``tune.grid`` (changes to the study's ``finetune`` section) the model is
trained once and scored; ``tune.csv`` has one row per point with the micro-average accuracy,
its mode baseline, their difference (``lift``) and each property's accuracy; ``best`` marks the
highest lift. Raw accuracy would reward a setting whose model merely became more predictable:
each point is scored against its *own* trained model's behaviour, so the mode baselines differ.
Held-out (test) tasks are never loaded. Every trained point and model call is cached, so a
rerun resumes.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict

from inward.analysis.results import results_table
from inward.errors import InwardError
from inward.experiments.context import slug, task_properties
from inward.experiments.evaluate import EvalPlan, ModelHandle, collect_objects, evaluate, write_only
from inward.experiments.study_config import StudyConfig, Tune
from inward.store.cache import CachedModel, ResponseCache
from inward.store.manifest import RunManifest
from inward.store.rundir import RunDir, environment
from inward.tasks import get_task
from inward.train.datasets import self_prediction_examples
from inward.train.lora import train_lora

BASE_COLUMNS = (
    "point",
    "micro_accuracy",
    "micro_error",
    "mode_baseline",
    "lift",
    "count",
    "compliance_rate",
    "final_loss",
    "train_seconds",
    "n_examples",
    "best",
)


class _StringSource(TypedDict):
    """The keyword arguments that pick the tasks' strings, shared by every load here."""

    seed: int
    data_dir: str | None
    source: str | None


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order the keys and values were given."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def point_name(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


def run_tune(config: StudyConfig, out: str | Path, *, cache: ResponseCache | None = None) -> list[dict]:
    """Train and score every grid point (see module doc); returns the rows of ``tune.csv``."""
    from inward.models import resolve
    from inward.models.local import release_memory

    tune = config.tune or Tune()
    cache = cache or ResponseCache()
    m1 = config.pairs[0].self_model
    tasks = {n: get_task(n) for n in config.train_tasks}
    props = task_properties(config, config.train_tasks)
    n_train, n_all = config.n_train_strings, config.n_train_strings + tune.n_strings
    load = _StringSource(seed=config.seed, data_dir=config.data_dir, source=config.source)
    points = grid_points(tune.grid)
    for point in points:
        replace(config.finetune, **point)  # a bad value fails before any work
    rows: list[dict] = []
    with RunDir(out) as run:
        manifest = RunManifest(
            command="tune", model=m1, config=config.model_dump(mode="json", by_alias=True), environment=environment()
        )
        manifest.write(run)
        base = resolve(m1, **config.model_args)
        train_objects = collect_objects(CachedModel(base, cache), list(tasks.values()), "train", n_train, **load)
        _close(base)
        tune_strings = {
            (name, x.string) for name, task in tasks.items() for x in task.load("train", n_all, **load)[n_train:]
        }
        if tune_strings & {(o.task, o.string) for o in train_objects}:
            raise InwardError("Tuning strings overlap the training strings; the task's string order is not nested.")
        examples = self_prediction_examples(
            train_objects,
            tasks,
            props,
            n_per_pair=config.n_train_per_pair,
            seed=config.seed,
            forbidden_strings={s for _, s in tune_strings},
            scoring=config.scoring,
        )
        if not examples:
            raise InwardError(f"No finetuning examples could be built from {m1}'s train-split answers.")
        columns: list[str] = list(BASE_COLUMNS[:1]) + list(tune.grid) + list(BASE_COLUMNS[1:])
        for point in points:
            name = point_name(point)
            folder = f"points/{slug(name)}"
            settings = replace(config.finetune, **point)
            result = train_lora(m1, examples, settings, run.file(f"{folder}/ft"), model_args=config.model_args)
            release_memory()
            backend = resolve(result.adapter_model_string, **config.model_args)
            trained = CachedModel(backend, cache)
            # the strings after the training strings: the same tasks, never trained on
            held = EvalPlan(tasks, props, split="train", n=n_all, start=n_train, **load)

            def load_trained(trained: CachedModel = trained) -> CachedModel:  # bound now, not at call time
                return trained

            handle = ModelHandle(name, load_trained)
            ev = evaluate(held, handle, handle, store=write_only(run, folder=folder))
            _close(backend)
            release_memory()
            scored = ev.scored(config.scoring)
            table = results_table(scored, label=name)
            run.write_jsonl(f"{folder}/scored.jsonl", scored)
            micro = next(r for r in table if r["response_property"] == "micro_average")
            row = {
                "point": name,
                **point,
                "micro_accuracy": micro["accuracy"],
                "micro_error": micro["error"],
                "mode_baseline": micro["mode_baseline"],
                "lift": micro["accuracy"] - micro["mode_baseline"],
                "count": micro["count"],
                "compliance_rate": micro["compliance_rate"],
                "final_loss": result.final_loss,
                "train_seconds": result.train_seconds,
                "n_examples": result.n_examples,
                "best": False,
            }
            for r in table:
                if r["response_property"] != "micro_average":
                    row[r["response_property"]] = r["accuracy"]
                    if r["response_property"] not in columns:
                        columns.append(r["response_property"])
            rows.append(row)
        best = max(range(len(rows)), key=lambda i: rows[i]["lift"])
        rows[best]["best"] = True
        run.write_csv("tune.csv", rows, tuple(columns))
        plain = json.loads(json.dumps({"best": points[best], "rows": rows}, default=str))
        manifest.updated(status="complete", environment=environment(), **plain).write(run)
    return rows


def _close(backend: Any) -> None:
    """Free a local model's weights (API backends hold none)."""
    if hasattr(backend, "close"):
        backend.close()
