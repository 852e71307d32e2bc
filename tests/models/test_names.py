"""Short display names: what a report cell shows instead of a full model string."""

import pytest

from inward.models.names import display_name


@pytest.mark.parametrize(
    "model, short",
    [
        ("bundled/qwen2.5-coder-0.5b-instruct", "qwen-0.5b"),
        ("bundled/gemma-3-270m", "gemma-270m"),
        ("bundled/qwen2.5-coder-0.5b-instruct+lora:seed1/models/qwen-9f7a4e80/self_ft/adapter", "qwen-0.5b·self-ft"),
        (
            "bundled/gemma-3-270m+lora:seed0/models/qwen-9f7a4e80/cross_ft/gemma-3-270m-1a2b/adapter",
            "gemma-270m·cross-ft",
        ),
        (
            "bundled/qwen2.5-coder-0.5b-instruct+lora:seed2/behaviour_change/qwen-9f/shift_ft/adapter",
            "qwen-0.5b·shift-ft",
        ),
        ("bundled/gemma-3-270m+lora:seed0/models/q/scaling/g/n250/adapter", "gemma-270m·cross-ft n250"),
        ("hf/Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct"),
        ("hf//tmp/a/checkpoint+lora:/abs/elsewhere/adapter", "checkpoint·lora"),
        ("openai-compatible/llama-3@http://localhost:8000/v1", "llama-3"),
        ("openai/gpt-4o", "gpt-4o"),
    ],
)
def test_display_names(model, short):
    assert display_name(model) == short


def test_long_names_are_clipped():
    name = display_name("hf/" + "x" * 80)
    assert len(name) == 28 and name.endswith("…")


def test_report_cells_show_the_short_name_and_keep_the_full_one_on_hover():
    from inward.report.html import Cell, Col, render_report

    full = "bundled/gemma-3-270m+lora:seed0/models/q/cross_ft/g/adapter"
    model = Col("predictor", lambda r: r["meta_model"], "m")
    assert model.cell({"meta_model": full}) == Cell("gemma-270m·cross-ft", title=full)
    row = dict(
        response_property="micro_average",
        accuracy=0.5,
        error=0.01,
        mode_baseline=0.3,
        compliance_rate=1.0,
        count=10,
        object_model="hf/<script>",
        meta_model=full,
        label="cross",
    )
    page = render_report(
        title="t", results=[row], comparisons=[], by_task=[], examples=[], config={}, manifest={}, figures={}
    )
    assert f'<td title="{full}">gemma-270m·cross-ft</td>' in page
    assert 'title="hf/&lt;script&gt;"' in page and "<script>" not in page  # escaped by the template
