"""Report sections and figures of calibration, behaviour change and data scaling: each
experiment builds its own section (its plugin's outputs) and the report only renders them."""

from __future__ import annotations

import math

from inward.analysis.stats import equal_frequency_bins
from inward.report.figures import behaviour_change_bars, calibration_curves, scaling_curve
from inward.report.html import render_report

XSS = "<script>alert(1)</script>"


def _base(**over):
    kw = dict(title="t", results=[], comparisons=[], by_task=[], examples=[], config={}, manifest={}, figures={})
    kw.update(over)
    return kw


CAL = [
    dict(
        seed=0,
        setup="self",
        response_property="second_character",
        mad=12.34,
        count=600,
        prompts=200,
        method="exact",
        object_model="qwen+lora:a",
        meta_model=f"qwen{XSS}",
        mean_object_mass=0.93,
    ),
    dict(
        seed=None,
        setup="untrained",
        response_property="second_character",
        mad=30.0,
        count=90,
        prompts=30,
        method="sampled",
        object_model="qwen",
        meta_model="qwen",
        mean_object_mass=0.99,
    ),
]
AGREE = [
    dict(
        seed=0,
        setup="self",
        response_property="second_character",
        meta_model="qwen",
        prompts=30,
        object_tv=0.21,
        hypothetical_tv=0.3,
        object_tv_noise_floor=0.15,
        mad_exact=12.0,
        mad_sampled=14.5,
        mad_difference=2.5,
    )
]
BC = [
    dict(
        response_property="micro_average",
        predicts_old_accuracy=0.2,
        predicts_old_error=0.04,
        predicts_new_accuracy=0.45,
        predicts_new_error=0.05,
        difference=0.25,
        p_value=0.0001,
        ztest_p=0.0002,
        mode_baseline=0.3,
        mode_baseline_old=0.28,
        count=321,
        shifted_fraction=0.4,
        compared=800,
        adjustment="none",
        old_model="m",
        new_model="mc",
        meta_model="mc",
        seed=0,
        degenerate=False,
        new_beats_mode_p=0.01,
        old_beats_mode_p=0.5,
    )
]
SCALE = [
    dict(
        seed=0,
        n_train=n,
        accuracy=a,
        error=0.03,
        predictor="gemma+lora:x",
        target="qwen+lora:a",
        label="cross",
        mode_baseline=0.3,
        count=900,
    )
    for n, a in ((100, 0.3), (250, 0.33), (1100, 0.36))
]
SCALE.append(
    dict(
        seed=0,
        n_train=1100,
        accuracy=0.5,
        error=0.03,
        predictor="qwen+lora:a",
        target="qwen+lora:a",
        label="self",
        mode_baseline=0.3,
        count=900,
    )
)


def _sections():
    from inward.experiments.behaviour_change import BehaviourChangeExperiment
    from inward.experiments.calibration import CalibrationExperiment
    from inward.experiments.rows import StudyRows
    from inward.experiments.scaling import ScalingExperiment
    from inward.experiments.study_config import parse_config

    config = parse_config(
        {
            "name": "t",
            "pairs": [{"self": "mock/a", "cross": "mock/b"}],
            "train_tasks": ["colors_long"],
            "held_out_tasks": ["animals_long"],
            "properties": ["first_character"],
            "calibration": {},
            "behaviour_change": {},
            "scaling": {},
        }
    )
    rows = StudyRows(example_seed=0, behaviour_change=BC)
    tables = (
        (CalibrationExperiment(), {"calibration": CAL, "agreement": AGREE}),
        (BehaviourChangeExperiment(), {"behaviour_change": BC}),
        (ScalingExperiment(), {"scaling": SCALE}),
    )
    return [s for e, tab in tables for s in e.outputs(config, rows, tab).sections]


def test_sections_show_the_numbers_and_escape():
    page = render_report(**_base(experiment_sections=_sections()))
    for heading in (
        "Calibration (Experiment 1b)",
        "Behaviour change (Experiment 2)",
        "Cross-prediction data scaling",
        "Sampled vs exact estimates",
    ):
        assert heading in page
    assert "12.3" in page and "0.930" in page  # MAD (pp) and object mass
    assert "0.210" in page and "0.150" in page and "+2.5" in page  # agreement
    assert "45.0%" in page and "20.0%" in page and "+25.0" in page and "p&lt;0.001" in page  # old vs new
    assert "321" in page and "1100" in page and "36.0%" in page  # counts and the scaling curve
    assert XSS not in page and "&lt;script&gt;" in page


def test_sections_absent_when_not_run():
    page = render_report(**_base())
    assert "Experiment 1b" not in page and "Experiment 2" not in page and "data scaling" not in page


def test_figures_are_deterministic_pngs():
    bins = equal_frequency_bins([0.1, 0.4, 0.5, 0.9, 1.0, 0.2], [0.0, 0.5, 0.3, 0.8, 0.9, 0.3], 3)
    curves = [
        dict(setup=s, method=m, mad=5.0 if s == "self" else math.nan, bins=bins)
        for s in ("untrained", "self", "cross")
        for m in ("exact", "sampled")
    ]
    for make in (
        lambda: calibration_curves(curves, title=f"cal {XSS} $x$"),
        lambda: behaviour_change_bars(BC, title="bc"),
        lambda: behaviour_change_bars([], title="none"),
        lambda: scaling_curve(SCALE, title="scale"),
        lambda: scaling_curve([], title="none"),
    ):
        png = make()
        assert png.startswith(b"\x89PNG") and png == make()
    assert calibration_curves(curves, title="a") != calibration_curves(curves[:2], title="a")
    assert scaling_curve(SCALE, title="s") != scaling_curve(SCALE[:2] + SCALE[3:], title="s")
