"""White-box probes, for one training seed of a study.

Rows:

- **train rows**: the (task, property, string) items the self- and cross-predictors trained on
  (the cross data: the self-predictor's items where M1ft's answer has a value), labelled with the
  property of M1ft's own answer to that train-task string;
- **test rows**: the held-out rows of the self evaluation (evaluable, ``identity`` left out),
  labelled with the property of M1ft's answer, the same value the finetuned predictors are
  scored against.

Sources (activations at the last prompt token; see ``LocalBackend.hidden_states``):

- ``self/object``: M1ft on the object-level prompt, before it answers (an upper reference: the
  answer is computed from this state);
- ``self/hypothetical``: M1ft on the hypothetical prompt;
- ``cross/hypothetical``: M2ft (the cross-trained model) on the same hypothetical prompt.

The self-simulation split, once part of this section, runs with every study:
:mod:`inward.experiments.self_simulation`.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inward.analysis.probes import ProbeRow, ProbeSettings, score_probe
from inward.analysis.results import MICRO
from inward.analysis.scoring import object_value
from inward.analysis.stats import DEGENERATE_SHARE, beats_mode_p
from inward.errors import InwardError
from inward.experiments.plugin import Plugin
from inward.progress import progress_bar
from inward.prompts import hypothetical_prompt, object_prompt
from inward.properties import clean_object_value
from inward.properties.registry import resolve_property
from inward.records import ObjectRecord, ScoredRecord
from inward.store import activations as store
from inward.store.stages import content_hash
from inward.train.examples import TrainExample

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig

SELF_OBJECT, SELF_HYPOTHETICAL, CROSS_HYPOTHETICAL = (
    ("self", "object"),
    ("self", "hypothetical"),
    ("cross", "hypothetical"),
)


Key = tuple[str, str, str]  # (task, property, string)


@dataclass(frozen=True)
class Row:
    """A probed row: its key and M1ft's (cleaned) property value."""

    task: str
    property: str
    string: str
    value: str

    @builtins.property  # plain ``property`` here would name the field above, for type checkers
    def key(self) -> Key:
        return (self.task, self.property, self.string)


def train_rows(items: Sequence[TrainExample], objects: Sequence[ObjectRecord], scoring: str) -> list[Row]:
    """The training items, labelled with the property of ``objects``' model's answer, cleaned as
    the scorer cleans object values (``scoring``), so train and test labels are alike."""
    by_key = {(o.task, o.string): o for o in objects}
    rows = []
    for item in items:
        task, prop, string = item.meta["task"], item.meta["property"], item.meta["string"]
        obj = by_key.get((task, string))
        if obj is None:
            continue
        value = object_value(obj, resolve_property(prop, task))
        if value is not None:
            rows.append(Row(task, prop, string, clean_object_value(value, scoring)))
    return rows


def held_out_rows(scored: Sequence[ScoredRecord]) -> list[Row]:
    return [
        Row(r.task, r.property, r.string, r.object_clean)
        for r in scored
        if r.evaluable and r.property != "identity" and r.object_clean is not None
    ]


def layers_at(depths: Sequence[float], n_layers: int) -> dict[int, float]:
    """Hidden-state index -> the relative depth it stands for (first depth wins on a tie)."""
    out: dict[int, float] = {}
    for d in depths:
        out.setdefault(round(d * n_layers), round(d, 4))
    return dict(sorted(out.items()))


def collect(
    backend,
    model_id: dict,
    shown: str,
    prompt_kind: str,
    rows: Sequence[Row],
    depths: Sequence[float],
    tasks: dict,
    reuse: Callable,
    save_to,
) -> tuple[store.Activations, dict[int, float]]:
    """Activations of ``backend`` for ``rows`` (object prompts: one per (task, string)), reused
    from ``save_to`` when its stage key matches."""
    if not hasattr(backend, "hidden_states"):
        raise InwardError(
            f"Probes need a local model's activations (bundled/, hf/ or gguf/ models); {shown} runs on "
            f"{type(backend).__name__}. Drop the probes section or use local models."
        )
    layer_depth = layers_at(depths, backend.num_layers())
    keys: list[tuple[str, ...]]  # (task, string) or (task, property, string): store.Activations.rows
    if prompt_kind == "object":
        keys = list(dict.fromkeys((r.task, r.string) for r in rows))
        prompts = [object_prompt(tasks[t], s) for t, s in keys]
    else:
        keys = list(dict.fromkeys(r.key for r in rows))
        prompts = [hypothetical_prompt(tasks[t], p, s) for t, p, s in keys]
    facts = {
        "stage": "activations",
        "model": model_id,
        "prompt": prompt_kind,
        "layers": list(layer_depth),
        "rows": content_hash([list(k) for k in keys]),
    }

    def compute() -> store.Activations:
        with progress_bar(len(prompts), f"activations {shown} ({prompt_kind})") as bar:
            values = backend.hidden_states(prompts, list(layer_depth), progress=bar)
        return store.Activations(shown, prompt_kind, tuple(layer_depth), tuple(keys), values)

    return reuse(save_to, facts, compute), layer_depth


def features(acts: store.Activations, layer: int, rows: Sequence[Row]) -> np.ndarray:
    index = store.row_index(acts.rows)
    pick = [index[(r.task, r.string) if acts.prompt == "object" else r.key] for r in rows]
    return acts.at(layer)[pick]


def probe_table(
    seed: int,
    target: str,
    cross_model: str,
    sources: dict[str, tuple[str, store.Activations, dict[int, float]]],
    train: Sequence[Row],
    test: Sequence[Row],
    self_rows: Sequence[ScoredRecord],
    cross_rows: Sequence[ScoredRecord],
    settings: ProbeSettings,
) -> list[ProbeRow]:
    """Every (source, layer, property) probe and the micro average per (source, layer)."""
    correct_self = {(r.task, r.property, r.string): bool(r.correct) for r in self_rows}
    correct_cross = {(r.task, r.property, r.string): bool(r.correct) for r in cross_rows}
    props = [p for p in dict.fromkeys(r.property for r in test) if any(t.property == p for t in train)]
    out: list[ProbeRow] = []
    for source, (model, acts, layer_depth) in sources.items():
        for layer, depth in layer_depth.items():
            pooled: dict[str, list] = defaultdict(list)
            for prop in props:
                tr = [r for r in train if r.property == prop]
                te = [r for r in test if r.property == prop]
                s = score_probe(
                    prop,
                    features(acts, layer, tr),
                    [r.value for r in tr],
                    features(acts, layer, te),
                    [r.value for r in te],
                    [(r.task, r.property) for r in te],
                    settings,
                )
                self_c = [correct_self.get(r.key, False) for r in te]
                cross_c = [correct_cross.get(r.key, False) for r in te]
                out.append(
                    ProbeRow(
                        seed,
                        target,
                        cross_model,
                        source,
                        model,
                        layer,
                        depth,
                        prop,
                        s.accuracy,
                        s.mode_baseline,
                        beats_mode_p(s.correct, s.mode_correct),
                        _mean(self_c),
                        _mean(cross_c),
                        s.n_train,
                        s.n_test,
                        s.classes,
                        s.c,
                        s.top_answer_share,
                        bool(s.top_answer_share > DEGENERATE_SHARE),
                    )
                )
                for name, vals in (
                    ("correct", s.correct),
                    ("mode", s.mode_correct),
                    ("self", self_c),
                    ("cross", cross_c),
                ):
                    pooled[name] += list(vals)
                pooled["n_train"].append(s.n_train)
            if pooled["correct"]:
                out.append(
                    ProbeRow(
                        seed,
                        target,
                        cross_model,
                        source,
                        model,
                        layer,
                        depth,
                        MICRO,
                        _mean(pooled["correct"]),
                        _mean(pooled["mode"]),
                        beats_mode_p(pooled["correct"], pooled["mode"]),
                        _mean(pooled["self"]),
                        _mean(pooled["cross"]),
                        sum(pooled["n_train"]),
                        len(pooled["correct"]),
                        None,
                        None,
                        None,
                        None,
                    )
                )
    return out


def _mean(xs: Sequence[bool]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def run_probes(
    ctx: Study,
    m1: str,
    m1ft: str,
    m2: str,
    m2ft: str,
    cross_data: list[TrainExample],
    ft_train: list[ObjectRecord],
    self_rows: list[ScoredRecord],
    cross_rows: list[ScoredRecord],
    seed: int,
) -> list[ProbeRow]:
    """The study's probes section for one pair and training seed: activations of each source
    (keyed, reused by content), then the probes fitted on them (keyed)."""
    from inward.experiments.context import prefix, slug

    sec, pre, s1, tag = ctx.config.probes, prefix(seed), slug(m1), f"seed {seed}: "
    assert sec is not None  # the plugin runs only when the probes section is set
    train, test = train_rows(cross_data, ft_train, ctx.config.scoring), held_out_rows(self_rows)
    tasks = {**ctx.train_tasks, **ctx.held_out}

    def reuse(rel: str, facts: dict, compute):
        if ctx.keys.reusable(rel, facts):
            return store.load(ctx.run.file(rel))
        acts = compute()
        store.save(ctx.run.file(rel), acts)
        ctx.keys.record(rel, facts)
        return acts

    sources, facts = {}, []
    plan = (
        (SELF_OBJECT, m1ft, "self"),
        (SELF_HYPOTHETICAL, m1ft, "self"),
        (CROSS_HYPOTHETICAL, m2ft, f"cross-{slug(m2)}"),
    )
    for (role, kind), model, stem in plan:
        rel = f"{pre}probes/{s1}/{stem}-{kind}.safetensors"
        with ctx.stage(f"{tag}probe activations, {role}/{kind}, {ctx.shown(model)}"):
            acts, layers = collect(
                ctx.backend(model),
                ctx.model_id(model),
                ctx.shown(model),
                kind,
                [*train, *test],
                sec.depths,
                tasks,
                reuse,
                rel,
            )
        sources[f"{role}/{kind}"] = (ctx.shown(model), acts, layers)
        facts.append(ctx.keys.digests[rel])
        if model == m1ft and kind == "hypothetical":
            ctx.release(m1ft)  # before M2ft loads
    ctx.release(m2ft)
    settings = ProbeSettings(top_k=sec.top_k, folds=sec.folds, n_cs=sec.n_cs, seed=seed)
    with ctx.stage(f"{tag}probes fitted, {m2} and {m1} self-trained"):
        return ctx.records(
            f"{pre}probes/{s1}/probes-{slug(m2)}.jsonl",
            ProbeRow,
            lambda: probe_table(seed, m1, m2, sources, train, test, self_rows, cross_rows, settings),
            {
                "stage": "probes",
                "activations": facts,
                "train": content_hash(train),
                "test": content_hash(test),
                "settings": settings,
                "self_rows": content_hash(self_rows),
                "cross_rows": content_hash(cross_rows),
            },
        )


class ProbesExperiment(Plugin):
    """Probes as a study plugin (config section ``probes``): linear probes for every
    cross-predictor of the target, every seed."""

    name = "probes"

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        for cross in out.cross:
            ctx.rows.probes += run_probes(
                ctx,
                out.target,
                out.self_trained,
                cross.model,
                cross.trained,
                cross.examples,
                out.train_objects,
                out.self_rows,
                cross.rows,
                out.seed,
            )

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        from dataclasses import asdict

        from inward.analysis.probes import probe_contrast, probe_summary

        probes = [asdict(r) for r in rows.probes]
        return {
            "probes": probes,
            "probe_summary": probe_summary(probes, MICRO),
            "probe_contrast": probe_contrast(probes, MICRO),
        }

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        from inward.analysis.probes import CONTRAST_COLUMNS, PROBE_COLUMNS, SUMMARY_COLUMNS
        from inward.experiments import notes as N
        from inward.experiments.rows import Outputs
        from inward.report.html import PROBE_CONTRAST, PROBE_SUMMARY, Section, part, table

        summary, contrast = tables["probe_summary"], tables["probe_contrast"]
        section = Section(
            "White-box probes",
            [
                part(table(PROBE_SUMMARY, summary), intro=PROBES_INTRO),
                part(
                    table(PROBE_CONTRAST, contrast), sub="Own hypothetical-prompt state vs the cross model's, by depth"
                ),
            ],
        )
        return Outputs(
            csvs=[
                ("probes.csv", tables["probes"], PROBE_COLUMNS),
                ("probe_summary.csv", summary, SUMMARY_COLUMNS),
                ("probe_contrast.csv", contrast, CONTRAST_COLUMNS),
            ],
            notes=N.probe_notes(summary, contrast),
            sections=[section],
        )

    def figures(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> dict[str, bytes]:
        from inward.experiments.context import slug
        from inward.report import figures as fig

        summary, figures = tables["probe_summary"], dict[str, bytes]()
        for pair in config.pairs:
            mine = [r for r in summary if r["target"] == pair.self_model and r["cross_model"] == pair.cross_model]
            figures[f"probes_{slug(pair.self_model)}_{slug(pair.cross_model)}"] = fig.probe_layers(
                mine,
                title=f"Linear probes for {pair.self_model} self-trained's behaviour, by depth: its own "
                f"states vs {pair.cross_model} cross-trained ({len(config.seeds)} training seed(s))",
            )
        return figures


PROBES_INTRO = (
    "Linear probes (standardised features, logistic regression with cross-validated "
    "regularisation) on the residual stream at the last prompt token, fitted on the train-task items "
    "the predictors trained on and scored on the held-out rows against the self-trained model's "
    "actual property values (exact values; the probe's 'other' class never counts as right). "
    "Sources: the self-trained model on the object-level prompt (the state its answer is computed "
    "from: a ceiling for what is linearly readable), and the self-trained and cross-trained models on "
    "the same hypothetical prompt. Means over training seeds; the finetuned predictors and the mode "
    "baseline are scored on the same rows."
)
