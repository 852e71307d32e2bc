from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (the paper's data) is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return shared_dir / "datasets"


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("INWARD_PROGRESS", os.environ.get("INWARD_TEST_PROGRESS", "0"))


@pytest.fixture
def touched() -> Callable[[int], mmap.mmap]:
    """``touched(mib)``: that much fresh anonymous memory, every page written, resident until
    ``.close()`` (a Python object of that size could instead reuse heap pages the process holds)."""

    def make(mib: int) -> mmap.mmap:
        block = mmap.mmap(-1, mib * 2**20)
        for offset in range(0, len(block), mmap.PAGESIZE):
            block[offset] = 1
        return block

    return make
