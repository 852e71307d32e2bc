"""The precision resolver (:mod:`inward.models.precision`): cpuinfo parsing, the auto rule, its cache,
and the AVX2 environment for real in a subprocess."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from inward.errors import InwardError
from inward.models import precision

X86 = """processor\t: 0
vendor_id\t: {vendor}
model name\t: {model}
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl {extra}
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid {extra}
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""


def x86(extra: str = "", model: str = "AMD EPYC") -> str:
    return X86.format(vendor="AuthenticAMD", model=model, extra=extra)


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "env", "expected"),
    [
        (x86("avx512_vnni avx512_bf16"), "x86_64", {}, "avx512_bf16"),
        (x86("avx512_bf16 amx_bf16 amx_tile amx_int8"), "x86_64", {}, "amx_bf16"),
        (x86("avx512_vnni"), "x86_64", {}, "none"),  # Skylake/Cascade Lake: AVX-512 without BF16
        (x86(), "x86_64", {}, "none"),
        (ARM.format(extra="sve svebf16 i8mm bf16"), "aarch64", {}, "bf16"),
        (ARM.format(extra="sve svebf16 i8mm bf16"), "arm64", {}, "bf16"),
        (ARM.format(extra="sve svebf16 i8mm"), "aarch64", {}, "none"),  # svebf16 is not bf16
        (x86("avx512_bf16"), "x86_64", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "none"),
        (x86("avx512_bf16"), "x86_64", {"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}, "none"),
        # torch's own kernel choice: bf16 nn.Linear goes through oneDNN, measured as fast under it
        (x86("avx512_bf16"), "x86_64", {"ATEN_CPU_CAPABILITY": "avx2"}, "avx512_bf16"),
        (x86("avx512_bf16"), "x86_64", {"ATEN_CPU_CAPABILITY": "default"}, "avx512_bf16"),
        (x86("avx512_bf16"), "x86_64", {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL"}, "avx512_bf16"),
        (x86("avx512_bf16 amx_bf16"), "x86_64", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "avx512_bf16"),
        ("", "x86_64", {}, "none"),
    ],
)
def test_parse_bf16(cpuinfo, machine, env, expected):
    assert precision.parse_bf16(cpuinfo, machine, env) == expected


def test_cpu_model():
    assert precision.cpu_model(x86(model="Intel Xeon 8480"), "x86_64") == "Intel Xeon 8480"
    assert precision.cpu_model(ARM.format(extra=""), "aarch64") == "aarch64 0x41 0xd40"


def test_layer_shapes():
    shapes = precision.layer_shapes(896, 4864, tokens=8)
    assert (8, 896, 896) in shapes and (8, 896, 4864) in shapes and (8, 4864, 896) in shapes
    assert len(shapes) == 7


def test_time_matmuls_runs():
    assert 0 < precision.time_matmuls([(4, 8, 16)], "float32", repeats=2) < 1


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INWARD_CACHE_DIR", str(tmp_path))
    return tmp_path / "precision.json"


@pytest.fixture
def fake_timing(monkeypatch):
    """Timings by dtype (seconds), and a record of which dtypes were timed."""
    seconds = {"float32": 1.0, "bfloat16": 1.0}
    calls: list[str] = []

    def time_matmuls(shapes, dtype, *, repeats=5, device="cpu"):
        calls.append(str(dtype))
        return seconds[str(dtype)]

    monkeypatch.setattr(precision, "time_matmuls", time_matmuls)
    monkeypatch.setattr(precision, "hardware_bf16", lambda device=None: "avx512_bf16")
    return seconds, calls


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_forced_dtypes_pass_through(dtype, cache, fake_timing):
    r = precision.resolve(dtype, hidden=896, intermediate=4864)
    assert (r.dtype, r.requested, r.reason) == (dtype, dtype, "forced")
    assert fake_timing[1] == [] and not cache.exists()


def test_unknown_dtype_names_value_and_choices():
    with pytest.raises(InwardError) as err:
        precision.resolve("bf16", hidden=896, intermediate=4864)
    msg = str(err.value)
    assert "'bf16'" in msg and all(d in msg for d in ("auto", "float32", "bfloat16", "float16"))


def test_auto_without_native_bf16_is_float32_untimed(cache, fake_timing, monkeypatch):
    monkeypatch.setattr(precision, "hardware_bf16", lambda device=None: "none")
    r = precision.resolve("auto", hidden=896, intermediate=4864)
    assert (r.dtype, r.hardware, r.fp32_s, r.bf16_s) == ("float32", "none", None, None)
    assert fake_timing[1] == []


def test_auto_for_a_tiny_model_is_float32_untimed(cache, fake_timing, monkeypatch):
    # 32 x 64 layers (the test models) take microseconds: timing them would flip from run to run
    monkeypatch.setattr(precision, "hardware_bf16", lambda device=None: "avx512_bf16")
    r = precision.resolve("auto", hidden=32, intermediate=64)
    assert r.dtype == "float32" and "too small" in r.reason and fake_timing[1] == []


@pytest.mark.parametrize(("bf16_s", "expected"), [(1 / 1.5, "bfloat16"), (1 / 1.1, "float32"), (2.0, "float32")])
def test_auto_follows_measured_speedup(bf16_s, expected, cache, fake_timing):
    fake_timing[0]["bfloat16"] = bf16_s
    r = precision.resolve("auto", hidden=896, intermediate=4864)
    assert r.dtype == expected
    assert r.speedup == pytest.approx(1.0 / bf16_s)
    assert (r.fp32_s, r.bf16_s) == (1.0, bf16_s)
    assert fake_timing[1] == ["float32", "bfloat16"] * precision.ROUNDS  # in turn


def test_auto_is_cached_per_shape_and_remeasured_on_request(cache, fake_timing, monkeypatch):
    seconds, calls = fake_timing
    n = 2 * precision.ROUNDS  # timings per measurement
    seconds["bfloat16"] = 0.5
    first = precision.resolve("auto", hidden=896, intermediate=4864)
    assert cache.exists() and len(calls) == n
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert (entry["dtype"], entry["fp32_s"], entry["bf16_s"]) == ("bfloat16", 1.0, 0.5)

    second = precision.resolve("auto", hidden=896, intermediate=4864)
    assert len(calls) == n  # not timed again
    assert (second.dtype, second.speedup) == (first.dtype, first.speedup)
    assert json.dumps(second.to_json())  # serialisable

    precision.resolve("auto", hidden=640, intermediate=2048)  # another model shape: its own entry
    assert len(calls) == 2 * n and len(json.loads(cache.read_text())) == 2
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")  # other kernels: measured again
    precision.resolve("auto", hidden=640, intermediate=2048)
    assert len(calls) == 3 * n and len(json.loads(cache.read_text())) == 3
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")

    seconds["bfloat16"] = 1.0
    again = precision.resolve("auto", hidden=896, intermediate=4864, remeasure=True)
    assert len(calls) == 4 * n and again.dtype == "float32"
    assert precision.resolve("auto", hidden=896, intermediate=4864).dtype == "float32"  # replaced
    assert not [p for p in cache.parent.iterdir() if p.name.endswith(".tmp")]


def test_unreadable_cache_is_remeasured(cache, fake_timing):
    cache.write_text("{not json")
    assert precision.resolve("auto", hidden=896, intermediate=4864).fp32_s == 1.0
    assert len(json.loads(cache.read_text())) == 1


def test_avx2_environment_resolves_float32_for_real(tmp_path):
    """torch and oneDNN read these variables at start-up, so a fresh process is the only real test.
    It also times the layer matmuls there: on x86 bf16 must not be worth it under AVX2 kernels
    (measured 0.34x float32's speed on an EPYC whose native bf16 is 4.4x)."""
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", INWARD_CACHE_DIR=str(tmp_path))
    code = (
        "import json; from inward.models import precision as p\n"
        "r = p.resolve('auto', hidden=896, intermediate=4864).to_json()\n"
        "s = p.layer_shapes(896, 4864)\n"
        "r['measured'] = p.time_matmuls(s, 'float32', repeats=3) / p.time_matmuls(s, 'bfloat16', repeats=3)\n"
        "print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert (r["dtype"], r["hardware"]) == ("float32", "none")
    if platform.machine() in ("x86_64", "AMD64"):
        assert r["measured"] < precision.MIN_SPEEDUP
