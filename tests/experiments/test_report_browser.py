"""The study report in a real headless browser: it fits a 1400-px window (no horizontal scrolling
of the page, no table wider than the window). Needs Chromium (`make setup-browser`); without it
the test is skipped and says so."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
WIDTH = 1400

# Measures the laid-out page: the document's scroll width, and every element whose right edge
# passes the window or whose content is wider than its box (clipped or scrolling inside it).
PROBE = """<script>
const w = window.innerWidth, out = [];
for (const e of document.querySelectorAll('body > *')) {
  const r = e.getBoundingClientRect();
  let h = e; while (h && h.tagName !== 'H2') h = h.previousElementSibling || h.parentElement;
  const name = e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + (h ? ' in "' + h.textContent + '"' : '');
  if (r.right > w + 1) out.push(name + ' ends at ' + Math.round(r.right) + 'px');
  else if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 && e.tagName !== 'PRE')
    out.push(name + ' content ' + e.scrollWidth + 'px in ' + e.clientWidth + 'px');
}
document.body.setAttribute('data-layout', JSON.stringify(
  {window: w, scroll: document.documentElement.scrollWidth, over: out.slice(0, 20)}));
</script>"""


def layout(report_html: str, tmp_path) -> dict:
    """Chromium's layout of ``report_html`` at WIDTH px (the page's CSP, which rightly forbids
    scripts, is dropped from this copy so the measuring script can run)."""
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", report_html)
    page = page.replace("</body>", PROBE + "</body>")
    path = tmp_path / "report_probe.html"
    path.write_text(page, encoding="utf-8")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WIDTH},1000",
        "--dump-dom",
        path.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, f"the measuring script did not run; Chromium printed: {dom[:500]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (make setup-browser installs Debian's)")
def test_the_report_of_a_study_with_every_section_fits_1400_px(tmp_path, tiny_pair):
    from test_study_experiments import config  # every experiment section, two training seeds

    from inward.experiments.study import run_study
    from inward.store.cache import ResponseCache

    run_study(config(tiny_pair), tmp_path / "run", cache=ResponseCache(tmp_path / "c.sqlite"))
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    got = layout(report, tmp_path)
    assert got["window"] == WIDTH
    assert got["scroll"] <= WIDTH and not got["over"], got


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (make setup-browser installs Debian's)")
def test_the_width_check_sees_a_page_that_is_too_wide(tmp_path):
    """The check itself can fail: a 2000-px table is reported."""
    page = (
        '<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><table style="width:2000px"><tr><td>x</td></tr></table></body></html>'
    )
    got = layout(page, tmp_path)
    assert got["scroll"] > WIDTH and any(o.startswith("table") for o in got["over"])
