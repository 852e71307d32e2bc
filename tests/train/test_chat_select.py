"""Choosing a template-less model's chat format by its untrained loss (tiny model: mechanics)."""

import math

import pytest

from inward.errors import InwardError
from inward.train import TrainExample
from inward.train import lora as L
from inward.train.chat_select import has_own_template, measure_formats

EXAMPLES = [
    TrainExample([{"role": "system", "content": ""}, {"role": "user", "content": f"Say {w}."}], w)
    for w in ("fox", "owl", "cat", "dog", "rat")
]


def test_formats_are_ranked_by_their_loss_on_the_trained_tokens(tiny_plain_dir):
    model = f"hf/{tiny_plain_dir}"
    assert not has_own_template(model)
    rows = measure_formats(model, EXAMPLES, batch_size=2)
    assert [r.chosen for r in rows] == [True, False]
    assert rows[0].label_loss <= rows[1].label_loss
    for r in rows:
        assert r.n_examples == 5 and all(math.isfinite(x) and x > 0 for x in (r.label_loss, r.answer_loss, r.end_loss))
        # the label loss averages answer tokens and one end token per example
        base = L.load_base(model, {"chat_format": r.chat_format})
        n_answer = sum(
            len(L.encode_example(base, e).labels)
            - len(base.tokenizer(base.backend.render(e.prompt), add_special_tokens=False)["input_ids"])
            - 1
            for e in EXAMPLES
        )
        expected = (r.answer_loss * n_answer + r.end_loss * 5) / (n_answer + 5)
        assert r.label_loss == pytest.approx(expected, rel=1e-6)
        # the textbook computation: full logits of every position, one example at a time
        import torch
        from transformers import AutoModelForCausalLM

        lm = AutoModelForCausalLM.from_pretrained(str(base.checkpoint), dtype=torch.float32).eval()
        nats = []
        for e in EXAMPLES:
            enc = L.encode_example(base, e)
            ids, labels = torch.tensor([enc.input_ids]), torch.tensor(enc.labels)
            with torch.no_grad():
                logp = torch.log_softmax(lm(input_ids=ids).logits[0, :-1].float(), dim=-1)
            where = (labels[1:] != L.IGNORE).nonzero().flatten()
            nats += [-float(logp[t, labels[t + 1]]) for t in where]
        assert r.label_loss == pytest.approx(sum(nats) / len(nats), rel=1e-5)


def test_own_template_is_detected(tiny_dir):
    assert has_own_template(f"hf/{tiny_dir}")


def test_no_examples_is_an_error(tiny_plain_dir):
    with pytest.raises(InwardError, match="at least one example"):
        measure_formats(f"hf/{tiny_plain_dir}", [])
