import pytest
from transformers import AutoTokenizer

from inward.errors import InwardError
from inward.models import resolve
from inward.models.chat import (
    FALLBACKS,
    GEMMA_FALLBACK,
    PLAIN_FALLBACK,
    QA_FALLBACK,
    candidates,
    chat_format,
    render,
    stop_token_ids,
    strip_answer_prefix,
)

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


def gemma_like(tiny_plain_dir):
    """The template-less tiny tokenizer with Gemma's turn tokens added."""
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    return tok


def test_plain_fallback_without_template(tiny_plain_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    fmt = chat_format(tok, "qwen2")  # auto, no template: the default fallback
    assert fmt.source == "fallback:plain" and fmt.template == PLAIN_FALLBACK
    assert render(tok, fmt, MSGS) == "User: Say fox.\nAssistant:"
    assert render(tok, fmt, FEW_SHOT) == "Be brief.\n\nUser: a\nAssistant: b\nUser: c\nAssistant:"
    # The answer follows "Assistant:" after a space and the turn ends with a newline, as the
    # template writes earlier assistant turns; generation stops at the newline.
    assert fmt.answer_prefix == " " and fmt.end == "\n"
    assert stop_token_ids(tok, fmt)[0] == tok("\n", add_special_tokens=False)["input_ids"][0]


def test_qa_fallback(tiny_plain_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    fmt = chat_format(tok, choice="qa")
    assert fmt.template == QA_FALLBACK
    assert render(tok, fmt, FEW_SHOT) == "Be brief.\n\nQuestion: a\nAnswer: b\nQuestion: c\nAnswer:"


def test_answer_prefix_is_stripped_once():
    plain = FALLBACKS["plain"]
    assert strip_answer_prefix(plain, " fox") == "fox"
    assert strip_answer_prefix(plain, "  fox") == " fox"  # only the format's own space
    assert strip_answer_prefix(plain, "fox") == "fox"
    assert strip_answer_prefix(FALLBACKS["gemma"], " fox") == " fox"  # no prefix in that format


def test_gemma_markup_needs_gemma_tokens(tiny_plain_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    assert candidates(tok) == ["plain", "qa"]
    with pytest.raises(InwardError, match="turn tokens"):
        chat_format(tok, choice="gemma")
    assert candidates(gemma_like(tiny_plain_dir)) == ["gemma", "plain", "qa"]


def test_unknown_or_impossible_choice_is_an_error(tiny_plain_dir, tiny_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_plain_dir))
    with pytest.raises(InwardError, match="chat_format='chatml'"):
        chat_format(tok, choice="chatml")
    with pytest.raises(InwardError, match="no chat template"):
        chat_format(tok, choice="model")
    with pytest.raises(InwardError, match="chat_format"):
        resolve(f"hf/{tiny_dir}", chat_format="nonsense")


def test_gemma_fallback_markup(tiny_plain_dir):
    tok = gemma_like(tiny_plain_dir)
    fmt = chat_format(tok, "gemma3_text", "gemma")
    assert fmt.source == "fallback:gemma" and fmt.template == GEMMA_FALLBACK
    assert stop_token_ids(tok, fmt)[0] == tok.convert_tokens_to_ids("<end_of_turn>")
    # Empty system dropped.
    assert render(tok, fmt, MSGS) == "<start_of_turn>user\nSay fox.<end_of_turn>\n<start_of_turn>model\n"
    # Non-empty system prepended to the first user turn only; assistant becomes "model".
    assert render(tok, fmt, FEW_SHOT) == (
        "<start_of_turn>user\nBe brief.\n\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
        "<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n"
    )


def test_gemma_fallback_starts_with_bos_when_tokenizer_has_one(tiny_plain_dir):
    tok = gemma_like(tiny_plain_dir)
    tok.bos_token = "<|endoftext|>"  # stand-in for Gemma's <bos>
    for name in FALLBACKS:
        assert render(tok, chat_format(tok, choice=name), MSGS).startswith("<|endoftext|>")
    assert render(tok, chat_format(tok, choice="gemma"), MSGS).startswith("<|endoftext|><start_of_turn>user\n")


def test_template_identities_differ(tiny_dir, tiny_plain_dir):
    own = chat_format(AutoTokenizer.from_pretrained(str(tiny_dir)), "qwen2")
    plain_tok = gemma_like(tiny_plain_dir)
    ids = {own.sha256, *(chat_format(plain_tok, choice=n).sha256 for n in FALLBACKS)}
    assert len(ids) == 4 and all(len(i) == 64 for i in ids)
    # the model's own template keeps the fingerprint it had before fallbacks grew fields
    assert set(own.identity()) == {"source", "sha256"}
    assert chat_format(plain_tok, choice="qa").identity()["answer_prefix"] == " "


def test_backend_records_the_chosen_format(tiny_plain_dir):
    fp = {n: resolve(f"hf/{tiny_plain_dir}", chat_format=n).fingerprint()["chat_template"] for n in ("plain", "qa")}
    assert fp["plain"]["source"] == "fallback:plain" and fp["qa"]["source"] == "fallback:qa"
    assert fp["plain"]["sha256"] != fp["qa"]["sha256"]


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
