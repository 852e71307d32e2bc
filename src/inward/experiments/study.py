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
import json
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from inward.analysis.compare import COMPARISON_COLUMNS, NON_DEGENERATE, compare_self_cross, paired_groups
from inward.analysis.results import BY_TASK_COLUMNS, MICRO, RESULT_COLUMNS, results_by_task, results_table
from inward.analysis.seeds import (
    GAP_COLUMNS,
    MATRIX_COLUMNS,
    SEED_SUMMARY_COLUMNS,
    base_model,
    gap_summary,
    matrix_table,
    seed_summary,
    target_verdicts,
    verdict,
)
from inward.errors import InwardError
from inward.experiments.evaluate import (
    EvalPlan,
    ModelHandle,
    _prop_names,
    _tuples,
    collect_objects,
    evaluate,
)
from inward.experiments.study_config import StudyConfig
from inward.properties import SCORINGS
from inward.properties.llm import llm_properties
from inward.properties.registry import Property, resolve_property
from inward.records import (
    HypotheticalRecord,
    ObjectRecord,
    ScoredRecord,
    object_record_from_dict,
)
from inward.store.cache import CachedModel, ResponseCache
from inward.store.rundir import RunDir, environment, read_jsonl
from inward.store.stages import StageKeys, content_hash, model_identity
from inward.tasks import Task, get_task
from inward.train.datasets import nested_slices, same_item_examples, self_prediction_examples, shift_examples
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


SEEDED_RESULT_COLUMNS = ("seed", *RESULT_COLUMNS)
SEEDED_BY_TASK_COLUMNS = ("seed", *BY_TASK_COLUMNS)
SEEDED_COMPARISON_COLUMNS = ("seed", *COMPARISON_COLUMNS)
EVIDENCE_COLUMNS = ("seed", "target", "cross_model", "task", "property", "self_examples", "cross_examples",
                    "dropped")  # fmt: skip


def _prefix(seed: int | None) -> str:
    """The run-directory folder of a training seed's stages ("" for seed-independent ones)."""
    return "" if seed is None else f"seed{seed}/"


@dataclass
class _Tables:
    """The Experiment 1 tables as the seeds add to them (seed None: the untrained setups)."""

    example_seed: int
    results: list[dict] = field(default_factory=list)
    by_task: list[dict] = field(default_factory=list)
    comparisons: list[dict] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    seed_summary: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)

    def add_results(self, rows: list[ScoredRecord], label: str, seed: int | None) -> None:
        self.results += [{"seed": seed, **r} for r in results_table(rows, label=label)]
        self.by_task += [{"seed": seed, **r} for r in results_by_task(rows, label=label)]
        if label != "untrained" and seed == self.example_seed:
            self.examples += _examples(rows, label)


@dataclass
class StudyResult:
    out: Path
    results: list[dict]
    comparisons: list[dict]
    by_task: list[dict]
    stage_seconds: dict[str, float]
    training: list[dict] = field(default_factory=list)
    calibration: list[dict] = field(default_factory=list)
    behaviour_change: list[dict] = field(default_factory=list)
    scaling: list[dict] = field(default_factory=list)
    seed_summary: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    """Self − cross over training seeds (inward.analysis.seeds.GAP_COLUMNS)."""
    verdicts: list[str] = field(default_factory=list)


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
        self.training: list[dict] = []
        self.manifest: dict[str, Any] = {}
        self.used_models: list[str] = []  # every model string of the study, for fingerprints
        # Finetuned models appear in tables as "<base>+lora:<path inside the run directory>", so
        # the tables do not depend on where the run directory lives.
        self.display: dict[str, str] = {}
        # The other answer normalisation, reported beside the configured one (like lm-eval's
        # strict/flexible pairs): "paper" cleans only the hypothetical answer, "symmetric" both.
        self.other_scoring = next(x for x in SCORINGS if x != config.scoring)
        self.other_rows: dict[tuple[str, int | None], list[ScoredRecord]] = {}
        # (training seed or None for untrained setups, its CalibrationRecords)
        self.calibration_records: list[tuple[int | None, list]] = []
        self.behaviour_rows: list[dict] = []
        self.scaling_rows: list[dict] = []
        self.evidence: list[dict] = []  # per seed, target, task, property: self vs cross examples
        # (M1, M1 self-predictor, M2) -> seed -> property -> paired correctness (seed-level tests)
        self.paired: dict[tuple[str, str, str], dict[int, dict]] = {}
        self.self_examples: dict[tuple[str, int], int] = {}  # (M1, seed) -> self-prediction examples
        self.shift_warnings: list[str] = []
        # Model args per base model on top of config.model_args: the measured chat format of a
        # model without a template (inward.models.chat_select), for every use of it and its adapters.
        self.format_args: dict[str, dict[str, str]] = {}
        self.keys = StageKeys(run.path)  # reuse or recompute each stage output (inward.store.stages)
        self._identities: dict[tuple[str, str], dict[str, Any]] = {}
        self.chat_formats: list[dict] = []
        self.agreement: list[dict] = []  # calibration_agreement.csv (empty without calibration)
        self.untrained_rows: dict[str, list[ScoredRecord]] = {}  # M1 -> its untrained evaluation
        self.probe_rows: list[dict] = []  # probes.csv (empty without probes)
        self.simulation_rows: list[dict] = []  # self_simulation.csv (empty without probes)
        self.probe_summary: list[dict] = []  # probe_summary.csv, probe_contrast.csv (filled at the end)
        self.probe_contrast: list[dict] = []
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
        if self.manifest:  # keep the running total on disk, so a crash loses no stage's time
            self.manifest["stage_seconds"] = self.total_seconds()
            self.run.write_json("run.json", self.manifest)
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

    def _records(self, rel: str, cls, compute, facts: dict[str, Any], load=None):
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
        return self._records(rel, ObjectRecord, compute, facts, load=object_record_from_dict)

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
            self.evidence.append({
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
        _release_memory()  # the trainer's model copy is garbage now; give its pages back
        self.display[result.adapter_model_string] = f"{display_base or base}+lora:{folder}/adapter"
        row = {
            "seed": seed, "model": base, "about": about, "n_examples": result.n_examples, "steps": result.steps,
            "final_loss": result.final_loss, "first_loss": result.losses[0] if result.losses else None,
            "seconds": result.train_seconds, "examples_per_second": result.examples_per_second,
            "dtype": result.dtype,
        }  # fmt: skip
        if purpose is not None:
            row = {**row, "model": display_base or base, "purpose": purpose}
        self.training.append(row)
        return result.adapter_model_string

    def shown(self, model: str) -> str:
        return self.display.get(model, model)

    def evaluate(self, setup: str, object_model: str, meta_model: str,
                 objects: list[ObjectRecord] | None = None, other_scoring: bool = True,
                 seed: int | None = None) -> tuple[list[ObjectRecord], list[ScoredRecord]]:  # fmt: skip
        folder = f"{_prefix(seed)}eval/{setup}"
        self.used_models += [m for m in (object_model, meta_model) if m not in self.used_models]
        extractor = None
        if llm_properties(self.eval_props):
            # One extractor for every setup of a pair: the configured one, else untrained M1
            # (the base of M1ft), so untrained, self and cross are judged on the same values.
            name = self.config.extractor_model or object_model.split("+lora:")[0]
            self.used_models += [name] if name not in self.used_models else []
            extractor = self.handle(name)
        c = self.config
        plan = EvalPlan(self.held_out, self.eval_props, split="val", n=c.n_eval, seed=c.seed,
                        data_dir=c.data_dir, source=c.source)  # fmt: skip

        def store(name: str, load_row, compute, facts) -> list:
            return self._records(f"{folder}/{name}", None, compute, facts(), load=load_row)

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
            self.other_rows[(setup, seed)] = scored_with(self.other_scoring)
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
            _release_memory()  # its fp32 model is garbage now
            return rows

        with self.stage(f"chat format of {m2}: measured on {n} held-out train-task examples"):
            rows = self._records(f"{folder}/chat_formats.jsonl", FormatLoss, measure, {
                "stage": "chat_formats", "model": self.model_id(m2), "objects": content_hash(more),
                "trained_on": content_hash(sorted((o.task, o.string) for o in ft_train)), "n": n,
                "seed": self.config.seed, "properties": _prop_names(self.train_props)})  # fmt: skip
        chosen = next(r.chat_format for r in rows if r.chosen)
        self.format_args[m2] = {"chat_format": chosen}
        table = [{"model": m2, "about": self.shown(m1ft), **r.to_json()} for r in rows]
        self.run.write_csv(f"{folder}/chat_formats.csv", table, CHAT_FORMAT_COLUMNS)
        self.chat_formats += table

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

    def calibration_stage(self, m1: str, m1ft: str, cross_models: dict[str, str], seed: int) -> None:
        from inward.analysis.calibration import CalibrationRecord
        from inward.experiments.calibration import collect_calibration

        cal, s1 = self.config.calibration, slug(m1)
        task = get_task(cal.task)
        props = [resolve_property(p, task.name) for p in cal.properties]
        n = max(cal.n_exact, cal.n_sampled)
        strings = [x.string for x in task.load("val", n, self.config.seed, self.config.data_dir,
                                               self.config.source)]  # fmt: skip
        pre = _prefix(seed)
        # the untrained setup does not depend on the training seed: once, with the first seed
        setups = [(None, f"untrained-{s1}", "untrained", m1, m1)] if seed == self.config.seeds[0] else []
        setups += [(seed, f"{pre}self-{s1}", "self", m1ft, m1ft)]
        one = len(cross_models) == 1
        setups += [(seed, f"{pre}cross-{s1}-{slug(m2)}", "cross" if one else f"cross:{slug(m2)}", m1ft, m2ft)
                   for m2, m2ft in cross_models.items()]  # fmt: skip
        for which, folder, label, obj, meta in setups:
            tag = "" if which is None else f"seed {seed}: "
            with self.stage(f"{tag}calibration, {label}: {self.shown(meta)} predicting {self.shown(obj)}"):
                records = self._records(
                    f"calibration/{folder}/records.jsonl", CalibrationRecord,
                    lambda obj=obj, meta=meta, label=label: collect_calibration(
                        label, self.model(obj), self.model(meta), task, props, strings,
                        n_exact=cal.n_exact, n_sampled=cal.n_sampled, samples=cal.samples,
                        temperature=cal.temperature, max_tokens=cal.max_tokens, top_k=cal.top_k,
                        seed=cal.seed, scoring=self.config.scoring, object_name=self.shown(obj),
                        meta_name=self.shown(meta)),
                    {"stage": "calibration", "label": label, "object": self.model_id(obj),
                     "meta": self.model_id(meta), "settings": cal.model_dump(exclude={"every_seed"}),
                     "strings": content_hash(strings),
                     "scoring": self.config.scoring, "names": [self.shown(obj), self.shown(meta)]},
                )  # fmt: skip
            self.calibration_records.append((which, records))
            if meta != m1ft:
                self.release(meta)
        self.release(m1)
        self.release(m1ft)

    @property
    def calibration_table(self) -> list[dict]:
        from inward.analysis.calibration import calibration_table

        cal = self.config.calibration
        if cal is None:
            return []
        return [{"seed": seed, **row} for seed, records in self.calibration_records
                for row in calibration_table(records, top=cal.top_behaviours, bins=cal.bins)]  # fmt: skip

    def behaviour_change_stage(self, m1: str, m1ft: str, ft_objects: list[ObjectRecord], cross: str,
                               seed: int) -> None:  # fmt: skip
        from inward.analysis.behaviour_change import behaviour_change_table, entropy_adjust, shift_status
        from inward.analysis.scoring import score
        from inward.experiments.behaviour_change import merge_adapter_checkpoint, shifted_hypotheticals

        c, bc, s1 = self.config, self.config.behaviour_change, slug(m1)
        other = bc.shift_model or cross
        folder, tag = f"{_prefix(seed)}behaviour_change/{s1}", f"seed {seed}: "
        sampled = f"_T{bc.shift_temperature:g}" if bc.shift_temperature > 0 else ""
        with self.stage(f"behaviour change: object-level train, {other}"):
            other_train = self.objects(other, self.train_tasks, "train", c.n_train_strings,
                                       f"models/{slug(other)}/objects_train{sampled}.jsonl",
                                       temperature=bc.shift_temperature)  # fmt: skip
        self.release(other)
        examples = shift_examples(other_train, self.train_tasks, n=bc.n_examples, seed=seed,
                                  forbidden_strings=self.eval_strings())  # fmt: skip
        if not examples:
            raise InwardError(f"No shift examples: none of {other}'s object-level train responses "
                              f"was compliant (see models/{slug(other)}/objects_train.jsonl).")  # fmt: skip
        top, count = Counter(e.completion for e in examples).most_common(1)[0]
        if count / len(examples) > 0.5 and seed == c.seeds[0]:  # e.g. a base model that echoes the question
            self.shift_warnings.append(
                f"Behaviour change: {100 * count / len(examples):.0f}% of the {len(examples)} shift "
                f"examples from {other} have the same response ({top[:60]!r}), so M_C learns a "
                "near-constant behaviour; consider another behaviour_change.shift_model.")  # fmt: skip
        with self.stage(f"{tag}behaviour change: shift finetune of {self.shown(m1ft)} on {other}"):
            merged = merge_adapter_checkpoint(m1ft, self.run.file(f"{folder}/self_ft_merged"))
            _release_memory()  # the fp32 model the merge built is garbage now (2 GB for Qwen 0.5B)
            self.display[merged] = self.shown(m1ft)
            mc = self.train(merged, examples, f"{folder}/shift_ft", bc.finetune or c.finetune,
                            f"{other} (object-level answers)", purpose="behaviour change",
                            display_base=self.shown(m1ft), seed=seed)  # fmt: skip
        self.used_models += [mc] if mc not in self.used_models else []
        with self.stage(f"{tag}behaviour change: evaluation of {self.shown(mc)}"):
            mc_objects = self.objects(mc, self.held_out, "val", c.n_eval, f"{folder}/objects.jsonl")
            hyps = self._records(
                f"{folder}/hypotheticals.jsonl", HypotheticalRecord,
                lambda: shifted_hypotheticals(self.model(mc), ft_objects, mc_objects, self.held_out,
                                              self.shift_props, c.scoring),
                {"stage": "shifted_hypotheticals", "model": self.model_id(mc), "old": content_hash(ft_objects),
                 "new": content_hash(mc_objects), "properties": _prop_names(self.shift_props),
                 "scoring": c.scoring},
            )  # fmt: skip
        self.release(mc)
        status = shift_status(ft_objects, mc_objects, self.shift_props, c.scoring)
        old_by = {(o.task, o.string): o for o in ft_objects}
        new_by = {(o.task, o.string): o for o in mc_objects}
        old_rows, new_rows = [], []
        for h in hyps:
            prop = resolve_property(h.property, h.task)
            for rows, by, obj in ((old_rows, old_by, m1ft), (new_rows, new_by, mc)):
                r = score(by[(h.task, h.string)], prop, h, scoring=c.scoring)
                rows.append(replace(r, object_model=self.shown(obj), meta_model=self.shown(mc)))
        self.run.write_jsonl(f"{folder}/scored_old.jsonl", old_rows)
        self.run.write_jsonl(f"{folder}/scored_new.jsonl", new_rows)
        drop = bc.exclude_noncompliant
        rows = behaviour_change_table(old_rows, new_rows, status, exclude_noncompliant=drop)
        if bc.entropy_adjust:  # the paper drops non-compliant rows at load time, before down-sampling
            kept = [[r for r in rs if not (drop and r.meta_compliant is False)] for rs in (old_rows, new_rows)]
            rows += behaviour_change_table(*entropy_adjust(*kept), status, adjustment="entropy",
                                           exclude_noncompliant=drop)  # fmt: skip
        self.behaviour_rows += [{"seed": seed, **r, "shift_model": other} for r in rows]

    def scaling_stage(self, m1: str, m1ft: str, m2: str, examples: list[TrainExample],
                      ft_objects: list[ObjectRecord], self_rows: list[ScoredRecord],
                      cross_rows: list[ScoredRecord], seed: int) -> None:  # fmt: skip
        """``examples``: the main cross-predictor's data, in its order (nested prefixes of it)."""
        c, s1, s2 = self.config, slug(m1), slug(m2)
        sizes = [n for n in c.scaling.sizes if n < len(examples)]
        points: list[tuple[int, str, list[ScoredRecord]]] = []
        for size, chunk in zip(sizes, nested_slices(examples, sizes)):
            folder = f"{_prefix(seed)}models/{s1}/scaling/{s2}/n{size}"
            with self.stage(f"seed {seed}: data scaling, {m2} on {size} examples about {m1} self-trained"):
                m2n = self.train(m2, chunk, folder, c.cross_finetune or c.finetune,
                                 f"{self.shown(m1ft)} (first {size} examples)", purpose="data scaling",
                                 seed=seed)  # fmt: skip
                _, rows = self.evaluate(f"scaling-{s1}-{s2}-n{size}", m1ft, m2n, ft_objects, other_scoring=False,
                                        seed=seed)  # fmt: skip
            self.release(m2n)
            points.append((size, m2n, rows))
        points.append((len(examples), "", cross_rows))

        def micro(rows: list[ScoredRecord], label: str) -> dict:
            return next(r for r in results_table(rows, label=label) if r["response_property"] == "micro_average")

        for size, _, rows in points:
            m = micro(rows, "cross")
            self.scaling_rows.append({"seed": seed, "n_train": size, "accuracy": m["accuracy"], "error": m["error"],
                                      "predictor": m["meta_model"], "target": m["object_model"],
                                      "label": "cross", "mode_baseline": m["mode_baseline"],
                                      "count": m["count"]})  # fmt: skip
        m = micro(self_rows, "self")
        self.scaling_rows.append({"seed": seed, "n_train": self.self_examples.get((m1, seed), ""), "accuracy": m["accuracy"],
                                  "error": m["error"], "predictor": m["meta_model"],
                                  "target": m["object_model"], "label": "self",
                                  "mode_baseline": m["mode_baseline"], "count": m["count"]})  # fmt: skip

    def probes_stage(self, m1: str, m1ft: str, m2: str, m2ft: str, cross_data: list[TrainExample],
                     ft_train: list[ObjectRecord], self_rows: list[ScoredRecord], cross_rows: list[ScoredRecord],
                     seed: int) -> None:  # fmt: skip
        """White-box probes for one pair and training seed (inward.experiments.probes)."""
        from inward.analysis.probes import ProbeSettings
        from inward.experiments import probes as P
        from inward.store import activations as store

        sec, pre, s1, tag = self.config.probes, _prefix(seed), slug(m1), f"seed {seed}: "
        train, test = P.train_rows(cross_data, ft_train, self.config.scoring), P.held_out_rows(self_rows)
        tasks = {**self.train_tasks, **self.held_out}

        def reuse(rel: str, facts: dict, compute):
            if self.keys.reusable(rel, facts):
                return store.load(self.run.file(rel))
            acts = compute()
            store.save(self.run.file(rel), acts)
            self.keys.record(rel, facts)
            return acts

        sources, facts = {}, []
        plan = ((P.SELF_OBJECT, m1ft, "self"), (P.SELF_HYPOTHETICAL, m1ft, "self"),
                (P.CROSS_HYPOTHETICAL, m2ft, f"cross-{slug(m2)}"))  # fmt: skip
        for (role, kind), model, stem in plan:
            rel = f"{pre}probes/{s1}/{stem}-{kind}.safetensors"
            with self.stage(f"{tag}probe activations, {role}/{kind}, {self.shown(model)}"):
                acts, layers = P.collect(self.backend(model), self.model_id(model), self.shown(model), kind,
                                         [*train, *test], sec.depths, tasks, reuse, rel)  # fmt: skip
            sources[f"{role}/{kind}"] = (self.shown(model), acts, layers)
            facts.append(self.keys.digests[rel])
            if model == m1ft and kind == "hypothetical":
                self.release(m1ft)  # before M2ft loads
        self.release(m2ft)
        settings = ProbeSettings(top_k=sec.top_k, folds=sec.folds, n_cs=sec.n_cs, seed=seed)
        with self.stage(f"{tag}probes fitted, {m2} and {m1} self-trained"):
            rows = self._records(
                f"{pre}probes/{s1}/probes-{slug(m2)}.jsonl", P.ProbeRow,
                lambda: P.probe_table(seed, m1, m2, sources, train, test, self_rows, cross_rows, settings),
                {"stage": "probes", "activations": facts, "train": content_hash(train), "test": content_hash(test),
                 "settings": settings, "self_rows": content_hash(self_rows), "cross_rows": content_hash(cross_rows)},
            )  # fmt: skip
        self.probe_rows += [asdict(r) for r in rows]

    # -- the DAG ----------------------------------------------------------------------------
    def run_all(self) -> StudyResult:
        c = self.config
        out = _Tables(example_seed=c.seeds[0])
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
            out.add_results(untrained, "untrained", None)
            for seed in c.seeds:
                self.run_seed(m1, seed, obj_train, out)
        other = [{"seed": seed, **row} for (setup, seed), rows in self.other_rows.items()
                 for row in results_table(rows, label=setup.split("-")[0])]  # fmt: skip
        self.run.write_csv(f"results_{self.other_scoring}.csv", other, SEEDED_RESULT_COLUMNS)
        self.write_outputs(out, other)
        return StudyResult(self.run.path, out.results, out.comparisons, out.by_task, self.stage_seconds,
                           self.training, self.calibration_table, self.behaviour_rows,
                           self.scaling_rows, out.seed_summary, out.gaps, out.verdicts)  # fmt: skip

    def run_seed(self, m1: str, seed: int, obj_train: list[ObjectRecord], out: _Tables) -> None:
        """Every finetuned model of M1's pairs, trained with one training seed, and its scores."""
        c, s1, pre, tag = self.config, slug(m1), _prefix(seed), f"seed {seed}: "
        with self.stage(f"{tag}self-prediction finetune, {m1}"):
            self_data = self.prediction_examples(obj_train, m1, seed)
            m1ft = self.train(m1, self_data, f"{pre}models/{s1}/self_ft", c.finetune, m1, seed=seed)
            self.self_examples[(m1, seed)] = self.training[-1]["n_examples"]
        with self.stage(f"{tag}object-level train, {m1} self-trained"):
            ft_train = self.objects(m1ft, self.train_tasks, "train", c.n_train_strings,
                                    f"{pre}models/{s1}/self_ft/objects_train.jsonl")  # fmt: skip
        with self.stage(f"{tag}self evaluation, {m1} self-trained"):
            ft_objects, self_rows = self.evaluate(f"self-{s1}", m1ft, m1ft, seed=seed)
        self.release(m1ft)
        out.add_results(self_rows, "self", seed)
        if c.probes is not None:
            from inward.experiments.probes import self_simulation

            self.simulation_rows += [asdict(r) for r in self_simulation(seed, m1, self_rows, self.untrained_rows[m1])]
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
            out.add_results(cross_rows, "cross", seed)
            out.comparisons += [{"seed": seed, **row} for row in compare_self_cross(self_rows, cross_rows)]
            self.paired.setdefault((m1, m1, m2), {})[seed] = paired_groups(self_rows, cross_rows)
            cross_models[m2] = m2ft
            if c.probes is not None:
                self.probes_stage(m1, m1ft, m2, m2ft, cross_data, ft_train, self_rows, cross_rows, seed)
            if c.scaling is not None:
                self.scaling_stage(m1, m1ft, m2, cross_data, ft_objects, self_rows, cross_rows, seed)
        first = seed == c.seeds[0]
        if c.calibration is not None and (c.calibration.every_seed or first):
            self.calibration_stage(m1, m1ft, cross_models, seed)
        if c.behaviour_change is not None and (c.behaviour_change.every_seed or first):
            self.behaviour_change_stage(m1, m1ft, ft_objects, next(iter(cross_models)), seed)

    def write_outputs(self, out: _Tables, other: list[dict]) -> None:
        from inward.report.figures import compliance_bars, seed_bars
        from inward.report.html import render_report

        run, results, first = self.run, out.results, self.config.seeds[0]
        run.write_csv("results.csv", results, SEEDED_RESULT_COLUMNS)
        run.write_csv("results_by_task.csv", out.by_task, SEEDED_BY_TASK_COLUMNS)
        run.write_csv("comparisons.csv", out.comparisons, SEEDED_COMPARISON_COLUMNS)
        run.write_csv("evidence.csv", self.evidence, EVIDENCE_COLUMNS)
        out.seed_summary = seed_summary(results)
        out.gaps = gap_summary(self.paired)
        out.verdicts = self.verdicts(out)
        run.write_csv("seed_summary.csv", out.seed_summary, SEED_SUMMARY_COLUMNS)
        run.write_csv("seed_comparisons.csv", out.gaps, GAP_COLUMNS)
        matrix = matrix_table(out.seed_summary)
        run.write_csv("matrix.csv", matrix, MATRIX_COLUMNS)
        figures: dict[str, bytes] = {}
        for m1 in dict.fromkeys(r["object_model"] for r in results if r["label"] == "untrained"):
            mine = [r for r in out.seed_summary if r["target"] == base_model(m1)]
            figures[f"accuracy_{slug(m1)}"] = seed_bars(
                mine, title=f"Predicting held-out behaviour of {m1} (and its self-trained versions): "
                            f"mean over {len(self.config.seeds)} training seed(s)")  # fmt: skip
        figures["compliance"] = compliance_bars([r for r in results if r["seed"] in (None, first)])
        figures.update(self.experiment_outputs())
        for name, png in figures.items():
            run.file("figures").mkdir(exist_ok=True)
            (run.file("figures") / f"{name}.png").write_bytes(png)
        models = self._fingerprints()
        if self.chat_formats:
            run.write_csv("chat_formats.csv", self.chat_formats, CHAT_FORMAT_COLUMNS)
        # Seconds per stage summed over every session that worked on this run directory (a resumed
        # run adds its own); stage_seconds_this_run is this session's alone.
        self.manifest.update(stage_seconds=self.total_seconds(), stage_seconds_this_run=self.stage_seconds,
                             training=self.training,
                             chat_formats=self.chat_formats,
                             environment=environment(), status="complete", models=models,
                             peak_rss_mb=_peak_rss_mb(),
                             verdicts=out.verdicts, seeds=self.config.seeds, stages=self.keys.log,
                             notes=out.verdicts + _notes(results, out.comparisons) + self.evidence_notes()
                             + _scoring_notes(other, self.other_scoring)
                             + self.experiment_notes() + _determinism_notes(models)
                             + _stage_notes(self.keys.log))  # fmt: skip
        run.write_json("run.json", self.manifest)
        html = render_report(
            title=f"inward study: {self.config.name}", results=results, comparisons=out.comparisons,
            by_task=out.by_task, examples=out.examples, config=self.config.model_dump(mode="json", by_alias=True),
            verdicts=out.verdicts, seed_summary=out.seed_summary, gaps=out.gaps, matrix=matrix,
            manifest={**self.manifest, "versions": self.manifest["environment"]["versions"]},
            figures=figures,
            calibration=self.calibration_table if self.config.calibration is not None else None,
            agreement=self.agreement,
            behaviour_change=self.behaviour_rows if self.config.behaviour_change is not None else None,
            scaling=self.scaling_rows if self.config.scaling is not None else None,
            probes=(self.probe_summary, self.probe_contrast, self.simulation_rows)
            if self.config.probes is not None else None,
        )  # fmt: skip
        run.write_text("report.html", html)

    def verdicts(self, out: _Tables) -> list[str]:
        """The headline: one sentence per pair over the training seeds (inward.analysis.seeds)."""
        sentences = []
        for target, _, cross in self.paired:
            rows = {g["response_property"]: g for g in out.gaps
                    if g["target"] == target and g["cross_predictor"] == cross}  # fmt: skip
            beats = [r.get("beats_mode_p", 1.0) < 0.05 for r in out.results
                     if r["label"] == "cross" and r["response_property"] == MICRO
                     and base_model(r["meta_model"]) == cross and base_model(r["object_model"]) == target]  # fmt: skip
            text = f"{target} self-trained vs {cross} cross-trained, micro average: " + verdict(rows.get(MICRO), beats)
            nd = rows.get(NON_DEGENERATE)
            if nd is not None and nd["seeds"] > 1:
                text += (f" Without degenerate groups: {100 * nd['gap_mean']:+.1f} ± {100 * (nd['gap_sd'] or 0):.1f} "
                         f"points (p = {nd['p_value']:.3g}).")  # fmt: skip
            sentences.append(text)
        if len(self.config.pairs) > 1:  # a matrix: one sentence per target over all its predictors
            sentences += target_verdicts(out.gaps)
        return sentences

    def evidence_notes(self) -> list[str]:
        """How far the cross-predictor's data differs from the self-predictor's (equal evidence)."""
        if not self.evidence:
            return []
        notes = []
        for seed in dict.fromkeys(e["seed"] for e in self.evidence):
            rows = [e for e in self.evidence if e["seed"] == seed]
            total, dropped = sum(e["self_examples"] for e in rows), sum(e["dropped"] for e in rows)
            if not dropped:
                notes.append(f"Equal evidence, seed {seed}: the cross-predictor trained on exactly the "
                             f"self-predictor's {total} items.")  # fmt: skip
                continue
            parts = ", ".join(f"{e['task']}/{e['property']} {e['dropped']} of {e['self_examples']}"
                              for e in rows if e["dropped"])  # fmt: skip
            notes.append(f"Equal evidence, seed {seed}: the cross-predictor trained on the self-predictor's "
                         f"items except {dropped} of {total} ({100 * dropped / total:.0f}%) where the "
                         f"self-trained model's own answer was not compliant ({parts}; evidence.csv, and "
                         "dropped_items.jsonl under seed*/models/*/cross_ft/).")  # fmt: skip
        return notes

    def experiment_outputs(self) -> dict[str, bytes]:
        """calibration.csv, behaviour_change.csv, scaling.csv and their figures (enabled sections)."""
        from inward.analysis.behaviour_change import BEHAVIOUR_CHANGE_COLUMNS
        from inward.analysis.calibration import AGREEMENT_COLUMNS, CALIBRATION_COLUMNS, agreement_table
        from inward.analysis.calibration import calibration_curves as curves
        from inward.report import figures as fig

        c, figures, first = self.config, {}, self.config.seeds[0]
        if c.calibration is not None:
            cal = c.calibration
            self.run.write_csv("calibration.csv", self.calibration_table, ("seed", *CALIBRATION_COLUMNS))
            self.agreement = [{"seed": seed, **row} for seed, records in self.calibration_records
                              for row in agreement_table(records, samples=cal.samples, top=cal.top_behaviours,
                                                         bins=cal.bins)]  # fmt: skip
            self.run.write_csv("calibration_agreement.csv", self.agreement, ("seed", *AGREEMENT_COLUMNS))
            drawn = [r for seed, records in self.calibration_records if seed in (None, first) for r in records]
            all_curves = curves(drawn, top=cal.top_behaviours, bins=cal.bins)
            for m1 in dict.fromkeys(p.self_model for p in c.pairs):
                for prop in cal.properties:
                    mine = [x for x in all_curves if x["response_property"] == prop
                            and _pair_of({"object_model": x["object_model"]}, m1)]  # fmt: skip
                    figures[f"calibration_{slug(m1)}_{prop}"] = fig.calibration_curves(
                        mine, title=f"Calibration, {cal.task}/{prop}, {m1} (top {cal.top_behaviours}, "
                                    f"{cal.bins} bins; training seed {first})")  # fmt: skip
        if c.behaviour_change is not None:
            self.run.write_csv("behaviour_change.csv", self.behaviour_rows,
                               ("seed", *BEHAVIOUR_CHANGE_COLUMNS, "shift_model"))  # fmt: skip
            for m1 in dict.fromkeys(p.self_model for p in c.pairs):
                mine = [r for r in self.behaviour_rows if _pair_of({"object_model": r["old_model"]}, m1)
                        and r["seed"] == first]  # fmt: skip
                shift = mine[0]["shift_model"] if mine else "?"
                figures[f"behaviour_change_{slug(m1)}"] = fig.behaviour_change_bars(
                    mine, title=f"Behaviour change: {m1} self-trained (seed {first}), then finetuned on "
                                f"{shift}'s answers; its hypotheticals on held-out items whose behaviour shifted")  # fmt: skip
        if c.scaling is not None:
            self.run.write_csv("scaling.csv", self.scaling_rows,
                               ("seed", "n_train", "accuracy", "error", "predictor", "target", "label",
                                "mode_baseline", "count"))  # fmt: skip
            for pair in c.pairs:
                mine = [r for r in self.scaling_rows if _pair_of({"object_model": r["target"]}, pair.self_model)
                        and (r["label"] == "self" or r["predictor"].startswith(pair.cross_model))
                        and r["seed"] == first]  # fmt: skip
                figures[f"scaling_{slug(pair.self_model)}_{slug(pair.cross_model)}"] = fig.scaling_curve(
                    mine, title=f"Cross-prediction data scaling: {pair.cross_model} predicting "
                                f"{pair.self_model} self-trained (seed {first})")  # fmt: skip
        if c.probes is not None:
            from inward.analysis.probes import CONTRAST_COLUMNS, SUMMARY_COLUMNS, probe_contrast, probe_summary
            from inward.experiments.probes import PROBE_COLUMNS, SIMULATION_COLUMNS

            self.probe_summary = probe_summary(self.probe_rows, MICRO)
            self.probe_contrast = probe_contrast(self.probe_rows, MICRO)
            self.run.write_csv("probes.csv", self.probe_rows, PROBE_COLUMNS)
            self.run.write_csv("probe_summary.csv", self.probe_summary, SUMMARY_COLUMNS)
            self.run.write_csv("probe_contrast.csv", self.probe_contrast, CONTRAST_COLUMNS)
            self.run.write_csv("self_simulation.csv", self.simulation_rows, SIMULATION_COLUMNS)
            for pair in c.pairs:
                mine = [r for r in self.probe_summary
                        if r["target"] == pair.self_model and r["cross_model"] == pair.cross_model]  # fmt: skip
                figures[f"probes_{slug(pair.self_model)}_{slug(pair.cross_model)}"] = fig.probe_layers(
                    mine, title=f"Linear probes for {pair.self_model} self-trained's behaviour, by depth: its own "
                                f"states vs {pair.cross_model} cross-trained ({len(c.seeds)} training seed(s))")  # fmt: skip
        return figures

    def _first_seed_only_notes(self) -> list[str]:
        c = self.config
        if len(c.seeds) < 2:
            return []
        only = [name for name, section in (("calibration", c.calibration), ("behaviour change", c.behaviour_change))
                if section is not None and not section.every_seed]  # fmt: skip
        if not only:
            return []
        names = " and ".join(only)
        return [f"{names[0].upper()}{names[1:]} ran on training seed {c.seeds[0]} only (every_seed: false), so "
                f"{'their results are' if len(only) > 1 else 'its result is'} one trained model's, with no "
                "spread over seeds; set every_seed: true to replicate over all seeds."]

    def experiment_notes(self) -> list[str]:
        notes = []
        for a in self.agreement:
            notes.append(
                f"Calibration, {a['setup']}{'' if a['seed'] is None else ' seed ' + str(a['seed'])} "
                f"({a['response_property']}): on {a['prompts']} prompts with "
                f"both methods, sampled and exact object distributions differ by a mean total-variation "
                f"distance of {a['object_tv']:.3f} (a perfect {self.config.calibration.samples}-sample "
                f"estimate would differ by {a['object_tv_noise_floor']:.3f} by chance), hypothetical "
                f"distributions by {a['hypothetical_tv']:.3f}; MAD sampled {a['mad_sampled']:.1f} vs "
                f"exact {a['mad_exact']:.1f} pp (difference {a['mad_difference']:+.1f} pp).")  # fmt: skip
        if self.config.calibration is not None:
            notes.append("Calibration, exact method: the object-level distribution is read off the "
                         "first answer token (its text stands for the whole response; tokens that "
                         "fix no property value are dropped and the rest renormalised; "
                         "mean_object_mass in calibration.csv is the share that fixed a value).")  # fmt: skip
        for r in self.behaviour_rows:
            if r["response_property"] == "micro_average" and r["adjustment"] == "none":
                verdict = ("predicts its new behaviour better than its old"
                           if r["difference"] > 0 and r["p_value"] < 0.05 else
                           "does not predict its new behaviour significantly better than its old")
                degenerate = [x["response_property"] for x in self.behaviour_rows
                              if x["adjustment"] == "none" and x["degenerate"] is True
                              and x["seed"] == r["seed"] and x["meta_model"] == r["meta_model"]]  # fmt: skip
                beats = r["new_beats_mode_p"] < 0.05
                notes.append(
                    f"Behaviour change, seed {r['seed']}: {r['meta_model']} {verdict} on {r['count']} shifted items "
                    f"({100 * r['shifted_fraction']:.1f}% of compared items shifted): new "
                    f"{100 * r['predicts_new_accuracy']:.1f}% vs old {100 * r['predicts_old_accuracy']:.1f}%, "
                    f"McNemar p={r['p_value']:.3g}; against its own mode baseline "
                    f"({100 * r['mode_baseline']:.1f}%) the new side {'beats' if beats else 'does not beat'} it "
                    f"(one-sided p={r['new_beats_mode_p']:.3g}), the old side's mode is "
                    f"{100 * r['mode_baseline_old']:.1f}% (p={r['old_beats_mode_p']:.3g})"
                    + (f"; one answer in over 80% of rows for {', '.join(degenerate)}" if degenerate else "")
                    + ".")  # fmt: skip
        notes += _over_seeds_notes(self.behaviour_rows, self.calibration_table)
        notes += self._first_seed_only_notes()
        notes += self.shift_warnings
        notes += _probe_notes(self.probe_summary, self.probe_contrast)
        for model in dict.fromkeys(r["model"] for r in self.chat_formats):
            rows = [r for r in self.chat_formats if r["model"] == model]
            parts = ", ".join(f"{r['chat_format']} {r['label_loss']:.2f}" for r in rows)
            notes.append(f"Chat format of {model} (no template of its own): {rows[0]['chat_format']}, the lowest "
                         f"untrained loss on the answer and end tokens of {rows[0]['n_examples']} held-out "
                         f"train-task examples (nats/token: {parts}); see chat_formats.csv.")  # fmt: skip
        for seed in dict.fromkeys(r["seed"] for r in self.scaling_rows):
            cross = [r for r in self.scaling_rows if r["label"] == "cross" and r["seed"] == seed]
            parts = ", ".join(f"{r['n_train']}: {100 * r['accuracy']:.1f}%" for r in cross)
            selfs = [r for r in self.scaling_rows if r["label"] == "self" and r["seed"] == seed]
            tail = f"; self-prediction {100 * selfs[0]['accuracy']:.1f}%" if selfs else ""
            notes.append(f"Data scaling, seed {seed}, cross-prediction accuracy by training examples: {parts}{tail}.")
        return notes

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


CHAT_FORMAT_COLUMNS = ("model", "about", "chat_format", "label_loss", "answer_loss", "end_loss",
                       "n_examples", "chosen")  # fmt: skip


def _is_local(model: str) -> bool:
    return model.split("/", 1)[0] in ("bundled", "hf", "gguf")


def _previous_stage_seconds(run: RunDir) -> dict[str, float]:
    """Stage seconds a finished earlier session wrote to run.json (none for a new directory)."""
    try:
        old = run.read_json("run.json")
    except (OSError, ValueError):
        return {}
    seconds = old.get("stage_seconds") if isinstance(old, dict) else None
    return {k: float(v) for k, v in seconds.items()} if isinstance(seconds, dict) else {}


def _over_seeds_notes(behaviour: list[dict], calibration: list[dict]) -> list[str]:
    """Behaviour change and calibration pooled over training seeds (mean ± sd, seeds as the unit)."""
    import numpy as np

    from inward.analysis.seeds import t_test

    notes = []
    micro = [r for r in behaviour if r["response_property"] == "micro_average" and r["adjustment"] == "none"]
    for meta_base in dict.fromkeys(base_model(r["old_model"]) for r in micro):
        rows = [r for r in micro if base_model(r["old_model"]) == meta_base]
        if len(rows) < 2:
            continue
        diffs = [r["difference"] for r in rows if r["difference"] == r["difference"]]
        if len(diffs) < 2:
            continue
        _, p, lo, hi = t_test(diffs)
        new = sum(r["predicts_new_accuracy"] for r in rows) / len(rows)
        old = sum(r["predicts_old_accuracy"] for r in rows) / len(rows)
        mode = sum(r["mode_baseline"] for r in rows) / len(rows)
        sd = float(np.std(diffs, ddof=1))
        notes.append(f"Behaviour change over {len(diffs)} seeds ({meta_base} self-trained, then shifted): predicts "
                     f"new {100 * new:.1f}% vs old {100 * old:.1f}% on average (new-behaviour mode baseline "
                     f"{100 * mode:.1f}%); new − old = {100 * sum(diffs) / len(diffs):+.1f} ± {100 * sd:.1f} "
                     f"points (mean ± sd; t-test over seeds p = {p:.3g}, 95% interval "
                     f"[{100 * lo:+.1f}, {100 * hi:+.1f}]).")  # fmt: skip
    by_setup: dict[tuple, list[float]] = {}
    for r in calibration:
        if r["seed"] is not None and r["mad"] == r["mad"] and r["mad"] is not None:
            by_setup.setdefault((r["setup"], r["method"], r["response_property"]), []).append(float(r["mad"]))
    parts = [f"{setup} {method} {sum(v) / len(v):.1f} ± {float(np.std(v, ddof=1)):.1f}"
             for (setup, method, _), v in by_setup.items() if len(v) > 1]  # fmt: skip
    if parts:
        notes.append("Calibration MAD over training seeds (pp, mean ± sd): " + "; ".join(parts) + ".")
    return notes


def _probe_notes(summary: list[dict], contrast: list[dict]) -> list[str]:
    """Per pair: the best layer of each probe source against the finetuned predictors, and the
    own-vs-cross hypothetical-state contrast at that depth."""
    notes = []
    for target, cross in dict.fromkeys((r["target"], r["cross_model"]) for r in summary):
        rows = [r for r in summary if r["target"] == target and r["cross_model"] == cross]
        best = {}
        for r in rows:
            if r["source"] not in best or r["accuracy_mean"] > best[r["source"]]["accuracy_mean"]:
                best[r["source"]] = r
        parts = "; ".join(f"{src} {100 * b['accuracy_mean']:.1f}% (layer {b['layer']}, depth {b['depth']})"
                          for src, b in best.items())  # fmt: skip
        first = rows[0]
        text = (f"Probes for {target} self-trained (vs {cross}), best layer per source, mean over "
                f"{first['seeds']} seed(s): {parts}; on the same rows the finetuned self-predictor scores "
                f"{100 * first['self_ft_accuracy_mean']:.1f}%, the cross-predictor "
                f"{100 * first['cross_ft_accuracy_mean']:.1f}%, the mode baseline {100 * first['mode_baseline_mean']:.1f}%. "
                "A best layer is chosen on the held-out rows, so it is optimistic.")  # fmt: skip
        own = best.get("self/hypothetical")
        match = [c for c in contrast if c["target"] == target and c["cross_model"] == cross
                 and own is not None and c["depth"] == own["depth"]]  # fmt: skip
        if match:
            m = match[0]
            sd = "" if m["self_minus_cross_sd"] is None else f" ± {100 * m['self_minus_cross_sd']:.1f}"
            text += (f" At depth {m['depth']}, its own hypothetical-prompt state minus the cross model's: "
                     f"{100 * m['self_minus_cross_mean']:+.1f}{sd} points over {m['seeds']} seed(s) (t-test p = "
                     f"{m['p_value']:.3g}).")  # fmt: skip
        notes.append(text)
    return notes


def _release_memory() -> None:
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


def _determinism_notes(models: dict[str, Any]) -> list[str]:
    """Say where a rerun in a fresh directory would not reproduce the tables (issue: determinism)."""
    loose = sorted(name for name, fp in models.items()
                   if isinstance(fp, dict) and fp.get("deterministic") is False)  # fmt: skip
    if not loose:
        return ["Determinism: every model ran on a local backend with fixed seeds; rerunning this "
                "config in a fresh run directory (and fresh cache) gives byte-identical results.csv."]
    return [f"Determinism: {', '.join(loose)} cannot promise repeatable outputs (hosted or served "
            "models batch requests and change); a fresh run may differ. Rerunning this run "
            "directory reuses the cached responses and gives the same tables."]


def _stage_notes(log: dict[str, dict]) -> list[str]:
    """How many stage outputs this run reused, and why the others were computed."""
    if not log:
        return []
    reasons: dict[str, int] = {}
    for entry in log.values():
        if not entry["reused"]:
            reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    reused = sum(1 for e in log.values() if e["reused"])
    parts = "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return [f"Stages: {reused} of {len(log)} outputs reused from this run directory"
            + (f", the others computed ({parts})" if parts else "") + "; run.json → stages has each."]


def _pair_of(row: dict, m1: str) -> bool:
    return row["object_model"] == m1 or row["object_model"].startswith(m1 + "+lora:")


def _examples(rows: Sequence[ScoredRecord], label: str, k: int = 8) -> list[dict]:
    chosen = [r for r in rows if r.evaluable][:k]
    return [{"task": r.task, "property": r.property, "string": r.string,
             "object_response": r.object_response, "object_value": r.object_value,
             "answer": r.answer, "correct": r.correct, "label": label} for r in chosen]  # fmt: skip


def _seeds_text(rows: list[dict]) -> str:
    return ", ".join("untrained" if r["seed"] is None else f"seed {r['seed']}" for r in rows)


def _notes(results: list[dict], comparisons: list[dict]) -> list[str]:
    """Per-seed facts that qualify the verdict: predictors at or below their mode baseline, low
    compliance, degenerate (constant) predictors, and the item-level tests of each trained pair."""
    notes = []
    micro: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if r["response_property"] == MICRO:
            micro.setdefault((r["label"], base_model(r["meta_model"])), []).append(r)
    for (label, meta), rows in micro.items():
        below = [r for r in rows if r["accuracy"] == r["accuracy"]
                 and (r["accuracy"] <= r["mode_baseline"] or not r.get("beats_mode_p", float("nan")) < 0.05)]  # fmt: skip
        if below:
            parts = "; ".join(f"{_seeds_text([r])}: {100 * r['accuracy']:.1f}% vs {100 * r['mode_baseline']:.1f}% "
                              f"(one-sided McNemar p={r.get('beats_mode_p', float('nan')):.3g})" for r in below)  # fmt: skip
            notes.append(f"{label} ({meta}): the micro-average accuracy does not beat the mode baseline in "
                         f"{len(below)} of {len(rows)} run(s): {parts}.")  # fmt: skip
        low = [r for r in rows if r["compliance_rate"] == r["compliance_rate"] and r["compliance_rate"] < 0.5]
        if low:
            notes.append(f"{label} ({meta}) gave a compliant answer to under half of the hypotheticals in "
                         f"{_seeds_text(low)}; non-compliant answers count as wrong, so its accuracy mostly "
                         "measures the answer format.")  # fmt: skip
    degenerate = [f"{r['label']} {r['response_property']} ({_seeds_text([r])}: {r['top_answer']!s} in "
                  f"{100 * r['top_answer_share']:.0f}% of rows)" for r in results
                  if r["response_property"] != MICRO and r.get("degenerate") is True]  # fmt: skip
    if degenerate:
        notes.append("Degenerate predictors (one answer in more than 80% of rows; a constant answer is "
                     "not evidence of knowing anything): " + "; ".join(degenerate) + ".")  # fmt: skip
    item = [c for c in comparisons if c["response_property"] == MICRO]
    if item:
        parts = "; ".join(f"seed {c['seed']}: {100 * c['self_accuracy']:.1f}% vs {100 * c['cross_accuracy']:.1f}% "
                          f"(McNemar p={c['mcnemar_p']:.3g}, n={c['paired_count']})" for c in item)  # fmt: skip
        notes.append("Item-level self vs cross tests, one per trained pair (comparisons.csv): " + parts + ". Each "
                     "takes its trained models as fixed and counts item sampling only; the verdict above "
                     "treats the training seed as the unit.")  # fmt: skip
    return notes


def _scoring_notes(other: list[dict], scoring: str) -> list[str]:
    micro = [r for r in other if r["response_property"] == "micro_average"]
    if not micro:
        return []
    parts = ", ".join(f"{r['label']}{'' if r['seed'] is None else ' seed ' + str(r['seed'])} "
                      f"{100 * r['accuracy']:.1f}% (mode {100 * r['mode_baseline']:.1f}%)" for r in micro)  # fmt: skip
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
        run.write_text("config.yaml", yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False))
        study = Study(config, run, cache, backends)
        study.manifest = {"version": 1, "command": "study", "status": "running",
                          "config": config.model_dump(mode="json", by_alias=True), "environment": environment(),
                          "stage_seconds": study.total_seconds()}  # fmt: skip
        run.write_json("run.json", study.manifest)
        return study.run_all()
