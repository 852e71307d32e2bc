"""The study's report: one self-contained HTML page (inline CSS, figures as data URIs, no scripts).

The page is rendered from the jinja2 template ``templates/report.html.j2`` with autoescaping on:
every value that reaches it (model outputs, dataset strings, model names, config values, notes)
is escaped by the template engine, so nothing here builds markup by hand. Each table is
declared as a list of :class:`Col` (header, how a row gives the cell's text, the kind of cell);
:func:`table` turns rows into the cells the template's one table macro draws.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import yaml

from inward.models.names import display_name
from inward.report import columns as C
from inward.report.figures import as_number
from inward.report.format import DASH, LABEL_ORDER, clip, fmt_p, label, num, pct, pp, seed

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;
 padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{max-width:28em;white-space:pre-wrap;word-break:break-word;font-family:monospace;font-size:12px}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:12px}
figure{margin:1em 0}img{max-width:100%}figcaption{color:#666;font-size:12px}
.verdict{font-size:1.1em;font-weight:600}.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#666}
"""
INTRO = (
    "Without training: the model predicts properties of its own behaviour before any finetuning. "
    "Self-prediction trained: the model finetuned on its own behaviour predicts itself. "
    "Cross-prediction trained: another model, finetuned on the same facts about the self-trained "
    "model, predicts that model. All evaluation is on held-out tasks. Errors are 1.96·SEM; the "
    "mode baseline is the accuracy of always answering the most common object-level value."
)


def _interval(lo, hi) -> str:
    return DASH if DASH in (pp(lo), pp(hi)) else f"[{pp(lo, signed=True)}, {pp(hi, signed=True)}]"


def _sd_pp(x) -> str:
    v = as_number(x)
    return DASH if math.isnan(v) else f"± {100 * v:.1f}"


def _seed(r: dict) -> str:
    return seed(r.get("seed"))


def _label(r: dict) -> str:
    return label(r.get("label"))


def _by_label(rows: Sequence[dict]) -> list[dict]:
    rank: dict[str | None, int] = {label: i for i, label in enumerate(LABEL_ORDER)}
    return sorted(rows, key=lambda r: rank.get(r.get("label"), len(rank)))  # stable


# ---- declarative tables --------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """What the template draws in one ``<td>``: ``text`` (escaped there), a CSS class (``n``:
    numeric, ``t``: untrusted free text), a hover ``title``, bold, or a ✓/✗ ``mark``."""

    text: str
    cls: str = ""
    title: str = ""
    bold: bool = False
    mark: str = ""  # "ok" | "bad": a coloured span


@dataclass(frozen=True)
class Col:
    """One column of a report table: its header, the cell text from a row, and its kind:
    ``""`` plain, ``"n"`` numeric (right-aligned), ``"t"`` free text clipped at ``limit``,
    ``"m"`` a model (short display name, the full string on hover)."""

    header: str
    value: Callable[[dict], object]
    kind: str = ""
    limit: int = 400

    def cell(self, row: dict) -> Cell:
        v = self.value(row)
        if isinstance(v, Cell):
            return v
        if self.kind == "m":
            return Cell(DASH) if v in (None, "") else Cell(display_name(str(v)), title=str(v))
        if self.kind == "t":
            return Cell(clip(v, self.limit), cls="t")
        return Cell(DASH if v is None else str(v), cls="n" if self.kind == "n" else "")


def key(name: str, fmt: Callable[[object], str] | None = None) -> Callable[[dict], object]:
    """The cell value of row field ``name``, through ``fmt`` when given."""
    return (lambda r: fmt(r.get(name))) if fmt else (lambda r: r.get(name))


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Cell]]


def table(cols: Sequence[Col] | C.Columns, rows: Iterable[dict]) -> Table:
    """``rows`` under ``cols``: report columns, or a results table's shared column list
    (:mod:`inward.report.columns`; its ``html`` columns, in its order)."""
    if isinstance(cols, C.Columns):
        cols = [Col(c.header, c.value, c.kind, c.limit) for c in cols.html()]
    return Table([c.header for c in cols], [[c.cell(r) for c in cols] for r in rows])


def _acc(r: dict) -> str:
    return f"{pct(r.get('accuracy'))} ± {pp(r.get('error'))}"


HEADLINE = [
    Col("", _label),
    Col("seed", _seed, "n"),
    Col("object model", key("object_model"), "m"),
    Col("predictor", key("meta_model"), "m"),
    Col("accuracy ± 1.96·SEM", _acc, "n"),
    Col("mode baseline", key("mode_baseline", fmt=pct), "n"),
    Col("compliance", key("compliance_rate", fmt=pct), "n"),
    Col("n", key("count", fmt=num), "n"),
]

SEED_SUMMARY = [
    Col("label", _label),
    Col("target", key("target"), "m"),
    Col("predictor", key("predictor"), "m"),
    Col("property", key("response_property")),
    Col("seeds", key("seeds", fmt=num), "n"),
    Col("mean accuracy", key("accuracy_mean", fmt=pct), "n"),
    Col("sd (pp)", lambda r: DASH if r.get("accuracy_sd") is None else pp(r.get("accuracy_sd")), "n"),
    Col("min–max", lambda r: f"{pct(r.get('accuracy_min'))}–{pct(r.get('accuracy_max'))}", "n"),
    Col("mean mode baseline", key("mode_baseline_mean", fmt=pct), "n"),
    Col("lift (pp)", lambda r: pp(r.get("lift_mean"), signed=True), "n"),
    Col("mean κ", key("kappa_mean", fmt=lambda x: num(x, ".2f")), "n"),
    Col("seeds beating mode", lambda r: f"{r.get('seeds_beating_mode')}/{r.get('seeds')}", "n"),
    Col("seeds degenerate", lambda r: f"{r.get('seeds_degenerate')}/{r.get('seeds')}", "n"),
]

GAPS = [
    Col("property", key("response_property")),
    Col("cross predictor", key("cross_predictor"), "m"),
    Col("seeds", key("seeds", fmt=num), "n"),
    Col("self − cross (pp)", lambda r: pp(r.get("gap_mean"), signed=True), "n"),
    Col("sd (pp)", lambda r: DASH if r.get("gap_sd") is None else pp(r.get("gap_sd")), "n"),
    Col("per seed (pp)", key("per_seed_gaps"), "n"),
    Col("t-test p (seeds)", key("p_value", fmt=fmt_p), "n"),
    Col("Holm p (properties)", key("p_holm", fmt=fmt_p), "n"),
    Col("t 95% CI", lambda r: _interval(r.get("t_lower"), r.get("t_upper")), "n"),
    Col(
        "secondary: bootstrap 95% (too narrow with few seeds)",
        lambda r: _interval(r.get("bootstrap_lower"), r.get("bootstrap_upper")),
        "n",
    ),
    Col("secondary: post-hoc power at 10 pp", key("power_at_10pp", fmt=pct), "n"),
    Col("secondary: detectable at 80% (pp)", key("detectable_at_80pct", fmt=pp), "n"),
    Col("items per seed", key("items_per_seed"), "n"),
]


def _mark(r: dict) -> object:
    ok = r.get("correct")
    return DASH if ok is None else Cell("✓" if ok else "✗", mark="ok" if ok else "bad")


EXAMPLES = [
    Col("label", _label),
    Col("task", key("task")),
    Col("property", key("property")),
    Col("string", key("string"), "t"),
    Col("object response", key("object_response"), "t"),
    Col("object value", key("object_value"), "t", 120),
    Col("predicted", key("answer"), "t", 120),
    Col("correct", _mark),
]


AGREEMENT = [
    Col("setup", lambda r: _label({"label": r.get("setup")})),
    Col("predictor", key("meta_model")),
    Col("property", key("response_property")),
    Col("prompts", key("prompts", fmt=num), "n"),
    Col("object TV", lambda r: num(r.get("object_tv"), ".3f"), "n"),
    Col("TV by chance", lambda r: num(r.get("object_tv_noise_floor"), ".3f"), "n"),
    Col("hypothetical TV", lambda r: num(r.get("hypothetical_tv"), ".3f"), "n"),
    Col("MAD exact", lambda r: num(r.get("mad_exact"), ".1f"), "n"),
    Col("MAD sampled", lambda r: num(r.get("mad_sampled"), ".1f"), "n"),
    Col("difference (pp)", lambda r: num(r.get("mad_difference"), "+.1f"), "n"),
]


PROBE_SUMMARY = [
    Col("target", key("target"), "m"),
    Col("cross model", key("cross_model"), "m"),
    Col("source", key("source")),
    Col("layer", key("layer", fmt=num), "n"),
    Col("depth", key("depth", fmt=num), "n"),
    Col("seeds", key("seeds", fmt=num), "n"),
    Col("probe accuracy", key("accuracy_mean", fmt=pct), "n"),
    Col("sd (pp)", key("accuracy_sd", fmt=_sd_pp), "n"),
    Col("mode baseline", key("mode_baseline_mean", fmt=pct), "n"),
    Col("seeds beating mode", key("seeds_beating_mode", fmt=num), "n"),
    Col("self-ft predictor", key("self_ft_accuracy_mean", fmt=pct), "n"),
    Col("cross-ft predictor", key("cross_ft_accuracy_mean", fmt=pct), "n"),
]

PROBE_CONTRAST = [
    Col("target", key("target"), "m"),
    Col("cross model", key("cross_model"), "m"),
    Col("depth", key("depth", fmt=num), "n"),
    Col("layers (self / cross)", lambda r: f"{r.get('self_layer')} / {r.get('cross_layer')}"),
    Col("seeds", key("seeds", fmt=num), "n"),
    Col("self − cross (pp)", lambda r: pp(r.get("self_minus_cross_mean"), signed=True), "n"),
    Col("sd (pp)", key("self_minus_cross_sd", fmt=_sd_pp), "n"),
    Col(
        "95% interval (pp)",
        lambda r: f"[{pp(r.get('ci_lower'), signed=True)}, {pp(r.get('ci_upper'), signed=True)}]",
        "n",
    ),
    Col("t-test over seeds", key("p_value", fmt=fmt_p), "n"),
]

SIMULATION = [
    Col("property", key("property")),
    Col("seeds", key("seeds", fmt=num), "n"),
    Col("rows (mean)", lambda r: num(r.get("n"), ".0f"), "n"),
    Col("agrees with M1ft now", key("agree_now", fmt=pct), "n"),
    Col("agrees with untrained M1", key("agree_before", fmt=pct), "n"),
    Col("rows where they differ (mean)", lambda r: num(r.get("changed"), ".1f"), "n"),
    Col("of those: agrees now", key("changed_agree_now", fmt=pct), "n"),
    Col("of those: agrees before", key("changed_agree_before", fmt=pct), "n"),
    Col("where they agree: agrees now", key("unchanged_agree_now", fmt=pct), "n"),
]

STAGES = [Col("stage", key("stage")), Col("seconds", key("seconds"), "n")]
VERSIONS = [Col("", key("name")), Col("version", key("value"))]


def _generic(rows: Sequence[dict]) -> Table:
    """A table of dicts, columns in first-seen order; long values clipped."""
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v) -> Cell:
        return Cell(num(v), cls="n") if isinstance(v, (int, float)) and not isinstance(v, bool) else Cell(clip(v, 200))

    return Table(cols, [[cell(r.get(k)) for k in cols] for r in rows])


def _stages(stage_seconds: dict) -> Table:
    rows = [{"stage": k, "seconds": num(v, ".1f")} for k, v in stage_seconds.items()]
    total = sum(v for v in map(as_number, stage_seconds.values()) if not math.isnan(v))
    return table(STAGES, rows + ([{"stage": "total", "seconds": f"{total:.1f}"}] if rows else []))


def _versions(manifest: dict) -> Table:
    env = manifest.get("environment") or {}
    git = env.get("git") or {}
    rows = list((manifest.get("versions") or env.get("versions") or {}).items())
    rows += [("platform", env["platform"])] if "platform" in env else []
    rows += [(f"git {k}", v) for k, v in git.items()]
    rows += [("recorded at", env["time"])] if "time" in env else []
    return table(VERSIONS, ({"name": k, "value": v} for k, v in rows))


def _matrix(rows: Sequence[dict]) -> Table:
    """Trained predictors (rows) by target (columns), micro average over seeds; the diagonal cell
    of a target is its self-trained predictor (bold)."""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    predictors = list(dict.fromkeys(r["predictor"] for r in rows))
    found = {(r["predictor"], r["target"]): r for r in rows}

    def show(p: str, t: str) -> Cell:
        r = found.get((p, t))
        if r is None:
            return Cell(DASH, cls="n")
        sd = as_number(r.get("accuracy_sd"))
        text = pct(r.get("accuracy_mean")) + ("" if math.isnan(sd) else f" ± {100 * sd:.1f}")
        text += f" (mode {pct(r.get('mode_baseline_mean'))}; {r.get('seeds_beating_mode')}/{r.get('seeds')} beat it)"
        return Cell(text, cls="n", bold=p == t)

    model = Col("", lambda r: r["predictor"], "m")
    return Table(
        ["predictor \\ target", *map(display_name, targets)],
        [[model.cell({"predictor": p}), *(show(p, t) for t in targets)] for p in predictors],
    )


def _models(models: dict) -> Table:
    """One row per model: its full string and its fingerprint as ``key: value`` lines (hashes and
    chat templates are long; a column per field would not fit a window)."""

    def lines(fp: object) -> str:
        items = fp.items() if isinstance(fp, dict) else [("fingerprint", fp)]
        return "\n".join(f"{k}: {clip(v, 200)}" for k, v in items)

    return Table(
        ["model", "fingerprint"], [[Cell(name, cls="t"), Cell(lines(fp), cls="t")] for name, fp in models.items()]
    )


def _dump(config: object) -> str:
    plain = json.loads(json.dumps(config, default=str))  # tuples -> lists, odd objects -> str
    try:
        return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return json.dumps(plain, indent=2, ensure_ascii=False)


def figure_list(figures: dict[str, bytes]) -> list[dict]:
    """Each figure as a data URI, or (not a PNG) a note that it was left out."""
    out = []
    for name, data in figures.items():
        png = data.startswith(b"\x89PNG")
        uri = f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}" if png else ""
        out.append({"name": name, "uri": uri})
    return out


@dataclass(frozen=True)
class Section:
    """One ``<h2>`` section: paragraphs, then parts (an optional ``<h3>`` and paragraph each, and a
    table), or one of the special bodies (verdict lines, notes, figures, a ``<pre>`` block)."""

    title: str
    parts: list[dict]


def part(tab: Table | None = None, *, sub: str = "", intro: str = "", **special) -> dict:
    """One part of a section: a table with an optional heading and paragraph, or a special body
    (``verdicts=``, ``notes=``, ``figures=``, ``pre=``)."""
    return {"table": tab, "sub": sub, "intro": intro, **special}


@cache
def _template():
    import importlib.resources

    import jinja2

    text = importlib.resources.files("inward.report").joinpath("templates/report.html.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(text)


def render_report(
    *,
    title: str,
    results: Sequence[dict],
    comparisons: Sequence[dict],
    by_task: Sequence[dict],
    examples: Sequence[dict],
    config: dict,
    manifest: dict,
    figures: dict[str, bytes],
    verdicts: Sequence[str] = (),
    seed_summary: Sequence[dict] = (),
    gaps: Sequence[dict] = (),
    matrix: Sequence[dict] = (),
    verdict_parts: Sequence[dict] = (),
    experiment_sections: Sequence[Section] = (),
) -> str:
    """The whole report as one HTML string (deterministic for the same inputs). The study's
    experiments add parts under the verdict (``verdict_parts``) and sections of their own
    (``experiment_sections``, after the results tables); the report knows none of them."""
    micro = [r for r in _by_label(results) if r.get("response_property") == "micro_average"]
    headline = {k: v for k, v in figures.items() if k == "verdict"}  # drawn beside the sentence
    figures = {k: v for k, v in figures.items() if k not in headline}
    sections = [
        Section(
            "Verdict over training seeds",
            [part(verdicts=list(verdicts), intro=VERDICT_INTRO if verdicts else "")]
            + ([part(figures=figure_list(headline))] if headline else [])
            + list(verdict_parts),
        ),
        Section("Self − cross accuracy over training seeds", [part(table(GAPS, gaps))]),
        Section("Predictor × target", [part(_matrix(matrix), intro=MATRIX_INTRO)]),
        Section("Accuracy over training seeds", [part(table(SEED_SUMMARY, _by_label(seed_summary)))]),
        Section("Per run (micro average over held-out tasks)", [part(table(HEADLINE, micro))]),
        Section("Notes", [part(notes=list(manifest.get("notes") or []))]),
        Section("Figures", [part(figures=figure_list(figures))]),
        Section("Results by response property", [part(table(C.RESULTS.seeded(), _by_label(results)))]),
        Section("Self- vs cross-prediction tests", [part(table(C.COMPARISONS.seeded(), comparisons))]),
        Section("Results by task", [part(table(C.BY_TASK.seeded(), _by_label(by_task)))]),
    ]
    sections += experiment_sections
    models = manifest.get("models") or {}
    sections += [
        Section("Sample outputs", [part(table(EXAMPLES, _by_label(examples)))]),
        Section("Training", [part(_generic(manifest.get("training") or []))]),
        Section("Stage wall times", [part(_stages(manifest.get("stage_seconds") or {}))]),
        Section("Config", [part(pre=_dump(config))]),
        Section("Versions", [part(_versions(manifest))]),
        Section("Models", [part(_models(models))]),
    ]
    return _template().render(title=title, intro=INTRO, css=CSS, sections=sections)


MATRIX_INTRO = (
    "Micro-average accuracy on held-out tasks, mean ± sd over training seeds, of each trained "
    "predictor (row) predicting each target's self-trained version (column). Bold: the diagonal, a "
    "target's own self-trained predictor; the rest are cross-predictors trained on the same items "
    "about that target. In brackets: the mean mode baseline, and in how many seeds the predictor "
    "beat it."
)
VERDICT_INTRO = (
    "Declared before the run (the preset's verdict section): every finetuned model is retrained "
    "once per training seed and scored on the same held-out items; the unit is the seed. Self "
    "advantage: the two-sided t-test of the per-seed gaps (df = seeds − 1) rejects 0 with a positive "
    "mean; 95% t-interval. No self advantage: the upper one-sided test of the equivalence test (TOST) "
    "rejects a gap of +margin or more; 90% interval. Otherwise inconclusive. A predictor whose "
    "accuracy does not exceed its mode baseline over the seeds fails the learning gate. The figure "
    "shows each seed's gap, the 95% interval and the equivalence band."
)
