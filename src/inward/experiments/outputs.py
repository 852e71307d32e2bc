"""A study's outputs from its rows: the CSVs, the figures, the notes, run.json's tables and
``report.html``. The study's stages fill a :class:`StudyRows`; :func:`summarise` derives the
over-seeds tables and the verdict from it (pure); :func:`write_study_outputs` writes them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inward.analysis.positive_control import COLUMNS as CONTROL_COLUMNS
from inward.analysis.positive_control import control_verdicts
from inward.analysis.results import MICRO, results_table
from inward.analysis.seeds import (
    GAP_COLUMNS,
    MATRIX_COLUMNS,
    SEED_SUMMARY_COLUMNS,
    base_model,
    gap_summary,
    matrix_table,
    seed_summary,
)
from inward.analysis.verdict import gate, infer, target_verdicts
from inward.experiments import notes as N
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
    from inward.analysis.calibration import seeded_agreement_table, seeded_calibration_table
    from inward.analysis.probes import probe_contrast, probe_summary

    other = [
        {"seed": seed, **row, "object_fingerprint": fps[0], "meta_fingerprint": fps[1]}
        for (setup, seed), (scored, fps) in rows.other.items()
        for row in results_table(scored, label=setup.split("-")[0])
    ]
    summary = seed_summary(rows.results)
    gaps = gap_summary(rows.paired)
    found = verdicts(config, rows)
    cal = config.calibration
    probes = [asdict(r) for r in rows.probes]
    return StudySummary(
        other_results=other,
        seed_summary=summary,
        gaps=gaps,
        matrix=matrix_table(summary),
        verdicts=verdict_sentences(config, found) + control_verdicts(rows.positive_control, config.verdict.margin),
        verdict_details=[{"target": v.target, "cross_predictor": v.cross, **v.inference.to_json()} for v in found],
        calibration=seeded_calibration_table(rows.calibration, top=cal.top_behaviours, bins=cal.bins)
        if cal is not None
        else [],
        agreement=seeded_agreement_table(rows.calibration, samples=cal.samples, top=cal.top_behaviours, bins=cal.bins)
        if cal is not None
        else [],
        scaling=[asdict(r) for r in rows.scaling],
        probes=probes,
        probe_summary=probe_summary(probes, MICRO) if config.probes is not None else [],
        probe_contrast=probe_contrast(probes, MICRO) if config.probes is not None else [],
    )


def verdicts(config: StudyConfig, rows: StudyRows) -> list[Verdict]:
    """The pre-registered headline (inward.analysis.verdict), one per (target, cross predictor):
    the paired self − cross gap on the micro average per training seed, with each predictor's
    learning gate."""
    out = []
    for (target, _, cross), by_seed in rows.paired.items():
        gaps = [
            float(np.mean(np.asarray(s, dtype=int) - np.asarray(c, dtype=int)))
            for per_prop in by_seed.values()
            if MICRO in per_prop
            for s, c in [per_prop[MICRO]]
            if len(s)
        ]
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


def verdict_sentences(config: StudyConfig, found: list[Verdict]) -> list[str]:
    """One sentence per pair, and for a matrix one per target over all its predictors."""
    scoring = config.verdict.scoring or config.scoring
    sentences = [
        f"{v.target} self-trained vs {v.cross} cross-trained ({config.verdict.metric.replace('_', ' ')}, "
        f"{scoring} scoring): {v.inference.sentence()}"
        for v in found
    ]
    if len(config.pairs) > 1:
        sentences += target_verdicts([(v.target, v.cross, v.inference) for v in found])
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
        + N.experiment_notes(
            config, rows, summary.agreement, summary.calibration, summary.probe_summary, summary.probe_contrast
        )
        + N.determinism_notes(models)
        + N.stage_notes(stages)
    )


def write_tables(run: RunDir, config: StudyConfig, rows: StudyRows, summary: StudySummary, other_scoring: str) -> None:
    """Every CSV of the study (the optional experiments' only when their section is on)."""
    from inward.analysis.calibration import AGREEMENT_COLUMNS

    results = C.RESULTS.seeded().csv()
    run.write_csv(f"results_{other_scoring}.csv", summary.other_results, results)
    run.write_csv("results.csv", rows.results, results)
    run.write_csv("results_by_task.csv", rows.by_task, C.BY_TASK.seeded().csv())
    run.write_csv("comparisons.csv", rows.comparisons, C.COMPARISONS.seeded().csv())
    run.write_csv("evidence.csv", rows.evidence, EVIDENCE_COLUMNS)
    run.write_csv("seed_summary.csv", summary.seed_summary, SEED_SUMMARY_COLUMNS)
    run.write_csv("seed_comparisons.csv", summary.gaps, GAP_COLUMNS)
    run.write_csv("matrix.csv", summary.matrix, MATRIX_COLUMNS)
    if config.calibration is not None:
        run.write_csv("calibration.csv", summary.calibration, C.CALIBRATION.seeded().csv())
        run.write_csv("calibration_agreement.csv", summary.agreement, ("seed", *AGREEMENT_COLUMNS))
    if config.behaviour_change is not None:
        run.write_csv("behaviour_change.csv", rows.behaviour_change, C.STUDY_BEHAVIOUR_CHANGE.csv())
    if config.scaling is not None:
        run.write_csv("scaling.csv", summary.scaling, C.SCALING.csv())
    from inward.analysis.probes import SIMULATION_COLUMNS

    run.write_csv("self_simulation.csv", rows.simulation, SIMULATION_COLUMNS)
    if rows.positive_control:
        run.write_csv("positive_control.csv", [asdict(r) for r in rows.positive_control], CONTROL_COLUMNS)
    if config.probes is not None:
        from inward.analysis.probes import CONTRAST_COLUMNS, PROBE_COLUMNS, SUMMARY_COLUMNS

        run.write_csv("probes.csv", summary.probes, PROBE_COLUMNS)
        run.write_csv("probe_summary.csv", summary.probe_summary, SUMMARY_COLUMNS)
        run.write_csv("probe_contrast.csv", summary.probe_contrast, CONTRAST_COLUMNS)
    if rows.chat_formats:
        run.write_csv("chat_formats.csv", rows.chat_formats, CHAT_FORMAT_COLUMNS)


def study_figures(config: StudyConfig, rows: StudyRows, summary: StudySummary) -> dict[str, bytes]:
    """Every figure of the study, by file stem."""
    from inward.analysis.calibration import calibration_curves
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
        figures["verdict"] = fig.verdict_plot(summary.verdict_details)
    figures["compliance"] = fig.compliance_bars([r for r in rows.results if r["seed"] in (None, first)])
    targets = list(dict.fromkeys(p.self_model for p in c.pairs))
    if c.calibration is not None:
        cal = c.calibration
        drawn = [r for seed, records in rows.calibration if seed in (None, first) for r in records]
        all_curves = calibration_curves(drawn, top=cal.top_behaviours, bins=cal.bins)
        for m1 in targets:
            for prop in cal.properties:
                mine = [x for x in all_curves if x["response_property"] == prop and _of_target(x["object_model"], m1)]
                figures[f"calibration_{slug(m1)}_{prop}"] = fig.calibration_curves(
                    mine,
                    title=f"Calibration, {cal.task}/{prop}, {m1} (top {cal.top_behaviours}, "
                    f"{cal.bins} bins; training seed {first})",
                )
    if c.behaviour_change is not None:
        for m1 in targets:
            mine = [r for r in rows.behaviour_change if _of_target(r["old_model"], m1) and r["seed"] == first]
            shift = mine[0]["shift_model"] if mine else "?"
            figures[f"behaviour_change_{slug(m1)}"] = fig.behaviour_change_bars(
                mine,
                title=f"Behaviour change: {m1} self-trained (seed {first}), then finetuned on "
                f"{shift}'s answers; its hypotheticals on held-out items whose behaviour shifted",
            )
    if c.scaling is not None:
        for pair in c.pairs:
            mine = [
                r
                for r in summary.scaling
                if _of_target(r["target"], pair.self_model)
                and (r["label"] == "self" or r["predictor"].startswith(pair.cross_model))
                and r["seed"] == first
            ]
            figures[f"scaling_{slug(pair.self_model)}_{slug(pair.cross_model)}"] = fig.scaling_curve(
                mine,
                title=f"Cross-prediction data scaling: {pair.cross_model} predicting "
                f"{pair.self_model} self-trained (seed {first})",
            )
    if c.probes is not None:
        for pair in c.pairs:
            mine = [
                r
                for r in summary.probe_summary
                if r["target"] == pair.self_model and r["cross_model"] == pair.cross_model
            ]
            figures[f"probes_{slug(pair.self_model)}_{slug(pair.cross_model)}"] = fig.probe_layers(
                mine,
                title=f"Linear probes for {pair.self_model} self-trained's behaviour, by depth: its own "
                f"states vs {pair.cross_model} cross-trained ({len(c.seeds)} training seed(s))",
            )
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
        calibration=summary.calibration if c.calibration is not None else None,
        agreement=summary.agreement,
        behaviour_change=rows.behaviour_change if c.behaviour_change is not None else None,
        scaling=summary.scaling if c.scaling is not None else None,
        probes=(summary.probe_summary, summary.probe_contrast) if c.probes is not None else None,
        simulation=rows.simulation,
    )


def _of_target(model: str, m1: str) -> bool:
    """Whether ``model`` is M1 or one of its adapters (a finetuned version of it)."""
    return model == m1 or model.startswith(m1 + "+lora:")
