"""``inward study``: the paper's Experiment 1, self- vs cross-prediction, as one resumable DAG.

For each configured pair (M1, M2), following spec §1.7:

1. M1 answers the train tasks (train split) → self-prediction data → LoRA finetune → M1ft.
2. M1ft answers the train tasks → the same kind of data about M1ft → finetune M2 → M2cross.
3. On the held-out tasks (val split): untrained M1 predicts M1, M1ft predicts M1ft ("self"),
   M2cross predicts M1ft ("cross"). Self and cross are scored against the same behaviour
   (the shared evaluation, :func:`inward.experiments.evaluate.evaluate`).
4. The optional experiments of each training seed, one module each, given this study as their
   context: calibration (:mod:`~inward.experiments.calibration`), behaviour change
   (:mod:`~inward.experiments.behaviour_change`), data scaling (:mod:`~inward.experiments.scaling`)
   and probes (:mod:`~inward.experiments.probes`).
5. Tables, notes, figures, run.json and ``report.html`` from the collected rows
   (:mod:`inward.report.outputs`).

:class:`Study` is the orchestrator and the context the experiments use: stages (timed, keyed by
their inputs, reused when the key matches), models (loaded lazily, released after use),
finetuning and evaluation. Every stage writes its output atomically, every model call is
cached, and finetuning resumes from checkpoints, so an interrupted study resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from inward.analysis.compare import compare_self_cross, paired_groups
from inward.errors import InwardError
from inward.experiments.evaluate import (
    EvalPlan,
    ModelHandle,
    _prop_names,
    _tuples,
    collect_objects,
    evaluate,
)
from inward.experiments.behaviour_change import run_behaviour_change
from inward.experiments.calibration import run_calibration
from inward.experiments.probes import run_probes, self_simulation
from inward.experiments.scaling import run_scaling
from inward.experiments.study_config import StudyConfig
from inward.properties import SCORINGS
from inward.properties.llm import llm_properties
from inward.properties.registry import Property, resolve_property
from inward.records import (
    ObjectRecord,
    ScoredRecord,
    object_record_from_dict,
)
from inward.report.outputs import (
    CHAT_FORMAT_COLUMNS,
    StudyRows,
    StudySummary,
    study_figures,
    study_notes,
    study_report,
    summarise,
    write_figures,
    write_tables,
)
from inward.store.cache import CachedModel, ResponseCache
from inward.store.manifest import RunManifest
from inward.store.rundir import RunDir, environment, read_jsonl
from inward.store.stages import StageKeys, content_hash, model_identity, short_fingerprint
from inward.tasks import Task, get_task
from inward.train.datasets import same_item_examples, self_prediction_examples
from inward.train.examples import TrainExample, to_openai_jsonl
from inward.train.lora import RunMismatch, TrainResult, train_lora


def slug(model: str) -> str:
    """A short, filesystem-safe folder name for a model string (never the raw string)."""
    base = re.sub(r"[^A-Za-z0-9.]+", "-", model.split("+lora:")[0].split("/")[-1])[:40].strip("-")
    return f"{base}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def task_properties(config: StudyConfig, tasks: Sequence[str],
                    names: Sequence[str] | None = None) -> dict[str, list[Property]]:  # fmt: skip
    """Each task with the configured properties (``names``, default the study's) it was evaluated
    on in the paper."""
    out: dict[str, list[Property]] = {}
    for name in tasks:
        task = get_task(name)
        chosen = [resolve_property(p, name) for p in (names or config.properties)]
        props = [p for p in chosen if p.name in task.properties]
        if not props:
            raise InwardError(
                f"None of the study's properties {list(names or config.properties)} applies to task {name!r}, "
                f"whose paper properties are {list(task.properties)}. Add one or drop the task."
            )
        out[name] = props
    return out


def prefix(seed: int | None) -> str:
    """The run-directory folder of a training seed's stages ("" for seed-independent ones)."""
    return "" if seed is None else f"seed{seed}/"


@dataclass(frozen=True)
class StudyResult:
    """What ``run_study`` returns: the run directory, this session's stage seconds, and the tables
    (``rows``: as the stages produced them; ``summary``: derived over seeds, with the verdict)."""

    out: Path
    stage_seconds: dict[str, float]
    rows: StudyRows
    summary: StudySummary

    results = property(lambda self: self.rows.results)
    comparisons = property(lambda self: self.rows.comparisons)
    by_task = property(lambda self: self.rows.by_task)
    training = property(lambda self: self.rows.training)
    behaviour_change = property(lambda self: self.rows.behaviour_change)
    calibration = property(lambda self: self.summary.calibration)
    scaling = property(lambda self: self.summary.scaling)
    seed_summary = property(lambda self: self.summary.seed_summary)
    gaps = property(lambda self: self.summary.gaps)  # self − cross over training seeds
    verdicts = property(lambda self: self.summary.verdicts)


class Study:
    """One run of a study config into a run directory (see module doc)."""

    def __init__(self, config: StudyConfig, run: RunDir, cache: ResponseCache, backends=None):
        self.config, self.run, self.cache = config, run, cache
        self.backends = dict(backends or {})
        self.given_backends = set(self.backends)
        self.train_tasks = {n: get_task(n) for n in config.train_tasks}
        self.held_out = {n: get_task(n) for n in config.held_out_tasks}
        self.train_props = task_properties(config, config.train_tasks)
        self.eval_props = task_properties(config, config.held_out_tasks)
        self.stage_seconds: dict[str, float] = {}
        self.previous_seconds: dict[str, float] = _previous_stage_seconds(run)
        self.manifest: RunManifest | None = None  # run.json, set by run_study
        self.used_models: list[str] = []  # every model string of the study, for fingerprints
        # Finetuned models appear in tables as "<base>+lora:<path inside the run directory>", so
        # the tables do not depend on where the run directory lives.
        self.display: dict[str, str] = {}
        # The other answer normalisation, reported beside the configured one (like lm-eval's
        # strict/flexible pairs): "paper" cleans only the hypothetical answer, "symmetric" both.
        self.other_scoring = next(x for x in SCORINGS if x != config.scoring)
        self.rows = StudyRows(example_seed=config.seeds[0])  # what the stages produce, for the outputs
        self.self_examples: dict[tuple[str, int], int] = {}  # (M1, seed) -> self-prediction examples
        # Model args per base model on top of config.model_args: the measured chat format of a
        # model without a template (inward.models.chat_select), for every use of it and its adapters.
        self.format_args: dict[str, dict[str, str]] = {}
        self.keys = StageKeys(run.path)  # reuse or recompute each stage output (inward.store.stages)
        self._identities: dict[tuple[str, str], dict[str, Any]] = {}
        self.untrained_rows: dict[str, list[ScoredRecord]] = {}  # M1 -> its untrained evaluation
        self.shift_props: dict[str, list[Property]] = {}  # behaviour change's properties (set by _check_sections)
        self._check_sections()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"[inward study] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + dt
        if self.manifest is not None:  # keep the running total on disk, so a crash loses no stage's time
            self.manifest.stage_seconds = self.total_seconds()
            self.manifest.write(self.run)
        print(f"[inward study] {name}: done in {dt:.1f}s (resident memory {_rss_gib():.2f} GiB)",
              file=sys.stderr, flush=True)  # fmt: skip

    def total_seconds(self) -> dict[str, float]:
        total = dict(self.previous_seconds)
        for name, dt in self.stage_seconds.items():
            total[name] = total.get(name, 0.0) + dt
        return total

    def backend(self, name: str):
        from inward.models import resolve

        if name not in self.backends:
            self.backends[name] = resolve(name, **self.model_args(name))
        return self.backends[name]

    def model_args(self, name: str) -> dict[str, Any]:
        return {**self.config.model_args, **self.format_args.get(name.split("+lora:")[0], {})}

    def model(self, name: str) -> CachedModel:
        return CachedModel(self.backend(name), self.cache)

    def release(self, name: str) -> None:
        """Free a local model's weights (a study holds several 0.5B-parameter copies otherwise),
        and forget the backend, tokenizer included: every training seed makes new adapter models,
        and their tokenizers (a few hundred MB each for Gemma's 262k vocabulary) would pile up.
        Backends the caller passed in are kept."""
        backend = self.backends.get(name)
        if backend is not None and hasattr(backend, "close"):
            backend.close()
        if name not in self.given_backends:
            self.backends.pop(name, None)

    def records(self, rel: str, cls, compute, facts: dict[str, Any], load=None):
        """``rel``'s records: reused when its stage key matches ``facts`` (inward.store.stages),
        else computed, written, and keyed."""
        if self.keys.reusable(rel, facts):
            return [(load or (lambda d: cls(**_tuples(d))))(d) for d in read_jsonl(self.run.file(rel))]
        records = compute()
        self.run.write_jsonl(rel, records)
        self.keys.record(rel, facts)
        return records

    def handle(self, name: str) -> ModelHandle:
        """``name`` as the shared evaluation uses it: loaded only if a stage is computed."""
        return ModelHandle(name, lambda: self.model(name), lambda: self.model_id(name))

    def model_id(self, name: str) -> dict[str, Any]:
        """The path-free identity of a model as this study runs it (weights, adapter, precision,
        chat format, backend): what a stage key names it by."""
        key = (name, json.dumps(self.model_args(name), sort_keys=True, default=str))
        if key not in self._identities:
            self._identities[key] = model_identity(self.backend(name).fingerprint())
        return self._identities[key]

    def fingerprints(self, object_model: str, predictor: str) -> tuple[str, str]:
        """The short fingerprints of a setup's two models (the CSVs' fingerprint columns)."""
        return short_fingerprint(self.model_id(object_model)), short_fingerprint(self.model_id(predictor))

    # -- stages -----------------------------------------------------------------------------
    def objects(self, model: str, tasks: dict[str, Task], split: str, n: int, rel: str,
                temperature: float = 0.0) -> list[ObjectRecord]:  # fmt: skip
        def compute() -> list[ObjectRecord]:
            return collect_objects(self.model(model), list(tasks.values()), split, n,
                                   seed=self.config.seed, data_dir=self.config.data_dir,
                                   source=self.config.source, temperature=temperature)  # fmt: skip

        c = self.config
        facts = EvalPlan(tasks, {}, split, n, c.seed, c.data_dir, c.source).objects_facts(self.model_id(model),
                                                                                          temperature)  # fmt: skip
        # two-turn tasks (are_you_sure) write FollowupObjectRecord rows
        return self.records(rel, ObjectRecord, compute, facts, load=object_record_from_dict)

    def prediction_examples(self, objects: list[ObjectRecord], about: str, seed: int) -> list[TrainExample]:
        """The self-prediction data about ``objects``' model, drawn with training seed ``seed``."""
        forbidden = self.eval_strings()
        examples = self_prediction_examples(
            objects, self.train_tasks, self.train_props, n_per_pair=self.config.n_train_per_pair,
            seed=seed, forbidden_strings=forbidden,
        )  # fmt: skip
        if not examples:
            raise InwardError(
                f"No finetuning examples could be built from {about}'s object-level responses: "
                "none was compliant with a property value. Check objects_train.jsonl."
            )
        return examples

    def eval_strings(self) -> set[str]:
        forbidden = set()
        for task in self.held_out.values():
            forbidden.update(s.string for s in task.load("val", self.config.n_eval, self.config.seed,
                                                          self.config.data_dir, self.config.source))
        return forbidden

    def cross_examples(self, ft_train: list[ObjectRecord], self_data: list[TrainExample], m1ft: str,
                       m2: str, seed: int, folder: str) -> list[TrainExample]:  # fmt: skip
        """Equal evidence: the cross-predictor's data is about the self-trained model, on exactly
        the items (task, property, string) the self-predictor trained on, in the same order. Items
        where the self-trained model's answer is not compliant cannot be built; they are listed
        in ``dropped_items.jsonl`` and counted per property in evidence.csv."""
        examples, dropped = same_item_examples(ft_train, self.train_tasks, self.train_props, self_data,
                                               forbidden_strings=self.eval_strings())  # fmt: skip
        self.run.write_jsonl(f"{folder}/dropped_items.jsonl", dropped)
        count = Counter((e.meta["task"], e.meta["property"]) for e in self_data)
        kept = Counter((e.meta["task"], e.meta["property"]) for e in examples)
        for task, prop in count:
            self.rows.evidence.append({
                "seed": seed, "target": self.shown(m1ft), "cross_model": m2, "task": task, "property": prop,
                "self_examples": count[(task, prop)], "cross_examples": kept[(task, prop)],
                "dropped": count[(task, prop)] - kept[(task, prop)],
            })  # fmt: skip
        if not examples:
            raise InwardError(
                f"No cross-prediction examples: none of {self.shown(m1ft)}'s answers on the self-predictor's "
                f"training items was compliant (see {folder}/dropped_items.jsonl)."
            )
        return examples

    def train(self, base: str, examples: list[TrainExample], folder: str, settings, about: str,
              purpose: str | None = None, display_base: str | None = None, seed: int | None = None) -> str:  # fmt: skip
        if seed is not None:  # the training seed replaces the config's finetune seed
            settings = replace(settings, seed=seed)
        # train.jsonl is upload-ready for a hosted finetuning API (messages only, as the paper);
        # train_examples.jsonl adds each example's task, property and string.
        self.run.write_text(f"{folder}/train.jsonl", to_openai_jsonl(examples))
        self.run.write_text(f"{folder}/train_examples.jsonl", to_openai_jsonl(examples, include_meta=True))
        bar = _train_progress(f"finetune {slug(base)}")
        out_dir, marker = self.run.file(folder), f"{folder}/train_result.json"
        existed = self.run.file(marker).is_file()
        try:
            result: TrainResult = train_lora(base, examples, settings, out_dir, progress=bar,
                                             model_args=self.model_args(base))  # fmt: skip
            self.keys.log[marker] = {"reused": existed, "reason": "same inputs" if existed else "not computed yet"}
        except RunMismatch:  # the model, settings or examples changed since this folder was trained
            self.keys.log[marker] = {"reused": False, "reason": "changed: training inputs (run key)"}
            print(f"[inward study] {folder}: retraining, the base model, settings or examples changed",
                  file=sys.stderr, flush=True)  # fmt: skip
            for name in ("train_result.json", "adapter", "checkpoint", "checkpoint.old"):
                path = out_dir / name
                path.unlink() if path.is_file() else shutil.rmtree(path, ignore_errors=True)
            result = train_lora(base, examples, settings, out_dir, progress=bar,
                                model_args=self.model_args(base))  # fmt: skip
        bar(None, None, None)
        release_memory()  # the trainer's model copy is garbage now; give its pages back
        self.display[result.adapter_model_string] = f"{display_base or base}+lora:{folder}/adapter"
        row = {
            "seed": seed, "model": base, "about": about, "n_examples": result.n_examples, "steps": result.steps,
            "final_loss": result.final_loss, "first_loss": result.losses[0] if result.losses else None,
            "seconds": result.train_seconds, "examples_per_second": result.examples_per_second,
            "dtype": result.dtype,
        }  # fmt: skip
        if purpose is not None:
            row = {**row, "model": display_base or base, "purpose": purpose}
        self.rows.training.append(row)
        return result.adapter_model_string

    def use(self, *models: str) -> None:
        """Note models the study ran, for run.json's fingerprints."""
        self.used_models += [m for m in dict.fromkeys(models) if m not in self.used_models]

    def shown(self, model: str) -> str:
        return self.display.get(model, model)

    def evaluate(self, setup: str, object_model: str, meta_model: str,
                 objects: list[ObjectRecord] | None = None, other_scoring: bool = True,
                 seed: int | None = None) -> tuple[list[ObjectRecord], list[ScoredRecord]]:  # fmt: skip
        folder = f"{prefix(seed)}eval/{setup}"
        self.use(object_model, meta_model)
        extractor = None
        if llm_properties(self.eval_props):
            # One extractor for every setup of a pair: the configured one, else untrained M1
            # (the base of M1ft), so untrained, self and cross are judged on the same values.
            name = self.config.extractor_model or object_model.split("+lora:")[0]
            self.use(name)
            extractor = self.handle(name)
        c = self.config
        plan = EvalPlan(self.held_out, self.eval_props, split="val", n=c.n_eval, seed=c.seed,
                        data_dir=c.data_dir, source=c.source)  # fmt: skip

        def store(name: str, load_row, compute, facts) -> list:
            return self.records(f"{folder}/{name}", None, compute, facts(), load=load_row)

        ev = evaluate(plan, self.handle(object_model), self.handle(meta_model), store=store, objects=objects,
                      extractor=extractor)  # fmt: skip
        objects = ev.objects

        def scored_with(scoring: str) -> list[ScoredRecord]:
            # named by this run's models, not by the strings stored in reused records (which may
            # carry the path of a run directory that has since moved)
            return [replace(r, object_model=self.shown(object_model), meta_model=self.shown(meta_model))
                    for r in ev.scored(scoring)]  # fmt: skip

        scored = scored_with(self.config.scoring)
        if other_scoring:  # the main setups only: results_<other>.csv keeps its rows
            self.rows.other[(setup, seed)] = (scored_with(self.other_scoring),
                                              self.fingerprints(object_model, meta_model))  # fmt: skip
        self.run.write_jsonl(f"{folder}/scored.jsonl", scored)
        return objects, scored

    def choose_chat_format(self, m2: str, m1ft: str, ft_train: list[ObjectRecord], folder: str) -> None:
        """For a cross model without a chat template, measure which fallback format gives the
        lowest untrained answer loss on ``chat_format_examples`` examples about ``m1ft`` from
        train-task strings that no model trains on, and use it for every use of ``m2``."""
        from inward.models.chat_select import FormatLoss, has_own_template, measure_formats

        n = self.config.chat_format_examples
        if (n == 0 or m2 in self.format_args or "chat_format" in self.config.model_args
                or not _is_local(m2) or has_own_template(m2)):  # fmt: skip
            return
        per_task = -(-n // len(self.train_tasks))

        more = self.objects(m1ft, self.train_tasks, "train", self.config.n_train_strings + per_task,
                            f"{folder}/chat_format_objects.jsonl")  # fmt: skip

        def measure() -> list:
            trained_on = {(o.task, o.string) for o in ft_train}
            held = [o for o in more if (o.task, o.string) not in trained_on]
            examples = self_prediction_examples(
                held, self.train_tasks, self.train_props, n_per_pair=per_task, seed=self.config.seed,
                forbidden_strings=self.eval_strings() | {s for _, s in trained_on},
            )[:n]  # fmt: skip
            self.release(m1ft)
            if not examples:
                raise InwardError(
                    f"Cannot choose a chat format for {m2}: none of {self.shown(m1ft)}'s answers to the "
                    f"{per_task} held-out strings per train task was compliant. Set chat_format_examples "
                    "higher, or name the format with model_args: {chat_format: plain}.")  # fmt: skip
            rows = measure_formats(m2, examples)
            release_memory()  # its fp32 model is garbage now
            return rows

        with self.stage(f"chat format of {m2}: measured on {n} held-out train-task examples"):
            rows = self.records(f"{folder}/chat_formats.jsonl", FormatLoss, measure, {
                "stage": "chat_formats", "model": self.model_id(m2), "objects": content_hash(more),
                "trained_on": content_hash(sorted((o.task, o.string) for o in ft_train)), "n": n,
                "seed": self.config.seed, "properties": _prop_names(self.train_props)})  # fmt: skip
        chosen = next(r.chat_format for r in rows if r.chosen)
        self.format_args[m2] = {"chat_format": chosen}
        table = [{"model": m2, "about": self.shown(m1ft), **r.to_json()} for r in rows]
        self.run.write_csv(f"{folder}/chat_formats.csv", table, CHAT_FORMAT_COLUMNS)
        self.rows.chat_formats += table

    # -- Experiment 1b, Experiment 2, data scaling (each optional) -------------------------
    def _check_sections(self) -> None:
        """Fail before any model runs when a section names something that does not exist."""
        c = self.config
        if c.calibration is not None:
            task = get_task(c.calibration.task)
            for p in c.calibration.properties:
                if p not in task.properties:
                    raise InwardError(
                        f"calibration.properties: {p!r} is not a property of calibration.task "
                        f"{task.name!r}; choose from {list(task.properties)}."
                    )
        if c.behaviour_change is not None:
            self.shift_props = task_properties(c, c.held_out_tasks, c.behaviour_change.properties)

    # -- the DAG ----------------------------------------------------------------------------
    def run_all(self) -> StudyResult:
        c, rows = self.config, self.rows
        for m1 in dict.fromkeys(p.self_model for p in c.pairs):
            s1 = slug(m1)
            # Seed-independent: M1's answers on the pool of train strings, and untrained M1.
            with self.stage(f"object-level train, {m1}"):
                obj_train = self.objects(m1, self.train_tasks, "train", c.n_train_strings,
                                         f"models/{s1}/objects_train.jsonl")  # fmt: skip
            with self.stage(f"untrained evaluation, {m1}"):
                _, untrained = self.evaluate(f"untrained-{s1}", m1, m1)
            self.release(m1)
            self.untrained_rows[m1] = untrained
            rows.add_results(untrained, "untrained", None, self.fingerprints(m1, m1))
            for seed in c.seeds:
                self.run_seed(m1, seed, obj_train)
        summary = self.write_outputs()
        return StudyResult(self.run.path, self.stage_seconds, rows, summary)

    def run_seed(self, m1: str, seed: int, obj_train: list[ObjectRecord]) -> None:
        """Every finetuned model of M1's pairs, trained with one training seed, its scores, and the
        optional experiments of that seed (each in its own module)."""
        c, s1, pre, tag, rows = self.config, slug(m1), prefix(seed), f"seed {seed}: ", self.rows
        with self.stage(f"{tag}self-prediction finetune, {m1}"):
            self_data = self.prediction_examples(obj_train, m1, seed)
            m1ft = self.train(m1, self_data, f"{pre}models/{s1}/self_ft", c.finetune, m1, seed=seed)
            self.self_examples[(m1, seed)] = rows.training[-1]["n_examples"]
        with self.stage(f"{tag}object-level train, {m1} self-trained"):
            ft_train = self.objects(m1ft, self.train_tasks, "train", c.n_train_strings,
                                    f"{pre}models/{s1}/self_ft/objects_train.jsonl")  # fmt: skip
        with self.stage(f"{tag}self evaluation, {m1} self-trained"):
            ft_objects, self_rows = self.evaluate(f"self-{s1}", m1ft, m1ft, seed=seed)
        self.release(m1ft)
        rows.add_results(self_rows, "self", seed, self.fingerprints(m1ft, m1ft))
        if c.probes is not None:
            rows.simulation += [asdict(r) for r in self_simulation(seed, m1, self_rows, self.untrained_rows[m1])]
        cross_models: dict[str, str] = {}
        for pair in (p for p in c.pairs if p.self_model == m1):
            m2, s2 = pair.cross_model, slug(pair.cross_model)
            folder = f"{pre}models/{s1}/cross_ft/{s2}"
            self.choose_chat_format(m2, m1ft, ft_train, folder)
            with self.stage(f"{tag}cross-prediction finetune, {m2} on {m1} self-trained"):
                cross_data = self.cross_examples(ft_train, self_data, m1ft, m2, seed, folder)
                m2ft = self.train(m2, cross_data, folder, c.cross_finetune or c.finetune, self.shown(m1ft),
                                  seed=seed)  # fmt: skip
            with self.stage(f"{tag}cross evaluation, {m2} predicting {m1} self-trained"):
                _, cross_rows = self.evaluate(f"cross-{s1}-{s2}", m1ft, m2ft, ft_objects, seed=seed)
            self.release(m2ft)
            rows.add_results(cross_rows, "cross", seed, self.fingerprints(m1ft, m2ft))
            rows.comparisons += [{"seed": seed, **row} for row in compare_self_cross(self_rows, cross_rows)]
            rows.paired.setdefault((m1, m1, m2), {})[seed] = paired_groups(self_rows, cross_rows)
            cross_models[m2] = m2ft
            if c.probes is not None:
                rows.probes += run_probes(self, m1, m1ft, m2, m2ft, cross_data, ft_train, self_rows, cross_rows, seed)
            if c.scaling is not None:
                rows.scaling += run_scaling(self, m1, m1ft, m2, cross_data, ft_objects, self_rows, cross_rows, seed,
                                            self.self_examples.get((m1, seed), ""))  # fmt: skip
        first = seed == c.seeds[0]
        if c.calibration is not None and (c.calibration.every_seed or first):
            rows.calibration += run_calibration(self, m1, m1ft, cross_models, seed)
        if c.behaviour_change is not None and (c.behaviour_change.every_seed or first):
            outcome = run_behaviour_change(self, m1, m1ft, ft_objects, next(iter(cross_models)), seed)
            rows.behaviour_change += outcome.rows
            rows.warnings += [outcome.warning] if outcome.warning else []

    def write_outputs(self) -> StudySummary:
        """The CSVs, figures, run.json and report.html (inward.report.outputs)."""
        run, rows = self.run, self.rows
        summary = summarise(self.config, rows, self.other_scoring)
        write_tables(run, self.config, rows, summary, self.other_scoring)
        figures = study_figures(self.config, rows, summary)
        write_figures(run, figures)
        models = self._fingerprints()
        manifest = self.manifest or RunManifest(command="study", environment=environment())
        self.manifest = manifest.updated(
            stage_seconds=self.total_seconds(), stage_seconds_this_run=self.stage_seconds, training=rows.training,
            chat_formats=rows.chat_formats, environment=environment(), status="complete", models=models,
            peak_rss_mb=_peak_rss_mb(), verdicts=summary.verdicts, seeds=self.config.seeds, stages=self.keys.log,
            notes=study_notes(self.config, rows, summary, self.other_scoring, models, self.keys.log))  # fmt: skip
        self.manifest.write(run)
        run.write_text("report.html", study_report(self.config, rows, summary, self.manifest.to_json(), figures))
        return summary

    def _fingerprints(self) -> dict[str, Any]:
        """Fingerprints of every model of the study (a tokenizer load each, no weights)."""
        out = {}
        for name in self.used_models:
            try:
                out[name] = self.backend(name).fingerprint()
            except Exception as e:  # a fingerprint is provenance, never a reason to lose results
                out[name] = {"error": str(e)}
            self.release(name)
        return out


def _is_local(model: str) -> bool:
    return model.split("/", 1)[0] in ("bundled", "hf", "gguf")


def _previous_stage_seconds(run: RunDir) -> dict[str, float]:
    """Stage seconds an earlier session wrote to run.json (none for a new directory)."""
    old = RunManifest.read(run)
    return dict(old.stage_seconds or {}) if old is not None else {}


def release_memory() -> None:
    try:
        from inward.models.local import release_memory
    except ImportError:  # torch missing: nothing local was loaded
        return
    release_memory()


def _rss_gib() -> float:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**30
    except (OSError, ValueError, IndexError):
        return 0.0


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (stages resumed from files cost ~nothing)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


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
        run.write_text("config.yaml", yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False))
        study = Study(config, run, cache, backends)
        study.manifest = RunManifest(command="study", config=config.model_dump(mode="json", by_alias=True),
                                     environment=environment(), stage_seconds=study.total_seconds())  # fmt: skip
        study.manifest.write(run)
        return study.run_all()
