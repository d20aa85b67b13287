"""The C allocator's policy for a command line run that owns its process (``fastmatch.__main__``).

A whole-fleet command allocates and frees arrays of tens to hundreds of megabytes in turn.
glibc hands each freed large block back to the kernel (``munmap``, or a trim of the heap's
top), and the next array of that size faults every page in again: a 1,000,000-device Parquet
match took 155,000 minor faults, 1.0-1.3 s of system time in a VM, for 2.5 s of work. Kept in
the process, freed memory is reused without faults (about 30,000 fewer there, measured in
BENCHMARKS.md); it goes back to the system when the command exits, a few seconds later.

Arrow's buffers (reading and writing Parquet) follow the same policy: its default pool,
mimalloc, gives freed memory back on its own schedule, and the Parquet match spent a median
of 1.35 s of system time in it against 0.63 s with Arrow's system pool, which is glibc's malloc
under the settings here (BENCHMARKS.md, session 8). A user's own ``ARROW_DEFAULT_MEMORY_POOL``
is kept. The choice is an environment variable (Arrow reads it when it first allocates, and
pyarrow is imported only by the commands that need it), so the processes a command starts
(``--dask local``'s workers) allocate through their own glibc malloc too, with its defaults.

All threads allocate from one heap (one arena): glibc otherwise gives each new thread an
arena of its own, and memory freed in one (the targets' reading thread's, Arrow's decoding
threads') is never reused by another. One arena took the Parquet match from 191,000 faults
and 700 MB to 137,000 and 523 MB (BENCHMARKS.md, session 10).

What is left is memory the command touches for the first time, about 4 microseconds a page
in a VM whose host provides pages as they are first touched. While the main thread imports
NumPy, pyarrow and the package (a third of a second, on one core), :func:`touch_ahead` has
another core fault in heap memory the command will use, and gives it back to the heap to
reuse: 32 bytes for each byte of the Parquet and Arrow files named on its command line, at
most ``TOUCH_AHEAD_MOST``. Those fleets decode into Arrow's buffers, from the heap; the other
formats' readers hold their data in Python's objects and in whole-file buffers, both mapped
apart from the heap, and memory touched ahead of a JSON Lines match only added 270 MB to its
peak (BENCHMARKS.md, session 10).

Only a command does this: a library must not change its caller's allocator, and a server
(``fastmatch serve``) lives long enough for the memory it once needed to matter.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence

from .magic import LONGEST_MAGIC, columnar_format

# mallopt(3) parameters (malloc.h), and the values used.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks below it come from the heap, and stay there when freed
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top kept before it is given back (what touch_ahead faults in, too)
TOP_PAD = 64 << 20  # the heap grows by this much at a time: fewer brk calls
ARENA_MAX = 1  # one heap for every thread

# touch_ahead: heap bytes faulted in per byte of the command's input files, and at most. The
# most is what another core faults in while the main thread imports (0.36 s for 384 MB, at
# about 1 GB/s in the VM measured); a million-device Parquet match, 11.7 MB of fleets, peaked
# at 523 MB resident, 81 MB of it its imports. Past the imports, faulting ahead would take a
# core from reading.
TOUCH_PER_INPUT_BYTE = 32
TOUCH_AHEAD_MOST = 384 << 20
_TOUCH_BLOCK = 16 << 20  # under MMAP_THRESHOLD: from the heap, and back to it when freed

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse, and Arrow allocate through it; False
    where the C library is not glibc (or refuses a value), and nothing changes there."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt), or no C library to load
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    kept = all(
        mallopt(parameter, value) == 1
        for parameter, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_TOP_PAD, TOP_PAD),
            (M_ARENA_MAX, ARENA_MAX),
        )
    )
    if kept:
        os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
    return kept


def touch_budget(arguments: Sequence[str]) -> int:
    """The heap bytes worth faulting in ahead for a command line: ``TOUCH_PER_INPUT_BYTE``
    for each byte of the columnar files it names (told by their first bytes), at most
    ``TOUCH_AHEAD_MOST``. Any argument that names one counts, read before the command line
    is parsed: a Parquet output already there too, which at worst reaches the most."""
    named = 0
    for argument in arguments:
        if not os.path.isfile(argument):  # regular files only: a pipe's first bytes would be taken from its reader
            continue
        try:
            with open(argument, "rb") as file:
                if columnar_format(file.read(LONGEST_MAGIC)):
                    named += os.fstat(file.fileno()).st_size
        except OSError:  # gone since, or not readable: the command says so
            continue
    return min(TOUCH_AHEAD_MOST, TOUCH_PER_INPUT_BYTE * named)


def touch_ahead(budget: int) -> threading.Thread | None:
    """Fault in ``budget`` bytes of the heap in a thread, then free them for the command to
    reuse; None (nothing done) under a block's worth, or on a single core, where the thread
    would take the core the command runs on. Call after :func:`keep_freed_memory` (its one
    heap is what the thread's memory goes back to)."""
    # (engine.available_cores, without importing NumPy: this runs before it is imported, on
    # glibc, so on Linux)
    if budget < _TOUCH_BLOCK or len(os.sched_getaffinity(0)) < 2:
        return None
    thread = threading.Thread(target=_touch, args=(budget // _TOUCH_BLOCK,), name="fastmatch-touch-ahead", daemon=True)
    thread.start()
    return thread


def _touch(blocks: int) -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    taken = [libc.malloc(_TOUCH_BLOCK) for _ in range(blocks)]
    for block in taken:
        if block:
            ctypes.memset(block, 0, _TOUCH_BLOCK)  # (a foreign call: without the GIL)
    for block in taken:
        libc.free(block)
