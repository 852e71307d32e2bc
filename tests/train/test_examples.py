from __future__ import annotations

import json

import pytest

from inward.errors import InwardError
from inward.train import TrainExample, from_openai_jsonl, to_openai_jsonl


def test_round_trip_with_and_without_meta(examples):
    examples = examples(1)
    text = to_openai_jsonl(examples)
    lines = text.splitlines()
    assert len(lines) == len(examples) and text.endswith("\n")
    row = json.loads(lines[0])
    assert list(row) == ["messages"]  # the upload format: messages only
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][0]["content"] == "" and row["messages"][2]["content"] == "f"
    back = from_openai_jsonl(text)
    assert [(e.prompt, e.completion) for e in back] == [(e.prompt, e.completion) for e in examples]
    assert all(e.meta == {} for e in back)
    assert from_openai_jsonl(to_openai_jsonl(examples, include_meta=True)) == examples


def test_paper_line_extra_keys_go_to_meta_and_blank_lines_skipped():
    line = json.dumps(
        {
            "messages": [
                {"role": "system", "content": ""},
                {"role": "user", "content": "Previously, you were asked ..."},
                {"role": "assistant", "content": "True"},
            ],
            "string": "elephant",
        }
    )
    (ex,) = from_openai_jsonl("\n" + line + "\n\n")
    assert ex.completion == "True" and ex.meta == {"string": "elephant"}
    assert ex.prompt[-1]["role"] == "user"


@pytest.mark.parametrize(
    "bad_line, needle",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"msgs": []}), '"messages" list'),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}), "at least one prompt message"),
        (
            json.dumps({"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}]}),
            "must be the assistant",
        ),
        (
            json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}),
            "non-empty string",
        ),
        (
            json.dumps({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "a"}]}),
            "message 0",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "a"},
                        {"role": "assistant", "content": "b"},
                        {"role": "assistant", "content": "c"},
                    ]
                }
            ),
            "ends with an assistant turn",
        ),
    ],
)
def test_validation_errors_name_the_line(bad_line, needle, examples):
    good = to_openai_jsonl(examples(1)[:2])
    with pytest.raises(InwardError) as err:
        from_openai_jsonl(good + bad_line + "\n")
    assert "line 3" in str(err.value) and needle in str(err.value)


def test_to_jsonl_rejects_untrainable_examples():
    bad = TrainExample(prompt=[{"role": "user", "content": "q"}], completion="")
    with pytest.raises(InwardError, match="example 0"):
        to_openai_jsonl([bad])
