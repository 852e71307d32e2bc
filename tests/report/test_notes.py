"""Notes computed from a study's rows (pure functions)."""

from inward.analysis.scoring import score
from inward.properties.registry import resolve_property
from inward.records import HypotheticalRecord, ObjectRecord
from inward.report.notes import unmatchable_notes
from inward.report.outputs import StudyRows, unmatchable_rows


def scored(responses, prop="first_word", scoring="paper", model="bundled/q+lora:seed0/a"):
    p = resolve_property(prop)
    rows = []
    for i, resp in enumerate(responses):
        obj = ObjectRecord("animals_long", "val", f"s{i}", None, model, resp, True, ())
        hyp = HypotheticalRecord("animals_long", prop, f"s{i}", model, "goat", True, ())
        rows.append(score(obj, p, hyp, scoring=scoring))
    return rows


def test_comma_separated_first_words_are_unmatchable_under_paper_scoring_only():
    responses = ["goat, dog, cat", "goat dog cat", "Goat, cow", "goat"]
    paper = scored(responses)
    assert [r.correct for r in paper] == [False, True, False, True]  # "goat," can never be hit
    (row,) = unmatchable_rows(paper, "self", 0)
    assert (row["unmatchable"], row["evaluable"], row["property"]) == (2, 4, "first_word")
    (note,) = unmatchable_notes([row])
    assert "bundled/q first_word: 2 of 4 (50%)" in note
    (sym,) = unmatchable_rows(scored(responses, scoring="symmetric"), "self", 0)
    assert sym["unmatchable"] == 0 and unmatchable_notes([sym]) == []


def test_unmatchable_note_pools_setups_and_seeds_of_one_target_and_has_a_threshold():
    rows = StudyRows(example_seed=0)
    rows.add_results(scored(["goat dog"] * 19 + ["goat, dog"]), "self", 0)  # 1 of 20: 5%
    rows.add_results(scored(["goat dog"] * 20, model="bundled/q"), "untrained", None)
    assert unmatchable_notes(rows.unmatchable) == []  # 1 of 40 is under 10%
    rows.add_results(scored(["goat, dog"] * 10), "cross", 1)
    (note,) = unmatchable_notes(rows.unmatchable)
    assert "bundled/q first_word: 11 of 50 (22%)" in note
