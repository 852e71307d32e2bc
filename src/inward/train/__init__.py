"""Finetuning: examples in the paper's chat JSONL format and a LoRA trainer for local models.

    >>> from inward.train import TrainConfig, TrainExample, train_lora
    >>> result = train_lora("bundled/qwen2.5-coder-0.5b-instruct", examples, TrainConfig(), "runs/ft")
    >>> result.adapter_model_string  # "bundled/...+lora:/abs/runs/ft/adapter", for inward.models.resolve

Importing this package is cheap; torch and peft load when training starts.
"""

from __future__ import annotations

from inward.train.examples import TrainExample, check_example, from_openai_jsonl, to_openai_jsonl
from inward.train.lora import TrainConfig, TrainResult, train_lora

__all__ = [
    "TrainConfig",
    "TrainExample",
    "TrainResult",
    "check_example",
    "from_openai_jsonl",
    "to_openai_jsonl",
    "train_lora",
]
