import subprocess
import sys

import pytest

from inward.errors import InwardError, UnknownNameError
from inward.models import resolve
from inward.models.spec import parse_model_string


@pytest.mark.parametrize(
    "raw, provider, name, adapter",
    [
        ("bundled/qwen2.5-coder-0.5b-instruct", "bundled", "qwen2.5-coder-0.5b-instruct", None),
        ("hf/Qwen/Qwen2.5-0.5B-Instruct", "hf", "Qwen/Qwen2.5-0.5B-Instruct", None),
        ("hf//abs/ckpt", "hf", "/abs/ckpt", None),
        ("gguf/models/x.gguf", "gguf", "models/x.gguf", None),
        ("mock/a/b", "mock", "a/b", None),
        (
            "bundled/qwen2.5-coder-0.5b-instruct+lora:/runs/x/adapter",
            "bundled",
            "qwen2.5-coder-0.5b-instruct",
            "/runs/x/adapter",
        ),
        ("hf//a+b/ckpt+lora:/runs/ad", "hf", "/a+b/ckpt", "/runs/ad"),
        ("openai-compatible/qwen@http://localhost:8000/v1", "openai-compatible", "qwen@http://localhost:8000/v1", None),
    ],
)
def test_parse(raw, provider, name, adapter):
    spec = parse_model_string(raw)
    assert (spec.provider, spec.name, spec.adapter, spec.raw) == (provider, name, adapter, raw)
    assert spec.base == f"{provider}/{name}"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("", "Empty model string"),
        ("qwen2.5-coder-0.5b-instruct", "Did you mean 'bundled/qwen2.5-coder-0.5b-instruct'"),
        ("hugginface/x", "Did you mean"),
        ("foo/x", "Unknown model provider 'foo'"),
        ("bundled/", "names no model"),
        ("openai-compatible/qwen", "<model>@<base_url>"),
        ("openai/gpt-4o+lora:/x", "only with"),
        ("bundled/x+lora:", "names no adapter"),
    ],
)
def test_parse_errors_name_the_problem(raw, fragment):
    with pytest.raises(InwardError) as err:
        parse_model_string(raw)
    assert fragment in str(err.value)
    # the message quotes the input (or, for an empty string, lists the forms it could take)
    assert raw.split("+")[0] in str(err.value) if raw else "bundled/<name>" in str(err.value)


def test_unknown_provider_lists_valid_forms():
    with pytest.raises(InwardError, match="bundled/<name>") as err:
        parse_model_string("llama/x")
    assert "gguf/<path" in str(err.value) and "hf/<hub id" in str(err.value)


# Every provider resolves now: API providers are tested in tests/models/test_openai_backend_units.py
# and test_anthropic_backend.py, vllm/ (without vLLM installed) in test_vllm_backend.py.


def test_unknown_bundled_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="qwen2.5-coder-0.5b-instruct"):
        resolve("bundled/qwen2.5-coder-0.5b-instrct")


def test_unknown_model_arg_is_rejected():
    with pytest.raises(InwardError, match="batch_size"):
        resolve("mock/x", batchsize=3)


def test_missing_local_paths_fail_at_resolve(tmp_path):
    with pytest.raises(InwardError, match="does not exist"):
        resolve(f"gguf/{tmp_path}/nope.gguf")
    with pytest.raises(InwardError, match="does not exist"):
        resolve(f"hf/{tmp_path}/nope")


def test_bad_model_arg_values(tiny_dir):
    with pytest.raises(InwardError, match="dtype"):
        resolve(f"hf/{tiny_dir}", dtype="int3")
    with pytest.raises(InwardError, match="batch_size"):
        resolve(f"hf/{tiny_dir}", batch_size="0")


def test_importing_models_does_not_import_torch():
    code = "import sys, inward.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
