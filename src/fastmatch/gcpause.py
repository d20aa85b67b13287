"""The cyclic garbage collector paused around bulk work that makes a great many objects and
no cycle (reading a fleet, interning it): no collection could free any of them, and each
would walk every id, string and descriptor the fleets already hold. Two fleets read side by
side (``fastmatch.cli``) pause it together: it is back on once neither reads."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_pausing = 0  # blocks inside gc_paused, in every thread
_enabled_before = False  # whether the GC was on when the first of them began


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off for the block, back on once the last block paused with it ends, if
    it was on when the first began."""
    global _pausing, _enabled_before
    with _lock:
        if _pausing == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _lock:
            _pausing -= 1
            if _pausing == 0 and _enabled_before:
                gc.enable()
