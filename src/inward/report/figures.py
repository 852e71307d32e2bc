"""The study's figures, in the style of the paper's bar charts (spec §6.2).

Inputs are plain results rows (dicts with ``response_property, accuracy, error, mode_baseline,
compliance_rate, object_model, meta_model, label``), so this module knows nothing of the pipeline.
Every public function returns PNG bytes: the HTML report embeds them and the study writes them to
files. Figures are drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas (no
pyplot, no display, no global figure state) under matplotlib's default style, and saved without
a ``Software`` entry, so the same rows always give the same bytes.

One bar series is drawn per (label, object model, predictor) group, in the order untrained,
self, cross; where a label has several series (several model pairs or cross models) the legend
names the predictor.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

LABEL_ORDER = ("untrained", "self", "cross")
LABEL_NAMES = {
    "untrained": "Without training",
    "self": "Self-prediction trained",
    "cross": "Cross-prediction trained",
}
# shades per label: the first series of a label gets the first colour, and so on
COLOURS = {
    "untrained": ("#9e9e9e", "#5f5f5f", "#cfcfcf", "#3a3a3a"),
    "self": ("#1f77b4", "#6baed6", "#08519c", "#9ecae1"),
    "cross": ("#ff7f0e", "#fdae6b", "#a63603", "#e6550d"),
}
OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
AVERAGE = "micro_average"
DPI = 110
_RC: dict[RcKeyType, Any] = {
    "font.size": 9,
    "svg.hashsalt": "inward",
    "axes.spines.top": False,
    "axes.spines.right": False,
}

SeriesKey = tuple[str, str, str]  # (label, object_model, meta_model)


def as_number(x) -> float:
    """``x`` as a float, nan for None / nan / anything non-numeric."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _plain(s: object, limit: int = 70) -> str:
    """Text for a figure: clipped, with ``$`` escaped so matplotlib never parses mathtext."""
    s = str(s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _properties(rows: Sequence[dict]) -> list[str]:
    props = list(dict.fromkeys(str(r["response_property"]) for r in rows))
    return [p for p in props if p != AVERAGE] + ([AVERAGE] if AVERAGE in props else [])


def _series(rows: Sequence[dict]) -> dict[SeriesKey, dict[str, dict]]:
    """Rows grouped by (label, object model, predictor), labels in the paper's order."""
    groups: dict[SeriesKey, dict[str, dict]] = {}
    for r in rows:
        key = (str(r["label"]), str(r["object_model"]), str(r["meta_model"]))
        groups.setdefault(key, {})[str(r["response_property"])] = r
    rank = {label: i for i, label in enumerate(LABEL_ORDER)}
    order = sorted(groups, key=lambda k: rank.get(k[0], len(rank)))  # stable: keeps appearance order
    return {k: groups[k] for k in order}


def _legend_names(keys: Sequence[SeriesKey]) -> list[str]:
    names = []
    for label, obj, meta in keys:
        same = [k for k in keys if k[0] == label]
        name = LABEL_NAMES.get(label, label)
        if len(same) > 1:
            metas = [k[2] for k in same]
            name += f" ({meta})" if len(set(metas)) == len(metas) else f" ({meta} on {obj})"
        names.append(_plain(name, 90))
    return names


def _colours(keys: Sequence[SeriesKey]) -> list[str]:
    seen: dict[str, int] = {}
    out: list[str] = []
    for label, _, _ in keys:
        i = seen.get(label, 0)
        seen[label] = i + 1
        palette: tuple[str, ...] | None = COLOURS.get(label)
        if palette is None:
            palette, i = OTHER_COLOURS, len(out)
        out.append(palette[i % len(palette)])
    return out


def _grouped_bars(ax, rows: Sequence[dict], value: str, *, error: str | None = None, star: str | None = None) -> None:
    """Grouped bars (percent) per property, optional error bars and black mode-baseline stars."""
    props, series = _properties(rows), _series(rows)
    keys = list(series)
    width = 0.8 / len(keys)
    star_labelled = False
    for i, (key, name, colour) in enumerate(zip(keys, _legend_names(keys), _colours(keys))):
        by_prop = series[key]
        offset = (i - (len(keys) - 1) / 2) * width
        xs = [j + offset for j, p in enumerate(props) if p in by_prop]
        got = [by_prop[p] for p in props if p in by_prop]
        vals = [100 * as_number(r[value]) for r in got]
        drawn = [(x, v, r) for x, v, r in zip(xs, vals, got) if not math.isnan(v)]
        ax.bar([x for x, _, _ in drawn], [v for _, v, _ in drawn], width * 0.95, color=colour, label=name, zorder=2)
        if error:
            bars = [(x, v, 100 * as_number(r[error])) for x, v, r in drawn]
            bars = [b for b in bars if not math.isnan(b[2])]
            if bars:
                ax.errorbar(
                    [b[0] for b in bars],
                    [b[1] for b in bars],
                    yerr=[b[2] for b in bars],
                    fmt="none",
                    ecolor="black",
                    elinewidth=1,
                    capsize=3,
                    zorder=3,
                )
        if star:
            stars = [(x, 100 * as_number(r[star])) for x, r in zip(xs, got)]
            stars = [s for s in stars if not math.isnan(s[1])]
            if stars:
                ax.scatter(
                    [s[0] for s in stars],
                    [s[1] for s in stars],
                    marker="*",
                    s=70,
                    color="black",
                    zorder=4,
                    label=None if star_labelled else "Mode baseline",
                )
                star_labelled = True
    ax.set_xticks(range(len(props)))
    tilt = len(props) > 4
    ax.set_xticklabels(
        [_plain("Average" if p == AVERAGE else p, 30) for p in props],
        rotation=25 if tilt else 0,
        ha="right" if tilt else "center",
    )
    ax.set_xlim(-0.6, len(props) - 0.4)
    ax.set_ylim(0, 105)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
    ax.grid(axis="y", color="#e5e5e5", zorder=0)


def _figure(rows: Sequence[dict], value: str, title: str, ylabel: str, **kw) -> bytes:
    with mpl.style.context("default"), mpl.rc_context(_RC):
        n_props = max(len(_properties(rows)), 1)
        n_series = max(len(_series(rows)), 1)
        width = min(16.0, max(8.0, 1.0 + n_props * (0.6 + 0.3 * n_series)))
        fig = Figure(figsize=(width, 4.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if rows:
            _grouped_bars(ax, rows, value, **kw)
            ax.set_ylabel(ylabel)
            pairs = sorted(zip(*ax.get_legend_handles_labels()), key=lambda h: h[1] == "Mode baseline")
            if pairs:
                fig.legend(
                    *zip(*pairs), loc="outside lower center", ncol=min(len(pairs), int(width // 4)), frameon=False
                )
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("\n".join(textwrap.wrap(_plain(title, 110), int(width * 9))))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _of_model(row: dict, object_model: str) -> bool:
    """Rows of ``object_model`` and of models derived from it (``"<model>+lora:…"``)."""
    obj = str(row["object_model"])
    return obj == object_model or obj.startswith(object_model + "+")


def self_cross_bars(results: Sequence[dict], *, object_model: str | None = None) -> bytes:
    """Accuracy per response property, one bar per label (untrained, self, cross), as PNG.

    Error bars are the ``error`` column (1.96·SEM; nan is skipped), black stars the mode baseline,
    the last group ("Average") the micro average. ``object_model`` keeps only that model's rows
    (and those of its adapters); by default all rows are drawn.
    """
    rows = [r for r in results if object_model is None or _of_model(r, object_model)]
    if object_model is None:
        base = [str(r["object_model"]) for r in rows if r["label"] == "untrained"]
        names = list(dict.fromkeys(base or [str(r["object_model"]) for r in rows]))
        object_model = ", ".join(names) if names else "none"
    return _figure(
        rows,
        "accuracy",
        f"Predicting held-out behaviour, object model: {object_model}",
        "Accuracy",
        error="error",
        star="mode_baseline",
    )


def seed_bars(summary: Sequence[dict], *, title: str) -> bytes:
    """Mean accuracy over training seeds per response property and setup (rows of
    inward.analysis.seeds.seed_summary), error bars one standard deviation over seeds, black stars
    the mean mode baseline."""
    rows = [
        {
            "label": r["label"],
            "object_model": r["target"],
            "meta_model": r["predictor"],
            "response_property": r["response_property"],
            "accuracy": r["accuracy_mean"],
            "sd": r["accuracy_sd"] if r["accuracy_sd"] is not None else float("nan"),
            "mode_baseline": r["mode_baseline_mean"],
        }
        for r in summary
    ]
    return _figure(
        rows, "accuracy", title + " (error bars: sd over seeds)", "Accuracy", error="sd", star="mode_baseline"
    )


def compliance_bars(results: Sequence[dict]) -> bytes:
    """Compliance rate per response property and series, as PNG."""
    title = "Compliance of the predictor's answers by response property"
    return _figure(list(results), "compliance_rate", title, "Compliant answers")


def save(fig_bytes: bytes, path: str | Path) -> Path:
    """Write figure bytes to ``path`` (creating its folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fig_bytes)
    return path


# ---- Experiment 1b, Experiment 2 and data scaling ----------------------------------------------
SETUP_COLOURS = {"untrained": "#7f7f7f", "self": "#1f77b4", "cross": "#ff7f0e"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def calibration_curves(curves: Sequence[dict], *, title: str) -> bytes:
    """Calibration curves with the y = x diagonal, one panel per method, one line per setup.

    ``curves``: dicts with ``setup, method, mad`` and ``bins`` (objects with ``mean_x, mean_y``,
    e.g. :class:`inward.analysis.stats.CalibrationBin`). The legend gives each setup's MAD (pp).
    """
    methods = list(dict.fromkeys(str(c["method"]) for c in curves)) or ["exact"]
    with mpl.style.context("default"), mpl.rc_context(_RC):
        fig = Figure(figsize=(4.6 * len(methods), 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        for i, method in enumerate(methods):
            ax = fig.add_subplot(1, len(methods), i + 1)
            ax.plot([0, 100], [0, 100], color="black", linestyle="--", linewidth=1, label="Perfect calibration")
            for c in (c for c in curves if c["method"] == method):
                setup = str(c["setup"])
                xs = [100 * b.mean_x for b in c["bins"]]
                ys = [100 * b.mean_y for b in c["bins"]]
                name = LABEL_NAMES.get(setup, setup)
                mad = as_number(c["mad"])
                ax.plot(
                    xs,
                    ys,
                    marker="o",
                    color=SETUP_COLOURS.get(setup),
                    zorder=3,
                    label=_plain(f"{name} (MAD={mad:.1f})" if not math.isnan(mad) else name, 60),
                )
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 100)
            ax.set_xlabel("Object-level behaviour probability (%)")
            ax.set_ylabel("Hypothetical probability (%)")
            ax.set_title(_plain(f"{method} distributions", 60))
            ax.grid(color="#e5e5e5", zorder=0)
            ax.legend(loc="upper left", frameon=False, fontsize=8)
        fig.suptitle(_plain(title, 110))
        return _png(fig)


def behaviour_change_bars(rows: Sequence[dict], *, title: str) -> bytes:
    """Per property: "predicts old behaviour" vs "predicts new behaviour" bars with 95% CIs
    (1.96·SEM) and black stars for the mode baseline of each bar's object behaviour."""
    rows = [r for r in rows if str(r.get("adjustment", "none")) == "none"]
    props = _properties(rows)
    with mpl.style.context("default"), mpl.rc_context(_RC):
        width = min(16.0, max(7.0, 1.5 + 1.4 * len(props)))
        fig = Figure(figsize=(width, 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        by = {str(r["response_property"]): r for r in rows}
        series = (
            ("predicts_old", "mode_baseline_old", "Predicting old behaviour (M)", "#9e9e9e"),
            ("predicts_new", "mode_baseline", "Predicting new behaviour (M_C)", "#2ca02c"),
        )
        for i, (key, mode, name, colour) in enumerate(series):
            xs = [j + (i - 0.5) * 0.38 for j in range(len(props))]
            vals = [100 * as_number(by[p][f"{key}_accuracy"]) for p in props]
            errs = [100 * as_number(by[p][f"{key}_error"]) for p in props]
            ax.bar(xs, vals, 0.36, color=colour, label=name, zorder=2)
            ok = [(x, v, e) for x, v, e in zip(xs, vals, errs) if not (math.isnan(v) or math.isnan(e))]
            if ok:
                ax.errorbar(
                    [o[0] for o in ok],
                    [o[1] for o in ok],
                    yerr=[o[2] for o in ok],
                    fmt="none",
                    ecolor="black",
                    elinewidth=1,
                    capsize=3,
                    zorder=3,
                )
            modes = [100 * as_number(by[p][mode]) for p in props]
            ax.scatter(xs, modes, marker="*", s=70, color="black", zorder=4, label="Mode baseline" if i == 0 else None)
        ax.set_xticks(range(len(props)))
        ax.set_xticklabels([_plain("Average" if p == AVERAGE else p, 30) for p in props])
        ax.set_ylim(0, 105)
        ax.set_ylabel("Accuracy on shifted items")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
        ax.grid(axis="y", color="#e5e5e5", zorder=0)
        if rows:
            ax.legend(loc="upper right", frameon=False, fontsize=8)
        else:
            ax.text(0.5, 0.5, "no shifted items", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("\n".join(textwrap.wrap(_plain(title, 140), int(width * 9))))
        return _png(fig)


def _base(model: object) -> str:
    """A model name without its adapter path (legends name the model, tables the adapter)."""
    return str(model).split("+lora:")[0]


def scaling_curve(rows: Sequence[dict], *, title: str) -> bytes:
    """Cross-prediction accuracy against training examples (error bars 1.96·SEM), with the
    self-prediction accuracy as a horizontal line (its band the 95% CI)."""
    cross = sorted((r for r in rows if r["label"] == "cross"), key=lambda r: as_number(r["n_train"]))
    selfs = [r for r in rows if r["label"] == "self"]
    with mpl.style.context("default"), mpl.rc_context(_RC):
        fig = Figure(figsize=(7.0, 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        xs = [as_number(r["n_train"]) for r in cross]
        ys = [100 * as_number(r["accuracy"]) for r in cross]
        es = [100 * as_number(r["error"]) for r in cross]
        es = [0.0 if math.isnan(e) else e for e in es]
        if cross:
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                marker="o",
                color=COLOURS["cross"][0],
                capsize=3,
                label=_plain(f"Cross-prediction ({_base(cross[-1]['predictor'])}, trained)", 80),
            )
            ax.scatter(
                xs,
                [100 * as_number(r["mode_baseline"]) for r in cross],
                marker="*",
                s=60,
                color="black",
                zorder=4,
                label="Mode baseline",
            )
        for r in selfs:
            y, e = 100 * as_number(r["accuracy"]), 100 * as_number(r["error"])
            ax.axhline(
                y,
                color=COLOURS["self"][0],
                linestyle="--",
                label=_plain(f"Self-prediction ({_base(r['predictor'])}, trained)", 80),
            )
            if not math.isnan(e):
                ax.axhspan(y - e, y + e, color=COLOURS["self"][0], alpha=0.12, linewidth=0)
        ax.set_xlabel("Cross-predictor finetuning examples")
        ax.set_ylabel("Accuracy (micro average, held-out tasks)")
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
        ax.grid(color="#e5e5e5", zorder=0)
        if cross or selfs:
            ax.legend(loc="upper left", frameon=False, fontsize=8)
        ax.set_title("\n".join(textwrap.wrap(_plain(title, 140), 70)))
        return _png(fig)


PROBE_STYLES = {
    "self/object": ("#1f77b4", ":", "M1 self-trained, object-level prompt"),
    "self/hypothetical": ("#1f77b4", "-", "M1 self-trained, hypothetical prompt"),
    "cross/hypothetical": ("#ff7f0e", "-", "M2 cross-trained, hypothetical prompt"),
}


def probe_layers(summary: Sequence[dict], *, title: str) -> bytes:
    """Probe accuracy (mean over training seeds, error bars ±1 sd) by relative depth, one line per
    activation source; the finetuned self- and cross-predictors and the mode baseline on the same
    rows as horizontal lines. ``summary``: rows of inward.analysis.probes.probe_summary."""
    with mpl.style.context("default"), mpl.rc_context(_RC):
        fig = Figure(figsize=(7.0, 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for source in dict.fromkeys(str(r["source"]) for r in summary):
            rows = sorted((r for r in summary if r["source"] == source), key=lambda r: as_number(r["depth"]))
            colour, style, name = PROBE_STYLES.get(source, ("#2ca02c", "-", source))
            sds = [as_number(r["accuracy_sd"]) for r in rows]
            ax.errorbar(
                [as_number(r["depth"]) for r in rows],
                [100 * as_number(r["accuracy_mean"]) for r in rows],
                yerr=[0.0 if math.isnan(s) else 100 * s for s in sds],
                color=colour,
                linestyle=style,
                marker="o",
                capsize=3,
                label=_plain(f"Probe: {name}", 80),
            )
        if summary:
            first = summary[0]
            for key, colour, name in (
                ("self_ft_accuracy_mean", COLOURS["self"][0], "Self-prediction finetuned"),
                ("cross_ft_accuracy_mean", COLOURS["cross"][0], "Cross-prediction finetuned"),
                ("mode_baseline_mean", "black", "Mode baseline"),
            ):
                ax.axhline(100 * as_number(first[key]), color=colour, linestyle="--", linewidth=1, label=name)
            ax.legend(loc="upper left", frameon=False, fontsize=8)
        ax.set_xlabel("Relative depth of the hidden state (0: embeddings, 1: last layer)")
        ax.set_ylabel("Accuracy (micro average, held-out tasks)")
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
        ax.grid(color="#e5e5e5", zorder=0)
        ax.set_title("\n".join(textwrap.wrap(_plain(title, 140), 70)))
        return _png(fig)


def verdict_plot(verdicts: Sequence[dict], metric: str = "micro-average accuracy") -> bytes:
    """The verdict beside its sentence: per pair, the per-seed gaps (dots), their mean, the 95%
    t-interval (bar) and the equivalence band ±margin (shaded). ``verdicts``: rows of
    inward.analysis.verdict.Verdict.to_json with ``target`` and ``cross_predictor``."""
    with mpl.style.context("default"), mpl.rc_context(_RC):
        n = max(len(verdicts), 1)
        fig = Figure(figsize=(8.0, 1.4 + 0.6 * n), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for m in sorted({as_number(v.get("margin")) for v in verdicts}):
            if m == m:
                ax.axvspan(-100 * m, 100 * m, color="#dfe9f5", zorder=0, label=f"equivalence band ±{100 * m:.0f}")
        ax.axvline(0, color="#888888", lw=1, zorder=1)
        for i, v in enumerate(verdicts):
            y = n - 1 - i
            first = i == 0
            gaps = [100 * g for g in v.get("gaps") or []]
            ax.scatter(gaps, [y] * len(gaps), s=28, color="#1f77b4", zorder=3, label="per seed" if first else None)
            lo, hi, mean = (as_number(v.get(k)) for k in ("lower95", "upper95", "mean"))
            if lo == lo and hi == hi:
                ax.plot(
                    [100 * lo, 100 * hi], [y, y], color="black", lw=2, zorder=2, label="95% interval" if first else None
                )
            if mean == mean:
                ax.scatter(
                    [100 * mean], [y], marker="|", s=300, color="black", zorder=4, label="mean" if first else None
                )
        labels = [
            f"{_base(v.get('target'))} vs {_base(v.get('cross_predictor'))}: {v.get('reading')}" for v in verdicts
        ]
        ax.set_yticks(range(n))
        ax.set_yticklabels([_plain(s, 70) for s in labels][::-1] or [""])
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel(f"self − cross, points of {metric}")
        ax.grid(axis="x", color="#e5e5e5", zorder=0)
        handles, names = ax.get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="outside lower center", ncol=4, frameon=False)
        return _png(fig)
