"""A study's outputs from its rows: the CSVs, the figures, the notes, run.json's tables and
``report.html``. The study's stages fill a :class:`StudyRows`; :func:`summarise` derives the
over-seeds tables and the verdict from it (pure); :func:`write_study_outputs` writes them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inward.analysis.results import MICRO, results_table
from inward.analysis.seeds import (
    GAP_COLUMNS,
    MATRIX_COLUMNS,
    SEED_SUMMARY_COLUMNS,
    base_model,
    gap_summary,
    matrix_table,
    micro_pairs,
    seed_summary,
)
from inward.analysis.verdict import gate, infer, target_verdicts
from inward.experiments import notes as N
from inward.experiments.plugin import Experiment
from inward.experiments.registry import EXPERIMENTS
from inward.experiments.rows import CHAT_FORMAT_COLUMNS, EVIDENCE_COLUMNS, StudyRows, StudySummary
from inward.report import columns as C

if TYPE_CHECKING:
    from inward.analysis.verdict import Verdict as Inference
    from inward.experiments.study_config import StudyConfig
    from inward.store.rundir import RunDir


@dataclass(frozen=True)
class Verdict:
    """The headline inference of one (target, cross predictor) pair."""

    target: str
    cross: str
    inference: Inference


def summarise(config: StudyConfig, rows: StudyRows, other_scoring: str) -> StudySummary:
    """The over-seeds tables, the verdict and each experiment's tables and outputs (pure)."""
    other = [
        {"seed": seed, **row, "object_fingerprint": fps[0], "meta_fingerprint": fps[1]}
        for (setup, seed), (scored, fps) in rows.other.items()
        for row in results_table(scored, label=setup.split("-")[0])
    ]
    summary = seed_summary(rows.results)
    found = verdicts(config, rows)
    tables = {e.name: e.summarise(config, rows) for e in enabled(config)}
    outputs = {e.name: e.outputs(config, rows, tables[e.name]) for e in enabled(config)}
    return StudySummary(
        other_results=other,
        seed_summary=summary,
        gaps=gap_summary(rows.paired),
        matrix=matrix_table(summary),
        verdicts=verdict_sentences(config, found, rows) + [v for o in outputs.values() for v in o.verdicts],
        verdict_details=[{"target": v.target, "cross_predictor": v.cross, **v.inference.to_json()} for v in found],
        experiments=tables,
        outputs=outputs,
    )


def enabled(config: StudyConfig) -> list[Experiment]:
    """The registered experiments the config switches on, in registry order."""
    return [e for e in EXPERIMENTS if e.enabled(config)]


METRIC_NAMES = {"micro_average": "micro-average accuracy", "kappa": "Cohen's kappa"}


def seed_gaps(metric: str, rows: StudyRows, target: str, cross: str, by_seed: dict[int, dict]) -> list[float]:
    """The per-seed self − cross gaps of one pair on ``metric`` (seeds in order): the paired
    micro-average accuracy difference, or the difference of the two predictors' kappa."""
    if metric == "micro_average":
        return [
            float(np.mean(np.asarray(s, dtype=int) - np.asarray(c, dtype=int)))
            for per_prop in by_seed.values()
            if MICRO in per_prop
            for s, c in [per_prop[MICRO]]
            if len(s)
        ]
    kappas = micro_pairs(rows.results, "kappa").get((target, cross), {})
    return [
        own - other
        for seed in by_seed
        if seed in kappas
        for own, other in [kappas[seed]]
        if math.isfinite(own) and math.isfinite(other)
    ]


def verdicts(config: StudyConfig, rows: StudyRows, metric: str | None = None) -> list[Verdict]:
    """The pre-registered headline (inward.analysis.verdict), one per (target, cross predictor):
    the paired self − cross gap on the declared metric (or ``metric``) per training seed, with
    each predictor's learning gate (accuracy against its mode baseline)."""
    metric = metric or config.verdict.metric
    out = []
    for (target, _, cross), by_seed in rows.paired.items():
        gaps = seed_gaps(metric, rows, target, cross, by_seed)
        gates = [
            gate(name, [r["accuracy"] for r in micro], [r["mode_baseline"] for r in micro])
            for name, label, predictor in (("self-predictor", "self", target), ("cross-predictor", "cross", cross))
            for micro in [
                [
                    r
                    for r in rows.results
                    if r["label"] == label
                    and r["response_property"] == MICRO
                    and base_model(r["meta_model"]) == predictor
                    and base_model(r["object_model"]) == target
                ]
            ]
            if micro
        ]
        out.append(Verdict(target, cross, infer(gaps, margin=config.verdict.margin, gates=gates)))
    return out


def verdict_sentences(config: StudyConfig, found: list[Verdict], rows: StudyRows | None = None) -> list[str]:
    """One sentence per pair, and for a matrix one per target over all its predictors; then each
    declared secondary outcome (``verdict.secondary``) per pair, with its own 95% interval."""
    scoring = config.verdict.scoring or config.scoring
    metric = config.verdict.metric
    sentences = [
        f"{v.target} self-trained vs {v.cross} cross-trained ({METRIC_NAMES[metric]}, "
        f"{scoring} scoring): {v.inference.sentence()}"
        for v in found
    ]
    if len(config.pairs) > 1:
        sentences += target_verdicts([(v.target, v.cross, v.inference) for v in found])
    for other in config.verdict.secondary:
        if other == metric or rows is None:
            continue
        for v in verdicts(config, rows, other):
            i = v.inference
            if i.seeds < 2:
                continue
            sentences.append(
                f"Secondary (declared, not the verdict): {v.target} self-trained vs {v.cross} cross-trained, "
                f"self − cross on {METRIC_NAMES[other]}: "
                f"{100 * i.mean:+.1f} points, 95% interval [{100 * i.lower95:+.1f}, {100 * i.upper95:+.1f}] "
                f"over {i.seeds} seeds."
            )
    return sentences


def study_notes(
    config: StudyConfig,
    rows: StudyRows,
    summary: StudySummary,
    other_scoring: str,
    models: dict[str, Any],
    stages: dict[str, dict],
) -> list[str]:
    return (
        summary.verdicts
        + N.result_notes(rows.results, rows.comparisons)
        + N.evidence_notes(rows.evidence)
        + N.scoring_notes(summary.other_results, other_scoring)
        + N.unmatchable_notes(rows.unmatchable)
        + [n for o in summary.outputs.values() for n in o.notes]
        + N.first_seed_only_notes(config)
        + rows.warnings
        + N.chat_format_notes(rows.chat_formats)
        + N.determinism_notes(models)
        + N.stage_notes(stages)
    )


def write_tables(run: RunDir, config: StudyConfig, rows: StudyRows, summary: StudySummary, other_scoring: str) -> None:
    """Every CSV of the study (each experiment's own from its outputs)."""
    results = C.RESULTS.seeded().csv()
    run.write_csv(f"results_{other_scoring}.csv", summary.other_results, results)
    run.write_csv("results.csv", rows.results, results)
    run.write_csv("results_by_task.csv", rows.by_task, C.BY_TASK.seeded().csv())
    run.write_csv("comparisons.csv", rows.comparisons, C.COMPARISONS.seeded().csv())
    run.write_csv("evidence.csv", rows.evidence, EVIDENCE_COLUMNS)
    run.write_csv("seed_summary.csv", summary.seed_summary, SEED_SUMMARY_COLUMNS)
    run.write_csv("seed_comparisons.csv", summary.gaps, GAP_COLUMNS)
    run.write_csv("matrix.csv", summary.matrix, MATRIX_COLUMNS)
    for out in summary.outputs.values():
        for name, table, columns in out.csvs:
            run.write_csv(name, table, columns)
    if rows.chat_formats:
        run.write_csv("chat_formats.csv", rows.chat_formats, CHAT_FORMAT_COLUMNS)


def study_figures(config: StudyConfig, rows: StudyRows, summary: StudySummary) -> dict[str, bytes]:
    """Every figure of the study, by file stem."""
    from inward.experiments.context import slug
    from inward.report import figures as fig

    c, first, figures = config, config.first_seed, {}
    for m1 in dict.fromkeys(r["object_model"] for r in rows.results if r["label"] == "untrained"):
        mine = [r for r in summary.seed_summary if r["target"] == base_model(m1)]
        figures[f"accuracy_{slug(m1)}"] = fig.seed_bars(
            mine,
            title=f"Predicting held-out behaviour of {m1} (and its self-trained versions): "
            f"mean over {len(c.seeds)} training seed(s)",
        )
    if summary.verdict_details:
        figures["verdict"] = fig.verdict_plot(summary.verdict_details, METRIC_NAMES[config.verdict.metric])
    figures["compliance"] = fig.compliance_bars([r for r in rows.results if r["seed"] in (None, first)])
    for e in enabled(config):
        figures.update(e.figures(config, rows, summary.experiments[e.name]))
    return figures


def write_figures(run: RunDir, figures: dict[str, bytes]) -> None:
    for name, png in figures.items():
        run.file("figures").mkdir(exist_ok=True)
        (run.file("figures") / f"{name}.png").write_bytes(png)


def study_report(
    config: StudyConfig, rows: StudyRows, summary: StudySummary, manifest: dict, figures: dict[str, bytes]
) -> str:
    from inward.report.html import render_report

    c = config
    return render_report(
        title=f"inward study: {c.name}",
        results=rows.results,
        comparisons=rows.comparisons,
        by_task=rows.by_task,
        examples=rows.examples,
        config=c.model_dump(mode="json", by_alias=True),
        verdicts=summary.verdicts,
        seed_summary=summary.seed_summary,
        gaps=summary.gaps,
        matrix=summary.matrix,
        manifest={**manifest, "versions": manifest["environment"]["versions"]},
        figures=figures,
        verdict_parts=[x for o in summary.outputs.values() for x in o.verdict_parts],
        experiment_sections=[s for o in summary.outputs.values() for s in o.sections],
    )
