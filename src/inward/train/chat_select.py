"""Choosing the chat format of a model without one, by measurement.

A base model (Gemma 3 270M) has no chat template, so inward must decide how to lay out the
conversation. Convention is a poor guide: Gemma's own turn markup looks right but the *base*
model gives its ``<end_of_turn>`` token ~29 nats (measured), so training on it starts far above a
uniform guess. Instead, each candidate format (:func:`inward.models.chat.candidates`) is scored
by the untrained model's mean cross-entropy on the tokens training would put loss on (the answer
plus the format's end token), on examples it will not be trained on, and the lowest wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from inward.errors import InwardError
from inward.train.examples import TrainExample


@dataclass(frozen=True)
class FormatLoss:
    """One candidate's untrained loss, in nats per token."""

    chat_format: str
    label_loss: float  # over answer tokens and the end token: what the first training step sees
    answer_loss: float  # answer tokens only
    end_loss: float  # the end-of-turn token only
    n_examples: int
    chosen: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def has_own_template(model_string: str) -> bool:
    """Whether a local model's tokenizer carries a chat template (then nothing is chosen)."""
    from inward.train.lora import load_base

    return load_base(model_string).backend.chat_format.source == "model"


def measure_formats(
    model_string: str,
    examples: Sequence[TrainExample],
    *,
    dtype: str = "float32",
    formats: Sequence[str] | None = None,
    batch_size: int = 8,
) -> list[FormatLoss]:
    """The untrained loss of ``model_string`` on ``examples`` under each candidate chat format,
    lowest first, with ``chosen`` set on the first. Deterministic (no sampling, no training)."""
    import torch

    from inward.models import chat
    from inward.train.lora import IGNORE, collate, encode_example, label_logits, load_base

    if not examples:
        raise InwardError("Choosing a chat format needs at least one example.")
    first = load_base(model_string)
    names = list(formats or chat.candidates(first.tokenizer))
    model = first.backend.checkpoint.load_base(dtype).eval()
    rows = []
    for name in names:
        base = load_base(model_string, {"chat_format": name})
        encoded = [encode_example(base, ex) for ex in examples]
        answer, end = [], []
        for k in range(0, len(encoded), batch_size):
            batch = collate(encoded[k : k + batch_size], base.pad_id)
            with torch.no_grad():  # the LM head on labelled positions only (262k-token vocabularies)
                logits, targets = label_logits(model, batch, share_prefix=False)
                flat = torch.nn.functional.cross_entropy(logits, targets, reduction="none").tolist()
            counts = (batch["labels"][:, 1:] != IGNORE).sum(dim=1).tolist()  # labels per row, in row order
            for n in counts:
                nats, flat = flat[:n], flat[n:]
                answer += nats[:-1]  # the last labelled token is the format's end token
                end.append(nats[-1])
        total = answer + end
        rows.append(
            FormatLoss(
                name, sum(total) / len(total), sum(answer) / max(1, len(answer)), sum(end) / len(end), len(examples)
            )
        )
    del model
    rows.sort(key=lambda r: r.label_loss)
    return [FormatLoss(**{**r.to_json(), "chosen": i == 0}) for i, r in enumerate(rows)]
