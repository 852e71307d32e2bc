"""A plain-text results table for the terminal."""

from __future__ import annotations

from collections.abc import Sequence


def _pct(x: float) -> str:
    return "   -  " if x != x else f"{100 * x:5.1f}%"


def _top(r: dict) -> str:
    """The most common answer and its share, flagged when it exceeds 80% (see analysis.results)."""
    share = r.get("top_answer_share")
    if share is None or share != share:  # absent, or the micro-average row
        return ""
    return f"{str(r.get('top_answer'))[:16]!r} {100 * share:.0f}%" + (" DEGENERATE" if r.get("degenerate") else "")


def format_results(rows: Sequence[dict]) -> str:
    head = (f"{'property':22} {'accuracy':>9} {'±1.96SEM':>9} {'bootstrap 95%':>15} "
            f"{'mode base':>9} {'complied':>9} {'n':>6}  most common answer")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        boot = f"{_pct(r['bootstrap_lower']).strip()}–{_pct(r['bootstrap_upper']).strip()}"
        err = "   -  " if r["error"] != r["error"] else f"{100 * r['error']:5.1f}"
        lines.append(
            f"{r['response_property']:22} {_pct(r['accuracy']):>9} {err:>9} {boot:>15} "
            f"{_pct(r['mode_baseline']):>9} {_pct(r['compliance_rate']):>9} {r['count']:>6}  {_top(r)}"
        )
    if rows:
        lines.append(f"object model: {rows[0]['object_model']}   predictor: {rows[0]['meta_model']}")
    else:
        lines.append("no evaluable rows: every object-level response was non-compliant")
    return "\n".join(lines)
