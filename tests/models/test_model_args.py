"""Model arguments: one pydantic model per kind of backend (inward.models.args). Text from -M is
converted to the field's type; a wrong value or an unknown key is an error naming it."""

from __future__ import annotations

import pytest

from inward.errors import InwardError
from inward.models.args import ApiArgs, LocalArgs, MockArgs, VllmArgs, parse
from inward.models.spec import parse_model_string


def test_text_values_become_typed_values():
    local = parse(LocalArgs, "hf/x", {"threads": "2", "batch_size": "8", "share_prefix": "off", "dtype": "bfloat16"})
    assert (local.threads, local.batch_size, local.share_prefix, local.dtype) == (2, 8, False, "bfloat16")
    assert parse(LocalArgs, "hf/x", {"threads": "auto"}).threads is None  # every core
    assert parse(VllmArgs, "vllm/x", {"batch_size": ""}).batch_size is None  # vLLM's own default
    api = ApiArgs.for_spec(
        parse_model_string("openai/gpt-4o"),
        {"timeout": "5", "n_param": "no", "distribution": "Sampling", "dtype": "float32"},
    )
    assert (api.timeout, api.n_param, api.distribution, api.ignored) == (5.0, False, "sampling", {"dtype": "float32"})


@pytest.mark.parametrize(
    ("cls", "args", "message"),
    [
        (LocalArgs, {"share_prefix": "flase"}, "share_prefix='flase' for 'm': expected true or false"),
        (LocalArgs, {"batch_size": "0"}, "batch_size='0' for 'm': expected a positive integer"),
        (LocalArgs, {"threads": "two"}, "threads='two' for 'm': expected an integer"),
        (LocalArgs, {"dtype": "fp8"}, "dtype='fp8' for 'm': expected auto, float32, bfloat16 or float16"),
        (LocalArgs, {"chat_format": "chatml"}, "chat_format='chatml' for 'm': expected one of auto, model"),
        (LocalArgs, {"temprature": "1"}, "Unknown model arg 'temprature' for 'm'; valid: dtype, threads"),
        (VllmArgs, {"device": "cpu"}, "device='cpu' for 'm': vLLM uses the GPUs it can see"),
        (VllmArgs, {"batch_size": "-1"}, "batch_size='-1' for 'm': expected a positive integer"),
        (MockArgs, {"seed": 1}, "Unknown model arg 'seed' for 'm'"),
        (ApiArgs, {"timeout": "-1"}, "timeout='-1' for 'm': expected a number >= 0.001"),
        (ApiArgs, {"timeout": "inf"}, "timeout='inf' for 'm': expected a finite number"),
        (ApiArgs, {"distribution": "exact"}, "distribution='exact' for 'm': expected auto, logprobs or sampling"),
        (
            ApiArgs,
            {"api_key_env": "sk-abc"},
            "api_key_env='sk-abc' for 'm': expected the NAME of an environment variable",
        ),
    ],
)
def test_a_wrong_value_names_the_argument_and_what_it_accepts(cls, args, message):
    with pytest.raises(InwardError) as err:
        parse(cls, "m", args)
    assert message in str(err.value)


def test_api_args_refuse_a_key_and_unknown_names():
    spec = parse_model_string("openai/gpt-4o")
    with pytest.raises(InwardError, match="keys come from the environment only"):
        ApiArgs.for_spec(spec, {"api_key": "sk-x"})
    with pytest.raises(InwardError, match=r"Unknown model arg\(s\) \['temperature'\]"):
        ApiArgs.for_spec(spec, {"temperature": "0"})
