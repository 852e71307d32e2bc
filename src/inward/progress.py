"""Progress bars on stderr (tqdm). ``INWARD_PROGRESS=0`` hides them, ``=1`` forces them."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def progress_enabled() -> bool | None:
    flag = os.environ.get("INWARD_PROGRESS", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    if flag in ("1", "true", "yes", "on"):
        return True
    return sys.stderr.isatty()


def quiet_transformers_bars() -> bool:
    """transformers draws its own bars ("Loading weights", "Writing model shards"); with
    INWARD_PROGRESS=0 they are switched off too. True when progress is off."""
    if progress_enabled() is not False:
        return False
    import transformers

    transformers.utils.logging.disable_progress_bar()
    return True


@contextmanager
def progress_bar(total: int, desc: str) -> Iterator[Callable[[int], None]]:
    """Yields ``update(k)``: k more items done."""
    if not progress_enabled():
        yield lambda k: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="prompt", dynamic_ncols=True, file=sys.stderr) as bar:
        yield bar.update
