"""Finetuning datasets built from a model's own object-level behaviour (spec §1.5).

For each (train task, property): take the model's object-level responses on the task's *train*
split, keep the compliant ones whose property exists, draw up to ``n`` of them with a seed, and
make one example per response: the hypothetical prompt about that string, answered with the
property value of the model's own response.

Choices, against the paper's two code paths:

- **Compliance filtering: on.** The paper's final (James's) path filtered nothing, while its
  text says training used "only compliant" samples, and Felix's path filtered with the task's
  groups. inward filters with the task's groups *before* drawing, so a pair yields ``n``
  examples whenever ``n`` compliant responses exist.
- **Dedupe on (task, property, string).** The paper deduped on (string, target) across all
  properties, which also dropped different properties of one string that happen to share a
  value; inward drops only true duplicates.
- **Whitespace-only values are skipped**: they cannot be trained as an assistant turn.
- **Labels follow the scoring** (``scoring``): ``paper`` trains on the raw property value, as
  the paper did (a comma-separated response's first word is "goat,"); ``symmetric`` trains on
  the value cleaned as answers are (``clean_answer``: "goat"), so a label can be matched by the
  answer it teaches; a value that cleans to nothing (the second character "," of "A, B") is
  skipped like a whitespace-only one.
- **No val strings, ever.** Every object record must come from the train split, and a set of
  forbidden strings (the evaluation strings) is checked; any overlap is an error, not a filter.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from inward.errors import InwardError
from inward.prompts import hypothetical_prompt, object_prompt
from inward.properties.normalise import clean_answer
from inward.properties.registry import Property
from inward.properties.values import object_value
from inward.records import ObjectRecord
from inward.tasks.base import Task
from inward.train.examples import TrainExample


def label(value: str | None, scoring: str) -> str | None:
    """The training label of a property value under ``scoring`` (None: not trainable)."""
    if value is None:
        return None
    out = clean_answer(value) if scoring == "symmetric" else value
    return out if out.strip() else None


def _refuse_leaks(objects: Sequence[ObjectRecord], forbidden_strings: Iterable[str], purpose: str) -> None:
    """Training data must come from the train split and never contain an evaluation string."""
    forbidden = set(forbidden_strings)
    leaked = [o for o in objects if o.split != "train" or o.string in forbidden]
    if leaked:
        o = leaked[0]
        raise InwardError(
            f"{len(leaked)} object-level record(s) {purpose} are not from the train split or are "
            f"evaluation strings (e.g. task {o.task!r}, split {o.split!r}, {o.string!r}); "
            "training data must never contain held-out strings."
        )


def self_prediction_examples(
    objects: Sequence[ObjectRecord],
    tasks: Mapping[str, Task],
    props: Mapping[str, Sequence[Property]],
    *,
    n_per_pair: int,
    seed: int = 0,
    forbidden_strings: Iterable[str] = (),
    scoring: str = "paper",
) -> list[TrainExample]:
    """Hypothetical-prompt → property-value examples from ``objects`` (see module doc)."""
    _refuse_leaks(objects, forbidden_strings, "for training")
    examples: list[TrainExample] = []
    seen: set[tuple[str, str, str]] = set()
    for task_name, task_props in props.items():
        task = tasks[task_name]
        rows = [o for o in objects if o.task == task_name]
        for prop in task_props:
            # whitespace-only values (the first character of " fox") cannot be an answer turn
            usable = [(o, v) for o in rows if (v := label(object_value(o, prop), scoring))]
            random.Random(f"{seed}:{task_name}:{prop.name}").shuffle(usable)
            for o, value in usable[:n_per_pair]:
                key = (task_name, prop.name, o.string)
                if key in seen:
                    continue
                seen.add(key)
                examples.append(
                    TrainExample(
                        prompt=hypothetical_prompt(task, prop, o.string),
                        completion=value,
                        meta={"task": task_name, "property": prop.name, "string": o.string, "object_model": o.model},
                    )
                )
    random.Random(f"{seed}:order").shuffle(examples)
    return examples


def same_item_examples(
    objects: Sequence[ObjectRecord],
    tasks: Mapping[str, Task],
    props: Mapping[str, Sequence[Property]],
    items: Sequence[TrainExample],
    *,
    forbidden_strings: Iterable[str] = (),
    scoring: str = "paper",
) -> tuple[list[TrainExample], list[dict]]:
    """Equal evidence: examples about ``objects``' model on exactly the (task, property, string)
    items of ``items`` (another predictor's data), in the same order. An item whose response here
    is not compliant, or has no usable value, cannot be built; it is returned in the second list
    (task, property, string) so the report can say how many and which."""
    _refuse_leaks(objects, forbidden_strings, "for training")
    by_key = {(o.task, o.string): o for o in objects}
    prop_of = {(t, p.name): p for t, ps in props.items() for p in ps}
    examples: list[TrainExample] = []
    dropped: list[dict] = []
    for item in items:
        task_name, prop_name, string = item.meta["task"], item.meta["property"], item.meta["string"]
        o, prop = by_key.get((task_name, string)), prop_of.get((task_name, prop_name))
        value = label(object_value(o, prop), scoring) if o is not None and prop is not None else None
        if not value:
            dropped.append({"task": task_name, "property": prop_name, "string": string})
            continue
        assert o is not None and prop is not None  # a value implies both were found
        examples.append(
            TrainExample(
                prompt=hypothetical_prompt(tasks[task_name], prop, string),
                completion=value,
                meta={"task": task_name, "property": prop_name, "string": string, "object_model": o.model},
            )
        )
    return examples, dropped


def shift_examples(
    objects: Sequence[ObjectRecord],
    tasks: Mapping[str, Task],
    *,
    n: int,
    seed: int = 0,
    forbidden_strings: Iterable[str] = (),
) -> list[TrainExample]:
    """Plain object-level conversations (task prompt -> another model's response) for the
    behaviour-change experiment (spec §1.8): finetuning on them moves a model's behaviour towards
    the other model's.

    Only compliant train-split responses are used (non-compliant ones would teach the format
    failure, not a behaviour); a response with leading whitespace, or only whitespace, is skipped
    (it could merge with the chat template's last prompt token, which the trainer refuses). One
    example per (task, string); ``n`` of them drawn with a seed, in a seeded order.
    """
    _refuse_leaks(objects, forbidden_strings, "for the shift data")
    seen: set[tuple[str, str]] = set()
    usable: list[ObjectRecord] = []
    for o in objects:
        if o.task not in tasks or not o.compliant or not o.response.strip() or o.response[0].isspace():
            continue
        if (o.task, o.string) in seen:
            continue
        seen.add((o.task, o.string))
        usable.append(o)
    random.Random(f"{seed}:shift").shuffle(usable)
    return [
        TrainExample(
            prompt=object_prompt(tasks[o.task], o.string),
            completion=o.response,
            meta={"task": o.task, "string": o.string, "object_model": o.model},
        )
        for o in usable[:n]
    ]


def nested_slices(examples: Sequence[TrainExample], sizes: Sequence[int]) -> list[list[TrainExample]]:
    """Prefixes of one seeded order, so a larger slice always contains every smaller one."""
    return [list(examples[: min(s, len(examples))]) for s in sorted(sizes)]
