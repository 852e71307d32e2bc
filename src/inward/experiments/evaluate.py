"""``inward evaluate``: a model's object-level behaviour, a predictor's hypotheticals, a score.

Stages, each written to the run directory when done (every model call is cached, so a killed
run resumes where the cache left off and a rerun makes no model calls):

1. ``objects.jsonl``: the object model M answers the task prompts (greedy). A two-turn task
   (one with a ``followup``, e.g. ``are_you_sure``) then gets the follow-up user turn after M's
   answer, and M's second answer is recorded as ``followup_response``.
1b. ``extracted.jsonl``, only when an LLM-extracted property (sentiment, a story's main
   character) is asked for: the extractor model (``--extractor-model``, default M) reads each
   compliant response with the paper's extraction prompt (see :mod:`inward.experiments.extraction`).
2. ``hypotheticals.jsonl``: the predictor P (default M) answers "what was property X of your
   response?" for every string whose object response is compliant and has the property.
3. ``scored.jsonl``, ``results.csv`` (the paper's columns: one row per property and a
   micro average), ``results_by_task.csv`` and ``run.json`` (spec, fingerprints, versions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inward.analysis.results import results_by_task, results_table
from inward.analysis.scoring import object_value, score_all
from inward.errors import InwardError
from inward.experiments.extraction import ValueKey, extract_llm_records, llm_properties, values_of
from inward.models.base import GenerationConfig
from inward.progress import progress_bar
from inward.prompts import hypothetical_prompt, object_prompt
from inward.properties import SCORINGS, compliance, failed_checks
from inward.properties.registry import Property, resolve_property
from inward.records import (
    ExtractionRecord,
    FollowupObjectRecord,
    HypotheticalRecord,
    ObjectRecord,
    ScoredRecord,
    object_record_from_dict,
)
from inward.report import columns as C
from inward.store.cache import CachedModel, ResponseCache
from inward.store.manifest import RunManifest
from inward.store.rundir import RunDir, environment
from inward.store.stages import content_hash, short_fingerprint
from inward.tasks import Task, resolve_tasks

MAX_N = 1_000_000


@dataclass
class EvaluateSpec:
    model: str
    tasks: list[str]
    properties: list[str] = field(default_factory=list)
    predictor: str | None = None
    split: str = "val"
    n: int = 100
    seed: int = 0
    data_dir: str | None = None
    source: str | None = None
    scoring: str = "paper"
    model_args: dict[str, Any] = field(default_factory=dict)
    extractor_model: str | None = None
    """Model that extracts LLM properties (default: ``model``); unused without one."""

    def validate(self) -> None:
        if not (1 <= self.n <= MAX_N):
            raise InwardError(f"--n must be between 1 and {MAX_N} strings per task, got {self.n}.")
        if self.scoring not in SCORINGS:
            raise InwardError(f"--scoring must be one of {', '.join(SCORINGS)}, got {self.scoring!r}.")
        if not self.tasks:
            raise InwardError("Name at least one --task (see `inward tasks`).")


@dataclass
class EvaluateResult:
    results: list[dict]
    by_task: list[dict]
    objects: list[ObjectRecord]
    hypotheticals: list[HypotheticalRecord]
    scored: list[ScoredRecord]
    model_calls: dict[str, int]
    seconds: dict[str, float]
    out: Path
    extracted: list[ExtractionRecord] = field(default_factory=list)


def plan(spec: EvaluateSpec) -> list[tuple[Task, list[Property]]]:
    """Resolve task and property names (fails fast, before any model is loaded)."""
    planned = []
    for name in spec.tasks:
        for task in resolve_tasks(name):
            names = spec.properties or list(task.properties)
            props = [resolve_property(p, task.name) for p in names]
            if task.release_prompts is not None:
                missing = [p.name for p in props if p.name not in task.properties]
                if missing:
                    raise InwardError(
                        f"The release data for task {task.name!r} has no hypothetical prompts for "
                        f"{missing}; it holds {list(task.properties)}."
                    )
            for p in props:
                if p.needs_target and not task.has_target:
                    raise InwardError(
                        f"Property {p.name!r} compares against a dataset target, which task "
                        f"{task.name!r} does not have. Choose another property for it."
                    )
                if p.followup_extractor is not None and task.followup is None:
                    raise InwardError(
                        f"Property {p.name!r} compares the answers before and after a follow-up "
                        f"turn, and task {task.name!r} has only one turn. Use it with a two-turn "
                        "task such as are_you_sure."
                    )
            planned.append((task, props))
    return planned


def check_extractor_model(name: str) -> None:
    """Fail fast (before any model runs) on an extractor model string that cannot resolve."""
    from inward.models import parse_model_string
    from inward.models.bundled import get as bundled

    try:
        spec = parse_model_string(name)
        if spec.provider == "bundled":
            bundled(spec.name)
    except InwardError as e:
        raise InwardError(
            f"--extractor-model {name!r}: {e} The extractor model reads object-level responses "
            "to extract LLM properties (sentiment, writing_stories/main_character_name); leave "
            "it out to use the object model."
        ) from None


def collect_objects(
    model: CachedModel,
    tasks: Sequence[Task],
    split: str,
    n: int | None,
    *,
    seed: int = 0,
    data_dir: str | None = None,
    source: str | None = None,
    temperature: float = 0.0,
    start: int = 0,
) -> list[ObjectRecord]:
    """Object-level responses of ``model`` to ``n`` seeded strings of each task: greedy, or with
    ``temperature > 0`` one sample per prompt seeded by ``seed`` (the paper's runs are greedy).
    ``start`` skips the first strings of that seeded order (they are nested: the strings from
    ``start`` to ``n`` are the ones a smaller ``n`` would not have used)."""
    records: list[ObjectRecord] = []
    for task in tasks:
        samples = task.load(split, n, seed, data_dir, source)[start:]
        prompts = [object_prompt(task, s.string) for s in samples]
        # Greedy keys carry no seed, so greedy responses are shared whatever the study's seed.
        config = GenerationConfig(
            max_tokens=task.max_tokens, temperature=temperature, seed=seed if temperature > 0 else 0
        )
        with progress_bar(len(prompts), f"object-level {task.name} ({split})") as bar:
            outputs = model.generate(prompts, config, progress=bar)
        firsts = [out[0] for out in outputs]
        after: list[str | None] = [None] * len(samples)
        if task.followup is not None:
            # The second turn: the conversation so far, then the follow-up user message.
            followups = [
                [*p, {"role": "assistant", "content": r}, {"role": "user", "content": task.followup}]
                for p, r in zip(prompts, firsts, strict=True)
            ]
            with progress_bar(len(followups), f"follow-up {task.name} ({split})") as bar:
                after = [o[0] for o in model.generate(followups, config, progress=bar)]
        for s, first, second in zip(samples, firsts, after, strict=True):
            failed = failed_checks(first, task.exclusion_rule_groups)
            fields = (task.name, s.split, s.string, s.target, model.model_string, first, not failed, tuple(failed))
            if second is None:
                records.append(ObjectRecord(*fields))
            else:
                records.append(FollowupObjectRecord(*fields, followup_response=second))
    return records


def collect_hypotheticals(
    predictor: CachedModel,
    objects: Sequence[ObjectRecord],
    tasks: dict[str, Task],
    props: dict[str, list[Property]],
    values: Mapping[ValueKey, str | None] | None = None,
) -> list[HypotheticalRecord]:
    """Ask the predictor about every object row that has a property value to predict.

    ``values`` holds the extracted values of LLM properties (see :func:`object_value`)."""
    records: list[HypotheticalRecord] = []
    jobs: dict[tuple[str, str], list[ObjectRecord]] = {}
    for obj in objects:
        for prop in props[obj.task]:
            if object_value(obj, prop, values) is not None:
                jobs.setdefault((obj.task, prop.name), []).append(obj)
    for (task_name, prop_name), objs in jobs.items():
        task = tasks[task_name]
        prop = resolve_property(prop_name, task_name)
        budget = prop.answer_tokens or task.max_tokens
        prompts = [hypothetical_prompt(task, prop, o.string) for o in objs]
        with progress_bar(len(prompts), f"hypothetical {task_name}/{prop_name}") as bar:
            outputs = predictor.generate(prompts, GenerationConfig(max_tokens=budget), progress=bar)
        for o, out in zip(objs, outputs, strict=True):
            failed = compliance(prop.name, out[0])
            records.append(
                HypotheticalRecord(
                    task_name, prop.name, o.string, predictor.model_string, out[0], not failed, tuple(failed)
                )
            )
    return records


# ---- the shared evaluation: used by `inward evaluate`, the study and `inward tune` --------------


@dataclass(frozen=True)
class EvalPlan:
    """What an evaluation asks: which tasks' strings (``split``, the first ``n`` of the seeded
    order after skipping ``start``) and which properties of each task."""

    tasks: dict[str, Task]
    props: dict[str, list[Property]]
    split: str = "val"
    n: int = 100
    seed: int = 0
    data_dir: str | None = None
    source: str | None = None
    start: int = 0

    def strings_id(self) -> str:
        """Content hash of the strings this plan draws (covers seed, n, start, source, data files)."""
        return content_hash(
            [
                t.name,
                [x.string for x in t.load(self.split, self.n, self.seed, self.data_dir, self.source)[self.start :]],
            ]
            for t in self.tasks.values()
        )

    def objects_facts(self, model_identity: Any, temperature: float = 0.0) -> dict[str, Any]:
        """The stage-key facts of the object-level answers this plan asks of a model (greedy, or one
        sample per prompt seeded by the plan's seed)."""
        return {
            "stage": "objects",
            "model": model_identity,
            "tasks": list(self.tasks),
            "split": self.split,
            "strings": self.strings_id(),
            "temperature": temperature,
            "sampling_seed": self.seed if temperature > 0 else None,
        }


@dataclass
class ModelHandle:
    """A model as an evaluation uses it: loaded on first use (a reused stage never loads it),
    once, so its call counters cover every stage; ``identity`` is what stage keys name it by."""

    name: str
    load: Callable[[], CachedModel]
    identity: Callable[[], Any] = lambda: None
    _model: CachedModel | None = field(default=None, repr=False)

    def get(self) -> CachedModel:
        if self._model is None:
            self._model = self.load()
        return self._model


Store = Callable[[str, Callable[[dict], Any], Callable[[], list], Callable[[], dict[str, Any]]], list]
"""``store(name, load_row, compute, facts)``: the records of the stage written as ``name``
(``objects.jsonl``, ``extracted.jsonl``, ``hypotheticals.jsonl``): ``compute()``'s, written, or
reused ones read back with ``load_row`` when a study's stage key built from ``facts()`` matches."""


@dataclass
class Evaluation:
    """An evaluation's typed outputs; :meth:`scored` scores them under a scoring rule."""

    plan: EvalPlan
    objects: list[ObjectRecord]
    hypotheticals: list[HypotheticalRecord]
    extracted: list[ExtractionRecord] = field(default_factory=list)
    values: dict[ValueKey, str | None] | None = None

    def scored(self, scoring: str) -> list[ScoredRecord]:
        index = {(h.task, h.property, h.string): h for h in self.hypotheticals}
        return score_all(self.objects, self.plan.props, index, scoring=scoring, values=self.values)


def write_only(run: RunDir, seconds: dict[str, float] | None = None, folder: str = "") -> Store:
    """The plain store: compute every stage and write it to ``run`` (under ``folder``) — ``inward
    evaluate`` and ``inward tune``, which resume through the response cache — timing each in
    ``seconds`` when given."""

    def store(
        name: str, load_row: Callable[[dict], Any], compute: Callable[[], list], facts: Callable[[], dict[str, Any]]
    ) -> list:
        t0 = time.perf_counter()
        records = compute()
        if seconds is not None:
            seconds[name.removesuffix(".jsonl")] = time.perf_counter() - t0
        run.write_jsonl(f"{folder}/{name}" if folder else name, records)
        return records

    return store


def _prop_names(props: dict[str, list[Property]]) -> dict[str, list[str]]:
    return {task: [p.name for p in ps] for task, ps in props.items()}


def evaluate(
    plan: EvalPlan,
    object_model: ModelHandle,
    predictor: ModelHandle,
    *,
    store: Store,
    objects: list[ObjectRecord] | None = None,
    extractor: ModelHandle | None = None,
) -> Evaluation:
    """Objects → (LLM extraction) → hypotheticals: the object model answers the plan's task
    prompts greedily (unless ``objects`` are given, e.g. the self setup's for the cross
    predictor), the extractor (default: the object model) reads LLM properties when the plan has
    any, and the predictor answers the hypotheticals. Each stage goes through ``store``."""
    if objects is None:
        objects = store(
            "objects.jsonl",
            object_record_from_dict,
            lambda: collect_objects(
                object_model.get(),
                list(plan.tasks.values()),
                plan.split,
                plan.n,
                seed=plan.seed,
                data_dir=plan.data_dir,
                source=plan.source,
                start=plan.start,
            ),
            lambda: plan.objects_facts(object_model.identity()),
        )
    extracted: list[ExtractionRecord] = []
    values = None
    if llm_properties(plan.props):
        reader = extractor or object_model
        extracted = store(
            "extracted.jsonl",
            lambda d: ExtractionRecord(**_tuples(d)),
            lambda: extract_llm_records(objects, plan.props, reader.get()),
            lambda: {
                "stage": "extracted",
                "model": reader.identity(),
                "objects": content_hash(objects),
                "properties": _prop_names(plan.props),
            },
        )
        values = values_of(extracted)
    hyps = store(
        "hypotheticals.jsonl",
        lambda d: HypotheticalRecord(**_tuples(d)),
        lambda: collect_hypotheticals(predictor.get(), objects, plan.tasks, plan.props, values),
        lambda: {
            "stage": "hypotheticals",
            "model": predictor.identity(),
            "objects": content_hash(objects),
            "properties": _prop_names(plan.props),
            "values": content_hash(sorted(values.items())) if values else None,
        },
    )
    return Evaluation(plan, objects, hyps, extracted, values)


def _tuples(d: dict) -> dict:
    """JSON reads a record's ``failed_checks`` tuple back as a list; records compare with tuples."""
    if "failed_checks" in d:
        d["failed_checks"] = tuple(d["failed_checks"])
    return d


_SECONDS_KEYS = {"objects": "object_level", "extracted": "extraction", "hypotheticals": "hypothetical"}


def run_evaluate(
    spec: EvaluateSpec, out: str | Path, *, cache: ResponseCache | None = None, backends=None
) -> EvaluateResult:
    """Run (or resume) an evaluation into ``out``. ``backends`` maps model strings to ready
    backends (tests pass mocks); others are resolved from their model strings."""
    from inward.models import resolve

    spec.validate()
    planned = plan(spec)
    tasks = {t.name: t for t, _ in planned}
    props = {t.name: ps for t, ps in planned}
    predictor_name = spec.predictor or spec.model
    to_extract = llm_properties(props)
    extractor_name = (spec.extractor_model or spec.model) if to_extract else None
    if spec.extractor_model is not None and to_extract and spec.extractor_model not in (backends or {}):
        check_extractor_model(spec.extractor_model)
    cache = cache or ResponseCache()
    backends = dict(backends or {})

    def get(name: str) -> CachedModel:
        if name not in backends:
            backends[name] = resolve(name, **spec.model_args)
        return CachedModel(backends[name], cache)

    seconds: dict[str, float] = {}
    with RunDir(out) as run:
        manifest = RunManifest(command="evaluate", spec=asdict(spec), environment=environment())
        manifest.write(run)
        # each model gets its own counters, even when the predictor or extractor is the object model
        model = ModelHandle(spec.model, lambda: get(spec.model))
        predictor = ModelHandle(predictor_name, lambda: get(predictor_name))
        extractor = ModelHandle(extractor_name, lambda: get(extractor_name)) if extractor_name else None
        model.get(), predictor.get()  # load both before any work, as before: a bad predictor fails fast
        stage_seconds: dict[str, float] = {}
        plan_ = EvalPlan(
            tasks, props, split=spec.split, n=spec.n, seed=spec.seed, data_dir=spec.data_dir, source=spec.source
        )
        ev = evaluate(plan_, model, predictor, store=write_only(run, stage_seconds), extractor=extractor)
        seconds.update({_SECONDS_KEYS[k]: v for k, v in stage_seconds.items()})
        objects, hyps, extracted = ev.objects, ev.hypotheticals, ev.extracted
        scored = ev.scored(spec.scoring)
        label = "self" if predictor_name == spec.model else "cross"
        prints = {
            name: handle.get().fingerprint() for name, handle in ((spec.model, model), (predictor_name, predictor))
        }
        fp = {
            "object_fingerprint": short_fingerprint(prints[spec.model]),
            "meta_fingerprint": short_fingerprint(prints[predictor_name]),
        }
        results = [{**r, **fp} for r in results_table(scored, label=label)]
        by_task = [{**r, **fp} for r in results_by_task(scored, label=label)]
        run.write_jsonl("scored.jsonl", scored)
        run.write_csv("results.csv", results, C.RESULTS.csv())
        run.write_csv("results_by_task.csv", by_task, C.BY_TASK.csv())

        calls = {
            "object_prompts_from_model": model.get().stats.misses,
            "object_prompts_from_cache": model.get().stats.hits,
            "hypothetical_prompts_from_model": predictor.get().stats.misses,
            "hypothetical_prompts_from_cache": predictor.get().stats.hits,
        }
        used = {spec.model: model.get(), predictor_name: predictor.get()}
        if extractor is not None:
            assert extractor_name is not None  # the extractor is built only when it has a name
            calls["extraction_prompts_from_model"] = extractor.get().stats.misses
            calls["extraction_prompts_from_cache"] = extractor.get().stats.hits
            used[extractor_name] = extractor.get()
            manifest.extractor_model = extractor_name
        manifest.updated(
            status="complete",
            models={name: prints.get(name) or cm.fingerprint() for name, cm in used.items()},
            model_calls=calls,
            seconds=seconds,
            environment=environment(),  # again: torch and transformers are imported by now
        ).write(run)
    return EvaluateResult(results, by_task, objects, hyps, scored, calls, seconds, Path(out), extracted)
