import pytest
from transformers import AutoTokenizer

from inward.errors import InwardError
from inward.models import resolve
from inward.models.chat import GEMMA_FALLBACK, PLAIN_FALLBACK, chat_format, render, stop_token_ids

MSGS = [{"role": "system", "content": ""}, {"role": "user", "content": "Say fox."}]


def test_model_template_keeps_empty_system_message(tiny_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_dir))
    fmt = chat_format(tok, "qwen2")
    assert fmt.source == "model"
    assert render(tok, fmt, MSGS) == (
        "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nSay fox.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert stop_token_ids(tok, fmt) == [tok.convert_tokens_to_ids("<|im_end|>")]


FEW_SHOT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "a"},
    {"role": "assistant", "content": "b"},
    {"role": "user", "content": "c"},
]


def test_plain_fallback_without_template(tiny_plain_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    fmt = chat_format(tok, "qwen2")
    assert fmt.source == "fallback:plain" and fmt.template == PLAIN_FALLBACK
    assert render(tok, fmt, MSGS) == "User: Say fox.\nAssistant:"
    assert render(tok, fmt, FEW_SHOT) == "Be brief.\n\nUser: a\nAssistant: b\nUser: c\nAssistant:"


def test_gemma_fallback_markup(tiny_plain_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    fmt = chat_format(tok, "gemma3_text")
    assert fmt.source == "fallback:gemma" and fmt.template == GEMMA_FALLBACK
    # Empty system dropped.
    assert render(tok, fmt, MSGS) == "<start_of_turn>user\nSay fox.<end_of_turn>\n<start_of_turn>model\n"
    # Non-empty system prepended to the first user turn only; assistant becomes "model".
    assert render(tok, fmt, FEW_SHOT) == (
        "<start_of_turn>user\nBe brief.\n\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
        "<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n"
    )


def test_gemma_fallback_starts_with_bos_when_tokenizer_has_one(tiny_plain_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    tok.bos_token = "<|endoftext|>"  # stand-in for Gemma's <bos>
    assert render(tok, chat_format(tok, "gemma3"), MSGS).startswith("<|endoftext|><start_of_turn>user\n")


def test_template_identities_differ(tiny_dir, tiny_plain_dir):
    own = chat_format(AutoTokenizer.from_pretrained(str(tiny_dir)), "qwen2")
    plain_tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    ids = {own.sha256, chat_format(plain_tok, "qwen2").sha256, chat_format(plain_tok, "gemma3").sha256}
    assert len(ids) == 3 and all(len(i) == 64 for i in ids)


def test_backend_on_template_less_model_uses_fallback(tiny_plain_dir):
    b = resolve(f"hf/{tiny_plain_dir}")
    fp = b.fingerprint()
    assert fp["chat_template"]["source"] == "fallback:plain"
    assert b.render(MSGS) == "User: Say fox.\nAssistant:"


@pytest.mark.parametrize(
    "bad", [[], [{"role": "bot", "content": "x"}], [{"role": "user"}], [{"role": "user", "content": 3}]]
)
def test_bad_messages_are_rejected(tiny_dir, bad):
    tok = AutoTokenizer.from_pretrained(str(tiny_dir))
    with pytest.raises(InwardError):
        render(tok, chat_format(tok, "qwen2"), bad)
