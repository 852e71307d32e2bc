"""Calibration of hypothetical answers (Experiment 1b, spec §1.9): pure functions over distributions.

For one object-level prompt we have two distributions over a behaviour property's values:

- the *object-level* distribution: how often the model's own answer has each property value;
- the *hypothetical* distribution: how often the model answers "the second character of your
  response was c" for each c.

Both can be estimated two ways. **Sampled**: ``n`` completions at temperature 1; the object
distribution is the frequency of each property value among the samples that have one (the paper
drops samples shorter than two characters), the hypothetical distribution the frequency of each
cleaned answer among all samples (so non-compliant answers keep their share and match nothing).
**Exact**: one forward pass, the top-k next tokens with their probabilities
(``Backend.answer_distribution``). For the hypothetical answer (one character) this is the whole
answer distribution up to the top-k tail. For the object-level answer it is an approximation: a
token's text stands for the whole response, so the property is read off the *first token*. That is
exact when the first token already fixes the value (the second character of "Dog" is fixed by the
token "Dog"); tokens whose text does not fix a value (a one-letter token, the end of turn) are
dropped and the rest renormalised, and the probability mass that did fix a value is kept as
``mass`` so a reader can see how good the approximation was for each prompt.

A calibration *pair* is (object probability of one of the prompt's top-3 object values, the
hypothetical probability of that same value). Pairs of one setup are pooled, binned into
equal-frequency bins and the curve's mean absolute deviation from y = x is the MAD, in percentage
points (:func:`inward.analysis.stats.calibration_mad`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from inward.analysis.stats import calibration_mad, equal_frequency_bins
from inward.properties import clean_answer, clean_object_value

Dist = dict[str, float]
METHODS = ("exact", "sampled")


class CalibrationRow(TypedDict):
    """A row of calibration.csv (``inward.report.columns.CALIBRATION``)."""

    setup: str
    response_property: str
    mad: float  # percentage points
    count: int  # pooled (object, hypothetical) probability pairs
    prompts: int
    method: str  # exact | sampled
    object_model: str
    meta_model: str
    mean_object_mass: float


AGREEMENT_COLUMNS = (
    "setup",
    "response_property",
    "meta_model",
    "prompts",
    "object_tv",
    "hypothetical_tv",
    "object_tv_noise_floor",
    "mad_exact",
    "mad_sampled",
    "mad_difference",
)


@dataclass(frozen=True)
class CalibrationRecord:
    """One prompt of one setup, estimated by one method."""

    setup: str
    task: str
    property: str
    string: str
    method: str
    object_model: str
    meta_model: str
    object_dist: Dist
    """Property value (cleaned as in scoring) -> probability; sums to 1 unless empty."""
    hypothetical_dist: Dist
    """Cleaned hypothetical answer -> probability (not renormalised: the rest matches nothing)."""
    object_mass: float
    """Exact: the first-token probability mass that fixed a property value. Sampled: the share of
    samples that had a value."""


def _sorted(d: Mapping[str, float]) -> Dist:
    return dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def object_dist_from_samples(
    samples: Sequence[str], extract: Callable[[str], str | None], scoring: str = "paper"
) -> tuple[Dist, float]:
    """Frequencies of the property values of the samples that have one, and that share."""
    values = [v for s in samples if (v := extract(s)) is not None]
    if not values:
        return {}, 0.0
    out: dict[str, float] = defaultdict(float)
    for v in values:
        out[clean_object_value(v, scoring)] += 1.0 / len(values)
    return _sorted(out), len(values) / len(samples)


def object_dist_from_tokens(
    tokens: Mapping[str, float], extract: Callable[[str], str | None], scoring: str = "paper"
) -> tuple[Dist, float]:
    """The first-token approximation (module doc): value of each token text, renormalised."""
    out: dict[str, float] = defaultdict(float)
    mass = 0.0
    for text, p in tokens.items():
        v = extract(text)
        if v is not None and p > 0:
            out[clean_object_value(v, scoring)] += p
            mass += p
    if mass <= 0:
        return {}, 0.0
    return _sorted({k: v / mass for k, v in out.items()}), mass


def hypothetical_dist_from_samples(samples: Sequence[str]) -> Dist:
    """Frequency of each cleaned answer among all samples."""
    out: dict[str, float] = defaultdict(float)
    for s in samples:
        out[clean_answer(s)] += 1.0 / len(samples)
    return _sorted(out)


def hypothetical_dist_from_tokens(tokens: Mapping[str, float]) -> Dist:
    """Next-token probabilities summed by cleaned token text (the answer is one character)."""
    out: dict[str, float] = defaultdict(float)
    for text, p in tokens.items():
        out[clean_answer(text)] += p
    return _sorted(out)


def calibration_pairs(
    object_dist: Mapping[str, float], hypothetical_dist: Mapping[str, float], top: int = 3
) -> list[tuple[float, float]]:
    """(object prob, hypothetical prob) for the ``top`` most likely object values (ties by value);
    a value the hypothetical distribution lacks gets probability 0."""
    ranked = sorted(object_dist.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [(p, float(hypothetical_dist.get(v, 0.0))) for v, p in ranked if p > 0]


def pooled_pairs(records: Iterable[CalibrationRecord], top: int = 3) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in records:
        for x, y in calibration_pairs(r.object_dist, r.hypothetical_dist, top):
            xs.append(x)
            ys.append(y)
    return xs, ys


def _groups(records: Iterable[CalibrationRecord]) -> dict[tuple[str, str, str, str], list[CalibrationRecord]]:
    out: dict[tuple[str, str, str, str], list[CalibrationRecord]] = {}
    for r in records:
        out.setdefault((r.setup, r.property, r.method, r.meta_model), []).append(r)
    return out


def calibration_table(records: Sequence[CalibrationRecord], *, top: int = 3, bins: int = 10) -> list[CalibrationRow]:
    """One row per (setup, property, method): MAD (pp) over pooled top-``top`` pairs."""
    rows: list[CalibrationRow] = []
    for (setup, prop, method, _), recs in _groups(records).items():
        xs, ys = pooled_pairs(recs, top)
        rows.append(
            {
                "setup": setup,
                "response_property": prop,
                "method": method,
                "mad": calibration_mad(xs, ys, bins) if xs else math.nan,
                "count": len(xs),
                "prompts": len(recs),
                "object_model": recs[0].object_model,
                "meta_model": recs[0].meta_model,
                "mean_object_mass": float(np.mean([r.object_mass for r in recs])),
            }
        )
    return rows


def calibration_curves(records: Sequence[CalibrationRecord], *, top: int = 3, bins: int = 10) -> list[dict]:
    """Per (setup, property, method): the binned curve points, for the figure."""
    out = []
    for (setup, prop, method, meta), recs in _groups(records).items():
        xs, ys = pooled_pairs(recs, top)
        out.append(
            {
                "setup": setup,
                "response_property": prop,
                "method": method,
                "meta_model": meta,
                "object_model": recs[0].object_model,
                "mad": calibration_mad(xs, ys, bins) if xs else math.nan,
                "bins": equal_frequency_bins(xs, ys, bins),
            }
        )
    return out


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Half the L1 distance over the union of keys (missing = 0)."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def sampling_noise_tv(dist: Mapping[str, float], n: int, *, draws: int = 200, seed: int = 0) -> float:
    """Expected TV between ``dist`` and the empirical distribution of ``n`` draws from it: how far a
    perfect sampler lands from the exact distribution by chance alone (seeded Monte Carlo)."""
    if not dist or n < 1:
        return math.nan
    keys = sorted(dist)  # the draws must not depend on the dict's order (fresh vs reloaded records differ)
    p = np.array([dist[k] for k in keys], dtype=float)
    p = p / p.sum()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, p, size=draws) / n
    return float(0.5 * np.abs(counts - p).sum(axis=1).mean())


def agreement_table(records: Sequence[CalibrationRecord], *, samples: int, top: int = 3, bins: int = 10) -> list[dict]:
    """How far the sampled and exact estimates agree, on prompts that have both.

    Per (setup, property): mean TV distance of the object distributions and of the hypothetical
    distributions, the mean TV a perfect ``samples``-draw sampler would show by chance (noise
    floor for the object side), and the MAD of each method on the same prompts.
    """
    by_key: dict[tuple[str, str, str], dict[str, dict[str, CalibrationRecord]]] = {}
    for r in records:
        by_key.setdefault((r.setup, r.property, r.meta_model), {}).setdefault(r.method, {})[r.string] = r
    rows = []
    for (setup, prop, meta), methods in by_key.items():
        exact, sampled = methods.get("exact", {}), methods.get("sampled", {})
        shared = [s for s in sampled if s in exact]
        if not shared:
            continue
        e = [exact[s] for s in shared]
        sm = [sampled[s] for s in shared]
        mad_e = calibration_mad(*pooled_pairs(e, top), bins) if e else math.nan
        mad_s = calibration_mad(*pooled_pairs(sm, top), bins) if sm else math.nan
        floors = [sampling_noise_tv(r.object_dist, samples, seed=i) for i, r in enumerate(e)]
        rows.append(
            {
                "setup": setup,
                "response_property": prop,
                "meta_model": meta,
                "prompts": len(shared),
                "object_tv": float(np.mean([total_variation(a.object_dist, b.object_dist) for a, b in zip(e, sm)])),
                "hypothetical_tv": float(
                    np.mean([total_variation(a.hypothetical_dist, b.hypothetical_dist) for a, b in zip(e, sm)])
                ),
                "object_tv_noise_floor": float(np.nanmean(floors)) if any(f == f for f in floors) else math.nan,
                "mad_exact": mad_e,
                "mad_sampled": mad_s,
                "mad_difference": mad_s - mad_e,
            }
        )
    return rows


SeedRecords = tuple["int | None", list[CalibrationRecord]]
"""One setup's records and the training seed of its finetuned models (None: the untrained setup)."""


def seeded_calibration_table(records: list[SeedRecords], *, top: int, bins: int) -> list[dict]:
    """calibration.csv: MAD per setup, property and method, with the training seed."""
    return [{"seed": seed, **row} for seed, recs in records for row in calibration_table(recs, top=top, bins=bins)]


def seeded_agreement_table(records: list[SeedRecords], *, samples: int, top: int, bins: int) -> list[dict]:
    """calibration_agreement.csv: sampled vs exact estimates on the prompts that have both."""
    return [
        {"seed": seed, **row}
        for seed, recs in records
        for row in agreement_table(recs, samples=samples, top=top, bins=bins)
    ]
