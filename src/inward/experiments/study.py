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
evaluation) are the context's. ``inward study`` computes each training seed (steps 1-4 for that
seed) in a fresh child process and then reads its stages back here (:func:`run_in_child`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

import inward
from inward.analysis.compare import compare_self_cross, paired_groups
from inward.errors import InwardError
from inward.experiments.context import Study, prefix, slug
from inward.experiments.outputs import (
    study_figures,
    study_notes,
    study_report,
    summarise,
    write_figures,
    write_tables,
)
from inward.experiments.plugin import CrossOutputs, Experiment, SeedOutputs
from inward.experiments.registry import EXPERIMENTS
from inward.experiments.rows import StudyRows, StudySummary
from inward.experiments.study_config import StudyConfig
from inward.memory import peak_rss_mb
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


def run_all(ctx: Study, seed_processes: bool = False) -> StudyResult:
    """Every stage, then the outputs. ``seed_processes``: each training seed's stages are first
    computed in a fresh child process (:func:`run_in_child`), then read back here, every stage
    reused."""
    experiments = enabled_experiments(ctx)
    for m1 in self_models(ctx.config):
        obj_train = shared_stages(ctx, m1)
        for seed in ctx.config.seeds:
            if seed_processes:
                run_in_child(ctx, m1, seed)
            seed_stages(ctx, m1, seed, obj_train, experiments)
    summary = write_outputs(ctx)
    return StudyResult(ctx.run.path, ctx.stage_seconds, ctx.rows, summary)


def run_in_child(ctx: Study, m1: str, seed: int) -> None:
    """Compute training seed ``seed`` of ``m1`` (its stages and optional experiments) in a fresh
    Python process (:mod:`inward.experiments.seed_child`) that borrows this run directory; its
    stage seconds join this run's and its peak memory (each stage's and the process's) the study's.

    Why: in one process, the later seeds' finetunes ran slower than the first's (default study,
    seed 2's self finetune 202.7 s in the 8-seed process against 166.0 s in a fresh one, with
    peak memory rising seed by seed; docs/results-default.md), while a fresh process runs every
    seed like the first. The seed's stages are files with keys, so the parent then reads them
    back (about 10 s a seed) and the outputs are as if computed here. The child starts from what
    earlier seeds settled here: the chat formats measured at the first seed
    (:meth:`Study.choose_chat_format`), which one process would not measure again. A seed a child finished
    under the same config is not sent to a child again (``seed<k>/child-<M1>.json``), so a
    finished study reruns in seconds; any stage that is stale all the same is recomputed here."""
    config_json = json.dumps(ctx.config.model_dump(mode="json", by_alias=True), sort_keys=True)
    marker = f"{prefix(seed)}child-{slug(m1)}.json"
    done = {"config_sha256": hashlib.sha256(config_json.encode()).hexdigest(), "model": m1}
    if ctx.run.file(marker).is_file() and json.loads(ctx.run.file(marker).read_text()) == done:
        return  # a child finished this seed under this config: the parent reads it back (a stale stage it recomputes)
    with tempfile.TemporaryDirectory(prefix="inward-seed-") as tmp:
        config_file, result_file = Path(tmp) / "config.json", Path(tmp) / "result.json"
        config_file.write_text(config_json)
        command = [
            sys.executable,
            "-m",
            "inward.experiments.seed_child",
            "--run",
            str(ctx.run.path),
            "--config",
            str(config_file),
            "--cache",
            str(ctx.cache.path),
            "--model",
            m1,
            "--seed",
            str(seed),
            "--result",
            str(result_file),
            "--format-args",
            json.dumps(ctx.format_args),
        ]
        src = str(Path(inward.__file__).resolve().parents[1])  # the child runs this same code
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        print(f"[inward study] seed {seed}: in a child process ...", file=sys.stderr, flush=True)
        code = subprocess.run(command, env=env).returncode
        if code != 0 or not result_file.is_file():
            raise InwardError(
                f"Training seed {seed}'s child process failed (exit code {code}); its error is printed above. "
                "Fix that and rerun the same command to resume (finished stages are kept), or run the "
                "study in one process with --one-process."
            )
        result = json.loads(result_file.read_text())
    for name, seconds in result["stage_seconds"].items():
        ctx.stage_seconds[name] = ctx.stage_seconds.get(name, 0.0) + seconds
    for name, peak in result["stage_peak_rss_mb"].items():
        ctx.stage_peaks[name] = max(ctx.stage_peaks.get(name, 0.0), peak)
    ctx.child_peak_rss_mb = max(ctx.child_peak_rss_mb, result["peak_rss_mb"])
    ctx.run.write_text(marker, json.dumps(done))


def self_models(config: StudyConfig) -> list[str]:
    """The distinct M1s of the config's pairs, in order."""
    return list(dict.fromkeys(p.self_model for p in config.pairs))


def enabled_experiments(ctx: Study) -> list[Experiment]:
    """The optional experiments the config turns on, each checked against the study first."""
    experiments = [e for e in EXPERIMENTS if e.enabled(ctx.config)]
    for e in experiments:
        e.check(ctx)
    return experiments


def shared_stages(ctx: Study, m1: str) -> list[ObjectRecord]:
    """The stages no training seed owns: M1's answers on the pool of train strings (returned),
    and untrained M1's evaluation."""
    c, s1 = ctx.config, slug(m1)
    with ctx.stage(f"object-level train, {m1}"):
        obj_train = ctx.objects(m1, ctx.train_tasks, "train", c.n_train_strings, f"models/{s1}/objects_train.jsonl")
    with ctx.stage(f"untrained evaluation, {m1}"):
        _, untrained = ctx.evaluate(f"untrained-{s1}", m1, m1)
    ctx.release(m1)
    ctx.untrained_rows[m1] = untrained
    ctx.rows.add_results(untrained, "untrained", None, ctx.fingerprints(m1, m1))
    return obj_train


def seed_stages(
    ctx: Study, m1: str, seed: int, obj_train: list[ObjectRecord], experiments: Sequence[Experiment]
) -> None:
    """One training seed: the self- and cross-predictors (:func:`run_seed`), then the optional
    experiments that apply to the seed."""
    out = run_seed(ctx, m1, seed, obj_train)
    for e in experiments:
        if e.applies(ctx.config, seed):
            e.run(ctx, out)


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
    pairs = [(p.cross_model, slug(p.cross_model)) for p in c.pairs if p.self_model == m1]
    for m2, s2 in pairs:  # while M1ft is loaded: a measurement asks it for a few more answers
        ctx.choose_chat_format(m2, m1ft, ft_train, f"{pre}models/{s1}/cross_ft/{s2}")
    ctx.release(m1ft)
    rows.add_results(self_rows, "self", seed, ctx.fingerprints(m1ft, m1ft))
    crosses: list[CrossOutputs] = []
    for m2, s2 in pairs:
        folder = f"{pre}models/{s1}/cross_ft/{s2}"
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
        stage_peak_rss_mb=ctx.all_stage_peaks(),
        training=rows.training,
        chat_formats=rows.chat_formats,
        environment=environment(),
        status="complete",
        models=models,
        peak_rss_mb=max(peak_rss_mb(), ctx.child_peak_rss_mb),
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
    config: StudyConfig,
    out: str | Path,
    *,
    cache: ResponseCache | None = None,
    backends=None,
    seed_processes: bool = False,
) -> StudyResult:
    """Run (or resume) ``config`` into ``out``. ``seed_processes``: compute each training seed in
    a fresh child process (``inward study`` does; not with ``backends``, which a child cannot
    rebuild)."""
    if seed_processes and backends:
        raise ValueError("seed_processes needs models the child process can load itself: no backends=")
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
        return run_all(study, seed_processes)
