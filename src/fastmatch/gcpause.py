"""The cyclic garbage collector paused around bulk work that makes a great many objects and
no cycle (reading a fleet, interning it): no collection could free any of them, and each
would walk every id, string and descriptor the fleets already hold."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off for the block, back on after it if it was on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
