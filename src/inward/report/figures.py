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

import matplotlib as mpl
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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
_RC = {"font.size": 9, "svg.hashsalt": "inward", "axes.spines.top": False, "axes.spines.right": False}

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
    out = []
    for label, _, _ in keys:
        i = seen.get(label, 0)
        seen[label] = i + 1
        palette = COLOURS.get(label)
        if palette is None:
            palette, i = OTHER_COLOURS, len(out)
        out.append(palette[i % len(palette)])
    return out


def _grouped_bars(ax, rows: Sequence[dict], value: str, *, error: str | None = None,
                  star: str | None = None) -> None:  # fmt: skip
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
        ax.bar([x for x, _, _ in drawn], [v for _, v, _ in drawn], width * 0.95, color=colour,
               label=name, zorder=2)  # fmt: skip
        if error:
            bars = [(x, v, 100 * as_number(r[error])) for x, v, r in drawn]
            bars = [b for b in bars if not math.isnan(b[2])]
            if bars:
                ax.errorbar([b[0] for b in bars], [b[1] for b in bars], yerr=[b[2] for b in bars],
                            fmt="none", ecolor="black", elinewidth=1, capsize=3, zorder=3)  # fmt: skip
        if star:
            stars = [(x, 100 * as_number(r[star])) for x, r in zip(xs, got)]
            stars = [s for s in stars if not math.isnan(s[1])]
            if stars:
                ax.scatter([s[0] for s in stars], [s[1] for s in stars], marker="*", s=70,
                           color="black", zorder=4,
                           label=None if star_labelled else "Mode baseline")  # fmt: skip
                star_labelled = True
    ax.set_xticks(range(len(props)))
    tilt = len(props) > 4
    ax.set_xticklabels([_plain("Average" if p == AVERAGE else p, 30) for p in props],
                       rotation=25 if tilt else 0, ha="right" if tilt else "center")
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
                fig.legend(*zip(*pairs), loc="outside lower center", ncol=min(len(pairs), int(width // 4)),
                           frameon=False)  # fmt: skip
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
    return _figure(rows, "accuracy", f"Predicting held-out behaviour, object model: {object_model}",
                   "Accuracy", error="error", star="mode_baseline")  # fmt: skip


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
