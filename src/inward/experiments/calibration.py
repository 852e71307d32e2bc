"""Collect Experiment 1b's distributions (spec §1.9) for one setup; the maths is in
:mod:`inward.analysis.calibration`. Every model call goes through the response cache."""

from __future__ import annotations

from inward.analysis.calibration import (
    CalibrationRecord,
    hypothetical_dist_from_samples,
    hypothetical_dist_from_tokens,
    object_dist_from_samples,
    object_dist_from_tokens,
)
from inward.models.base import DistributionConfig, GenerationConfig
from inward.progress import progress_bar
from inward.prompts import hypothetical_prompt, object_prompt
from inward.properties.registry import Property
from inward.store.cache import CachedModel
from inward.tasks import Task


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
            obj_tokens = object_model.answer_distribution([object_prompt(task, s) for s in exact], dist_cfg,
                                                          progress=bar)  # fmt: skip
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
                    [hypothetical_prompt(task, prop, s) for s in exact], dist_cfg, progress=bar)
            for s, ot, ht in zip(exact, obj_tokens, hyp_tokens, strict=True):
                od, mass = object_dist_from_tokens(ot, extract, scoring)
                records.append(CalibrationRecord(setup, task.name, prop.name, s, "exact", object_name,
                                                 meta_name, od, hypothetical_dist_from_tokens(ht), mass))  # fmt: skip
        if sampled:
            hyp_cfg = GenerationConfig(max_tokens=prop.answer_tokens or max_tokens, temperature=temperature,
                                       n=samples, seed=seed)  # fmt: skip
            with progress_bar(len(sampled), f"calibration {setup}: {prop.name} hypothetical samples") as bar:
                hyp_samples = meta_model.generate([hypothetical_prompt(task, prop, s) for s in sampled],
                                                  hyp_cfg, progress=bar)  # fmt: skip
            for s, os_, hs in zip(sampled, obj_samples, hyp_samples, strict=True):
                od, share = object_dist_from_samples(os_, extract, scoring)
                records.append(CalibrationRecord(setup, task.name, prop.name, s, "sampled", object_name,
                                                 meta_name, od, hypothetical_dist_from_samples(hs), share))  # fmt: skip
    return records
