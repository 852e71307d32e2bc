"""The sentences under the report's verdict and in run.json's ``notes``: each qualifies a number
in the tables (mode baselines, compliance, degenerate predictors, equal evidence, the optional
experiments, determinism, reused stages). Pure functions of a study's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inward.analysis.results import MICRO
from inward.analysis.seeds import base_model

if TYPE_CHECKING:
    from inward.experiments.study_config import StudyConfig


def probe_notes(summary: list[dict], contrast: list[dict]) -> list[str]:
    """Per pair: the best layer of each probe source against the finetuned predictors, and the
    own-vs-cross hypothetical-state contrast at that depth."""
    notes = []
    for target, cross in dict.fromkeys((r["target"], r["cross_model"]) for r in summary):
        rows = [r for r in summary if r["target"] == target and r["cross_model"] == cross]
        best: dict[str, dict] = {}
        for r in rows:
            if r["source"] not in best or r["accuracy_mean"] > best[r["source"]]["accuracy_mean"]:
                best[r["source"]] = r
        parts = "; ".join(
            f"{src} {100 * b['accuracy_mean']:.1f}% (layer {b['layer']}, depth {b['depth']})" for src, b in best.items()
        )
        first = rows[0]
        text = (
            f"Probes for {target} self-trained (vs {cross}), best layer per source, mean over "
            f"{first['seeds']} seed(s): {parts}; on the same rows the finetuned self-predictor scores "
            f"{100 * first['self_ft_accuracy_mean']:.1f}%, the cross-predictor "
            f"{100 * first['cross_ft_accuracy_mean']:.1f}%, the mode baseline {100 * first['mode_baseline_mean']:.1f}%. "
            "A best layer is chosen on the held-out rows, so it is optimistic."
        )
        own = best.get("self/hypothetical")
        match = [
            c
            for c in contrast
            if c["target"] == target and c["cross_model"] == cross and own is not None and c["depth"] == own["depth"]
        ]
        if match:
            m = match[0]
            sd = "" if m["self_minus_cross_sd"] is None else f" ± {100 * m['self_minus_cross_sd']:.1f}"
            text += (
                f" At depth {m['depth']}, its own hypothetical-prompt state minus the cross model's: "
                f"{100 * m['self_minus_cross_mean']:+.1f}{sd} points over {m['seeds']} seed(s) (t-test p = "
                f"{m['p_value']:.3g})."
            )
        notes.append(text)
    return notes


def determinism_notes(models: dict[str, Any]) -> list[str]:
    """Say where a rerun in a fresh directory would not reproduce the tables (issue: determinism)."""
    loose = sorted(name for name, fp in models.items() if isinstance(fp, dict) and fp.get("deterministic") is False)
    if not loose:
        return [
            "Determinism: every model ran on a local backend with fixed seeds; rerunning this "
            "config in a fresh run directory (and fresh cache) gives byte-identical results.csv."
        ]
    return [
        f"Determinism: {', '.join(loose)} cannot promise repeatable outputs (hosted or served "
        "models batch requests and change); a fresh run may differ. Rerunning this run "
        "directory reuses the cached responses and gives the same tables."
    ]


def stage_notes(log: dict[str, dict]) -> list[str]:
    """How many stage outputs this run reused, and why the others were computed."""
    if not log:
        return []
    reasons: dict[str, int] = {}
    for entry in log.values():
        if not entry["reused"]:
            reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    reused = sum(1 for e in log.values() if e["reused"])
    parts = "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return [
        f"Stages: {reused} of {len(log)} outputs reused from this run directory"
        + (f", the others computed ({parts})" if parts else "")
        + "; run.json → stages has each."
    ]


def _seeds_text(rows: list[dict]) -> str:
    return ", ".join("untrained" if r["seed"] is None else f"seed {r['seed']}" for r in rows)


def result_notes(results: list[dict], comparisons: list[dict]) -> list[str]:
    """Per-seed facts that qualify the verdict: predictors at or below their mode baseline, low
    compliance, degenerate (constant) predictors, and the item-level tests of each trained pair."""
    notes = []
    micro: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if r["response_property"] == MICRO:
            micro.setdefault((r["label"], base_model(r["meta_model"])), []).append(r)
    for (label, meta), rows in micro.items():
        below = [
            r
            for r in rows
            if r["accuracy"] == r["accuracy"]
            and (r["accuracy"] <= r["mode_baseline"] or not r.get("beats_mode_p", float("nan")) < 0.05)
        ]
        if below:
            parts = "; ".join(
                f"{_seeds_text([r])}: {100 * r['accuracy']:.1f}% vs {100 * r['mode_baseline']:.1f}% "
                f"(one-sided McNemar p={r.get('beats_mode_p', float('nan')):.3g})"
                for r in below
            )
            notes.append(
                f"{label} ({meta}): the micro-average accuracy does not beat the mode baseline in "
                f"{len(below)} of {len(rows)} run(s): {parts}."
            )
        low = [r for r in rows if r["compliance_rate"] == r["compliance_rate"] and r["compliance_rate"] < 0.5]
        if low:
            notes.append(
                f"{label} ({meta}) gave a compliant answer to under half of the hypotheticals in "
                f"{_seeds_text(low)}; non-compliant answers count as wrong, so its accuracy mostly "
                "measures the answer format."
            )
    degenerate = [
        f"{r['label']} {r['response_property']} ({_seeds_text([r])}: {r['top_answer']!s} in "
        f"{100 * r['top_answer_share']:.0f}% of rows)"
        for r in results
        if r["response_property"] != MICRO and r.get("degenerate") is True
    ]
    if degenerate:
        notes.append(
            "Degenerate predictors (one answer in more than 80% of rows; a constant answer is "
            "not evidence of knowing anything): " + "; ".join(degenerate) + "."
        )
    item = [c for c in comparisons if c["response_property"] == MICRO]
    if item:
        parts = "; ".join(
            f"seed {c['seed']}: {100 * c['self_accuracy']:.1f}% vs {100 * c['cross_accuracy']:.1f}% "
            f"(McNemar p={c['mcnemar_p']:.3g}, n={c['paired_count']})"
            for c in item
        )
        notes.append(
            "Item-level self vs cross tests, one per trained pair (comparisons.csv): " + parts + ". Each "
            "takes its trained models as fixed and counts item sampling only; the verdict above "
            "treats the training seed as the unit."
        )
    return notes


def scoring_notes(other: list[dict], scoring: str) -> list[str]:
    micro = [r for r in other if r["response_property"] == "micro_average"]
    if not micro:
        return []
    parts = ", ".join(
        f"{r['label']}{'' if r['seed'] is None else ' seed ' + str(r['seed'])} "
        f"{100 * r['accuracy']:.1f}% (mode {100 * r['mode_baseline']:.1f}%)"
        for r in micro
    )
    return [f"With {scoring} answer normalisation (results_{scoring}.csv), the micro averages are: {parts}."]


def unmatchable_notes(unmatchable: list[dict], threshold: float = 0.1) -> list[str]:
    """Properties where at least ``threshold`` of an object model's evaluable rows (over setups
    and seeds) can never be scored correct: the object value keeps punctuation (or a run of
    whitespace) that every cleaned answer loses. Every predictor scores 0 on those rows; the mode
    baseline need not."""
    totals: dict[tuple[str, str], list[int]] = {}
    for r in unmatchable:
        t = totals.setdefault((base_model(r["object_model"]), r["property"]), [0, 0])
        t[0] += r["unmatchable"]
        t[1] += r["evaluable"]
    bad = [(m, p, u, n) for (m, p), (u, n) in totals.items() if n and u / n >= threshold]
    if not bad:
        return []
    parts = "; ".join(f"{m} {p}: {u} of {n} ({100 * u / n:.0f}%)" for m, p, u, n in bad)
    return [
        f"Rows no answer can match under this scoring (the object value keeps punctuation that every "
        f'cleaned answer loses, e.g. a comma-separated response\'s first word "goat,"): {parts}. They count as '
        "wrong for every predictor, but the mode baseline (the most common object value) can count them "
        "as right; results_symmetric.csv cleans both sides."
    ]


def evidence_notes(evidence: list[dict]) -> list[str]:
    """How far the cross-predictor's data differs from the self-predictor's (equal evidence): one
    note per training seed and (target, cross model) pair, the pair named where there are several."""
    if not evidence:
        return []
    notes = []
    pair_of = lambda e: (base_model(e["target"]), e["cross_model"])  # noqa: E731
    several = len({pair_of(e) for e in evidence}) > 1
    for seed, pair in dict.fromkeys((e["seed"], pair_of(e)) for e in evidence):
        rows = [e for e in evidence if e["seed"] == seed and pair_of(e) == pair]
        head = f"Equal evidence, seed {seed}" + (f", {pair[1]} cross-trained on {pair[0]}" if several else "")
        total, dropped = sum(e["self_examples"] for e in rows), sum(e["dropped"] for e in rows)
        if not dropped:
            notes.append(f"{head}: the cross-predictor trained on exactly the self-predictor's {total} items.")
            continue
        parts = ", ".join(
            f"{e['task']}/{e['property']} {e['dropped']} of {e['self_examples']}" for e in rows if e["dropped"]
        )
        notes.append(
            f"{head}: the cross-predictor trained on the self-predictor's "
            f"items except {dropped} of {total} ({100 * dropped / total:.0f}%) where the "
            f"self-trained model's own answer was not compliant ({parts}; evidence.csv, and "
            "dropped_items.jsonl under seed*/models/*/cross_ft/)."
        )
    return notes


def first_seed_only_notes(c: StudyConfig) -> list[str]:
    if len(c.seeds) < 2:
        return []
    only = [
        name
        for name, section in (("calibration", c.calibration), ("behaviour change", c.behaviour_change))
        if section is not None and not section.every_seed
    ]
    if not only:
        return []
    names = " and ".join(only)
    return [
        f"{names[0].upper()}{names[1:]} ran on training seed {c.first_seed} only (every_seed: false), so "
        f"{'their results are' if len(only) > 1 else 'its result is'} one trained model's, with no "
        "spread over seeds; set every_seed: true to replicate over all seeds."
    ]


def calibration_notes(c: StudyConfig, agreement: list[dict], calibration: list[dict]) -> list[str]:
    """Calibration: how far the two estimation methods agree, how the exact one reads the object
    side, and MAD over seeds."""
    notes = []
    for a in agreement:
        assert c.calibration is not None  # agreement rows come only from a calibration run
        notes.append(
            f"Calibration, {a['setup']}{'' if a['seed'] is None else ' seed ' + str(a['seed'])} "
            f"({a['response_property']}): on {a['prompts']} prompts with "
            f"both methods, sampled and exact object distributions differ by a mean total-variation "
            f"distance of {a['object_tv']:.3f} (a perfect {c.calibration.samples}-sample "
            f"estimate would differ by {a['object_tv_noise_floor']:.3f} by chance), hypothetical "
            f"distributions by {a['hypothetical_tv']:.3f}; MAD sampled {a['mad_sampled']:.1f} vs "
            f"exact {a['mad_exact']:.1f} pp (difference {a['mad_difference']:+.1f} pp)."
        )
    notes.append(
        "Calibration, exact method: the object-level distribution is read off the "
        "first answer token (its text stands for the whole response; tokens that "
        "fix no property value are dropped and the rest renormalised; "
        "mean_object_mass in calibration.csv is the share that fixed a value)."
    )
    return notes + _calibration_over_seeds(calibration)


def behaviour_notes(behaviour: list[dict]) -> list[str]:
    """Behaviour change per seed, and over the seeds."""
    notes = []
    for r in behaviour:
        if r["response_property"] == "micro_average" and r["adjustment"] == "none":
            verdict = (
                "predicts its new behaviour better than its old"
                if r["difference"] > 0 and r["p_value"] < 0.05
                else "does not predict its new behaviour significantly better than its old"
            )
            degenerate = [
                x["response_property"]
                for x in behaviour
                if x["adjustment"] == "none"
                and x["degenerate"] is True
                and x["seed"] == r["seed"]
                and x["meta_model"] == r["meta_model"]
            ]
            beats = r["new_beats_mode_p"] < 0.05
            notes.append(
                f"Behaviour change, seed {r['seed']}: {r['meta_model']} {verdict} on {r['count']} shifted items "
                f"({100 * r['shifted_fraction']:.1f}% of compared items shifted): new "
                f"{100 * r['predicts_new_accuracy']:.1f}% vs old {100 * r['predicts_old_accuracy']:.1f}%, "
                f"McNemar p={r['p_value']:.3g}; against its own mode baseline "
                f"({100 * r['mode_baseline']:.1f}%) the new side {'beats' if beats else 'does not beat'} it "
                f"(one-sided p={r['new_beats_mode_p']:.3g}), the old side's mode is "
                f"{100 * r['mode_baseline_old']:.1f}% (p={r['old_beats_mode_p']:.3g})"
                + (f"; one answer in over 80% of rows for {', '.join(degenerate)}" if degenerate else "")
                + "."
            )
    return notes + _behaviour_over_seeds(behaviour)


def scaling_notes(scaling: list[dict]) -> list[str]:
    """Data scaling: cross-prediction accuracy by training examples, per seed."""
    notes = []
    for seed in dict.fromkeys(r["seed"] for r in scaling):
        cross = [r for r in scaling if r["label"] == "cross" and r["seed"] == seed]
        parts = ", ".join(f"{r['n_train']}: {100 * r['accuracy']:.1f}%" for r in cross)
        selfs = [r for r in scaling if r["label"] == "self" and r["seed"] == seed]
        tail = f"; self-prediction {100 * selfs[0]['accuracy']:.1f}%" if selfs else ""
        notes.append(f"Data scaling, seed {seed}, cross-prediction accuracy by training examples: {parts}{tail}.")
    return notes


def chat_format_notes(chat_formats: list[dict]) -> list[str]:
    notes = []
    for model in dict.fromkeys(r["model"] for r in chat_formats):
        mine = [r for r in chat_formats if r["model"] == model]
        parts = ", ".join(f"{r['chat_format']} {r['label_loss']:.2f}" for r in mine)
        notes.append(
            f"Chat format of {model} (no template of its own): {mine[0]['chat_format']}, the lowest "
            f"untrained loss on the answer and end tokens of {mine[0]['n_examples']} held-out "
            f"train-task examples (nats/token: {parts}); see chat_formats.csv."
        )
    return notes


def _behaviour_over_seeds(behaviour: list[dict]) -> list[str]:
    """Behaviour change pooled over training seeds (mean ± sd, seeds as the unit)."""
    import numpy as np

    from inward.analysis.seeds import t_test

    notes = []
    micro = [r for r in behaviour if r["response_property"] == "micro_average" and r["adjustment"] == "none"]
    for meta_base in dict.fromkeys(base_model(r["old_model"]) for r in micro):
        rows = [r for r in micro if base_model(r["old_model"]) == meta_base]
        if len(rows) < 2:
            continue
        diffs = [r["difference"] for r in rows if r["difference"] == r["difference"]]
        if len(diffs) < 2:
            continue
        _, p, lo, hi = t_test(diffs)
        new = sum(r["predicts_new_accuracy"] for r in rows) / len(rows)
        old = sum(r["predicts_old_accuracy"] for r in rows) / len(rows)
        mode = sum(r["mode_baseline"] for r in rows) / len(rows)
        sd = float(np.std(diffs, ddof=1))
        notes.append(
            f"Behaviour change over {len(diffs)} seeds ({meta_base} self-trained, then shifted): predicts "
            f"new {100 * new:.1f}% vs old {100 * old:.1f}% on average (new-behaviour mode baseline "
            f"{100 * mode:.1f}%); new − old = {100 * sum(diffs) / len(diffs):+.1f} ± {100 * sd:.1f} "
            f"points (mean ± sd; t-test over seeds p = {p:.3g}, 95% interval "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}])."
        )
    return notes


def _calibration_over_seeds(calibration: list[dict]) -> list[str]:
    """Calibration MAD pooled over training seeds (mean ± sd, seeds as the unit)."""
    import numpy as np

    notes = []
    by_setup: dict[tuple, list[float]] = {}
    for r in calibration:
        if r["seed"] is not None and r["mad"] == r["mad"] and r["mad"] is not None:
            by_setup.setdefault((r["setup"], r["method"], r["response_property"]), []).append(float(r["mad"]))
    parts = [
        f"{setup} {method} {sum(v) / len(v):.1f} ± {float(np.std(v, ddof=1)):.1f}"
        for (setup, method, _), v in by_setup.items()
        if len(v) > 1
    ]
    if parts:
        notes.append("Calibration MAD over training seeds (pp, mean ± sd): " + "; ".join(parts) + ".")
    return notes
