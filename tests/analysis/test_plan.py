"""Planning a study from a pilot run: wall time per seed count, expected interval, seeds for a budget."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from inward.analysis.plan import (
    metric_gaps,
    parse_duration,
    pilot_from,
    plan_lines,
    sd_interval,
    seeds_for_budget,
    skipped_sections,
)
from inward.analysis.verdict import expected_half_width

RUN = {
    "command": "study",
    "seeds": [0, 1, 2],
    "stage_seconds": {
        "object-level train, m": 60.0,
        "untrained evaluation, m": 120.0,
        "seed 0: self-prediction finetune, m": 600.0,
        "seed 0: behaviour change: shift finetune": 300.0,  # first-seed-only section
        "seed 1: self-prediction finetune, m": 620.0,
        "seed 2: self-prediction finetune, m": 580.0,
    },
    "verdict": [{"gaps": [0.20, 0.05, 0.08]}, {"gaps": [0.01, -0.02, 0.04]}],
}


def test_the_pilot_splits_fixed_first_and_further_seeds():
    p = pilot_from(RUN, "runs/x")
    assert (p.fixed_seconds, p.first_seconds, p.further_seconds) == (180.0, 900.0, 600.0)
    assert p.seconds(3) == 180 + 900 + 2 * 600 and p.seconds(1) == 1080
    pooled = ((0.0063 + 0.0009) / 2) ** 0.5  # the two pairs' gap variances, averaged
    assert p.gap_sd == pytest.approx(pooled, rel=0.02) and p.gap_seeds == 3
    assert p.half_width(10) == pytest.approx(expected_half_width(10, p.gap_sd))


def test_a_pilot_with_sections_plans_a_config_without_them():
    from inward.experiments.study_config import preset

    skip = skipped_sections(preset("default"))  # no calibration, behaviour change, scaling, probes
    assert {"calibration", "behaviour change", "data scaling"} <= set(skip)
    assert skipped_sections(preset("full")) == tuple(s for s in skip if s not in ("calibration", "behaviour change"))
    run = {**RUN, "stage_seconds": {**RUN["stage_seconds"], "calibration, untrained: m predicting m": 400.0}}
    p = pilot_from(run, "runs/x", skip)
    assert (p.fixed_seconds, p.first_seconds, p.further_seconds) == (180.0, 600.0, 600.0)
    assert pilot_from(run, "runs/x").fixed_seconds == 580.0


def test_the_sd_interval_covers_the_true_sd_90_percent_of_the_time():
    import numpy as np

    rng = np.random.default_rng(0)
    for n in (3, 8):
        hits = 0
        for _ in range(4000):
            sd = float(np.std(rng.normal(0.0, 0.1, n), ddof=1))
            low, high = sd_interval(sd, n - 1)
            hits += low <= 0.1 <= high
        assert 0.88 <= hits / 4000 <= 0.92, (n, hits)
    low, high = sd_interval(1.0, 2)
    assert low == pytest.approx(0.58, abs=0.01) and high == pytest.approx(4.42, abs=0.01)
    assert all(x != x for x in sd_interval(1.0, 0))


def test_the_plan_prints_the_range_of_the_spread_and_its_half_widths():
    p = pilot_from(RUN, "runs/x")
    text = " ".join(plan_lines(p, 10))
    low, high = sd_interval(p.gap_sd, 2)
    hw = p.half_width(10)
    assert f"[{100 * low:.1f}, {100 * high:.1f}] with 90% confidence" in text
    assert f"between ±{100 * hw * low / p.gap_sd:.1f} and ±{100 * hw * high / p.gap_sd:.1f}" in text


def test_seeds_for_a_budget_and_durations():
    p = pilot_from(RUN, "runs/x")
    assert seeds_for_budget(p, 180 + 900 + 2 * 600) == 3 and seeds_for_budget(p, 1000) == 0
    assert [parse_duration(x) for x in ("60m", "1.5h", "90s", "120")] == [3600, 5400, 90, 120]
    with pytest.raises(ValueError, match="duration"):
        parse_duration("an hour")
    lines = "\n".join(plan_lines(p, 3, 3600))
    assert "predicted wall time 38 min" in lines and "Budget 60 min: 5 seed(s) fit" in lines
    assert "±5 points needs about" in lines


def test_inward_plan_and_study_budget_on_the_command_line(tmp_path):
    from inward.cli.main import cli

    run = tmp_path / "pilot"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(RUN))
    res = CliRunner().invoke(cli, ["plan", "--preset", "smoke", "--from", str(run), "--budget", "1h"])
    assert res.exit_code == 0, res.output
    assert "This config, 2 seed(s): predicted wall time 28 min" in res.output and "5 seed(s) fit" in res.output
    res = CliRunner().invoke(cli, ["plan", "--preset", "smoke", "--from", str(tmp_path / "none")])
    assert res.exit_code != 0 and "no readable run.json" in str(res.exception)
    res = CliRunner().invoke(
        cli, ["study", "--preset", "smoke", "--out", str(tmp_path / "o"), "--budget", "10m", "--from", str(run)]
    )
    assert "a verdict needs 2 or more" in str(res.exception)


def test_the_pilot_spread_is_taken_on_the_planned_metric():
    def row(label, seed, meta, acc, kappa, prop="micro_average"):
        obj = "q+lora:seed/self" if label != "untrained" else "q"
        return {
            "label": label,
            "seed": seed,
            "object_model": obj,
            "meta_model": meta,
            "response_property": prop,
            "accuracy": acc,
            "kappa": kappa,
        }

    results = [row("untrained", "", "q", "0.3", "0.1")]
    for seed, (sa, sk, ca, ck) in enumerate([(0.5, 0.3, 0.2, 0.0), (0.4, 0.2, 0.35, 0.05), (0.45, 0.25, 0.3, 0.1)]):
        results += [
            row("self", str(seed), "q+lora:s", str(sa), str(sk)),
            row("cross", str(seed), "g+lora:c", str(ca), str(ck)),
        ]
        results.append(row("self", str(seed), "q+lora:s", "0.9", "0.9", prop="first_word"))  # not the micro row
    assert metric_gaps(results, "kappa") == [pytest.approx([0.3, 0.15, 0.15])]
    assert metric_gaps(results, "micro_average") == [pytest.approx([0.3, 0.05, 0.15])]
    p = pilot_from(RUN, "runs/x", gap_lists=metric_gaps(results, "kappa"))
    assert p.gap_sd == pytest.approx(0.0866, rel=0.01) and p.gap_seeds == 3


def test_load_pilot_uses_run_json_gaps_on_the_same_metric_and_results_csv_otherwise(tmp_path):
    import csv

    from inward.analysis.plan import load_pilot

    run = {**RUN, "config": {"verdict": {"metric": "micro_average"}}, "verdict": [{"gaps": [0.2, 0.0, 0.1]}]}
    (tmp_path / "run.json").write_text(json.dumps(run))
    rows = [
        {
            "label": label,
            "seed": seed,
            "object_model": "q+lora:s",
            "meta_model": meta,
            "kappa": k,
            "accuracy": "0.5",
            "response_property": "micro_average",
        }
        for seed, ks, kc in (("0", "0.4", "0.1"), ("1", "0.3", "0.2"), ("2", "0.2", "0.1"))
        for label, meta, k in (("self", "q+lora:s", ks), ("cross", "g+lora:c", kc))
    ]
    with (tmp_path / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    same, _ = load_pilot(str(tmp_path), metric="micro_average")
    assert same.metric == "micro_average" and same.gap_sd == pytest.approx(0.1)  # run.json's exact gaps
    other, _ = load_pilot(str(tmp_path), metric="kappa")
    assert other.metric == "kappa" and other.gap_sd == pytest.approx(0.11547, rel=1e-4)  # 0.3, 0.1, 0.1: results.csv
    assert "on kappa" in plan_lines(other, 8)[2]
    (tmp_path / "results.csv").unlink()
    assert load_pilot(str(tmp_path), metric="kappa")[0].gap_sd is None
