"""How values read in the report and the terminal: percentages, percentage points, p-values,
numbers, clipped text and setup labels (nan and None as a dash)."""

from __future__ import annotations

import math

from inward.report.figures import as_number

DASH = "–"
LABEL_ORDER = ("untrained", "self", "cross")
LABEL_NAMES = {"untrained": "Without training", "self": "Self-prediction trained", "cross": "Cross-prediction trained"}


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


def clip(s: object, limit: int = 400) -> str:
    s = DASH if s is None else str(s)
    return s if len(s) <= limit else s[:limit] + f"… [{len(s) - limit} more characters]"


def label(value: object) -> str:
    """A setup label ("untrained", "self", "cross") as the report names it."""
    return LABEL_NAMES.get(value, str(value)) if isinstance(value, str) else str(value)


def seed(value: object) -> str:
    return DASH if value is None or value == "" else str(value)
