"""LLM property extraction (spec §1.4, §4.3): a model reads the object-level response and names
the property (sentiment, a story's main character), for properties no Python function can
compute.

The extraction prompt is the paper's ``property_extraction_prompt`` with ``$response`` replaced
by the **raw** object-level response, sent as ``system: ""`` and ``user: <prompt> + "\\n"``
(the ``property_extraction/minimal`` template), decoded greedily (the paper used temperature 0)
through the response cache, so a rerun makes no extractor calls.

The extractor's output is normalised before it becomes the property value:

- stripped and lower-cased (what the paper's analysis did to object values);
- for a closed answer space (sentiment: positive/negative), compared after removing
  punctuation ("Positive." is "positive"); anything else (an explanation, "neutral", a refusal)
  gives None;
- for free text (a name), surrounding quotes and punctuation are removed ("'Ada'." is "ada"),
  and the value must be one to three words that pass the paper's ``default`` compliance group;
  otherwise None.

A None value means "no property value": the scorer excludes the row and counts it, exactly as
for a Python property that does not exist for a response.

Deviations from the paper: its extractor was gpt-3.5-turbo-0125; inward's default is the object
model itself (``--extractor-model`` chooses another), and the paper's truncation of responses
that repeat one word more than ten times (done to avoid OpenAI content filters) is not applied.
"""

from __future__ import annotations

import string as _string
from collections.abc import Mapping, Sequence
from string import Template

from inward.models.base import GenerationConfig, Prompt
from inward.progress import progress_bar
from inward.properties.compliance import clean_string, failed_checks
from inward.properties.registry import Property
from inward.records import ExtractionRecord, ObjectRecord
from inward.store.cache import CachedModel

EXTRACTION_TOKENS = 16
"""Greedy token budget of one extraction: room for a short name, and for a verbose answer to
show itself as verbose (then it is outside the answer space) rather than be cut to fit."""
MAX_NAME_WORDS = 3

ValueKey = tuple[str, str, str]
"""(task, property, string): the join key of object rows, hypotheticals and extracted values."""


def extraction_prompt(prop: Property, response: str) -> Prompt:
    """The chat messages asking the extractor for ``prop`` of one raw object-level response."""
    if prop.extraction_prompt is None:
        raise ValueError(f"property {prop.name!r} is not LLM-extracted")
    user = Template(prop.extraction_prompt).safe_substitute(response=response)
    return [{"role": "system", "content": ""}, {"role": "user", "content": user + "\n"}]


def normalise_extraction(prop: Property, output: str) -> str | None:
    """The property value of one extractor output, or None outside the answer space."""
    if prop.extraction_answers is not None:
        value = clean_string(output)
        return value if value in prop.extraction_answers else None
    value = output.strip().lower().strip(_string.punctuation + _string.whitespace)
    words = value.split()
    if not words or len(words) > MAX_NAME_WORDS or failed_checks(value, ("default",)):
        return None
    return " ".join(words)


def llm_properties(props: Mapping[str, Sequence[Property]]) -> list[Property]:
    """The LLM-extracted properties among a task → properties plan (each once)."""
    seen: dict[str, Property] = {}
    for ps in props.values():
        for p in ps:
            if p.llm_extracted:
                seen.setdefault(p.name, p)
    return list(seen.values())


def extract_llm_records(
    objects: Sequence[ObjectRecord],
    props: Mapping[str, Sequence[Property]],
    extractor: CachedModel,
) -> list[ExtractionRecord]:
    """Extract every LLM property of every compliant object row (non-compliant rows are
    excluded from scoring anyway, so they cost no extractor calls)."""
    jobs: dict[str, tuple[Property, list[ObjectRecord]]] = {}
    for obj in objects:
        if not obj.compliant:
            continue
        for prop in props.get(obj.task, ()):
            if prop.llm_extracted:
                jobs.setdefault(prop.name, (prop, []))[1].append(obj)
    records: list[ExtractionRecord] = []
    config = GenerationConfig(max_tokens=EXTRACTION_TOKENS)
    for name, (prop, objs) in jobs.items():
        prompts = [extraction_prompt(prop, o.response) for o in objs]
        with progress_bar(len(prompts), f"extract {name}") as bar:
            outputs = extractor.generate(prompts, config, progress=bar)
        for o, out in zip(objs, outputs, strict=True):
            records.append(
                ExtractionRecord(
                    o.task, name, o.string, extractor.model_string, out[0], normalise_extraction(prop, out[0])
                )
            )
    return records


def values_of(records: Sequence[ExtractionRecord]) -> dict[ValueKey, str | None]:
    return {(r.task, r.property, r.string): r.value for r in records}


def extract_llm_values(
    objects: Sequence[ObjectRecord],
    props: Mapping[str, Sequence[Property]],
    extractor: CachedModel,
) -> dict[ValueKey, str | None]:
    """(task, property, string) → extracted value (None outside the answer space), for
    :func:`inward.analysis.scoring.score_all` and ``collect_hypotheticals`` (``values=``)."""
    return values_of(extract_llm_records(objects, props, extractor))
