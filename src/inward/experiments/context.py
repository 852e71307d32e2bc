"""The study context: what every experiment of a study runs on.

:class:`Study` holds one run of a study config in a run directory and offers the experiments its
services: stages (timed, keyed by their inputs, reused when the key matches), models (loaded
lazily, released after use), finetuning, evaluation with the shared evaluation
(:func:`inward.experiments.evaluate.evaluate`), and the rows the report is built from
(:class:`inward.experiments.outputs.StudyRows`). It runs nothing by itself: the loop over the
pairs, seeds and experiments is :mod:`inward.experiments.study`.

Every stage writes its output atomically, every model call is cached, and finetuning resumes from
checkpoints, so an interrupted study resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from inward.analysis.seeds import base_model
from inward.errors import InwardError
from inward.experiments.evaluate import (
    EvalPlan,
    ModelHandle,
    _prop_names,
    _tuples,
    collect_objects,
    evaluate,
)
from inward.experiments.extraction import llm_properties
from inward.experiments.rows import CHAT_FORMAT_COLUMNS, StudyRows
from inward.experiments.study_config import StudyConfig
from inward.memory import rss_gib
from inward.memory import window as memory_window
from inward.properties import SCORINGS
from inward.properties.registry import Property, resolve_property
from inward.records import (
    ObjectRecord,
    ScoredRecord,
    object_record_from_dict,
)
from inward.store.cache import CachedModel, ResponseCache
from inward.store.manifest import RunManifest
from inward.store.rundir import RunDir, read_jsonl
from inward.store.stages import StageKeys, content_hash, model_identity, short_fingerprint
from inward.tasks import Task, get_task
from inward.train.datasets import same_item_examples, self_prediction_examples
from inward.train.examples import TrainExample, to_openai_jsonl
from inward.train.lora import RunMismatch, TrainResult, train_lora


def slug(model: str) -> str:
    """A short, filesystem-safe folder name for a model string (never the raw string)."""
    base = re.sub(r"[^A-Za-z0-9.]+", "-", base_model(model).split("/")[-1])[:40].strip("-")
    return f"{base}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def task_properties(
    config: StudyConfig, tasks: Sequence[str], names: Sequence[str] | None = None
) -> dict[str, list[Property]]:
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
        old = RunManifest.read(run)  # an earlier session's run.json: its stage seconds and peaks carry on
        self.previous_seconds: dict[str, float] = dict(old.stage_seconds or {}) if old else {}
        self.stage_peaks: dict[str, float] = {}  # this session's peak resident memory per stage (MiB)
        self.previous_peaks: dict[str, float] = dict(old.stage_peak_rss_mb or {}) if old else {}
        self.manifest: RunManifest | None = None  # run.json, set by run_study
        self.used_models: list[str] = []  # every model string of the study, for fingerprints
        # Finetuned models appear in tables as "<base>+lora:<path inside the run directory>", so
        # the tables do not depend on where the run directory lives.
        self.display: dict[str, str] = {}
        # The other answer normalisation, reported beside the configured one (like lm-eval's
        # strict/flexible pairs): "paper" cleans only the hypothetical answer, "symmetric" both.
        self.other_scoring = next(x for x in SCORINGS if x != config.scoring)
        self.rows = StudyRows(example_seed=config.first_seed)  # what the stages produce, for the outputs
        self.self_examples: dict[tuple[str, int], int] = {}  # (M1, seed) -> self-prediction examples
        # Model args per base model on top of config.model_args: the measured chat format of a
        # model without a template (inward.train.chat_select), for every use of it and its adapters.
        self.format_args: dict[str, dict[str, str]] = {}
        self.keys = StageKeys(run.path)  # reuse or recompute each stage output (inward.store.stages)
        self._identities: dict[tuple[str, str], dict[str, Any]] = {}
        self.untrained_rows: dict[str, list[ScoredRecord]] = {}  # M1 -> its untrained evaluation
        self.child_peak_rss_mb = 0.0  # the largest peak of the seeds' child processes (study.run_in_child)

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and measure its peak resident memory (:func:`inward.memory.window`: a
        stage inside another one counts towards both)."""
        print(f"[inward study] {name} ...", file=sys.stderr, flush=True)
        with memory_window() as window:
            t0 = time.perf_counter()
            yield
        peak = window.peak_mb or 0.0
        dt = time.perf_counter() - t0
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + dt
        if peak:
            self.stage_peaks[name] = max(self.stage_peaks.get(name, 0.0), peak)
        if self.manifest is not None:  # keep the running totals on disk, so a crash loses no stage's time
            self.manifest.stage_seconds = self.total_seconds()
            self.manifest.stage_peak_rss_mb = self.all_stage_peaks()
            self.manifest.write(self.run)
        print(
            f"[inward study] {name}: done in {dt:.1f}s (resident memory {rss_gib():.2f} GiB"
            + (f", peak {peak / 1024:.2f} GiB)" if peak else ")"),
            file=sys.stderr,
            flush=True,
        )

    def total_seconds(self) -> dict[str, float]:
        total = dict(self.previous_seconds)
        for name, dt in self.stage_seconds.items():
            total[name] = total.get(name, 0.0) + dt
        return total

    def all_stage_peaks(self) -> dict[str, float] | None:
        """Each stage's largest peak resident memory (MiB) over every session of the run: a session
        that reads a stage back measures only the read, so the earlier peak stands."""
        total = dict(self.previous_peaks)
        for name, peak in self.stage_peaks.items():
            total[name] = max(total.get(name, 0.0), peak)
        return total or None

    def backend(self, name: str):
        from inward.models import resolve

        if name not in self.backends:
            self.backends[name] = resolve(name, **self.model_args(name))
        return self.backends[name]

    def model_args(self, name: str) -> dict[str, Any]:
        return {**self.config.model_args, **self.format_args.get(base_model(name), {})}

    def model(self, name: str) -> CachedModel:
        return CachedModel(self.backend(name), self.cache)

    def release(self, name: str) -> None:
        """Free a local model's weights (a study holds several 0.5B-parameter copies otherwise)
        and forget the backend: every training seed makes new adapter models. Their tokenizers
        stay in :func:`inward.models.chat.load_tokenizer`'s cache (one per base checkpoint and chat
        choice, at most 4). Backends the caller passed in are kept."""
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
    def objects(
        self, model: str, tasks: dict[str, Task], split: str, n: int, rel: str, temperature: float = 0.0
    ) -> list[ObjectRecord]:
        def compute() -> list[ObjectRecord]:
            return collect_objects(
                self.model(model),
                list(tasks.values()),
                split,
                n,
                seed=self.config.seed,
                data_dir=self.config.data_dir,
                source=self.config.source,
                temperature=temperature,
            )

        c = self.config
        facts = EvalPlan(tasks, {}, split, n, c.seed, c.data_dir, c.source).objects_facts(
            self.model_id(model), temperature
        )
        # two-turn tasks (are_you_sure) write FollowupObjectRecord rows
        return self.records(rel, ObjectRecord, compute, facts, load=object_record_from_dict)

    def prediction_examples(self, objects: list[ObjectRecord], about: str, seed: int) -> list[TrainExample]:
        """The self-prediction data about ``objects``' model, drawn with training seed ``seed``."""
        forbidden = self.eval_strings()
        examples = self_prediction_examples(
            objects,
            self.train_tasks,
            self.train_props,
            n_per_pair=self.config.n_train_per_pair,
            seed=seed,
            forbidden_strings=forbidden,
            scoring=self.config.scoring,
        )
        if not examples:
            raise InwardError(
                f"No finetuning examples could be built from {about}'s object-level responses: "
                "none was compliant with a property value. Check objects_train.jsonl."
            )
        return examples

    def eval_strings(self) -> set[str]:
        forbidden: set[str] = set()
        for task in self.held_out.values():
            forbidden.update(
                s.string
                for s in task.load(
                    "val", self.config.n_eval, self.config.seed, self.config.data_dir, self.config.source
                )
            )
        return forbidden

    def cross_examples(
        self, ft_train: list[ObjectRecord], self_data: list[TrainExample], m1ft: str, m2: str, seed: int, folder: str
    ) -> list[TrainExample]:
        """Equal evidence: the cross-predictor's data is about the self-trained model, on exactly
        the items (task, property, string) the self-predictor trained on, in the same order. Items
        where the self-trained model's answer is not compliant cannot be built; they are listed
        in ``dropped_items.jsonl`` and counted per property in evidence.csv."""
        examples, dropped = same_item_examples(
            ft_train,
            self.train_tasks,
            self.train_props,
            self_data,
            forbidden_strings=self.eval_strings(),
            scoring=self.config.scoring,
        )
        self.run.write_jsonl(f"{folder}/dropped_items.jsonl", dropped)
        count = Counter((e.meta["task"], e.meta["property"]) for e in self_data)
        kept = Counter((e.meta["task"], e.meta["property"]) for e in examples)
        for task, prop in count:
            self.rows.evidence.append(
                {
                    "seed": seed,
                    "target": self.shown(m1ft),
                    "cross_model": m2,
                    "task": task,
                    "property": prop,
                    "self_examples": count[(task, prop)],
                    "cross_examples": kept[(task, prop)],
                    "dropped": count[(task, prop)] - kept[(task, prop)],
                }
            )
        if not examples:
            raise InwardError(
                f"No cross-prediction examples: none of {self.shown(m1ft)}'s answers on the self-predictor's "
                f"training items was compliant (see {folder}/dropped_items.jsonl)."
            )
        return examples

    def train(
        self,
        base: str,
        examples: list[TrainExample],
        folder: str,
        settings,
        about: str,
        purpose: str | None = None,
        display_base: str | None = None,
        seed: int | None = None,
    ) -> str:
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
            result: TrainResult = train_lora(
                base, examples, settings, out_dir, progress=bar, model_args=self.model_args(base)
            )
            self.keys.log[marker] = {"reused": existed, "reason": "same inputs" if existed else "not computed yet"}
        except RunMismatch:  # the model, settings or examples changed since this folder was trained
            self.keys.log[marker] = {"reused": False, "reason": "changed: training inputs (run key)"}
            print(
                f"[inward study] {folder}: retraining, the base model, settings or examples changed",
                file=sys.stderr,
                flush=True,
            )
            for name in ("train_result.json", "adapter", "checkpoint", "checkpoint.old"):
                path = out_dir / name
                path.unlink() if path.is_file() else shutil.rmtree(path, ignore_errors=True)
            result = train_lora(base, examples, settings, out_dir, progress=bar, model_args=self.model_args(base))
        bar(None, None, None)
        release_memory()  # the trainer's model copy is garbage now; give its pages back
        self.display[result.adapter_model_string] = f"{display_base or base}+lora:{folder}/adapter"
        row = {
            "seed": seed,
            "model": base,
            "about": about,
            "n_examples": result.n_examples,
            "steps": result.steps,
            "final_loss": result.final_loss,
            "first_loss": result.losses[0] if result.losses else None,
            "seconds": result.train_seconds,
            "examples_per_second": result.examples_per_second,
            "dtype": result.dtype,
        }
        if purpose is not None:
            row = {**row, "model": display_base or base, "purpose": purpose}
        self.rows.training.append(row)
        return result.adapter_model_string

    def use(self, *models: str) -> None:
        """Note models the study ran, for run.json's fingerprints."""
        self.used_models += [m for m in dict.fromkeys(models) if m not in self.used_models]

    def shown(self, model: str) -> str:
        return self.display.get(model, model)

    def evaluate(
        self,
        setup: str,
        object_model: str,
        meta_model: str,
        objects: list[ObjectRecord] | None = None,
        other_scoring: bool = True,
        seed: int | None = None,
    ) -> tuple[list[ObjectRecord], list[ScoredRecord]]:
        folder = f"{prefix(seed)}eval/{setup}"
        self.use(object_model, meta_model)
        extractor = None
        if llm_properties(self.eval_props):
            # One extractor for every setup of a pair: the configured one, else untrained M1
            # (the base of M1ft), so untrained, self and cross are judged on the same values.
            name = self.config.extractor_model or base_model(object_model)
            self.use(name)
            extractor = self.handle(name)
        c = self.config
        plan = EvalPlan(
            self.held_out, self.eval_props, split="val", n=c.n_eval, seed=c.seed, data_dir=c.data_dir, source=c.source
        )

        def store(name: str, load_row, compute, facts) -> list:
            return self.records(f"{folder}/{name}", None, compute, facts(), load=load_row)

        ev = evaluate(
            plan, self.handle(object_model), self.handle(meta_model), store=store, objects=objects, extractor=extractor
        )
        objects = ev.objects

        def scored_with(scoring: str) -> list[ScoredRecord]:
            # named by this run's models, not by the strings stored in reused records (which may
            # carry the path of a run directory that has since moved)
            return [
                replace(r, object_model=self.shown(object_model), meta_model=self.shown(meta_model))
                for r in ev.scored(scoring)
            ]

        scored = scored_with(self.config.scoring)
        if other_scoring:  # the main setups only: results_<other>.csv keeps its rows
            self.rows.other[(setup, seed)] = (
                scored_with(self.other_scoring),
                self.fingerprints(object_model, meta_model),
            )
        self.run.write_jsonl(f"{folder}/scored.jsonl", scored)
        return objects, scored

    def choose_chat_format(self, m2: str, m1ft: str, ft_train: list[ObjectRecord], folder: str) -> None:
        """For a cross model without a chat template, measure which fallback format gives the
        lowest untrained answer loss on ``chat_format_examples`` examples about ``m1ft`` from
        train-task strings that no model trains on, and use it for every use of ``m2``."""
        from inward.train.chat_select import FormatLoss, has_own_template, measure_formats

        n = self.config.chat_format_examples
        if (
            n == 0
            or m2 in self.format_args
            or "chat_format" in self.config.model_args
            or not _is_local(m2)
            or has_own_template(m2)
        ):
            return
        per_task = -(-n // len(self.train_tasks))

        def measure() -> list:
            trained_on = {(o.task, o.string) for o in ft_train}
            held = [o for o in more if (o.task, o.string) not in trained_on]
            examples = self_prediction_examples(
                held,
                self.train_tasks,
                self.train_props,
                n_per_pair=per_task,
                seed=self.config.seed,
                forbidden_strings=self.eval_strings() | {s for _, s in trained_on},
                scoring=self.config.scoring,
            )[:n]
            self.release(m1ft)
            if not examples:
                raise InwardError(
                    f"Cannot choose a chat format for {m2}: none of {self.shown(m1ft)}'s answers to the "
                    f"{per_task} held-out strings per train task was compliant. Set chat_format_examples "
                    "higher, or name the format with model_args: {chat_format: plain}."
                )
            rows = measure_formats(m2, examples)
            release_memory()  # its fp32 model is garbage now
            return rows

        with self.stage(f"chat format of {m2}: measured on {n} held-out train-task examples"):
            more = self.objects(  # M1ft's answers to a few more train-task strings than it trained on
                m1ft,
                self.train_tasks,
                "train",
                self.config.n_train_strings + per_task,
                f"{folder}/chat_format_objects.jsonl",
            )
            rows = self.records(
                f"{folder}/chat_formats.jsonl",
                FormatLoss,
                measure,
                {
                    "stage": "chat_formats",
                    "model": self.model_id(m2),
                    "objects": content_hash(more),
                    "trained_on": content_hash(sorted((o.task, o.string) for o in ft_train)),
                    "n": n,
                    "seed": self.config.seed,
                    "properties": _prop_names(self.train_props),
                },
            )
        chosen = next(r.chat_format for r in rows if r.chosen)
        self.format_args[m2] = {"chat_format": chosen}
        table = [{"model": m2, "about": self.shown(m1ft), **r.to_json()} for r in rows]
        self.run.write_csv(f"{folder}/chat_formats.csv", table, CHAT_FORMAT_COLUMNS)
        self.rows.chat_formats += table

    def fingerprints_of_all(self) -> dict[str, Any]:
        """Fingerprints of every model of the study (a tokenizer load each, no weights), with how
        a local model's precision was chosen (``dtype: auto``: the measured speeds)."""
        out: dict[str, Any] = {}
        for name in self.used_models:
            try:
                backend = self.backend(name)
                out[name] = backend.fingerprint()
                resolution = getattr(backend, "precision", None)
                if resolution is not None:
                    out[name]["precision_choice"] = resolution.to_json()
                engine = getattr(backend, "engine_choice", None)
                if engine is not None:
                    out[name]["engine_choice"] = engine.to_json()
            except Exception as e:  # a fingerprint is provenance, never a reason to lose results
                out[name] = {"error": str(e)}
            self.release(name)
        return out


def _is_local(model: str) -> bool:
    return model.split("/", 1)[0] in ("bundled", "hf", "gguf")


def release_memory() -> None:
    try:
        from inward.models.local import release_memory
    except ImportError:  # torch missing: nothing local was loaded
        return
    release_memory()


def _train_progress(desc: str) -> Callable[[int | None, int | None, float | None], None]:
    """``update(step, total, loss)`` for the trainer: a tqdm bar on a terminal, plain lines in a
    log (inward.progress); ``update(None, None, None)`` closes it."""
    from inward.progress import ProgressLines, progress_mode

    mode, bar, lines = progress_mode(), None, None

    def update(step: int | None, total: int | None, loss: float | None) -> None:
        nonlocal bar, lines
        if step is None:
            if bar is not None:
                bar.close()
            if lines is not None:
                lines.close()
            return
        assert total is not None and loss is not None
        if mode == "lines":
            lines = lines or ProgressLines(total, desc, unit="step")
            lines.postfix = f"loss {loss:.3f}"
            lines.update(step - lines.done)
        elif mode == "bar":
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.3f}")

    return update
