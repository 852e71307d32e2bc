"""The figures and the HTML report: numbers shown, untrusted text escaped, self-contained, PNGs valid."""

from __future__ import annotations

import math
import re

import pytest

from inward.report.figures import compliance_bars, save, self_cross_bars
from inward.report.html import fmt_p, pct, render_report

XSS = "<script>alert(1)</script>"
PROPS = ("first_word", "second_character", "among_options", "micro_average")


def _row(label, obj, meta, prop, acc, **kw):
    row = dict(
        response_property=prop,
        accuracy=acc,
        error=0.031,
        bootstrap_lower=acc - 0.03,
        bootstrap_upper=acc + 0.03,
        mode_baseline=0.25,
        compliance_rate=0.9,
        count=200,
        object_model=obj,
        meta_model=meta,
        label=label,
    )
    row.update(kw)
    return row


def _results(obj="qwen", cross="gemma", labels=("untrained", "self", "cross")):
    ft = f"{obj}+lora:abc"
    who = {"untrained": (obj, obj), "self": (ft, ft), "cross": (ft, f"{cross}+lora:def")}
    return [_row(lb, *who[lb], p, 0.3 + 0.05 * i + 0.1 * (lb == "self")) for lb in labels for i, p in enumerate(PROPS)]


def _inputs(**over):
    results = _results()
    results[0]["accuracy"] = 0.4567
    results[1]["error"] = math.nan
    results[2]["object_model"] = results[2]["meta_model"] = f"evil{XSS}model"
    comparisons = [
        dict(
            response_property="micro_average",
            self_accuracy=0.6,
            cross_accuracy=0.5,
            difference=0.1,
            z=3.1,
            p_value=0.0004,
            paired_count=180,
            mcnemar_p=0.0031,
            self_model="qwen+lora:abc",
            cross_model="gemma+lora:def",
        )
    ]
    by_task = [
        dict(
            task="wikipedia_long",
            response_property="first_word",
            accuracy=0.123,
            error=0.02,
            mode_baseline=0.1,
            modal_value=f"the{XSS}",
            compliance_rate=1.0,
            count=50,
            objects=55,
            object_excluded=5,
            object_model="qwen",
            meta_model="qwen",
            label="untrained",
        )
    ]
    examples = [
        dict(
            task="animals_long",
            property="first_word",
            string=f"A dataset {XSS} string",
            object_response=f"model said {XSS}",
            object_value="said",
            answer=XSS,
            correct=False,
            label="self",
        )
    ]
    config = {
        "name": "demo",
        "pairs": [{"self_model": "qwen", "cross_model": f"gemma{XSS}"}],
        "seed": 42,
        "tags": ("a", "b"),
    }
    manifest = {
        "versions": {"python": "3.11.2", "numpy": "2.4.6"},
        "models": {
            "qwen": {
                "weights_sha256": "f" * 64,
                "precision": "bf16",
                "adapter_sha256": None,
                "chat_template": f"{{{{ {XSS} }}}}",
            }
        },
        "stage_seconds": {"untrained evaluation, qwen": 12.25, f"stage {XSS}": 3.0},
        "training": [
            {
                "model": "qwen",
                "n_examples": 1000,
                "steps": 125,
                "final_loss": 0.4321,
                "seconds": 61.5,
                "examples_per_second": 16.26,
            }
        ],
        "notes": [f"Honest caveat {XSS}", "see https://example.org/x for details"],
    }
    figures = {"accuracy": self_cross_bars(results), f"cmp{XSS}": compliance_bars(results)}
    kw = dict(
        title=f"study {XSS}",
        results=results,
        comparisons=comparisons,
        by_task=by_task,
        examples=examples,
        config=config,
        manifest=manifest,
        figures=figures,
    )
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(**_inputs())


def test_formatters():
    assert pct(0.4567) == "45.7%"
    assert pct(math.nan) == pct(None) == "–"
    assert fmt_p(0.0031) == "p=0.003"
    assert fmt_p(0.0004) == "p<0.001"
    assert fmt_p(math.nan) == "–"


def test_report_shows_the_numbers(page):
    assert "45.7%" in page  # the accuracy 0.4567
    assert "55.0% ± 3.1" in page  # headline: the self micro average ± 1.96·SEM
    assert "p&lt;0.001" in page and "p=0.003" in page  # z-test and McNemar p (escaped "<")
    assert "+10.0" in page  # the self − cross difference in points
    assert "12.3%" in page and "wikipedia_long" in page  # per-task row
    assert "f" * 64 in page and "bf16" in page  # model hash and precision
    assert ">12.2</td>" in page and ">15.2</td>" in page  # a stage's wall time (12.25 s) and the total
    assert "0.4321" in page and "16.26" in page  # training summary
    assert "3.11.2" in page
    assert "Self-prediction trained" in page and "Cross-prediction trained" in page
    assert "Without training" in page
    assert "cross_model: gemma&lt;script&gt;" in page  # the config, as YAML
    # the nan error shows as a dash, not "nan"
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"\bnan\b", text, re.I)
    assert '<td class="n">–</td>' in text


def test_untrusted_text_is_escaped(page):
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for where in (
        "model said &lt;script&gt;",
        "A dataset &lt;script&gt;",
        "evil&lt;script&gt;",
        "Honest caveat &lt;script&gt;",
        "the&lt;script&gt;",
        "stage &lt;script&gt;",
    ):
        assert where in page, where


def test_attribute_values_are_escaped():
    payload = '"><img src=x onerror=alert(1)>'
    page = render_report(**_inputs(figures={payload: self_cross_bars(_results())}))
    assert payload not in page
    import html

    alts = re.findall(r'alt="([^"]*)"', page)  # the attribute ends at the first real quote
    assert payload in [html.unescape(a) for a in alts]


def test_self_contained(page):
    targets = re.findall(r"""\b(?:src|href|action|srcset|poster)\s*=\s*["']?([^"'\s>]*)""", page, re.I)
    assert targets and all(t.startswith("data:image/png;base64,") for t in targets)
    assert "url(" not in page and "@import" not in page and "<link" not in page
    assert "<iframe" not in page and "<object" not in page
    # a URL in a note is plain text only
    assert "see https://example.org/x for details" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 2


def test_render_is_deterministic():
    assert render_report(**_inputs()) == render_report(**_inputs())


def test_empty_inputs_render():
    page = render_report(
        title="t", results=[], comparisons=[], by_task=[], examples=[], config={}, manifest={}, figures={}
    )
    assert page.startswith("<!DOCTYPE html>") and "none" in page


@pytest.mark.parametrize(
    "rows",
    [
        _results(),
        [dict(r, error=math.nan) for r in _results()],  # every error nan
        _results(labels=("self",)),  # a single label
        _results("qwen", "gemma") + _results("gemma", "qwen"),  # several object models
        [dict(r, accuracy=math.nan, mode_baseline=math.nan) for r in _results()],  # nothing to draw
        [],
    ],
    ids=["full", "nan-errors", "single-label", "several-models", "all-nan", "empty"],
)
def test_figures_are_valid_deterministic_pngs(rows):
    for draw in (self_cross_bars, compliance_bars):
        first, second = draw(rows), draw(rows)
        assert first.startswith(b"\x89PNG\r\n\x1a\n")
        assert first == second
        assert b"Software" not in first and b"Creation" not in first


def test_object_model_filter_changes_the_figure():
    rows = _results("qwen", "gemma") + _results("gemma", "qwen")
    both, one = self_cross_bars(rows), self_cross_bars(rows, object_model="qwen")
    assert one.startswith(b"\x89PNG") and one != both
    assert self_cross_bars(rows, object_model="qwen") == self_cross_bars(_results("qwen", "gemma"))


def test_dollar_signs_do_not_break_drawing():
    rows = _results(obj="odd$name$", cross="$x^2$")
    assert self_cross_bars(rows, object_model="odd$name$").startswith(b"\x89PNG")


def test_save_writes_the_bytes(tmp_path):
    png = compliance_bars(_results())
    path = save(png, tmp_path / "figs" / "c.png")
    assert path.read_bytes() == png
