"""Short display names for tables and figure titles.

A study names its finetuned models ``<base>+lora:<folder inside the run directory>/adapter``:
exact, but too long for a table cell. :func:`display_name` turns that into ``qwen-0.5b·self-ft``;
the full model string stays in the CSVs and ``run.json``, and the HTML report shows it on hover.
"""

from __future__ import annotations

import re

KNOWN = {
    "bundled/qwen2.5-coder-0.5b-instruct": "qwen-0.5b",
    "bundled/qwen2.5-coder-1.5b-instruct": "qwen-1.5b",
    "bundled/gemma-3-270m": "gemma-270m",
}
ROLES = {"self_ft": "self-ft", "cross_ft": "cross-ft", "shift_ft": "shift-ft"}
MAX_BASE = 28


def _base(model: str) -> str:
    if model in KNOWN:
        return KNOWN[model]
    if model.startswith("openai-compatible/"):  # openai-compatible/<model>@<url>
        model = model.split("@", 1)[0]
    name = model.rstrip("/").rsplit("/", 1)[-1] or model
    return name if len(name) <= MAX_BASE else name[: MAX_BASE - 1] + "…"


def display_name(model: str) -> str:
    """``bundled/qwen2.5-coder-0.5b-instruct+lora:seed1/models/.../self_ft/adapter`` ->
    ``qwen-0.5b·self-ft``; a data-scaling cross-predictor gets its size (``·cross-ft n100``)."""
    base, _, adapter = str(model).partition("+lora:")
    short = _base(base)
    if not adapter:
        return short
    parts = adapter.replace("\\", "/").split("/")
    if "scaling" in parts:
        size = next((p for p in parts if re.fullmatch(r"n\d+", p)), "")
        return f"{short}·cross-ft {size}".rstrip()
    role = next((ROLES[p] for p in reversed(parts) if p in ROLES), "lora")
    return f"{short}·{role}"
