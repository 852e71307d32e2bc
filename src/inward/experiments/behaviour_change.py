"""Experiment 2 (spec §1.8): build M_C, collect what the analysis needs, and run the study's
behaviour-change section for one target and training seed (:func:`run_behaviour_change`).

M_C is the self-trained M1ft finetuned *further*. The trainer trains a fresh LoRA adapter on a
base checkpoint (it refuses a model that already has one), so M1ft's adapter is first merged into
M1's weights and saved as a plain safetensors checkpoint; M_C is then
``hf/<that checkpoint>+lora:<shift adapter>``. The checkpoint holds the very weights the local
backend runs M1ft with (merged in float32, rounded once to the backend's dtype), so M_C starts from
exactly M1ft's behaviour. It is saved in that dtype when the shift finetune trains in the same one
(bf16 on this machine: 1.3 GB for Qwen 0.5B instead of 2.5 GB), else in float32 (:func:`merge_dtype`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inward.analysis.behaviour_change import shift_status, shifted_keys
from inward.errors import InwardError
from inward.experiments.evaluate import collect_hypotheticals
from inward.experiments.plugin import Plugin
from inward.properties.registry import Property
from inward.records import HypotheticalRecord, ObjectRecord, ScoredRecord
from inward.store.cache import CachedModel
from inward.tasks import Task

if TYPE_CHECKING:
    from inward.experiments.context import Study
    from inward.experiments.plugin import SeedOutputs
    from inward.experiments.rows import Outputs, StudyRows, Tables
    from inward.experiments.study_config import StudyConfig

MERGED_MARKER = "merged.json"


def merge_dtype(model_dtype: str, train_dtype: str) -> str:
    """The dtype of M1ft's merged checkpoint: the backend's (``model_dtype``) when the shift
    finetune trains in that same dtype, so both load exactly the weights the backend runs M1ft
    with; float32 otherwise, so neither rounds twice."""
    return model_dtype if model_dtype == train_dtype else "float32"


def merge_adapter_checkpoint(model_string: str, out_dir: Path, dtype: str = "float32") -> str:
    """Save ``<base>+lora:<adapter>`` merged as a plain checkpoint in ``out_dir``, its weights in
    ``dtype`` exactly as the local backend runs that model in ``dtype``
    (adapter merged in float32, rounded once); return its ``hf/`` model string. Skipped when
    ``out_dir`` already holds a finished merge of this adapter in this dtype (marker written
    last; a marker without a dtype is from before the dtype was chosen: float32)."""
    import json

    from inward.models import parse_model_string
    from inward.models.checkpoint import Checkpoint
    from inward.models.local import release_memory
    from inward.models.paths import file_sha256

    out_dir = Path(out_dir).resolve()
    result = f"hf/{out_dir}"
    spec = parse_model_string(model_string)
    if spec.adapter is None:
        raise InwardError(f"merge_adapter_checkpoint needs a model with a +lora: adapter, got {model_string!r}.")
    adapter_files = sorted(Path(spec.adapter).expanduser().glob("*.safetensors"))
    identity = {"from": spec.base, "adapter_sha256": [file_sha256(f) for f in adapter_files], "dtype": dtype}
    try:  # reuse a finished merge only of this very adapter (a retrained one merges again)
        done = {"dtype": "float32", **json.loads((out_dir / MERGED_MARKER).read_text())}
        if {k: done.get(k) for k in identity} == identity:
            return result
    except (OSError, ValueError):
        pass
    checkpoint = Checkpoint(spec)  # the weights the local backend runs the model with, in dtype
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = checkpoint.load(dtype)
    checkpoint.save(model, tmp)  # with the base's tokenizer, chat template and generation config
    del model  # 1.3-2.5 GB for Qwen 0.5B
    release_memory()
    (tmp / MERGED_MARKER).write_text(json.dumps(identity) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return result


def shifted_hypotheticals(
    predictor: CachedModel,
    old: list[ObjectRecord],
    new: list[ObjectRecord],
    tasks: dict[str, Task],
    props: dict[str, list[Property]],
    scoring: str,
) -> list[HypotheticalRecord]:
    """M_C's hypothetical answers, asked only where its behaviour shifted (the only items scored)."""
    keys = set(shifted_keys(shift_status(old, new, props, scoring)))
    records: list[HypotheticalRecord] = []
    for task_name, task_props in props.items():
        for prop in task_props:
            objs = [o for o in new if o.task == task_name and (task_name, prop.name, o.string) in keys]
            if objs:
                records += collect_hypotheticals(predictor, objs, tasks, {task_name: [prop]})
    return records


# -- the study's behaviour-change experiment (config section ``behaviour_change``) -------------


@dataclass
class BehaviourChangeOutcome:
    """One target's Experiment 2 for one training seed: behaviour_change.csv rows (with the seed
    and the shift model), and a warning when the shift data is nearly one response."""

    rows: list[dict]
    warning: str | None = None


def run_behaviour_change(
    ctx: Study, m1: str, m1ft: str, ft_objects: list[ObjectRecord], cross: str, seed: int
) -> BehaviourChangeOutcome:
    """M_C = M1ft finetuned further on another model's object-level train answers (the
    configured shift model, else ``cross``); its hypotheticals on held-out items whose behaviour
    shifted, scored against M1ft's old and M_C's new behaviour."""
    from collections import Counter
    from dataclasses import replace

    from inward.analysis.behaviour_change import behaviour_change_table, entropy_adjust
    from inward.analysis.scoring import score
    from inward.experiments.context import prefix, slug
    from inward.experiments.evaluate import _prop_names
    from inward.properties.registry import resolve_property
    from inward.store.stages import content_hash
    from inward.train.datasets import shift_examples
    from inward.train.lora import resolve_dtype

    c = ctx.config
    bc, s1 = c.behaviour_change, slug(m1)
    assert bc is not None  # the plugin runs only with the section set
    shift_props = shift_properties(c)
    other = bc.shift_model or cross
    folder, tag = f"{prefix(seed)}behaviour_change/{s1}", f"seed {seed}: "
    sampled = f"_T{bc.shift_temperature:g}" if bc.shift_temperature > 0 else ""
    with ctx.stage(f"behaviour change: object-level train, {other}"):
        other_train = ctx.objects(
            other,
            ctx.train_tasks,
            "train",
            c.n_train_strings,
            f"models/{slug(other)}/objects_train{sampled}.jsonl",
            temperature=bc.shift_temperature,
        )
    ctx.release(other)
    examples = shift_examples(
        other_train, ctx.train_tasks, n=bc.n_examples, seed=seed, forbidden_strings=ctx.eval_strings()
    )
    if not examples:
        raise InwardError(
            f"No shift examples: none of {other}'s object-level train responses "
            f"was compliant (see models/{slug(other)}/objects_train.jsonl)."
        )
    warning = None
    top, count = Counter(e.completion for e in examples).most_common(1)[0]
    if count / len(examples) > 0.5 and seed == c.first_seed:  # e.g. a base model that echoes the question
        warning = (
            f"Behaviour change: {100 * count / len(examples):.0f}% of the {len(examples)} shift "
            f"examples from {other} have the same response ({top[:60]!r}), so M_C learns a "
            "near-constant behaviour; consider another behaviour_change.shift_model."
        )
    with ctx.stage(f"{tag}behaviour change: shift finetune of {ctx.shown(m1ft)} on {other}"):
        shift_config = bc.finetune or c.finetune
        backend = ctx.backend(m1ft)  # its dtype and checkpoint: auto resolved as for inference
        shift_dtype = resolve_dtype(shift_config.dtype, getattr(backend, "checkpoint", None))
        dtype = merge_dtype(getattr(backend, "dtype", "float32"), shift_dtype)
        ctx.release(m1ft)
        merged = merge_adapter_checkpoint(m1ft, ctx.run.file(f"{folder}/self_ft_merged"), dtype)
        ctx.display[merged] = ctx.shown(m1ft)
        mc = ctx.train(
            merged,
            examples,
            f"{folder}/shift_ft",
            shift_config,
            f"{other} (object-level answers)",
            purpose="behaviour change",
            display_base=ctx.shown(m1ft),
            seed=seed,
        )
    ctx.use(mc)
    with ctx.stage(f"{tag}behaviour change: evaluation of {ctx.shown(mc)}"):
        mc_objects = ctx.objects(mc, ctx.held_out, "val", c.n_eval, f"{folder}/objects.jsonl")
        hyps = ctx.records(
            f"{folder}/hypotheticals.jsonl",
            HypotheticalRecord,
            lambda: shifted_hypotheticals(ctx.model(mc), ft_objects, mc_objects, ctx.held_out, shift_props, c.scoring),
            {
                "stage": "shifted_hypotheticals",
                "model": ctx.model_id(mc),
                "old": content_hash(ft_objects),
                "new": content_hash(mc_objects),
                "properties": _prop_names(shift_props),
                "scoring": c.scoring,
            },
        )
    ctx.release(mc)
    status = shift_status(ft_objects, mc_objects, shift_props, c.scoring)
    old_by = {(o.task, o.string): o for o in ft_objects}
    new_by = {(o.task, o.string): o for o in mc_objects}
    old_rows: list[ScoredRecord] = []
    new_rows: list[ScoredRecord] = []
    for h in hyps:
        prop = resolve_property(h.property, h.task)
        for scored, by, obj in ((old_rows, old_by, m1ft), (new_rows, new_by, mc)):
            r = score(by[(h.task, h.string)], prop, h, scoring=c.scoring)
            scored.append(replace(r, object_model=ctx.shown(obj), meta_model=ctx.shown(mc)))
    ctx.run.write_jsonl(f"{folder}/scored_old.jsonl", old_rows)
    ctx.run.write_jsonl(f"{folder}/scored_new.jsonl", new_rows)
    drop = bc.exclude_noncompliant
    rows = behaviour_change_table(old_rows, new_rows, status, exclude_noncompliant=drop)
    if bc.entropy_adjust:  # the paper drops non-compliant rows at load time, before down-sampling
        old_kept, new_kept = (
            [r for r in rs if not (drop and r.meta_compliant is False)] for rs in (old_rows, new_rows)
        )
        rows += behaviour_change_table(
            *entropy_adjust(old_kept, new_kept), status, adjustment="entropy", exclude_noncompliant=drop
        )
    return BehaviourChangeOutcome([{"seed": seed, **r, "shift_model": other} for r in rows], warning)


def shift_properties(config: StudyConfig) -> dict[str, list[Property]]:
    """Behaviour change's properties on each held-out task."""
    from inward.experiments.context import task_properties

    assert config.behaviour_change is not None
    return task_properties(config, config.held_out_tasks, config.behaviour_change.properties)


class BehaviourChangeExperiment(Plugin):
    """Experiment 2 as a study plugin (config section ``behaviour_change``): M_C is trained from
    M1ft, with the configured shift model's answers or else the first cross model's."""

    name = "behaviour_change"

    def applies(self, config: StudyConfig, seed: int) -> bool:
        return config.behaviour_change is not None and config.runs_on(seed, config.behaviour_change.every_seed)

    def check(self, ctx: Study) -> None:
        shift_properties(ctx.config)  # names a property no held-out task has: fails here

    def run(self, ctx: Study, out: SeedOutputs) -> None:
        outcome = run_behaviour_change(
            ctx, out.target, out.self_trained, out.eval_objects, out.cross[0].model, out.seed
        )
        ctx.rows.behaviour_change += outcome.rows
        ctx.rows.warnings += [outcome.warning] if outcome.warning else []

    def summarise(self, config: StudyConfig, rows: StudyRows) -> Tables:
        return {"behaviour_change": rows.behaviour_change}

    def outputs(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> Outputs:
        from inward.experiments import notes as N
        from inward.experiments.rows import Outputs
        from inward.report import columns as C
        from inward.report.html import Section, part, table

        section = Section(
            "Behaviour change (Experiment 2)",
            [part(table(C.STUDY_BEHAVIOUR_CHANGE, rows.behaviour_change), intro=BEHAVIOUR_INTRO)],
        )
        return Outputs(
            csvs=[("behaviour_change.csv", rows.behaviour_change, C.STUDY_BEHAVIOUR_CHANGE.csv())],
            notes=N.behaviour_notes(rows.behaviour_change),
            sections=[section],
        )

    def figures(self, config: StudyConfig, rows: StudyRows, tables: Tables) -> dict[str, bytes]:
        from inward.experiments.calibration import of_target
        from inward.experiments.context import slug
        from inward.report import figures as fig

        first, figures = config.first_seed, dict[str, bytes]()
        for m1 in dict.fromkeys(p.self_model for p in config.pairs):
            mine = [r for r in rows.behaviour_change if of_target(r["old_model"], m1) and r["seed"] == first]
            shift = mine[0]["shift_model"] if mine else "?"
            figures[f"behaviour_change_{slug(m1)}"] = fig.behaviour_change_bars(
                mine,
                title=f"Behaviour change: {m1} self-trained (seed {first}), then finetuned on "
                f"{shift}'s answers; its hypotheticals on held-out items whose behaviour shifted",
            )
        return figures


BEHAVIOUR_INTRO = (
    "Experiment 2: the self-trained model M is finetuned further on another model's object-level "
    "answers, giving M_C. On held-out items whose behaviour changed (both compliant, property values "
    "differ), M_C's hypothetical answers are scored against M's old behaviour and against M_C's "
    "new behaviour. Errors are 1.96·SEM; McNemar's exact test pairs the two scores of each item."
)
