"""One column list per results table, driving its CSV, its report table and its terminal table.

A :class:`Column` names a row field (the CSV column), its header, how the report and the terminal
show it (a function of the whole row, so one column can show an interval or an answer with its
share), and where it appears. The CSV holds every column with ``csv=True`` in list order; the
report every column with ``html=True``, in the same order; the terminal the ``cli=True`` ones.
The rows themselves are typed (``ResultRow``, ``ComparisonRow``... in :mod:`inward.analysis`, and
:class:`~inward.experiments.scaling.ScalingRow`); a test checks that each list names exactly
its row type's fields, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inward.models.names import display_name
from inward.report.format import DASH, clip, fmt_p, label, num, pct, pp, seed


@dataclass(frozen=True)
class Column:
    key: str
    header: str = ""
    show: Callable[[dict], object] | None = None  # the shown cell from the row; default: the value
    kind: str = ""  # "" plain, "n" numeric, "t" free text, "m" a model (short name, full on hover)
    csv: bool = True
    html: bool = True
    cli: bool = False
    limit: int = 400  # "t": clip the text here

    def value(self, row: dict) -> object:
        return self.show(row) if self.show is not None else row.get(self.key)


@dataclass(frozen=True)
class Columns:
    columns: tuple[Column, ...]

    def csv(self) -> tuple[str, ...]:
        """The CSV header, in order."""
        return tuple(c.key for c in self.columns if c.csv)

    def html(self) -> list[Column]:
        return [c for c in self.columns if c.html]

    def cli(self) -> list[Column]:
        return [c for c in self.columns if c.cli]

    def seeded(self) -> Columns:
        """The study's version: the training seed first (a dash for the untrained setups)."""
        return Columns((SEED, *self.columns))

    def text(self, rows: Sequence[dict], limit: int = 24) -> str:
        """A plain-text table of the ``cli`` columns for the terminal (numbers right-aligned)."""
        cols = self.cli()
        cells = [[_plain(c, r, limit) for c in cols] for r in rows]
        widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if c.kind == "n" else v.ljust(w) for c, v, w in zip(cols, values, widths)
            ).rstrip()

        head = line([c.header for c in cols])
        return "\n".join([head, "-" * len(head), *(line(row) for row in cells)])


def _plain(col: Column, row: dict, limit: int) -> str:
    v = col.value(row)
    text = DASH if v is None or v == "" else str(v)
    if col.kind == "m":
        text = display_name(text)
    return text if col.kind not in ("t", "m") or len(text) <= limit else text[: limit - 1] + "…"


def _key(name: str, fmt: Callable[[object], str]) -> Callable[[dict], object]:
    return lambda r: fmt(r.get(name))


def _interval(lo: str, hi: str, fmt: Callable[[object], str] = pct) -> Callable[[dict], str]:
    def show(r: dict) -> str:
        a, b = fmt(r.get(lo)), fmt(r.get(hi))
        return DASH if DASH in (a, b) else f"{a}–{b}"

    return show


def top_answer(r: dict) -> str:
    """The most common answer with its share (flagged over 80%); for a micro average, how many
    of its groups were degenerate."""
    if r.get("response_property") == "micro_average":
        n = r.get("degenerate_groups")
        return f"{n} degenerate group(s)" if n not in (None, "") else DASH
    flag = " DEGENERATE" if r.get("degenerate") is True else ""
    return f"{clip(r.get('top_answer'), 20)} ({pct(r.get('top_answer_share'))}){flag}"


def _signed_pp(name: str) -> Callable[[dict], str]:
    return lambda r: pp(r.get(name), signed=True)


SEED = Column("seed", "seed", lambda r: seed(r.get("seed")), "n")
PROPERTY = Column("response_property", "property", cli=True)
ACCURACY = Column("accuracy", "accuracy", _key("accuracy", pct), "n", cli=True)
ERROR = Column("error", "± (pp)", _key("error", pp), "n", cli=True)
MODE = Column("mode_baseline", "mode baseline", _key("mode_baseline", pct), "n", cli=True)
COMPLIANCE = Column("compliance_rate", "compliance", _key("compliance_rate", pct), "n", cli=True)
COUNT = Column("count", "n", _key("count", num), "n", cli=True)
OBJECT_MODEL = Column("object_model", "object model", kind="m")
PREDICTOR = Column("meta_model", "predictor", kind="m")
LABEL = Column("label", "label", _key("label", label))
OBJECT_FP = Column("object_fingerprint", html=False)  # full strings stay in run.json; this is stable
META_FP = Column("meta_fingerprint", html=False)

RESULTS = Columns(
    (
        PROPERTY,
        ACCURACY,
        ERROR,
        Column("bootstrap_lower", "bootstrap 95%", _interval("bootstrap_lower", "bootstrap_upper"), "n", cli=True),
        Column("bootstrap_upper", html=False),
        MODE,
        COMPLIANCE,
        COUNT,
        OBJECT_MODEL,
        PREDICTOR,
        LABEL,
        Column("beats_mode_p", "beats mode (one-sided p)", _key("beats_mode_p", fmt_p), "n"),
        Column("top_answer", "most common answer", top_answer, "t", cli=True),
        Column("top_answer_share", html=False),
        Column("degenerate", html=False),
        Column("degenerate_groups", html=False),
        Column("kappa", "Cohen's κ", _key("kappa", lambda x: num(x, ".2f")), "n"),
        OBJECT_FP,
        META_FP,
    )
)

BY_TASK = Columns(
    (
        Column("task", "task"),
        PROPERTY,
        ACCURACY,
        ERROR,
        Column("bootstrap_lower", html=False),
        Column("bootstrap_upper", html=False),
        MODE,
        Column("modal_value", "modal value", kind="t", limit=80),
        COMPLIANCE,
        COUNT,
        Column("objects", "objects", _key("objects", num), "n"),
        Column("object_excluded", "objects excluded", _key("object_excluded", num), "n"),
        OBJECT_MODEL,
        PREDICTOR,
        LABEL,
        Column("beats_mode_p", html=False),
        Column("top_answer", html=False),
        Column("top_answer_share", html=False),
        Column("degenerate", html=False),
        Column("kappa", "Cohen's κ", _key("kappa", lambda x: num(x, ".2f")), "n"),
        OBJECT_FP,
        META_FP,
    )
)

COMPARISONS = Columns(
    (
        PROPERTY,
        Column("self_accuracy", "self acc.", _key("self_accuracy", pct), "n"),
        Column("cross_accuracy", "cross acc.", _key("cross_accuracy", pct), "n"),
        Column("difference", "difference (pp)", _signed_pp("difference"), "n"),
        Column("z", "z", lambda r: num(r.get("z"), ".2f"), "n"),
        Column("p_value", "z-test", _key("p_value", fmt_p), "n"),
        Column("paired_count", "paired n", _key("paired_count", num), "n"),
        Column("mcnemar_p", "McNemar", _key("mcnemar_p", fmt_p), "n"),
        Column("self_count", html=False),
        Column("cross_count", html=False),
        Column("self_model", "self (predictor)", kind="m"),
        Column("cross_model", "cross (predictor)", kind="m"),
        Column("excluded_groups", html=False),
    )
)

CALIBRATION = Columns(
    (
        Column("setup", "setup", _key("setup", label)),
        PROPERTY,
        Column("mad", "MAD (pp)", lambda r: num(r.get("mad"), ".1f"), "n"),
        Column("count", "pairs", _key("count", num), "n"),
        Column("prompts", "prompts", _key("prompts", num), "n"),
        Column("method", "method"),
        OBJECT_MODEL,
        PREDICTOR,
        Column("mean_object_mass", "object mass", lambda r: num(r.get("mean_object_mass"), ".3f"), "n"),
    )
)

BEHAVIOUR_CHANGE = Columns(
    (
        PROPERTY,
        Column("predicts_old_accuracy", "predicts old", _key("predicts_old_accuracy", pct), "n"),
        Column("predicts_old_error", "± (pp)", _key("predicts_old_error", pp), "n"),
        Column("predicts_new_accuracy", "predicts new", _key("predicts_new_accuracy", pct), "n"),
        Column("predicts_new_error", "± (pp)", _key("predicts_new_error", pp), "n"),
        Column("difference", "difference (pp)", _signed_pp("difference"), "n"),
        Column("p_value", "McNemar", _key("p_value", fmt_p), "n"),
        Column("ztest_p", "z-test", _key("ztest_p", fmt_p), "n"),
        Column("mode_baseline", "mode baseline (new)", _key("mode_baseline", pct), "n"),
        Column("mode_baseline_old", "mode baseline (old)", _key("mode_baseline_old", pct), "n"),
        Column("count", "shifted items", _key("count", num), "n"),
        Column("shifted_fraction", "shifted share", _key("shifted_fraction", pct), "n"),
        Column("compared", html=False),
        Column("adjustment", "adjustment"),
        Column("old_model", "old model (M)", kind="m"),
        Column("new_model", html=False),
        Column("meta_model", "predictor (M_C)", kind="m"),
        Column("new_beats_mode_p", html=False),
        Column("old_beats_mode_p", html=False),
        Column("top_answer", html=False),
        Column("top_answer_share", html=False),
        Column("degenerate", html=False),
        Column("noncompliant_dropped", html=False),
    )
)
# the study adds the model whose answers M_C was finetuned on
STUDY_BEHAVIOUR_CHANGE = Columns((*BEHAVIOUR_CHANGE.seeded().columns, Column("shift_model", html=False)))

SCALING = Columns(
    (
        SEED,
        Column("n_train", "training examples", _key("n_train", num), "n"),
        ACCURACY,
        ERROR,
        Column("predictor", "predictor", kind="m"),
        Column("target", "target", kind="m"),
        LABEL,
        MODE,
        COUNT,
    )
)
