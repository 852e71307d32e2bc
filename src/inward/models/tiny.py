"""A tiny, randomly initialised Qwen2-style checkpoint for tests. NOT a real model.

``make_tiny_model(dir)`` writes, in about a second and without any network access:

- a ``Qwen2ForCausalLM`` with 2 layers and hidden size 64, random weights from a fixed seed;
- a byte-level BPE tokenizer trained on a small in-code corpus, with the special tokens
  ``<|im_start|>``, ``<|im_end|>`` (EOS) and ``<|endoftext|>`` (padding), and a Qwen-like chat
  template (optional, so tests can exercise the template-less fallback).

Its outputs are gibberish; it exists so the backend's mechanics (batching, padding, order,
seeding, scoring) can be tested with ``resolve("hf/<dir>")`` in CI. Its vocabulary holds only
printable ASCII, tab and newline (other input bytes are dropped when encoding), so its gibberish
is readable text that passes inward's ``unreadable`` guard, like a real model's output would.
"""

from __future__ import annotations

from pathlib import Path

TINY_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "What is the next 5 animals in the following text? Respond only with the next 5 animals.",
    "fox sheep duck panda rat cow fox dog cat horse goat rabbit deer chicken owl bee",
    "Previously, you were asked the following question: what is the first character?",
    "Respond only with the answer and nothing else, including punctuation. true false yes no",
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 A B C D E",
    "system user assistant: the model answers questions about its own behaviour.",
]


def _readable_byte_alphabet() -> list[str]:
    """The byte-level BPE symbols (GPT-2's byte-to-unicode map) of printable ASCII, tab, newline."""
    keep = [9, 10, *range(32, 127)]
    visible = [*range(33, 127), *range(161, 173), *range(174, 256)]
    mapping, extra = {}, 0
    for b in range(256):
        if b in visible:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return [mapping[b] for b in keep]


def make_tiny_model(directory: str | Path, *, seed: int = 0, chat_template: bool = True) -> Path:
    """Write the tiny test checkpoint to ``directory`` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=_readable_byte_alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    if chat_template:
        tok.chat_template = TINY_CHAT_TEMPLATE
    tok.save_pretrained(str(out))

    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        # Larger than the default 0.02 so logits are not near-uniform: fewer argmax near-ties,
        # which keeps "batched == one at a time" a meaningful comparison.
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    # transformers wraps PreTrainedModel.to with functools.wraps(nn.Module.to), whose stub wants `self` first
    model = Qwen2ForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]
    model.save_pretrained(str(out))
    return out
