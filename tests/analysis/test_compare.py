"""Self vs cross comparison rows, checked against statsmodels on fixed data."""

from __future__ import annotations

import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportions_ztest

from inward.analysis.compare import compare_self_cross
from inward.analysis.results import results_table
from inward.records import ScoredRecord


def rows(pattern: str, prop: str = "first_character", meta: str = "m") -> list[ScoredRecord]:
    return [
        ScoredRecord(
            "animals_long",
            prop,
            f"s{i}",
            "obj",
            meta,
            "resp",
            "v",
            True,
            "a",
            True,
            c == "1",
            "v",
            "v" if c == "1" else "x",
        )
        for i, c in enumerate(pattern)
    ]


def test_against_statsmodels():
    self_p = "1111111011110111011011110"  # 20 of 25
    cross_p = "1010011001110010011001010"  # 12 of 25
    out = compare_self_cross(rows(self_p, meta="self"), rows(cross_p, meta="cross"))
    assert [r["response_property"] for r in out] == ["first_character", "micro_average", "micro_average_non_degenerate"]
    assert out[2]["excluded_groups"] == "" and out[2]["paired_count"] == 25  # neither answers >80% one thing
    r = out[0]
    z, p = proportions_ztest([20, 12], [25, 25])
    assert r["z"] == pytest.approx(z) and r["p_value"] == pytest.approx(p)
    a_only = sum(a == "1" and b == "0" for a, b in zip(self_p, cross_p))
    b_only = sum(a == "0" and b == "1" for a, b in zip(self_p, cross_p))
    both = sum(a == b == "1" for a, b in zip(self_p, cross_p))
    neither = 25 - a_only - b_only - both
    expected = mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue
    assert r["mcnemar_p"] == pytest.approx(expected)
    assert r["self_accuracy"] == 0.8 and r["cross_accuracy"] == 0.48
    assert r["paired_count"] == 25 and r["self_model"] == "self" and r["cross_model"] == "cross"


def test_results_table_pools_and_renames():
    data = rows("1100", "is_either_a_or_c") + rows("1000", "is_either_b_or_d") + rows("10", "identity")
    table = results_table(data, label="self")
    names = [r["response_property"] for r in table]
    assert names == ["among_options", "micro_average"]  # renamed, identity left out
    assert table[0]["count"] == 8 and table[0]["accuracy"] == pytest.approx(3 / 8)
    assert table[-1]["count"] == 8


def test_degenerate_groups_are_left_out_of_the_non_degenerate_pool():
    # self always answers "v" on second_character: right whenever the behaviour is "v"
    constant = [
        ScoredRecord(
            "animals_long",
            "second_character",
            f"s{i}",
            "obj",
            "self",
            "r",
            "v" if i % 3 else "w",
            True,
            "v",
            True,
            i % 3 != 0,
            "v" if i % 3 else "w",
            "v",
        )
        for i in range(12)
    ]
    other = rows("1111011110", meta="self")
    cross = rows("1010101010", meta="cross") + [
        ScoredRecord(
            "animals_long",
            "second_character",
            f"s{i}",
            "obj",
            "cross",
            "r",
            "v" if i % 3 else "w",
            True,
            "q",
            True,
            False,
            "v" if i % 3 else "w",
            "q" if i % 2 else "z",
        )
        for i in range(12)
    ]
    out = {r["response_property"]: r for r in compare_self_cross(other + constant, cross)}
    assert out["micro_average"]["paired_count"] == 22
    kept = out["micro_average_non_degenerate"]
    assert kept["paired_count"] == 10 and kept["excluded_groups"] == "animals_long/second_character"
    assert kept["self_accuracy"] == pytest.approx(0.8) and kept["cross_accuracy"] == pytest.approx(0.5)
