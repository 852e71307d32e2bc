"""Notes computed from a study's rows (pure functions)."""

from inward.analysis.scoring import score
from inward.experiments.notes import unmatchable_notes
from inward.experiments.rows import StudyRows, unmatchable_rows
from inward.properties.registry import resolve_property
from inward.records import HypotheticalRecord, ObjectRecord


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


def test_equal_evidence_notes_name_the_pair_when_a_study_has_several():
    from inward.experiments.notes import evidence_notes

    def row(seed, target, cross, dropped):
        return {
            "seed": seed,
            "target": f"{target}+lora:seed{seed}/self_ft/adapter",
            "cross_model": cross,
            "task": "colors_long",
            "property": "second_word",
            "self_examples": 70,
            "cross_examples": 70 - dropped,
            "dropped": dropped,
        }

    one = [row(0, "a", "b", 7)]
    assert evidence_notes(one) == [
        "Equal evidence, seed 0: the cross-predictor trained on the self-predictor's items except 7 of 70 "
        "(10%) where the self-trained model's own answer was not compliant (colors_long/second_word 7 of 70; "
        "evidence.csv, and dropped_items.jsonl under seed*/models/*/cross_ft/)."
    ]
    matrix = one + [row(0, "b", "a", 0), row(1, "a", "b", 70)]
    notes = evidence_notes(matrix)
    assert [n.split(":")[0] for n in notes] == [
        "Equal evidence, seed 0, b cross-trained on a",
        "Equal evidence, seed 0, a cross-trained on b",
        "Equal evidence, seed 1, b cross-trained on a",
    ]
    assert "except 7 of 70" in notes[0] and "exactly the self-predictor's 70 items" in notes[1]
    assert "except 70 of 70 (100%)" in notes[2]
