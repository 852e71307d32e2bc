"""The rows a study collects as its stages run (:class:`StudyRows`) and the tables derived from
them once every stage has run (:class:`StudySummary`): the records between the study's stages
and its outputs (:mod:`inward.experiments.outputs`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inward.analysis.calibration import SeedRecords
from inward.analysis.positive_control import ControlRow
from inward.analysis.probes import ProbeRow
from inward.analysis.results import results_by_task, results_table
from inward.analysis.scaling import ScalingRow
from inward.properties.normalise import clean_answer
from inward.records import ScoredRecord

if TYPE_CHECKING:
    from inward.report.html import Section

EVIDENCE_COLUMNS = ("seed", "target", "cross_model", "task", "property", "self_examples", "cross_examples", "dropped")
CHAT_FORMAT_COLUMNS = ("model", "about", "chat_format", "label_loss", "answer_loss", "end_loss", "n_examples", "chosen")


@dataclass
class StudyRows:
    """Everything a study's stages produced that its tables are built from. Every field exists
    from the start (empty when its section is off), so nothing depends on which stage ran first."""

    example_seed: int
    results: list[dict] = field(default_factory=list)  # results.csv (seed None: untrained setups)
    by_task: list[dict] = field(default_factory=list)
    comparisons: list[dict] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)  # sample outputs of the first seed
    # the other answer normalisation's scored rows and the setup's two fingerprints, by (setup,
    # seed): results_<other>.csv
    other: dict[tuple[str, int | None], tuple[list[ScoredRecord], tuple[str, str]]] = field(default_factory=dict)
    # (M1, M1 self-predictor, M2) -> seed -> property -> paired correctness (seed-level tests)
    paired: dict[tuple[str, str, str], dict[int, dict]] = field(default_factory=dict)
    evidence: list[dict] = field(default_factory=list)  # per seed, target, task, property
    training: list[dict] = field(default_factory=list)
    chat_formats: list[dict] = field(default_factory=list)
    calibration: list[SeedRecords] = field(default_factory=list)
    behaviour_change: list[dict] = field(default_factory=list)
    scaling: list[ScalingRow] = field(default_factory=list)
    probes: list[ProbeRow] = field(default_factory=list)
    simulation: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    positive_control: list[ControlRow] = field(default_factory=list)
    # per setup and property: evaluable rows whose object value no cleaned answer can equal
    unmatchable: list[dict] = field(default_factory=list)

    def add_results(
        self, rows: list[ScoredRecord], label: str, seed: int | None, fingerprints: tuple[str, str] = ("", "")
    ) -> None:
        """A setup's scored rows; ``fingerprints``: its object model's and predictor's short
        fingerprints (inward.store.stages.short_fingerprint)."""
        fp = {"object_fingerprint": fingerprints[0], "meta_fingerprint": fingerprints[1]}
        self.results += [{"seed": seed, **r, **fp} for r in results_table(rows, label=label)]
        self.by_task += [{"seed": seed, **r, **fp} for r in results_by_task(rows, label=label)]
        self.unmatchable += unmatchable_rows(rows, label, seed)
        if label != "untrained" and seed == self.example_seed:
            self.examples += _examples(rows, label)


def unmatchable_rows(rows: list[ScoredRecord], label: str, seed: int | None) -> list[dict]:
    """Per property: how many evaluable rows have an object value that no answer can equal after
    the answer's cleaning (the paper's scoring keeps punctuation on the object side only, so a
    comma-separated response's first_word "goat," is never matched by "goat")."""
    out: dict[str, dict] = {}
    for r in rows:
        if not r.evaluable:
            continue
        row = out.setdefault(
            r.property,
            {
                "seed": seed,
                "label": label,
                "object_model": r.object_model,
                "property": r.property,
                "unmatchable": 0,
                "evaluable": 0,
            },
        )
        assert r.object_clean is not None  # scoring.score sets it on every evaluable row
        row["evaluable"] += 1
        row["unmatchable"] += clean_answer(r.object_clean) != r.object_clean
    return list(out.values())


Tables = dict[str, list[dict[str, Any]]]
"""An experiment's derived tables by name (run.json and the report read them)."""


@dataclass
class Outputs:
    """What one experiment adds to a study's outputs."""

    csvs: list[tuple[str, Sequence[dict[str, Any]], Sequence[str]]] = field(default_factory=list)  # file, rows, columns
    notes: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)  # lines read beside the headline verdict
    verdict_parts: list[dict[str, Any]] = field(default_factory=list)  # report parts under the verdict
    sections: list[Section] = field(default_factory=list)  # report sections of its own


@dataclass
class StudySummary:
    """The tables derived from a study's rows once every stage has run."""

    other_results: list[dict]
    seed_summary: list[dict]
    gaps: list[dict]
    matrix: list[dict]
    verdicts: list[str]
    verdict_details: list[dict]  # inward.analysis.verdict.Verdict.to_json per pair, with target and cross predictor
    experiments: dict[str, dict[str, list[dict]]]  # each switched-on experiment's tables, by its name
    outputs: dict[str, Outputs]  # each switched-on experiment's CSVs, notes, verdict lines and sections


def _examples(rows: list[ScoredRecord], label: str, k: int = 8) -> list[dict]:
    chosen = [r for r in rows if r.evaluable][:k]
    return [
        {
            "task": r.task,
            "property": r.property,
            "string": r.string,
            "object_response": r.object_response,
            "object_value": r.object_value,
            "answer": r.answer,
            "correct": r.correct,
            "label": label,
        }
        for r in chosen
    ]
