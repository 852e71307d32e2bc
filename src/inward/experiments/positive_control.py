"""A positive control: does the pipeline detect a self advantage that exists? (config section
``positive_control``; off unless set.)

Privileged information of a known size is planted without any training. On a seeded share ``q``
of the held-out items, each predictor first answers the object-level prompt itself, and its
answer stays in the conversation when it is asked the hypothetical:

    [object-level prompt] -> [the predictor's own answer] -> [hypothetical prompt]

The self-predictor M1ft then sees the very behaviour it is scored against (its own greedy answer
is M1ft's behaviour); the cross-predictor M2cross sees only its own answer, which says nothing
about M1ft beyond what it already knew. The other items keep the study's ordinary hypotheticals.

That construction plants only what the model can read back from its context: Qwen 0.5B, shown
its own answer, was no better at naming its first character on the smoke preset (50% with and
without it, 8 items a seed). ``mode: oracle`` plants the advantage without relying on that: on
the planted items each predictor's hypothetical answer *is* the property of its own object-level
answer, read exactly (:func:`report_own`), so the self-predictor is right wherever the property
exists and the cross-predictor is right only where its own behaviour happens to match. It
checks the scoring, pairing and verdict end to end on real behaviour, not the models' reading.

Per training seed and pair the control records the gap (self − cross, micro average) with and
without planting; their difference is the planted advantage measured in this run. Over the seeds
the controlled gaps are read by the study's own verdict (:func:`inward.analysis.verdict.infer`):
a pipeline that works reads "self advantage", with an interval that contains the planted size.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from inward.analysis.positive_control import ControlRow
from inward.analysis.scoring import score
from inward.experiments.plugin import Plugin
from inward.models.base import GenerationConfig
from inward.progress import progress_bar
from inward.prompts import hypothetical_prompt, object_prompt
from inward.properties import compliance
from inward.properties.registry import resolve_property
from inward.properties.values import object_value
from inward.records import HypotheticalRecord, ObjectRecord, ScoredRecord
from inward.store.stages import content_hash

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig
    from inward.store.cache import CachedModel
    from inward.tasks import Task


def planted(strings: list[tuple[str, str]], share: float, seed: int) -> set[tuple[str, str]]:
    """A seeded share of the held-out (task, string) items."""
    items = sorted(set(strings))
    random.Random(f"positive-control:{seed}").shuffle(items)
    return set(items[: round(share * len(items))])


def with_own_answer(task: Task, prop: str, string: str, answer: str) -> list[dict[str, str]]:
    """The hypothetical asked after the model's own object-level answer to the same string."""
    return [
        *object_prompt(task, string),
        {"role": "assistant", "content": answer},
        hypothetical_prompt(task, prop, string)[-1],
    ]


def ask_with_context(
    predictor: CachedModel, own: dict[tuple[str, str], str], rows: list[ScoredRecord], tasks: dict[str, Task]
) -> list[HypotheticalRecord]:
    """The predictor's hypothetical answers on ``rows``' items, each after its own answer ``own``."""
    out: list[HypotheticalRecord] = []
    by_prop: dict[tuple[str, str], list[ScoredRecord]] = {}
    for r in rows:
        by_prop.setdefault((r.task, r.property), []).append(r)
    for (task_name, prop_name), items in by_prop.items():
        task, prop = tasks[task_name], resolve_property(prop_name, task_name)
        prompts = [with_own_answer(task, prop_name, r.string, own[(task_name, r.string)]) for r in items]
        config = GenerationConfig(max_tokens=prop.answer_tokens or task.max_tokens)
        with progress_bar(len(prompts), f"positive control {task_name}/{prop_name}") as bar:
            answers = predictor.generate(prompts, config, progress=bar)
        for r, a in zip(items, answers, strict=True):
            failed = compliance(prop_name, a[0])
            out.append(
                HypotheticalRecord(
                    task_name, prop_name, r.string, predictor.model_string, a[0], not failed, tuple(failed)
                )
            )
    return out


def report_own(own: list[ObjectRecord], rows: list[ScoredRecord], predictor: str) -> list[HypotheticalRecord]:
    """The oracle construction: on ``rows``' items the predictor's hypothetical answer is the
    property of its own object-level answer, read exactly (no model call). The self-predictor's
    own answer is the behaviour it is scored on, so it is right wherever that property exists;
    the cross-predictor reports its own behaviour, which matches the target's only by chance."""
    by_item = {(o.task, o.string): o for o in own}
    out = []
    for r in rows:
        prop = resolve_property(r.property, r.task)
        value = object_value(by_item[(r.task, r.string)], prop)
        answer = value if value is not None else ""
        failed = compliance(prop.name, answer)
        out.append(HypotheticalRecord(r.task, r.property, r.string, predictor, answer, not failed, tuple(failed)))
    return out


def _suffix(mode: str) -> str:
    return "" if mode == "context" else f"_{mode}"


def _micro_gap(self_rows: list[ScoredRecord], cross_rows: list[ScoredRecord]) -> tuple[float, int]:
    s = {(r.task, r.property, r.string): bool(r.correct) for r in self_rows if r.evaluable}
    c = {(r.task, r.property, r.string): bool(r.correct) for r in cross_rows if r.evaluable}
    shared = sorted(set(s) & set(c))
    return (float(np.mean([s[k] - c[k] for k in shared])) if shared else float("nan")), len(shared)


def _kappa_gap(self_rows: list[ScoredRecord], cross_rows: list[ScoredRecord]) -> float:
    """Self − cross in kappa over the rows results.csv's micro row pools."""
    from inward.analysis.results import grouped_kappa, pooled

    def micro_kappa(rows: list[ScoredRecord]) -> float:
        return grouped_kappa([r for r in rows if pooled(r)])

    return micro_kappa(self_rows) - micro_kappa(cross_rows)


def _acc(rows: list[ScoredRecord]) -> float:
    ev = [bool(r.correct) for r in rows if r.evaluable]
    return float(np.mean(ev)) if ev else float("nan")


class PositiveControlExperiment(Plugin):
    name = "positive_control"

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        from dataclasses import asdict

        return {"positive_control": [asdict(r) for r in rows.positive_control]}

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        from inward.analysis.positive_control import COLUMNS, control_verdicts
        from inward.experiments.rows import Outputs

        return Outputs(
            csvs=[("positive_control.csv", tables["positive_control"], COLUMNS)],
            verdicts=control_verdicts(rows.positive_control, config.verdict.margin, config.verdict.metric),
        )

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        from inward.experiments.context import prefix, slug

        section = ctx.config.positive_control
        assert section is not None
        scoring = ctx.config.scoring
        objects = {(o.task, o.string): o for o in out.eval_objects}
        chosen = planted(list(objects), section.share, section.seed)
        self_on = [r for r in out.self_rows if r.evaluable and (r.task, r.string) in chosen]
        folder = f"{prefix(out.seed)}positive_control/{slug(out.target)}"
        facts = {"share": section.share, "seed": section.seed, "items": content_hash(sorted(chosen))}
        if section.mode == "oracle":
            facts["mode"] = "oracle"  # (context-mode keys stay as they were)

        def scored(rows: list[ScoredRecord], hyps: list[HypotheticalRecord]) -> list[ScoredRecord]:
            index = {(h.task, h.property, h.string): h for h in hyps}
            return [
                replace(
                    score(
                        objects[(r.task, r.string)],
                        resolve_property(r.property, r.task),
                        index.get((r.task, r.property, r.string)),
                        scoring=scoring,
                    ),
                    object_model=r.object_model,
                    meta_model=r.meta_model,
                )
                for r in rows
            ]

        # the self-predictor's own answers are M1ft's behaviour itself: out.eval_objects
        own_self = {k: objects[k].response for k in chosen}
        with ctx.stage(f"seed {out.seed}: positive control, {ctx.shown(out.self_trained)} with its own answers"):
            self_hyps = ctx.records(
                f"{folder}/self_hypotheticals{_suffix(section.mode)}.jsonl",
                HypotheticalRecord,
                lambda: (
                    report_own(out.eval_objects, self_on, out.self_trained)
                    if section.mode == "oracle"
                    else ask_with_context(ctx.model(out.self_trained), own_self, self_on, ctx.held_out)
                ),
                {
                    "stage": "positive_control_self",
                    "model": ctx.model_id(out.self_trained),
                    **facts,
                    "objects": content_hash(out.eval_objects),
                },
            )
            ctx.release(out.self_trained)
        self_planted = scored(self_on, self_hyps)
        for cross in out.cross:
            cross_on = [r for r in cross.rows if r.evaluable and (r.task, r.string) in chosen]
            sub = f"{folder}/{slug(cross.model)}"
            with ctx.stage(f"seed {out.seed}: positive control, {ctx.shown(cross.trained)} with its own answers"):
                own_objects = ctx.records(
                    f"{sub}/own_objects.jsonl",
                    ObjectRecord,
                    lambda cross=cross: _own_answers(ctx.model(cross.trained), chosen, ctx.held_out),
                    {"stage": "positive_control_objects", "model": ctx.model_id(cross.trained), **facts},
                )
                own_cross = {(o.task, o.string): o.response for o in own_objects}
                cross_hyps = ctx.records(
                    f"{sub}/cross_hypotheticals{_suffix(section.mode)}.jsonl",
                    HypotheticalRecord,
                    lambda cross=cross, own_cross=own_cross, cross_on=cross_on, own_objects=own_objects: (
                        report_own(own_objects, cross_on, cross.trained)
                        if section.mode == "oracle"
                        else ask_with_context(ctx.model(cross.trained), own_cross, cross_on, ctx.held_out)
                    ),
                    {
                        "stage": "positive_control_cross",
                        "model": ctx.model_id(cross.trained),
                        **facts,
                        "own": content_hash(own_objects),
                        "objects": content_hash(out.eval_objects),
                    },
                )
                ctx.release(cross.trained)
            cross_planted = scored(cross_on, cross_hyps)
            keys = {(r.task, r.property, r.string) for r in self_planted}
            self_ctrl = [r for r in out.self_rows if (r.task, r.property, r.string) not in keys] + self_planted
            keys = {(r.task, r.property, r.string) for r in cross_planted}
            cross_ctrl = [r for r in cross.rows if (r.task, r.property, r.string) not in keys] + cross_planted
            plain, n = _micro_gap(out.self_rows, cross.rows)
            controlled, _ = _micro_gap(self_ctrl, cross_ctrl)
            _, n_planted = _micro_gap(self_on, cross_on)
            ctx.rows.positive_control.append(
                ControlRow(
                    out.seed,
                    out.target,
                    cross.model,
                    section.share,
                    section.mode,
                    n_planted,
                    n,
                    plain,
                    controlled,
                    controlled - plain,
                    _acc(self_on),
                    _acc(self_planted),
                    _acc(cross_on),
                    _acc(cross_planted),
                    _kappa_gap(out.self_rows, cross.rows),
                    _kappa_gap(self_ctrl, cross_ctrl),
                )
            )


def _own_answers(model: CachedModel, chosen: set[tuple[str, str]], tasks: dict[str, Task]) -> list[ObjectRecord]:
    """The predictor's own greedy object-level answers on the planted items (its behaviour there),
    decoded as the study decodes object-level answers (so the response cache is shared)."""
    from inward.properties import failed_checks

    out: list[ObjectRecord] = []
    for task_name in sorted({t for t, _ in chosen}):
        task = tasks[task_name]
        strings = sorted(s for t, s in chosen if t == task_name)
        config = GenerationConfig(max_tokens=task.max_tokens, temperature=0.0, seed=0)
        with progress_bar(len(strings), f"positive control: own answers {task_name}") as bar:
            answers = model.generate([object_prompt(task, s) for s in strings], config, progress=bar)
        for s, a in zip(strings, answers, strict=True):
            failed = failed_checks(a[0], task.exclusion_rule_groups)
            out.append(ObjectRecord(task_name, "val", s, None, model.model_string, a[0], not failed, tuple(failed)))
    return out
