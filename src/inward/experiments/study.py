"""``inward study``: the paper's Experiment 1, self- vs cross-prediction, as one resumable DAG.

For each configured pair (M1, M2), following spec §1.7:

1. M1 answers the train tasks (train split) → self-prediction data → LoRA finetune → M1ft.
2. M1ft answers the train tasks → the same kind of data about M1ft → finetune M2 → M2cross.
3. On the held-out tasks (val split): untrained M1 predicts M1, M1ft predicts M1ft ("self"),
   M2cross predicts M1ft ("cross"). Self and cross are scored against the same behaviour.
4. Tables, tests, figures and ``report.html``.

Each stage writes its output atomically and is skipped when that output exists, every model call
is cached, and finetuning resumes from checkpoints, so an interrupted study resumes where it was.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from inward.analysis.compare import COMPARISON_COLUMNS, compare_self_cross
from inward.analysis.results import BY_TASK_COLUMNS, RESULT_COLUMNS, results_by_task, results_table
from inward.analysis.scoring import score_all
from inward.errors import InwardError
from inward.experiments.evaluate import collect_hypotheticals, collect_objects
from inward.experiments.study_config import StudyConfig
from inward.properties import SCORINGS
from inward.properties.registry import Property, resolve_property
from inward.records import HypotheticalRecord, ObjectRecord, ScoredRecord
from inward.store.cache import CachedModel, ResponseCache
from inward.store.rundir import RunDir, environment, read_jsonl
from inward.tasks import Task, get_task
from inward.train.datasets import self_prediction_examples
from inward.train.examples import to_openai_jsonl
from inward.train.lora import TrainResult, train_lora


def slug(model: str) -> str:
    """A short, filesystem-safe folder name for a model string (never the raw string)."""
    base = re.sub(r"[^A-Za-z0-9.]+", "-", model.split("+lora:")[0].split("/")[-1])[:40].strip("-")
    return f"{base}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def task_properties(config: StudyConfig, tasks: Sequence[str]) -> dict[str, list[Property]]:
    """Each task with the configured properties it was evaluated on in the paper."""
    out: dict[str, list[Property]] = {}
    for name in tasks:
        task = get_task(name)
        chosen = [resolve_property(p, name) for p in config.properties]
        props = [p for p in chosen if p.name in task.properties]
        if not props:
            raise InwardError(
                f"None of the study's properties {config.properties} applies to task {name!r}, "
                f"whose paper properties are {list(task.properties)}. Add one or drop the task."
            )
        out[name] = props
    return out


@dataclass
class StudyResult:
    out: Path
    results: list[dict]
    comparisons: list[dict]
    by_task: list[dict]
    stage_seconds: dict[str, float]
    training: list[dict] = field(default_factory=list)


class Study:
    """One run of a study config into a run directory (see module doc)."""

    def __init__(self, config: StudyConfig, run: RunDir, cache: ResponseCache, backends=None):
        self.config, self.run, self.cache = config, run, cache
        self.backends = dict(backends or {})
        self.train_tasks = {n: get_task(n) for n in config.train_tasks}
        self.held_out = {n: get_task(n) for n in config.held_out_tasks}
        self.train_props = task_properties(config, config.train_tasks)
        self.eval_props = task_properties(config, config.held_out_tasks)
        self.stage_seconds: dict[str, float] = {}
        self.training: list[dict] = []
        self.manifest: dict[str, Any] = {}
        self.used_models: list[str] = []  # every model string of the study, for fingerprints
        # Finetuned models appear in tables as "<base>+lora:<path inside the run directory>", so
        # the tables do not depend on where the run directory lives.
        self.display: dict[str, str] = {}
        # The other answer normalisation, reported beside the configured one (like lm-eval's
        # strict/flexible pairs): "paper" cleans only the hypothetical answer, "symmetric" both.
        self.other_scoring = next(x for x in SCORINGS if x != config.scoring)
        self.other_rows: dict[str, list[ScoredRecord]] = {}

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"[inward study] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + dt
        print(f"[inward study] {name}: done in {dt:.1f}s", file=sys.stderr, flush=True)

    def backend(self, name: str):
        from inward.models import resolve

        if name not in self.backends:
            self.backends[name] = resolve(name, **self.config.model_args)
        return self.backends[name]

    def model(self, name: str) -> CachedModel:
        return CachedModel(self.backend(name), self.cache)

    def release(self, name: str) -> None:
        """Free a local model's weights (a study holds several 0.5B-parameter copies otherwise)."""
        backend = self.backends.get(name)
        if backend is not None and hasattr(backend, "close"):
            backend.close()

    def _records(self, rel: str, cls, compute):
        path = self.run.file(rel)
        if path.is_file():
            return [cls(**_tuples(d)) for d in read_jsonl(path)]
        records = compute()
        self.run.write_jsonl(rel, records)
        return records

    # -- stages -----------------------------------------------------------------------------
    def objects(self, model: str, tasks: dict[str, Task], split: str, n: int, rel: str) -> list[ObjectRecord]:
        def compute() -> list[ObjectRecord]:
            return collect_objects(self.model(model), list(tasks.values()), split, n,
                                   seed=self.config.seed, data_dir=self.config.data_dir,
                                   source=self.config.source)  # fmt: skip

        return self._records(rel, ObjectRecord, compute)

    def finetune(self, base: str, objects: list[ObjectRecord], folder: str, settings, about: str) -> str:
        """Build the self-prediction data from ``objects`` and LoRA-finetune ``base`` on it."""
        forbidden = set()
        for task in self.held_out.values():
            forbidden.update(s.string for s in task.load("val", self.config.n_eval, self.config.seed,
                                                          self.config.data_dir, self.config.source))
        examples = self_prediction_examples(
            objects, self.train_tasks, self.train_props, n_per_pair=self.config.n_train_per_pair,
            seed=self.config.seed, forbidden_strings=forbidden,
        )  # fmt: skip
        if not examples:
            raise InwardError(
                f"No finetuning examples could be built from {about}'s object-level responses: "
                "none was compliant with a property value. Check objects_train.jsonl."
            )
        # train.jsonl is upload-ready for a hosted finetuning API (messages only, as the paper);
        # train_examples.jsonl adds each example's task, property and string.
        self.run.write_text(f"{folder}/train.jsonl", to_openai_jsonl(examples))
        self.run.write_text(f"{folder}/train_examples.jsonl", to_openai_jsonl(examples, include_meta=True))
        bar = _train_progress(f"finetune {slug(base)}")
        result: TrainResult = train_lora(base, examples, settings.train_config(),
                                         self.run.file(folder), progress=bar)  # fmt: skip
        bar(None, None, None)
        self.display[result.adapter_model_string] = f"{base}+lora:{folder}/adapter"
        self.training.append({
            "model": base, "about": about, "n_examples": result.n_examples, "steps": result.steps,
            "final_loss": result.final_loss, "first_loss": result.losses[0] if result.losses else None,
            "seconds": result.train_seconds, "examples_per_second": result.examples_per_second,
            "dtype": result.dtype,
        })  # fmt: skip
        return result.adapter_model_string

    def evaluate(self, setup: str, object_model: str, meta_model: str,
                 objects: list[ObjectRecord] | None = None) -> tuple[list[ObjectRecord], list[ScoredRecord]]:  # fmt: skip
        folder = f"eval/{setup}"
        self.used_models += [m for m in (object_model, meta_model) if m not in self.used_models]
        if objects is None:
            objects = self.objects(object_model, self.held_out, "val", self.config.n_eval,
                                   f"{folder}/objects.jsonl")  # fmt: skip
        hyps = self._records(
            f"{folder}/hypotheticals.jsonl", HypotheticalRecord,
            lambda: collect_hypotheticals(self.model(meta_model), objects, self.held_out, self.eval_props),
        )  # fmt: skip
        index = {(h.task, h.property, h.string): h for h in hyps}

        def scored_with(scoring: str) -> list[ScoredRecord]:
            return [
                replace(r, object_model=self.display.get(r.object_model, r.object_model),
                        meta_model=self.display.get(r.meta_model, r.meta_model))
                for r in score_all(objects, self.eval_props, index, scoring=scoring)
            ]  # fmt: skip

        scored = scored_with(self.config.scoring)
        self.other_rows[setup] = scored_with(self.other_scoring)
        self.run.write_jsonl(f"{folder}/scored.jsonl", scored)
        return objects, scored

    # -- the DAG ----------------------------------------------------------------------------
    def run_all(self) -> StudyResult:
        c = self.config
        results: list[dict] = []
        by_task: list[dict] = []
        comparisons: list[dict] = []
        examples: list[dict] = []
        for m1 in dict.fromkeys(p.self_model for p in c.pairs):
            s1 = slug(m1)
            with self.stage(f"object-level train, {m1}"):
                obj_train = self.objects(m1, self.train_tasks, "train", c.n_train_strings,
                                         f"models/{s1}/objects_train.jsonl")  # fmt: skip
            with self.stage(f"untrained evaluation, {m1}"):
                _, untrained = self.evaluate(f"untrained-{s1}", m1, m1)
            self.release(m1)
            with self.stage(f"self-prediction finetune, {m1}"):
                m1ft = self.finetune(m1, obj_train, f"models/{s1}/self_ft", c.finetune, m1)
            with self.stage(f"object-level train, {m1} self-trained"):
                ft_train = self.objects(m1ft, self.train_tasks, "train", c.n_train_strings,
                                        f"models/{s1}/self_ft/objects_train.jsonl")  # fmt: skip
            with self.stage(f"self evaluation, {m1} self-trained"):
                ft_objects, self_rows = self.evaluate(f"self-{s1}", m1ft, m1ft)
            self.release(m1ft)
            for label, rows in (("untrained", untrained), ("self", self_rows)):
                results += results_table(rows, label=label)
                by_task += results_by_task(rows, label=label)
            examples += _examples(self_rows, "self")
            for pair in (p for p in c.pairs if p.self_model == m1):
                m2, s2 = pair.cross_model, slug(pair.cross_model)
                with self.stage(f"cross-prediction finetune, {m2} on {m1} self-trained"):
                    m2ft = self.finetune(m2, ft_train, f"models/{s1}/cross_ft/{s2}",
                                         c.cross_finetune or c.finetune, m1ft)  # fmt: skip
                with self.stage(f"cross evaluation, {m2} predicting {m1} self-trained"):
                    _, cross_rows = self.evaluate(f"cross-{s1}-{s2}", m1ft, m2ft, ft_objects)
                self.release(m2ft)
                results += results_table(cross_rows, label="cross")
                by_task += results_by_task(cross_rows, label="cross")
                comparisons += compare_self_cross(self_rows, cross_rows)
                examples += _examples(cross_rows, "cross")
        other = [row for setup, rows in self.other_rows.items()
                 for row in results_table(rows, label=setup.split("-")[0])]  # fmt: skip
        self.run.write_csv(f"results_{self.other_scoring}.csv", other, RESULT_COLUMNS)
        self.write_outputs(results, by_task, comparisons, examples, other)
        return StudyResult(self.run.path, results, comparisons, by_task, self.stage_seconds,
                           self.training)  # fmt: skip

    def write_outputs(self, results, by_task, comparisons, examples, other) -> None:
        from inward.report.figures import compliance_bars, self_cross_bars
        from inward.report.html import render_report

        run = self.run
        run.write_csv("results.csv", results, RESULT_COLUMNS)
        run.write_csv("results_by_task.csv", by_task, BY_TASK_COLUMNS)
        run.write_csv("comparisons.csv", comparisons, COMPARISON_COLUMNS)
        figures: dict[str, bytes] = {}
        for m1 in dict.fromkeys(r["object_model"] for r in results if r["label"] == "untrained"):
            figures[f"accuracy_{slug(m1)}"] = self_cross_bars(
                [r for r in results if _pair_of(r, m1)], object_model=None
            )
        figures["compliance"] = compliance_bars(results)
        for name, png in figures.items():
            run.file("figures").mkdir(exist_ok=True)
            (run.file("figures") / f"{name}.png").write_bytes(png)
        self.manifest.update(stage_seconds=self.stage_seconds, training=self.training,
                             environment=environment(), status="complete",
                             models=self._fingerprints(),
                             notes=_notes(results, comparisons) + _scoring_notes(other, self.other_scoring))  # fmt: skip
        run.write_json("run.json", self.manifest)
        html = render_report(
            title=f"inward study: {self.config.name}", results=results, comparisons=comparisons,
            by_task=by_task, examples=examples, config=self.config.model_dump(by_alias=True),
            manifest={**self.manifest, "versions": self.manifest["environment"]["versions"]},
            figures=figures,
        )  # fmt: skip
        run.write_text("report.html", html)

    def _fingerprints(self) -> dict[str, Any]:
        """Fingerprints of every model of the study (a tokenizer load each, no weights)."""
        out = {}
        for name in self.used_models:
            try:
                out[name] = self.backend(name).fingerprint()
            except Exception as e:  # a fingerprint is provenance, never a reason to lose results
                out[name] = {"error": str(e)}
        return out


def _pair_of(row: dict, m1: str) -> bool:
    return row["object_model"] == m1 or row["object_model"].startswith(m1 + "+lora:")


def _tuples(d: dict) -> dict:
    if "failed_checks" in d:
        d["failed_checks"] = tuple(d["failed_checks"])
    return d


def _examples(rows: Sequence[ScoredRecord], label: str, k: int = 8) -> list[dict]:
    chosen = [r for r in rows if r.evaluable][:k]
    return [{"task": r.task, "property": r.property, "string": r.string,
             "object_response": r.object_response, "object_value": r.object_value,
             "answer": r.answer, "correct": r.correct, "label": label} for r in chosen]  # fmt: skip


def _notes(results: list[dict], comparisons: list[dict]) -> list[str]:
    notes = []
    micro = {(r["label"], r["meta_model"]): r for r in results if r["response_property"] == "micro_average"}
    for (label, meta), r in micro.items():
        if r["accuracy"] == r["accuracy"] and r["accuracy"] <= r["mode_baseline"]:
            notes.append(f"{label} ({meta}): micro-average accuracy {100 * r['accuracy']:.1f}% does "
                         f"not beat the mode baseline {100 * r['mode_baseline']:.1f}%.")  # fmt: skip
    for (label, meta), r in micro.items():
        if r["compliance_rate"] == r["compliance_rate"] and r["compliance_rate"] < 0.5:
            notes.append(f"{label} ({meta}) gave a compliant answer to only "
                         f"{100 * r['compliance_rate']:.1f}% of hypotheticals; non-compliant answers "
                         "count as wrong, so its accuracy mostly measures the answer format.")  # fmt: skip
    for c in comparisons:
        if c["response_property"] == "micro_average":
            verdict = "beats" if c["difference"] > 0 and c["p_value"] < 0.05 else "does not beat"
            notes.append(f"Self-prediction {verdict} cross-prediction on the micro average "
                         f"({100 * c['self_accuracy']:.1f}% vs {100 * c['cross_accuracy']:.1f}%, "
                         f"z-test p={c['p_value']:.3g}, McNemar p={c['mcnemar_p']:.3g}).")  # fmt: skip
    return notes


def _scoring_notes(other: list[dict], scoring: str) -> list[str]:
    micro = [r for r in other if r["response_property"] == "micro_average"]
    if not micro:
        return []
    parts = ", ".join(f"{r['label']} {100 * r['accuracy']:.1f}% (mode {100 * r['mode_baseline']:.1f}%)"
                      for r in micro)  # fmt: skip
    return [f"With {scoring} answer normalisation (results_{scoring}.csv), the micro averages are: "
            f"{parts}."]  # fmt: skip


def _train_progress(desc: str):
    from inward.progress import progress_enabled

    bar = None

    def update(step, total, loss):
        nonlocal bar
        if step is None:
            if bar is not None:
                bar.close()
            return
        if not progress_enabled():
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.3f}")

    return update


def run_study(config: StudyConfig, out: str | Path, *, cache: ResponseCache | None = None,
              backends=None) -> StudyResult:  # fmt: skip
    cache = cache or ResponseCache()
    with RunDir(out) as run:
        run.write_text("config.yaml", yaml.safe_dump(config.model_dump(by_alias=True), sort_keys=False))
        study = Study(config, run, cache, backends)
        study.manifest = {"version": 1, "command": "study", "status": "running",
                          "config": config.model_dump(by_alias=True), "environment": environment()}  # fmt: skip
        run.write_json("run.json", study.manifest)
        return study.run_all()
