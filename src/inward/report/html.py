"""The study's report: one self-contained HTML page (inline CSS, figures as data URIs, no scripts).

Everything shown comes from plain data (results rows, comparisons, per-task rows, sample outputs,
the config and the run manifest). Model outputs, dataset strings, model names, config values and
notes are untrusted text: every table cell is HTML-escaped unless it was built here as markup
(:class:`_Html`), so escaping is the default, not something each call site must remember.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable, Sequence

import yaml

from inward.models.names import display_name
from inward.report.figures import as_number

LABEL_ORDER = ("untrained", "self", "cross")
LABEL_NAMES = {"untrained": "Without training", "self": "Self-prediction trained",
               "cross": "Cross-prediction trained"}  # fmt: skip
DASH = "–"

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


class _Html(str):
    """Markup built by this module; everything else is escaped before it reaches the page."""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _h(x: object) -> str:
    return x if isinstance(x, _Html) else _e(x)


def _n(x) -> _Html:
    """A right-aligned numeric cell (``x`` already formatted)."""
    return _Html(f'<td class="n">{_e(x)}</td>')


def pct(x) -> str:
    v = as_number(x)
    return DASH if math.isnan(v) else f"{100 * v:.1f}%"


def pp(x, signed: bool = False) -> str:
    """Percentage points (for ± errors and differences)."""
    v = as_number(x)
    return DASH if math.isnan(v) else (f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}")


def fmt_p(p) -> str:
    v = as_number(p)
    return DASH if math.isnan(v) else ("p<0.001" if v < 0.001 else f"p={v:.3f}")


def num(x, spec: str = "") -> str:
    """A number (ints as they are, floats by ``spec`` or a sensible default); nan/None as a dash."""
    if isinstance(x, (bool, str, int)) or x is None:
        return DASH if x is None else str(x)
    v = as_number(x)
    if math.isnan(v):
        return DASH
    return format(v, spec) if spec else (f"{v:.4g}" if abs(v) < 1000 else f"{v:.1f}")


def _m(model: object) -> _Html:
    """A model cell: its short display name, the full model string on hover."""
    if model in (None, ""):
        return _Html(f"<td>{DASH}</td>")
    return _Html(f'<td title="{_e(model)}">{_e(display_name(str(model)))}</td>')


def _clip(s: object, limit: int = 400) -> str:
    s = DASH if s is None else str(s)
    return s if len(s) <= limit else s[:limit] + f"… [{len(s) - limit} more characters]"


def _txt(s: object, limit: int = 400) -> _Html:
    """A cell holding untrusted free text (model output, dataset string), escaped and clipped."""
    return _Html(f'<td class="t">{_e(_clip(s, limit))}</td>')


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = (c if isinstance(c, _Html) and c.startswith("<td") else f"<td>{_h(c)}</td>" for c in row)
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return '<p class="muted">none</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"


def _by_label(rows: Sequence[dict]) -> list[dict]:
    rank = {label: i for i, label in enumerate(LABEL_ORDER)}
    return sorted(rows, key=lambda r: rank.get(r.get("label"), len(rank)))  # stable


def _label(r: dict) -> str:
    return LABEL_NAMES.get(r.get("label"), str(r.get("label")))


def _headline(results: Sequence[dict]) -> str:
    rows = [r for r in _by_label(results) if r.get("response_property") == "micro_average"]
    def acc(r):
        return f"{pct(r.get('accuracy'))} ± {pp(r.get('error'))}"

    return _table(
        ["", "seed", "object model", "predictor", "accuracy ± 1.96·SEM", "mode baseline", "compliance", "n"],
        ([_label(r), _n(_seed(r)), _m(r.get("object_model")), _m(r.get("meta_model")), _n(acc(r)), _n(pct(r.get("mode_baseline"))),
          _n(pct(r.get("compliance_rate"))), _n(num(r.get("count")))] for r in rows),
    )  # fmt: skip


def _seed(r: dict) -> str:
    seed = r.get("seed")
    return DASH if seed is None or seed == "" else str(seed)


def _verdicts(verdicts: Sequence[str]) -> str:
    if not verdicts:
        return '<p class="muted">none</p>'
    return "".join(f'<p class="verdict">{_e(v)}</p>' for v in verdicts) + f"<p>{_e(VERDICT_INTRO)}</p>"


def _seed_summary(rows: Sequence[dict]) -> str:
    def sd(r):
        return DASH if r.get("accuracy_sd") is None else pp(r.get("accuracy_sd"))

    return _table(
        ["label", "target", "predictor", "property", "seeds", "mean accuracy", "sd (pp)", "min–max",
         "mean mode baseline", "lift (pp)", "seeds beating mode", "seeds degenerate"],
        ([_label(r), _m(r.get("target")), _m(r.get("predictor")), r.get("response_property"), _n(num(r.get("seeds"))),
          _n(pct(r.get("accuracy_mean"))), _n(sd(r)),
          _n(f"{pct(r.get('accuracy_min'))}–{pct(r.get('accuracy_max'))}"),
          _n(pct(r.get("mode_baseline_mean"))), _n(pp(r.get("lift_mean"), signed=True)),
          _n(f"{r.get('seeds_beating_mode')}/{r.get('seeds')}"),
          _n(f"{r.get('seeds_degenerate')}/{r.get('seeds')}")] for r in _by_label(rows)),
    )  # fmt: skip


def _gaps(rows: Sequence[dict]) -> str:
    def interval(lo, hi):
        return DASH if DASH in (pp(lo), pp(hi)) else f"[{pp(lo, signed=True)}, {pp(hi, signed=True)}]"

    return _table(
        ["property", "cross predictor", "seeds", "self − cross (pp)", "sd (pp)", "per seed (pp)",
         "t-test p (seeds)", "t 95% CI", "hierarchical bootstrap 95%", "power at 10 pp",
         "detectable at 80% (pp)", "items per seed"],
        ([r.get("response_property"), _m(r.get("cross_predictor")), _n(num(r.get("seeds"))),
          _n(pp(r.get("gap_mean"), signed=True)), _n(DASH if r.get("gap_sd") is None else pp(r.get("gap_sd"))),
          _n(r.get("per_seed_gaps")), _n(fmt_p(r.get("p_value"))), _n(interval(r.get("t_lower"), r.get("t_upper"))),
          _n(interval(r.get("bootstrap_lower"), r.get("bootstrap_upper"))), _n(pct(r.get("power_at_10pp"))),
          _n(pp(r.get("detectable_at_80pct"))), _n(r.get("items_per_seed"))] for r in rows),
    )  # fmt: skip


def _results(results: Sequence[dict]) -> str:
    def boot(r):
        lo, hi = pct(r.get("bootstrap_lower")), pct(r.get("bootstrap_upper"))
        return DASH if DASH in (lo, hi) else f"{lo}–{hi}"

    def top(r):
        if r.get("response_property") == "micro_average":
            n = r.get("degenerate_groups")
            return f"{n} degenerate group(s)" if n not in (None, "") else DASH
        share = pct(r.get("top_answer_share"))
        flag = " DEGENERATE" if r.get("degenerate") is True else ""
        return f"{_txt(r.get('top_answer'), 20)} ({share}){flag}"

    return _table(
        ["label", "seed", "object model", "predictor", "property", "accuracy", "± (pp)", "bootstrap 95%",
         "mode baseline", "beats mode (one-sided p)", "most common answer", "compliance", "n"],
        ([_label(r), _n(_seed(r)), _m(r.get("object_model")), _m(r.get("meta_model")), r.get("response_property"),
          _n(pct(r.get("accuracy"))), _n(pp(r.get("error"))), _n(boot(r)), _n(pct(r.get("mode_baseline"))),
          _n(fmt_p(r.get("beats_mode_p"))), top(r),
          _n(pct(r.get("compliance_rate"))), _n(num(r.get("count")))] for r in _by_label(results)),
    )  # fmt: skip


def _comparisons(comparisons: Sequence[dict]) -> str:
    return _table(
        ["seed", "property", "self (predictor)", "cross (predictor)", "self acc.", "cross acc.",
         "difference (pp)", "z", "z-test", "paired n", "McNemar"],
        ([_n(_seed(c)), c.get("response_property"), _m(c.get("self_model")), _m(c.get("cross_model")),
          _n(pct(c.get("self_accuracy"))), _n(pct(c.get("cross_accuracy"))),
          _n(pp(c.get("difference"), signed=True)), _n(num(c.get("z"), ".2f")), _n(fmt_p(c.get("p_value"))),
          _n(num(c.get("paired_count"))), _n(fmt_p(c.get("mcnemar_p")))] for c in comparisons),
    )  # fmt: skip


def _by_task(by_task: Sequence[dict]) -> str:
    return _table(
        ["label", "seed", "object model", "predictor", "task", "property", "accuracy", "± (pp)", "mode baseline",
         "modal value", "compliance", "n", "objects", "objects excluded"],
        ([_label(r), _n(_seed(r)), _m(r.get("object_model")), _m(r.get("meta_model")), r.get("task"), r.get("response_property"),
          _n(pct(r.get("accuracy"))), _n(pp(r.get("error"))), _n(pct(r.get("mode_baseline"))),
          _txt(r.get("modal_value"), 80), _n(pct(r.get("compliance_rate"))), _n(num(r.get("count"))),
          _n(num(r.get("objects"))), _n(num(r.get("object_excluded")))] for r in _by_label(by_task)),
    )  # fmt: skip


def _examples(examples: Sequence[dict]) -> str:
    def mark(ok):
        if ok is None:
            return DASH
        return _Html('<span class="ok">✓</span>' if ok else '<span class="bad">✗</span>')

    return _table(
        ["label", "task", "property", "string", "object response", "object value", "predicted",
         "correct"],
        ([_label(x), x.get("task"), x.get("property"), _txt(x.get("string")),
          _txt(x.get("object_response")), _txt(x.get("object_value"), 120), _txt(x.get("answer"), 120),
          mark(x.get("correct"))] for x in _by_label(examples)),
    )  # fmt: skip


def _generic(rows: Sequence[dict]) -> str:
    """A table of dicts, columns in first-seen order; long values clipped."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    def cell(v):
        return _n(num(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else _clip(v, 200)

    return _table(cols, ([cell(r.get(k)) for k in cols] for r in rows))


def _stages(stage_seconds: dict) -> str:
    rows = [[k, _n(num(v, ".1f"))] for k, v in stage_seconds.items()]
    total = sum(v for v in map(as_number, stage_seconds.values()) if not math.isnan(v))
    return _table(["stage", "seconds"], rows + ([["total", _n(f"{total:.1f}")]] if rows else []))


def _models(models: dict) -> str:
    return _generic([{"model": name, **(fp if isinstance(fp, dict) else {"fingerprint": fp})}
                     for name, fp in models.items()])  # fmt: skip


def _versions(manifest: dict) -> str:
    env = manifest.get("environment") or {}
    git = env.get("git") or {}
    rows = list((manifest.get("versions") or env.get("versions") or {}).items())
    rows += [("platform", env["platform"])] if "platform" in env else []
    rows += [(f"git {k}", v) for k, v in git.items()]
    rows += [("recorded at", env["time"])] if "time" in env else []
    return _table(["", "version"], rows)


def _dump(config: object) -> str:
    plain = json.loads(json.dumps(config, default=str))  # tuples -> lists, odd objects -> str
    try:
        return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return json.dumps(plain, indent=2, ensure_ascii=False)


def _figures(figures: dict[str, bytes]) -> str:
    out = []
    for name, data in figures.items():
        mime = "image/png" if data.startswith(b"\x89PNG") else None
        if mime is None:
            out.append(f'<p class="muted">figure {_e(name)} is not a PNG; left out.</p>')
            continue
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        out.append(f'<figure><img src="{uri}" alt="{_e(name)}"><figcaption>{_e(name)}</figcaption></figure>')
    return "\n".join(out) or '<p class="muted">none</p>'


def _calibration(rows: Sequence[dict], agreement: Sequence[dict]) -> str:
    table = _table(
        ["setup", "object model", "predictor", "property", "method", "MAD (pp)", "pairs", "prompts",
         "object mass"],
        ([_label({"label": r.get("setup")}), _m(r.get("object_model")), _m(r.get("meta_model")),
          r.get("response_property"), r.get("method"), _n(num(r.get("mad"), ".1f")), _n(num(r.get("count"))),
          _n(num(r.get("prompts"))), _n(num(r.get("mean_object_mass"), ".3f"))] for r in rows),
    )  # fmt: skip
    agree = _table(
        ["setup", "predictor", "property", "prompts", "object TV", "TV by chance", "hypothetical TV",
         "MAD exact", "MAD sampled", "difference (pp)"],
        ([_label({"label": a.get("setup")}), a.get("meta_model"), a.get("response_property"),
          _n(num(a.get("prompts"))), _n(num(a.get("object_tv"), ".3f")),
          _n(num(a.get("object_tv_noise_floor"), ".3f")), _n(num(a.get("hypothetical_tv"), ".3f")),
          _n(num(a.get("mad_exact"), ".1f")), _n(num(a.get("mad_sampled"), ".1f")),
          _n(num(a.get("mad_difference"), "+.1f"))] for a in agreement),
    )  # fmt: skip
    return (f"<p>{_e(CALIBRATION_INTRO)}</p>\n{table}\n<h3>Sampled vs exact estimates</h3>\n"
            f"<p>{_e(AGREEMENT_INTRO)}</p>\n{agree}")


def _behaviour_change(rows: Sequence[dict]) -> str:
    return f"<p>{_e(BEHAVIOUR_INTRO)}</p>\n" + _table(
        ["property", "adjustment", "predictor (M_C)", "old model (M)", "predicts old", "± (pp)",
         "predicts new", "± (pp)", "difference (pp)", "McNemar", "z-test", "mode baseline (new)",
         "mode baseline (old)", "shifted items", "shifted share"],
        ([r.get("response_property"), r.get("adjustment"), _m(r.get("meta_model")), _m(r.get("old_model")),
          _n(pct(r.get("predicts_old_accuracy"))), _n(pp(r.get("predicts_old_error"))),
          _n(pct(r.get("predicts_new_accuracy"))), _n(pp(r.get("predicts_new_error"))),
          _n(pp(r.get("difference"), signed=True)), _n(fmt_p(r.get("p_value"))), _n(fmt_p(r.get("ztest_p"))),
          _n(pct(r.get("mode_baseline"))), _n(pct(r.get("mode_baseline_old"))), _n(num(r.get("count"))),
          _n(pct(r.get("shifted_fraction")))] for r in rows),
    )  # fmt: skip


def _scaling(rows: Sequence[dict]) -> str:
    return _table(
        ["", "predictor", "target", "training examples", "accuracy", "± (pp)", "mode baseline", "n"],
        ([_label(r), _m(r.get("predictor")), _m(r.get("target")), _n(num(r.get("n_train"))), _n(pct(r.get("accuracy"))),
          _n(pp(r.get("error"))), _n(pct(r.get("mode_baseline"))), _n(num(r.get("count")))] for r in rows),
    )  # fmt: skip


def _matrix(rows: Sequence[dict]) -> str:
    """Trained predictors (rows) by target (columns), micro average over seeds; the diagonal cell
    of a target is its self-trained predictor."""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    predictors = list(dict.fromkeys(r["predictor"] for r in rows))
    cell = {(r["predictor"], r["target"]): r for r in rows}

    def show(p: str, t: str) -> _Html:
        r = cell.get((p, t))
        if r is None:
            return _n(DASH)
        sd = as_number(r.get("accuracy_sd"))
        text = pct(r.get("accuracy_mean")) + ("" if math.isnan(sd) else f" ± {100 * sd:.1f}")
        text += f" (mode {pct(r.get('mode_baseline_mean'))}; {r.get('seeds_beating_mode')}/{r.get('seeds')} beat it)"
        return _Html(f'<td class="n">{"<b>" if p == t else ""}{_e(text)}{"</b>" if p == t else ""}</td>')

    return (f"<p>{_e(MATRIX_INTRO)}</p>\n"
            + _table(["predictor \\ target", *map(display_name, targets)], ([_m(p), *(show(p, t) for t in targets)] for p in predictors)))


MATRIX_INTRO = (
    "Micro-average accuracy on held-out tasks, mean ± sd over training seeds, of each trained "
    "predictor (row) predicting each target's self-trained version (column). Bold: the diagonal, a "
    "target's own self-trained predictor; the rest are cross-predictors trained on the same items "
    "about that target. In brackets: the mean mode baseline, and in how many seeds the predictor "
    "beat it."
)


def _sd_pp(x) -> str:
    v = as_number(x)
    return DASH if math.isnan(v) else f"± {100 * v:.1f}"


def _probes(summary: Sequence[dict], contrast: Sequence[dict], simulation: Sequence[dict]) -> str:
    by_prop: dict[str, list[dict]] = {}
    for r in simulation:
        by_prop.setdefault(str(r.get("property")), []).append(r)

    def mean(rows: list[dict], key: str) -> float:
        vals = [as_number(r.get(key)) for r in rows if not math.isnan(as_number(r.get(key)))]
        return sum(vals) / len(vals) if vals else math.nan

    return (
        f"<p>{_e(PROBES_INTRO)}</p>\n" + _table(
            ["target", "cross model", "source", "layer", "depth", "seeds", "probe accuracy", "sd (pp)",
             "mode baseline", "seeds beating mode", "self-ft predictor", "cross-ft predictor"],
            ([_m(r.get("target")), _m(r.get("cross_model")), r.get("source"), _n(num(r.get("layer"))),
              _n(num(r.get("depth"))), _n(num(r.get("seeds"))), _n(pct(r.get("accuracy_mean"))),
              _n(_sd_pp(r.get("accuracy_sd"))), _n(pct(r.get("mode_baseline_mean"))),
              _n(num(r.get("seeds_beating_mode"))), _n(pct(r.get("self_ft_accuracy_mean"))),
              _n(pct(r.get("cross_ft_accuracy_mean")))] for r in summary),
        ) + "\n<h3>Own hypothetical-prompt state vs the cross model's, by depth</h3>\n" + _table(
            ["target", "cross model", "depth", "layers (self / cross)", "seeds", "self − cross (pp)", "sd (pp)",
             "95% interval (pp)", "t-test over seeds"],
            ([_m(r.get("target")), _m(r.get("cross_model")), _n(num(r.get("depth"))),
              f"{r.get('self_layer')} / {r.get('cross_layer')}", _n(num(r.get("seeds"))),
              _n(pp(r.get("self_minus_cross_mean"), signed=True)), _n(_sd_pp(r.get("self_minus_cross_sd"))),
              _n(f"[{pp(r.get('ci_lower'), signed=True)}, {pp(r.get('ci_upper'), signed=True)}]"),
              _n(fmt_p(r.get("p_value")))] for r in contrast),
        ) + f"\n<h3>Self-simulation control</h3>\n<p>{_e(SIMULATION_INTRO)}</p>\n" + _table(
            ["property", "seeds", "rows (mean)", "agrees with M1ft now", "agrees with untrained M1",
             "rows where they differ (mean)", "of those: agrees now", "of those: agrees before"],
            ([prop, _n(num(len(rows))), _n(num(mean(rows, "n"), ".0f")), _n(pct(mean(rows, "agree_now"))),
              _n(pct(mean(rows, "agree_before"))), _n(num(mean(rows, "changed"), ".1f")),
              _n(pct(mean(rows, "changed_agree_now"))), _n(pct(mean(rows, "changed_agree_before")))]
             for prop, rows in by_prop.items()),
        )
    )  # fmt: skip


PROBES_INTRO = (
    "Linear probes (standardised features, logistic regression with cross-validated "
    "regularisation) on the residual stream at the last prompt token, fitted on the train-task items "
    "the predictors trained on and scored on the held-out rows against the self-trained model's "
    "actual property values (exact values; the probe's 'other' class never counts as right). "
    "Sources: the self-trained model on the object-level prompt (the state its answer is computed "
    "from: a ceiling for what is linearly readable), and the self-trained and cross-trained models on "
    "the same hypothetical prompt. Means over training seeds; the finetuned predictors and the mode "
    "baseline are scored on the same rows."
)
SIMULATION_INTRO = (
    "On held-out rows: how often the self-trained model's hypothetical answer equals the property "
    "of its own object-level answer now, and of the untrained model's answer (the behaviour its "
    "training data described). On rows where the two behaviours differ, a predictor that tracks its "
    "current behaviour agrees with 'now'; one that learned the old behaviour's pattern agrees with "
    "'before'. Mean over training seeds."
)
VERDICT_INTRO = (
    "Every finetuned model is retrained once per training seed, on that seed's draw of training "
    "items, and scored on the same held-out items. The p-value is a two-sided one-sample t-test of "
    "the per-seed gaps (seeds as the unit; df = seeds − 1); the interval beside it is a two-stage "
    "bootstrap over seeds and then items within each seed (with few seeds it is too narrow: it "
    "cannot see more spread than the seeds it has). Power is the t-test's chance of detecting a "
    "10-point self advantage given the spread between seeds measured here."
)
CALIBRATION_INTRO = (
    "Experiment 1b: for each prompt, the top-3 object-level behaviours (second character, say) "
    "and their probabilities, against the probability the predictor's hypothetical answer puts on "
    "each; pairs pooled per setup in 10 equal-frequency bins. MAD is the mean absolute deviation of "
    "the bin means from the diagonal, in percentage points (lower is better calibrated). Exact: from "
    "one forward pass (top-k next tokens; object side read off the first token, see notes); sampled: "
    "from samples at temperature 1."
)
AGREEMENT_INTRO = (
    "On prompts estimated both ways: mean total-variation distance between the two estimates of the "
    "object-level and of the hypothetical distribution, and the distance a perfect sampler with the "
    "same number of samples would show by chance alone."
)
BEHAVIOUR_INTRO = (
    "Experiment 2: the self-trained model M is finetuned further on another model's object-level "
    "answers, giving M_C. On held-out items whose behaviour changed (both compliant, property values "
    "differ), M_C's hypothetical answers are scored against M's old behaviour and against M_C's "
    "new behaviour. Errors are 1.96·SEM; McNemar's exact test pairs the two scores of each item."
)


def render_report(*, title: str, results: Sequence[dict], comparisons: Sequence[dict],
                  by_task: Sequence[dict], examples: Sequence[dict], config: dict, manifest: dict,
                  figures: dict[str, bytes], calibration: Sequence[dict] | None = None,
                  agreement: Sequence[dict] | None = None, behaviour_change: Sequence[dict] | None = None,
                  scaling: Sequence[dict] | None = None, verdicts: Sequence[str] = (),
                  seed_summary: Sequence[dict] = (), gaps: Sequence[dict] = (),
                  probes: tuple[Sequence[dict], Sequence[dict], Sequence[dict]] | None = None,
                  matrix: Sequence[dict] = ()) -> str:  # fmt: skip
    """The whole report as one HTML string (deterministic for the same inputs). The sections of
    the optional experiments appear only when their rows are given."""
    notes = manifest.get("notes") or []
    sections = [
        ("Verdict over training seeds", _verdicts(verdicts)),
        ("Self − cross over training seeds", _gaps(gaps)),
        ("Predictor × target", _matrix(matrix)),
        ("Accuracy over training seeds", _seed_summary(seed_summary)),
        ("Per run (micro average over held-out tasks)", _headline(results)),
        ("Notes", "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>" if notes
         else '<p class="muted">none</p>'),
        ("Figures", _figures(figures)),
        ("Results by response property", _results(results)),
        ("Self- vs cross-prediction tests", _comparisons(comparisons)),
        ("Results by task", _by_task(by_task)),
        *([("Calibration (Experiment 1b)", _calibration(calibration, agreement or []))]
          if calibration is not None else []),
        *([("Behaviour change (Experiment 2)", _behaviour_change(behaviour_change))]
          if behaviour_change is not None else []),
        *([("Cross-prediction data scaling", _scaling(scaling))] if scaling is not None else []),
        *([("White-box probes", _probes(*probes))] if probes is not None else []),
        ("Sample outputs", _examples(examples)),
        ("Training", _generic(manifest.get("training") or [])),
        ("Stage wall times", _stages(manifest.get("stage_seconds") or {})),
        ("Config", f"<pre>{_e(_dump(config))}</pre>"),
        ("Versions", _versions(manifest)),
        ("Models", _models(manifest.get("models") or {})),
    ]  # fmt: skip
    body = "\n".join(f"<h2>{_e(h)}</h2>\n{content}" for h, content in sections)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n<p>{_e(INTRO)}</p>\n{body}\n</body>\n</html>\n"
    )
