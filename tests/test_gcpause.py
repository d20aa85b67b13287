"""The cyclic GC paused by readers side by side (fastmatch.gcpause): back on only once the
last of them ends, and only if it was on."""

from __future__ import annotations

import gc
import threading

import pytest

from fastmatch.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _gc_restored():
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_two_threads_pausing_leave_the_gc_off_until_both_end():
    gc.enable()
    first_in, first_out = threading.Event(), threading.Event()

    def first() -> None:
        with gc_paused():
            first_in.set()
            first_out.wait(10)

    reader = threading.Thread(target=first)
    reader.start()
    assert first_in.wait(10)
    with gc_paused():
        first_out.set()
        reader.join(10)
        assert not reader.is_alive()
        assert not gc.isenabled()  # the first reader ended; this one still reads
    assert gc.isenabled()


def test_a_gc_that_was_off_stays_off():
    gc.disable()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert not gc.isenabled()
