"""Linear probes: how much of a model's behaviour is linearly readable from activations.

A probe maps the residual-stream state at the last prompt token (one layer, one prompt kind,
one model) to the property value of the target model's actual response. It is fitted on the
train-task rows and scored on the held-out-task rows, as the finetuned predictors are.

- **Labels.** The ``top_k`` most common train values of a property (those seen at least ``folds``
  times, so every cross-validation fold can hold them) are classes; every other value is
  ``OTHER``. A probe that says ``OTHER`` is never right: accuracy counts exact values only, as a
  predictor's does, so probe, predictor and mode baseline are scored on the same terms.
- **Fit.** scikit-learn: standardised features, then ``LogisticRegressionCV`` choosing the
  inverse regularisation ``C`` from ``n_cs`` log-spaced values by stratified ``folds``-fold
  cross-validation on the train rows (lbfgs, multinomial). A property with a single train class
  gets a constant probe (its one value).
- **Mode baseline.** Computed per (task, property) on the held-out rows themselves, exactly as
  the results tables do (:func:`inward.analysis.stats.mode_baseline`).
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inward.analysis.results import MICRO, answer_of
from inward.analysis.seeds import seed_sd, t_test
from inward.analysis.stats import group_mode_flags, top_answer
from inward.records import ScoredRecord

OTHER = "<other>"


@dataclass(frozen=True)
class ProbeSettings:
    top_k: int = 5
    folds: int = 3
    n_cs: int = 5  # C values in logspace(-4, 1): strong to weak regularisation of standardised features
    seed: int = 0  # fold shuffling


@dataclass(frozen=True)
class ProbeScore:
    """One probe (source, layer, property) scored on the held-out rows."""

    property: str
    n_train: int
    n_test: int
    classes: int  # labels the probe can give, OTHER included when present
    c: float | None  # the chosen inverse regularisation (None: constant probe)
    accuracy: float
    mode_baseline: float
    top_answer_share: float  # share of the probe's most common prediction on the test rows
    correct: tuple[bool, ...]  # per test row, in the order given
    mode_correct: tuple[bool, ...]


def label_space(values: Sequence[str], top_k: int, min_count: int) -> list[str]:
    """The ``top_k`` most common values with at least ``min_count`` occurrences (ties: by value,
    so the result does not depend on row order)."""
    counts = Counter(values)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [v for v, n in ranked[:top_k] if n >= min_count]


def encode(values: Sequence[str], classes: Sequence[str]) -> list[str]:
    known = set(classes)
    return [v if v in known else OTHER for v in values]


def mode_flags(groups: Sequence[tuple[str, str]], values: Sequence[str]) -> list[bool]:
    """Per row: is its value the mode of its (task, property) group (on these rows)?"""
    return group_mode_flags(groups, values)[0]


def fit_predict(
    x_train: np.ndarray, y_train: Sequence[str], x_test: np.ndarray, settings: ProbeSettings
) -> tuple[list[str], float | None]:
    """Fit one probe and predict the test rows; returns (predictions, chosen C)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = sorted(set(y_train))
    if len(labels) == 1:
        return [labels[0]] * len(x_test), None
    folds = min(settings.folds, min(Counter(y_train).values()))
    if folds < 2:
        raise ValueError("every probe class needs at least 2 train rows (label_space's min_count)")
    probe = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=np.logspace(-4, 1, settings.n_cs),
            cv=StratifiedKFold(folds, shuffle=True, random_state=settings.seed),
            max_iter=500,
            scoring="accuracy",
        ),
    )
    with warnings.catch_warnings():
        # a fold that stops at max_iter at the weakest C still ranks fine; the chosen C is reported
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn 1.9 announces new defaults (l1_ratios, fitted attributes) that change
        # nothing for an l2 probe; C_ is read in a form every supported version has
        warnings.simplefilter("ignore", FutureWarning)
        probe.fit(x_train, list(y_train))
    c = float(np.ravel(probe[-1].C_)[0])
    return [str(p) for p in probe.predict(x_test)], c


def score_probe(
    prop: str,
    x_train: np.ndarray,
    values_train: Sequence[str],
    x_test: np.ndarray,
    values_test: Sequence[str],
    groups_test: Sequence[tuple[str, str]],
    settings: ProbeSettings,
) -> ProbeScore:
    """Fit on the train rows' values, score exact-value accuracy on the test rows."""
    if len(values_train) != len(x_train) or len(values_test) != len(x_test):
        raise ValueError("need one value per activation row")
    min_count = max(settings.folds, 2)
    classes = label_space(values_train, settings.top_k, min_count)
    y_train = encode(values_train, classes)
    # OTHER may hold fewer rows than a fold needs: too few to learn, so they are left out
    if 0 < y_train.count(OTHER) < min_count:
        keep = [i for i, y in enumerate(y_train) if y != OTHER]
        x_train, y_train = x_train[keep], [y_train[i] for i in keep]
    if not y_train:  # no value seen often enough: nothing to fit, a probe that always says OTHER
        predicted, c = [OTHER] * len(x_test), None
    else:
        predicted, c = fit_predict(x_train, y_train, x_test, settings)
    correct = tuple(p != OTHER and p == v for p, v in zip(predicted, values_test, strict=True))
    modes = tuple(mode_flags(groups_test, values_test))
    n = len(values_test)
    share = top_answer(predicted)[1]
    return ProbeScore(
        property=prop,
        n_train=len(y_train),
        n_test=n,
        classes=len(set(y_train)),
        c=c,
        accuracy=sum(correct) / n if n else float("nan"),
        mode_baseline=sum(modes) / n if n else float("nan"),
        top_answer_share=share,
        correct=correct,
        mode_correct=modes,
    )


def depth_layers(fractions: Sequence[float], n_layers: int) -> list[int]:
    """Hidden-state indices at relative depths (0: embedding output, 1: last decoder layer)."""
    return sorted({round(f * n_layers) for f in fractions})


SUMMARY_COLUMNS = (
    "target",
    "cross_model",
    "source",
    "layer",
    "depth",
    "seeds",
    "accuracy_mean",
    "accuracy_sd",
    "mode_baseline_mean",
    "seeds_beating_mode",
    "self_ft_accuracy_mean",
    "cross_ft_accuracy_mean",
)
CONTRAST_COLUMNS = (
    "target",
    "cross_model",
    "depth",
    "seeds",
    "self_minus_cross_mean",
    "self_minus_cross_sd",
    "ci_lower",
    "ci_upper",
    "p_value",
    "self_layer",
    "cross_layer",
)
SELF, CROSS = "self/hypothetical", "cross/hypothetical"


def probe_summary(rows: Sequence[dict], micro: str) -> list[dict]:
    """Micro-average probe accuracy per (target, source, layer), mean ± sd over training seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["property"] == micro:
            groups[(r["target"], r["cross_model"], r["source"], r["layer"], r["depth"])].append(r)
    out = []
    for (target, cross, source, layer, depth), rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        out.append(
            {
                "target": target,
                "cross_model": cross,
                "source": source,
                "layer": layer,
                "depth": depth,
                "seeds": len(rs),
                "accuracy_mean": float(np.mean(acc)),
                "accuracy_sd": seed_sd(acc),
                "mode_baseline_mean": float(np.mean([r["mode_baseline"] for r in rs])),
                "seeds_beating_mode": sum(r["beats_mode_p"] < 0.05 for r in rs),
                "self_ft_accuracy_mean": float(np.mean([r["self_ft_accuracy"] for r in rs])),
                "cross_ft_accuracy_mean": float(np.mean([r["cross_ft_accuracy"] for r in rs])),
            }
        )
    return out


def probe_contrast(rows: Sequence[dict], micro: str) -> list[dict]:
    """Per relative depth: M1's own hypothetical-prompt state vs M2's, probe accuracy difference
    over training seeds (paired by seed) with a two-sided one-sample t-test over seeds and its 95%
    interval (inward.analysis.seeds.t_test, the verdict's test)."""
    acc: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for r in rows:
        if r["property"] == micro and r["source"] in (SELF, CROSS):
            acc[(r["target"], r["cross_model"], r["depth"], r["source"])][r["seed"]] = r
    out = []
    for target, cross, depth in dict.fromkeys((t, c, d) for t, c, d, _ in acc):
        mine, theirs = acc.get((target, cross, depth, SELF), {}), acc.get((target, cross, depth, CROSS), {})
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            continue
        diffs = [mine[s]["accuracy"] - theirs[s]["accuracy"] for s in seeds]
        _, p, lo, hi = t_test(diffs)
        out.append(
            {
                "target": target,
                "cross_model": cross,
                "depth": depth,
                "seeds": len(seeds),
                "self_minus_cross_mean": float(np.mean(diffs)),
                "self_minus_cross_sd": seed_sd(diffs),
                "ci_lower": lo,
                "ci_upper": hi,
                "p_value": p,
                "self_layer": mine[seeds[0]]["layer"],
                "cross_layer": theirs[seeds[0]]["layer"],
            }
        )
    return out


# -- the rows of probes.csv and self_simulation.csv ----

PROBE_COLUMNS = (
    "seed",
    "target",
    "cross_model",
    "source",
    "model",
    "layer",
    "depth",
    "property",
    "accuracy",
    "mode_baseline",
    "beats_mode_p",
    "self_ft_accuracy",
    "cross_ft_accuracy",
    "n_train",
    "n_test",
    "classes",
    "c",
    "top_answer_share",
    "degenerate",
)
SIMULATION_COLUMNS = (
    "seed",
    "target",
    "property",
    "n",
    "agree_now",
    "agree_before",
    "changed",
    "changed_agree_now",
    "changed_agree_before",
    "unchanged_agree_now",
)


@dataclass(frozen=True)
class ProbeRow:
    seed: int
    target: str  # M1 (its self-trained version's behaviour is predicted)
    cross_model: str  # the pair's M2
    source: str
    model: str
    layer: int
    depth: float
    property: str  # a property, or micro_average (every property's test rows pooled)
    accuracy: float
    mode_baseline: float
    beats_mode_p: float
    self_ft_accuracy: float  # the finetuned self-predictor on the same test rows
    cross_ft_accuracy: float  # the finetuned cross-predictor on the same test rows
    n_train: int
    n_test: int
    classes: int | None
    c: float | None
    top_answer_share: float | None
    degenerate: bool | None


@dataclass(frozen=True)
class SimulationRow:
    seed: int
    target: str
    property: str
    n: int  # held-out rows with a value for both M1ft and untrained M1
    agree_now: float  # hypothetical answer == property of M1ft's answer now
    agree_before: float  # hypothetical answer == property of untrained M1's answer
    changed: int  # rows where the two behaviours differ
    changed_agree_now: float
    changed_agree_before: float
    unchanged_agree_now: float  # the self-predictor's accuracy where finetuning left the behaviour as it was


def self_simulation(
    seed: int, target: str, self_rows: Sequence[ScoredRecord], untrained_rows: Sequence[ScoredRecord]
) -> list[SimulationRow]:
    """Does the self-predictor's answer follow M1ft's behaviour now, or untrained M1's (the
    behaviour its training data described)? Per property and pooled, on held-out rows."""
    before = {(r.task, r.property, r.string): r.object_clean for r in untrained_rows if r.evaluable}
    by_prop: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    for r in self_rows:
        old = before.get((r.task, r.property, r.string))
        if not r.evaluable or r.property == "identity" or old is None or r.object_clean is None:
            continue
        answer = answer_of(r)  # "<non-compliant>" matches no value
        by_prop[r.property].append((answer == r.object_clean, answer == old, r.object_clean != old))
    out = []
    pooled: list = []
    for prop, items in [*by_prop.items(), (MICRO, None)]:
        items = pooled if items is None else items
        if prop != MICRO:
            pooled += items
        if not items:
            continue
        changed = [x for x in items if x[2]]
        unchanged = [x for x in items if not x[2]]
        out.append(
            SimulationRow(
                seed,
                target,
                prop,
                len(items),
                _mean([x[0] for x in items]),
                _mean([x[1] for x in items]),
                len(changed),
                _mean([x[0] for x in changed]),
                _mean([x[1] for x in changed]),
                _mean([x[0] for x in unchanged]),
            )
        )
    return out


def _mean(xs: Sequence[bool]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def simulation_summary(simulation: Sequence[dict]) -> list[dict]:
    """Per property: the mean over seeds of each self-simulation column (NaN cells left out)."""
    by_prop: dict[str, list[dict]] = {}
    for r in simulation:
        by_prop.setdefault(str(r.get("property")), []).append(r)

    def mean(rows: list[dict], k: str) -> float:
        vals = [float(r[k]) for r in rows if r.get(k) is not None and r[k] == r[k]]
        return sum(vals) / len(vals) if vals else float("nan")

    keys = SIMULATION_COLUMNS[3:]  # n onwards
    return [
        {"property": prop, "seeds": len(rows), **{k: mean(rows, k) for k in keys}} for prop, rows in by_prop.items()
    ]
