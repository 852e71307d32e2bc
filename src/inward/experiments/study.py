"""``inward study``: the paper's Experiment 1, self- vs cross-prediction, as one resumable DAG.

For each configured pair (M1, M2), following spec §1.7:

1. M1 answers the train tasks (train split) → self-prediction data → LoRA finetune → M1ft.
2. M1ft answers the train tasks → the same kind of data about M1ft → finetune M2 → M2cross.
3. On the held-out tasks (val split): untrained M1 predicts M1, M1ft predicts M1ft ("self"),
   M2cross predicts M1ft ("cross"). Self and cross are scored against the same behaviour
   (the shared evaluation, :func:`inward.experiments.evaluate.evaluate`).
4. The optional experiments of each training seed (:mod:`inward.experiments.registry`: probes,
   data scaling, calibration, behaviour change), each a plugin given the seed's outputs as one
   :class:`~inward.experiments.plugin.SeedOutputs` and the study context
   (:class:`~inward.experiments.context.Study`).
5. Tables, notes, figures, run.json and ``report.html`` from the collected rows
   (:mod:`inward.experiments.outputs`).

This module is the loop; the services the stages use (keyed stages, models, finetuning,
evaluation) are the context's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from inward.analysis.compare import compare_self_cross, paired_groups
from inward.experiments.context import Study, _peak_rss_mb, prefix, slug
from inward.experiments.outputs import (
    study_figures,
    study_notes,
    study_report,
    summarise,
    write_figures,
    write_tables,
)
from inward.experiments.plugin import CrossOutputs, SeedOutputs
from inward.experiments.registry import EXPERIMENTS
from inward.experiments.rows import StudyRows, StudySummary
from inward.experiments.study_config import StudyConfig
from inward.records import ObjectRecord
from inward.store.cache import ResponseCache
from inward.store.manifest import RunManifest
from inward.store.rundir import RunDir, environment


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
    calibration = property(lambda self: self.summary.experiments.get("calibration", {}).get("calibration", []))
    scaling = property(lambda self: self.summary.experiments.get("scaling", {}).get("scaling", []))
    seed_summary = property(lambda self: self.summary.seed_summary)
    gaps = property(lambda self: self.summary.gaps)  # self − cross over training seeds
    verdicts = property(lambda self: self.summary.verdicts)


def run_all(ctx: Study) -> StudyResult:
    c, rows = ctx.config, ctx.rows
    experiments = [e for e in EXPERIMENTS if e.enabled(c)]
    for e in experiments:
        e.check(ctx)
    for m1 in dict.fromkeys(p.self_model for p in c.pairs):
        s1 = slug(m1)
        # Seed-independent: M1's answers on the pool of train strings, and untrained M1.
        with ctx.stage(f"object-level train, {m1}"):
            obj_train = ctx.objects(m1, ctx.train_tasks, "train", c.n_train_strings, f"models/{s1}/objects_train.jsonl")
        with ctx.stage(f"untrained evaluation, {m1}"):
            _, untrained = ctx.evaluate(f"untrained-{s1}", m1, m1)
        ctx.release(m1)
        ctx.untrained_rows[m1] = untrained
        rows.add_results(untrained, "untrained", None, ctx.fingerprints(m1, m1))
        for seed in c.seeds:
            out = run_seed(ctx, m1, seed, obj_train)
            for e in experiments:
                if e.applies(c, seed):
                    e.run(ctx, out)
    summary = write_outputs(ctx)
    return StudyResult(ctx.run.path, ctx.stage_seconds, rows, summary)


def run_seed(ctx: Study, m1: str, seed: int, obj_train: list[ObjectRecord]) -> SeedOutputs:
    """M1's self-predictor and every cross-predictor of M1's pairs, trained with one training
    seed, and their scores."""
    c, s1, pre, tag, rows = ctx.config, slug(m1), prefix(seed), f"seed {seed}: ", ctx.rows
    with ctx.stage(f"{tag}self-prediction finetune, {m1}"):
        self_data = ctx.prediction_examples(obj_train, m1, seed)
        m1ft = ctx.train(m1, self_data, f"{pre}models/{s1}/self_ft", c.finetune, m1, seed=seed)
        n_self = rows.training[-1]["n_examples"]
        ctx.self_examples[(m1, seed)] = n_self
    with ctx.stage(f"{tag}object-level train, {m1} self-trained"):
        ft_train = ctx.objects(
            m1ft, ctx.train_tasks, "train", c.n_train_strings, f"{pre}models/{s1}/self_ft/objects_train.jsonl"
        )
    with ctx.stage(f"{tag}self evaluation, {m1} self-trained"):
        ft_objects, self_rows = ctx.evaluate(f"self-{s1}", m1ft, m1ft, seed=seed)
    ctx.release(m1ft)
    rows.add_results(self_rows, "self", seed, ctx.fingerprints(m1ft, m1ft))
    crosses: list[CrossOutputs] = []
    for pair in (p for p in c.pairs if p.self_model == m1):
        m2, s2 = pair.cross_model, slug(pair.cross_model)
        folder = f"{pre}models/{s1}/cross_ft/{s2}"
        ctx.choose_chat_format(m2, m1ft, ft_train, folder)
        with ctx.stage(f"{tag}cross-prediction finetune, {m2} on {m1} self-trained"):
            cross_data = ctx.cross_examples(ft_train, self_data, m1ft, m2, seed, folder)
            m2ft = ctx.train(m2, cross_data, folder, c.cross_finetune or c.finetune, ctx.shown(m1ft), seed=seed)
        with ctx.stage(f"{tag}cross evaluation, {m2} predicting {m1} self-trained"):
            _, cross_rows = ctx.evaluate(f"cross-{s1}-{s2}", m1ft, m2ft, ft_objects, seed=seed)
        ctx.release(m2ft)
        rows.add_results(cross_rows, "cross", seed, ctx.fingerprints(m1ft, m2ft))
        rows.comparisons += [{"seed": seed, **row} for row in compare_self_cross(self_rows, cross_rows)]
        rows.paired.setdefault((m1, m1, m2), {})[seed] = paired_groups(self_rows, cross_rows)
        crosses.append(CrossOutputs(m2, m2ft, cross_data, cross_rows))
    return SeedOutputs(
        seed=seed,
        first=seed == c.first_seed,
        target=m1,
        self_trained=m1ft,
        self_examples=n_self,
        train_objects=ft_train,
        eval_objects=ft_objects,
        self_rows=self_rows,
        untrained_rows=ctx.untrained_rows[m1],
        cross=tuple(crosses),
    )


def write_outputs(ctx: Study) -> StudySummary:
    """The CSVs, figures, run.json and report.html (inward.experiments.outputs)."""
    run, rows = ctx.run, ctx.rows
    summary = summarise(ctx.config, rows, ctx.other_scoring)
    write_tables(run, ctx.config, rows, summary, ctx.other_scoring)
    figures = study_figures(ctx.config, rows, summary)
    write_figures(run, figures)
    models = ctx.fingerprints_of_all()
    manifest = ctx.manifest or RunManifest(command="study", environment=environment())
    ctx.manifest = manifest.updated(
        stage_seconds=ctx.total_seconds(),
        stage_seconds_this_run=ctx.stage_seconds,
        training=rows.training,
        chat_formats=rows.chat_formats,
        environment=environment(),
        status="complete",
        models=models,
        peak_rss_mb=_peak_rss_mb(),
        verdicts=summary.verdicts,
        verdict=summary.verdict_details,
        seeds=ctx.config.seeds,
        stages=ctx.keys.log,
        notes=study_notes(ctx.config, rows, summary, ctx.other_scoring, models, ctx.keys.log),
    )
    ctx.manifest.write(run)
    run.write_text("report.html", study_report(ctx.config, rows, summary, ctx.manifest.to_json(), figures))
    return summary


def run_study(
    config: StudyConfig, out: str | Path, *, cache: ResponseCache | None = None, backends=None
) -> StudyResult:
    cache = cache or ResponseCache()
    with RunDir(out) as run:
        run.write_text("config.yaml", yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False))
        study = Study(config, run, cache, backends)
        study.manifest = RunManifest(
            command="study",
            config=config.model_dump(mode="json", by_alias=True),
            environment=environment(),
            stage_seconds=study.total_seconds(),
        )
        study.manifest.write(run)
        return run_all(study)
