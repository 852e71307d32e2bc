"""Statistics as "Looking Inward" computed them (spec §1.9–1.11, §6).

Pure functions over plain sequences; numpy and the standard library only, so the analysis
layer does not need scipy, statsmodels or pandas at run time. The tests check every function
against those libraries (or against hand-computed numbers) so that our figures and the paper's
are produced by the same arithmetic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TypeVar

import numpy as np

H = TypeVar("H", bound=Hashable)
G = TypeVar("G", bound=Hashable)

PAPER_Z = 1.96
"""The paper's rounded 97.5 % normal quantile (``1.96 * SEM`` error bars)."""


def _z(confidence: float) -> float:
    # Keep the paper's rounded constant at 95 % so our error bars equal theirs to the last digit.
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return PAPER_Z if confidence == 0.95 else NormalDist().inv_cdf((1.0 + confidence) / 2.0)


def _mean_and_error(values: np.ndarray, z: float) -> tuple[float, float]:
    """Mean and ``z * SEM`` with the sample (n-1) sd, as ``Slist.statistics_or_raise``."""
    n = values.size
    mean = float(values.mean()) if n else math.nan
    error = z * float(values.std(ddof=1)) / math.sqrt(n) if n >= 2 else math.nan
    return mean, error


@dataclass(frozen=True)
class AccuracySummary:
    """Accuracy of a group of boolean outcomes with the paper's two kinds of interval.

    ``error`` is the plotted half-width (1.96·SEM); ``ci_lower``/``ci_upper`` are
    ``accuracy ∓ error``. The bootstrap bounds are the saved-but-not-plotted percentile CI.
    """

    accuracy: float
    error: float
    ci_lower: float
    ci_upper: float
    bootstrap_lower: float
    bootstrap_upper: float
    count: int


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    *,
    iterations: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (the paper's ``bootstrap_accuracy``).

    One ``np.random.default_rng(seed)`` draws ``len(values)`` indices with replacement per
    iteration, so the result is reproducible and independent of any global random state.
    Empty input gives ``(nan, nan)``.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    _z(confidence)  # validates confidence
    rng = np.random.default_rng(seed)
    means = np.empty(iterations)
    for i in range(iterations):  # a loop, not one (iterations, n) matrix: n can be ~1e5
        means[i] = data[rng.integers(0, data.size, size=data.size)].mean()
    tail = (1.0 - confidence) / 2.0 * 100.0
    lower, upper = np.percentile(means, [tail, 100.0 - tail])
    return float(lower), float(upper)


def accuracy_summary(
    correct: Sequence[bool],
    *,
    bootstrap_iterations: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> AccuracySummary:
    """Accuracy ± 1.96·SEM plus a percentile bootstrap CI (spec §1.11).

    0 items: everything nan. 1 item: the SEM is undefined, so ``error`` and the normal CI are
    nan, while the bootstrap degenerates to the single value.
    """
    data = np.asarray(correct, dtype=float)
    accuracy, error = _mean_and_error(data, _z(confidence))
    low, high = bootstrap_interval(data, iterations=bootstrap_iterations, seed=seed, confidence=confidence)
    return AccuracySummary(
        accuracy=accuracy,
        error=error,
        ci_lower=accuracy - error,
        ci_upper=accuracy + error,
        bootstrap_lower=low,
        bootstrap_upper=high,
        count=int(data.size),
    )


def mode_baseline(object_values: Sequence[H]) -> tuple[H, float]:
    """The always-predict-the-mode baseline (spec §1.10): ``(modal value, its frequency)``.

    Computed on the evaluation rows themselves, as in the paper (so it is an oracle for the
    marginal). Ties go to the value seen first, like ``statistics.mode``.
    """
    if len(object_values) == 0:
        raise ValueError("mode_baseline needs at least one value")
    counts = Counter(object_values)  # insertion-ordered; max() keeps the first of equals
    modal = max(counts, key=counts.__getitem__)
    return modal, counts[modal] / len(object_values)


def group_mode_flags(groups: Sequence[G], values: Sequence[H]) -> tuple[list[bool], dict[G, H]]:
    """Per row: is its value the modal value (:func:`mode_baseline`) of its group, on these rows?
    Also each group's modal value. The mode baseline of a set of rows is the mean of the flags."""
    by_group: dict[G, list[H]] = {}
    for g, v in zip(groups, values, strict=True):
        by_group.setdefault(g, []).append(v)
    modes = {g: mode_baseline(vs)[0] for g, vs in by_group.items()}
    return [v == modes[g] for g, v in zip(groups, values, strict=True)], modes


def entropy_bits(values: Sequence[Hashable]) -> float:
    """Shannon entropy (base 2) of the empirical distribution (``calculate_entropy``).

    Used to compare how spread out two models' behaviours are: a low-entropy model is easier to
    predict, including by the mode baseline. Empty input has entropy 0.
    """
    if len(values) == 0:
        return 0.0
    p = np.array(list(Counter(values).values()), dtype=float) / len(values)
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def two_proportion_ztest(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """Pooled two-sided z test of ``p_a == p_b``: ``(z, p_value)``.

    Same as ``statsmodels...proportions_ztest([sa, sb], [na, nb])`` (Felix's notebook p-values).
    When the pooled proportion is 0 or 1 the variance is 0 and, like statsmodels, both are nan.
    """
    for s, n in ((successes_a, n_a), (successes_b, n_b)):
        if n <= 0 or not 0 <= s <= n:
            raise ValueError(f"need 0 <= successes <= n and n > 0, got {s}/{n}")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    std = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    if std == 0.0:
        return math.nan, math.nan
    z = (successes_a / n_a - successes_b / n_b) / std
    return z, math.erfc(abs(z) / math.sqrt(2.0))  # = 2 * (1 - Phi(|z|)), exact in the tail


def _binomial_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly (Python integers, one rounding at the end)."""
    term = total = 1
    for i in range(1, k + 1):
        term = term * (n - i + 1) // i  # C(n, i), exact
        total += term
    return total / 2**n


def beats_mode_p(correct: Sequence[bool], mode_correct: Sequence[bool]) -> float:
    """One-sided exact McNemar test that a predictor beats the mode baseline on the same items.

    ``mode_correct[i]``: would answering the (task, property) modal value have been right on item
    i. Discordant items: the predictor right and the mode wrong (a), or the reverse (b); under
    the null each is a fair coin, so p = P(X >= a) for X ~ Binomial(a + b, 1/2) = P(X <= b).
    1.0 when there is no discordant item (a predictor that always says the mode).
    """
    c = np.asarray(correct, dtype=bool)
    m = np.asarray(mode_correct, dtype=bool)
    if c.shape != m.shape:
        raise ValueError(f"need two sequences of equal length, got {c.shape} and {m.shape}")
    a, b = int((c & ~m).sum()), int((~c & m).sum())
    return _binomial_half_cdf(b, a + b) if a + b else 1.0


DEGENERATE_SHARE = 0.8
"""A predictor whose most common answer covers more of its answers than this is flagged."""


def top_answer(answers: Sequence[Hashable]) -> tuple[Hashable | None, float]:
    """The most common answer and its share (ties: the first seen); (None, nan) when empty."""
    if not answers:
        return None, math.nan
    counts: dict[Hashable, int] = {}
    for x in answers:
        counts[x] = counts.get(x, 0) + 1
    best = max(counts, key=lambda k: counts[k])
    return best, counts[best] / len(answers)


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of predictors A and B on the same items.

    ``a_only`` (b in McNemar's notation): A right, B wrong; ``b_only`` (c): the reverse.
    ``p_value`` is McNemar's exact two-sided binomial test on the discordant pairs.
    ``mean_difference`` = accuracy A − accuracy B, with a 1.96·SEM CI of the per-item
    differences (the same style of interval as the paper's error bars).
    """

    count: int
    a_only: int
    b_only: int
    p_value: float
    accuracy_a: float
    accuracy_b: float
    mean_difference: float
    ci_lower: float
    ci_upper: float


def mcnemar_test(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> PairedTest:
    """McNemar's exact test plus the paired accuracy difference (e.g. self vs cross).

    Pairing removes the between-item variance that an unpaired z test ignores, so this is the
    right test when both predictors answered the same items. The p-value equals
    ``statsmodels...mcnemar(table, exact=True).pvalue``: ``min(1, 2 * P(X <= min(b, c)))``.
    """
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-d sequences of equal length, got {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    p_value = min(1.0, 2.0 * _binomial_half_cdf(min(a_only, b_only), a_only + b_only))
    diff, error = _mean_and_error(a.astype(float) - b.astype(float), PAPER_Z)
    return PairedTest(
        count=int(a.size),
        a_only=a_only,
        b_only=b_only,
        p_value=p_value,
        accuracy_a=float(a.mean()) if a.size else math.nan,
        accuracy_b=float(b.mean()) if b.size else math.nan,
        mean_difference=diff,
        ci_lower=diff - error,
        ci_upper=diff + error,
    )


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-frequency bin: its edges ``(lower, upper]``, member count and means."""

    lower: float
    upper: float
    count: int
    mean_x: float
    mean_y: float


def equal_frequency_bins(x: Sequence[float], y: Sequence[float], q: int = 10) -> tuple[CalibrationBin, ...]:
    """Bin pairs by x like ``pd.qcut(x, q, duplicates="drop")``; mean x and y per bin (§1.9).

    Edges are the linear-interpolation quantiles at ``linspace(0, 1, q + 1)``, each level not
    exactly representable nudged up one ulp as pandas >= 3 does, so edges agree bit for bit
    (pandas 2 differs only for points within an ulp of an edge); repeated edges are dropped;
    intervals are right-closed and the first also holds the minimum. Empty bins (possible
    when several edges fall between two data points) are omitted, like a ``groupby`` over
    observed bins. If all x are equal and q > 1 only one edge remains and, as in pandas, no bin
    exists.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-d and equally long, got {xs.shape}, {ys.shape}")
    if q < 1:
        raise ValueError(f"q must be >= 1, got {q}")
    if xs.size == 0:
        return ()
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("x and y must be finite")
    levels = np.linspace(0.0, 1.0, q + 1)
    inexact = q * levels != np.arange(q + 1)  # pandas >= 3 rounds unrepresentable levels up
    levels[inexact] = np.nextafter(levels[inexact], 1.0)
    edges = np.quantile(xs, levels)
    if edges.size != 2:  # pandas keeps the two edges of q=1 even when equal: one bin [c, c]
        edges = edges[np.r_[True, np.diff(edges) != 0]]
    if edges.size < 2:
        return ()
    ids = np.searchsorted(edges, xs, side="left")  # x in (e[i-1], e[i]] -> i
    ids[xs == edges[0]] = 1
    bins = []
    for i in range(1, edges.size):
        m = ids == i
        if m.any():
            lower, upper = float(edges[i - 1]), float(edges[i])
            mean_x, mean_y = float(xs[m].mean()), float(ys[m].mean())
            bins.append(CalibrationBin(lower, upper, int(m.sum()), mean_x, mean_y))
    return tuple(bins)


def calibration_mad(x: Sequence[float], y: Sequence[float], q: int = 10) -> float:
    """Mean absolute deviation of the binned calibration curve from y = x, in percentage points.

    The paper's ``mean_absolute_error(100 * bin_means_x, 100 * bin_means_y)``: every non-empty
    bin counts once, whatever its size. nan when there are no bins.
    """
    bins = equal_frequency_bins(x, y, q)
    if not bins:
        return math.nan
    return float(np.mean([abs(b.mean_x - b.mean_y) for b in bins]) * 100.0)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order); NaN stays NaN."""
    idx = [i for i, p in enumerate(p_values) if p == p]
    order = sorted(idx, key=lambda i: p_values[i])
    out = [float("nan")] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[i]))
        out[i] = running
    return out
