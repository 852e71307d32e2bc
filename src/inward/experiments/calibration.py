"""Experiment 1b (spec §1.9): collect the object-level and hypothetical distributions of one setup
(:func:`collect_calibration`), and run the study's calibration section for one target and training
seed (:func:`run_calibration`). The maths is in :mod:`inward.analysis.calibration`. Every model
call goes through the response cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inward.analysis.calibration import (
    CalibrationRecord,
    SeedRecords,
    hypothetical_dist_from_samples,
    hypothetical_dist_from_tokens,
    object_dist_from_samples,
    object_dist_from_tokens,
)
from inward.experiments.plugin import Plugin
from inward.models.base import DistributionConfig, GenerationConfig
from inward.progress import progress_bar
from inward.prompts import hypothetical_prompt, object_prompt
from inward.properties.registry import Property
from inward.store.cache import CachedModel
from inward.tasks import Task

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig


def collect_calibration(
    setup: str,
    object_model: CachedModel,
    meta_model: CachedModel,
    task: Task,
    props: list[Property],
    strings: list[str],
    *,
    n_exact: int,
    n_sampled: int,
    samples: int,
    temperature: float,
    max_tokens: int,
    top_k: int,
    seed: int,
    scoring: str,
    object_name: str,
    meta_name: str,
) -> list[CalibrationRecord]:
    """Exact records for the first ``n_exact`` strings, sampled ones for the first ``n_sampled``."""
    records: list[CalibrationRecord] = []
    exact, sampled = strings[:n_exact], strings[:n_sampled]
    dist_cfg = DistributionConfig(top_k=top_k)
    if exact:
        with progress_bar(len(exact), f"calibration {setup}: object distribution") as bar:
            obj_tokens = object_model.answer_distribution(
                [object_prompt(task, s) for s in exact], dist_cfg, progress=bar
            )
    if sampled:
        obj_cfg = GenerationConfig(max_tokens=max_tokens, temperature=temperature, n=samples, seed=seed)
        with progress_bar(len(sampled), f"calibration {setup}: object samples") as bar:
            obj_samples = object_model.generate([object_prompt(task, s) for s in sampled], obj_cfg, progress=bar)
    for prop in props:

        def extract(text: str, prop: Property = prop) -> str | None:
            return prop.extract(text, None)

        if exact:
            with progress_bar(len(exact), f"calibration {setup}: {prop.name} hypothetical distribution") as bar:
                hyp_tokens = meta_model.answer_distribution(
                    [hypothetical_prompt(task, prop, s) for s in exact], dist_cfg, progress=bar
                )
            for s, ot, ht in zip(exact, obj_tokens, hyp_tokens, strict=True):
                od, mass = object_dist_from_tokens(ot, extract, scoring)
                records.append(
                    CalibrationRecord(
                        setup,
                        task.name,
                        prop.name,
                        s,
                        "exact",
                        object_name,
                        meta_name,
                        od,
                        hypothetical_dist_from_tokens(ht),
                        mass,
                    )
                )
        if sampled:
            hyp_cfg = GenerationConfig(
                max_tokens=prop.answer_tokens or max_tokens, temperature=temperature, n=samples, seed=seed
            )
            with progress_bar(len(sampled), f"calibration {setup}: {prop.name} hypothetical samples") as bar:
                hyp_samples = meta_model.generate(
                    [hypothetical_prompt(task, prop, s) for s in sampled], hyp_cfg, progress=bar
                )
            for s, os_, hs in zip(sampled, obj_samples, hyp_samples, strict=True):
                od, share = object_dist_from_samples(os_, extract, scoring)
                records.append(
                    CalibrationRecord(
                        setup,
                        task.name,
                        prop.name,
                        s,
                        "sampled",
                        object_name,
                        meta_name,
                        od,
                        hypothetical_dist_from_samples(hs),
                        share,
                    )
                )
    return records


# -- the study's calibration experiment (config section ``calibration``) ---------------------


def run_calibration(ctx: Study, m1: str, m1ft: str, cross_models: dict[str, str], seed: int) -> list[SeedRecords]:
    """Experiment 1b for M1 and one training seed: untrained M1 (with the first seed only, it does
    not depend on the seed), self-trained M1ft, and each cross-trained model predicting M1ft; one
    cached, keyed stage per setup."""
    from inward.experiments.context import prefix, slug
    from inward.properties.registry import resolve_property
    from inward.store.stages import content_hash
    from inward.tasks import get_task

    config = ctx.config
    cal, s1 = config.calibration, slug(m1)
    assert cal is not None  # the plugin runs only when the calibration section is set
    task = get_task(cal.task)
    props = [resolve_property(p, task.name) for p in cal.properties]
    n = max(cal.n_exact, cal.n_sampled)
    strings = [x.string for x in task.load("val", n, config.seed, config.data_dir, config.source)]
    pre = prefix(seed)
    setups: list[tuple[int | None, str, str, str, str]]  # (seed or None, folder, label, object, meta)
    setups = [(None, f"untrained-{s1}", "untrained", m1, m1)] if seed == config.first_seed else []
    setups += [(seed, f"{pre}self-{s1}", "self", m1ft, m1ft)]
    one = len(cross_models) == 1
    setups += [
        (seed, f"{pre}cross-{s1}-{slug(m2)}", "cross" if one else f"cross:{slug(m2)}", m1ft, m2ft)
        for m2, m2ft in cross_models.items()
    ]
    out: list[SeedRecords] = []
    for which, folder, label, obj, meta in setups:
        tag = "" if which is None else f"seed {seed}: "
        with ctx.stage(f"{tag}calibration, {label}: {ctx.shown(meta)} predicting {ctx.shown(obj)}"):
            records = ctx.records(
                f"calibration/{folder}/records.jsonl",
                CalibrationRecord,
                lambda obj=obj, meta=meta, label=label: collect_calibration(
                    label,
                    ctx.model(obj),
                    ctx.model(meta),
                    task,
                    props,
                    strings,
                    n_exact=cal.n_exact,
                    n_sampled=cal.n_sampled,
                    samples=cal.samples,
                    temperature=cal.temperature,
                    max_tokens=cal.max_tokens,
                    top_k=cal.top_k,
                    seed=cal.seed,
                    scoring=config.scoring,
                    object_name=ctx.shown(obj),
                    meta_name=ctx.shown(meta),
                ),
                {
                    "stage": "calibration",
                    "label": label,
                    "object": ctx.model_id(obj),
                    "meta": ctx.model_id(meta),
                    "settings": cal.model_dump(exclude={"every_seed"}),
                    "strings": content_hash(strings),
                    "scoring": config.scoring,
                    "names": [ctx.shown(obj), ctx.shown(meta)],
                },
            )
        out.append((which, records))
        if meta != m1ft:
            ctx.release(meta)
    ctx.release(m1)
    ctx.release(m1ft)
    return out


class CalibrationExperiment(Plugin):
    """Experiment 1b as a study plugin (config section ``calibration``)."""

    name = "calibration"

    def applies(self, config: StudyConfig, seed: int) -> bool:
        return config.calibration is not None and config.runs_on(seed, config.calibration.every_seed)

    def check(self, ctx: Study) -> None:
        from inward.errors import InwardError
        from inward.tasks import get_task

        section = ctx.config.calibration
        assert section is not None
        task = get_task(section.task)
        for p in section.properties:
            if p not in task.properties:
                raise InwardError(
                    f"calibration.properties: {p!r} is not a property of calibration.task "
                    f"{task.name!r}; choose from {list(task.properties)}."
                )

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        ctx.rows.calibration += run_calibration(ctx, out.target, out.self_trained, out.cross_models, out.seed)

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        from inward.analysis.calibration import seeded_agreement_table, seeded_calibration_table

        cal = config.calibration
        assert cal is not None
        return {
            "calibration": seeded_calibration_table(rows.calibration, top=cal.top_behaviours, bins=cal.bins),
            "agreement": seeded_agreement_table(
                rows.calibration, samples=cal.samples, top=cal.top_behaviours, bins=cal.bins
            ),
        }

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        from inward.analysis.calibration import AGREEMENT_COLUMNS
        from inward.experiments import notes as N
        from inward.experiments.rows import Outputs
        from inward.report import columns as C
        from inward.report.html import AGREEMENT, Section, part, table

        section = Section(
            "Calibration (Experiment 1b)",
            [
                part(table(C.CALIBRATION.seeded(), tables["calibration"]), intro=CALIBRATION_INTRO),
                part(table(AGREEMENT, tables["agreement"]), sub="Sampled vs exact estimates", intro=AGREEMENT_INTRO),
            ],
        )
        return Outputs(
            csvs=[
                ("calibration.csv", tables["calibration"], C.CALIBRATION.seeded().csv()),
                ("calibration_agreement.csv", tables["agreement"], ("seed", *AGREEMENT_COLUMNS)),
            ],
            notes=N.calibration_notes(config, tables["agreement"], tables["calibration"]),
            sections=[section],
        )

    def figures(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> dict[str, bytes]:
        from inward.analysis.calibration import calibration_curves
        from inward.experiments.context import slug
        from inward.report import figures as fig

        cal, first = config.calibration, config.first_seed
        assert cal is not None
        drawn = [r for seed, records in rows.calibration if seed in (None, first) for r in records]
        curves = calibration_curves(drawn, top=cal.top_behaviours, bins=cal.bins)
        figures: dict[str, bytes] = {}
        for m1 in dict.fromkeys(p.self_model for p in config.pairs):
            for prop in cal.properties:
                mine = [x for x in curves if x["response_property"] == prop and of_target(x["object_model"], m1)]
                figures[f"calibration_{slug(m1)}_{prop}"] = fig.calibration_curves(
                    mine,
                    title=f"Calibration, {cal.task}/{prop}, {m1} (top {cal.top_behaviours}, "
                    f"{cal.bins} bins; training seed {first})",
                )
        return figures


def of_target(model: str, m1: str) -> bool:
    """Whether ``model`` is M1 or one of its adapters (a finetuned version of it)."""
    return model == m1 or model.startswith(m1 + "+lora:")


CALIBRATION_INTRO = (
    "Experiment 1b: for each prompt, the top-3 object-level behaviours (second character, say) "
    "and their probabilities, against the probability the predictor's hypothetical answer puts on "
    "each; pairs pooled per setup in 10 equal-frequency bins. MAD is the mean absolute deviation of "
    "the bin means from the diagonal, in percentage points (lower is better calibrated). Exact: from "
    "one forward pass (top-k next tokens; object side read off the first token, see notes); sampled: "
    "from samples at temperature 1."
)
AGREEMENT_INTRO = (
    "On prompts estimated both ways: mean total-variation distance between the two estimates of the "
    "object-level and of the hypothetical distribution, and the distance a perfect sampler with the "
    "same number of samples would show by chance alone."
)
