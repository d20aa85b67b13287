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

Only a command does this: a library must not change its caller's allocator, and a server
(``fastmatch serve``) lives long enough for the memory it once needed to matter.
"""

from __future__ import annotations

import ctypes
import os

# mallopt(3) parameters (malloc.h), and the values used.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks below it come from the heap, and stay there when freed
TRIM_THRESHOLD = 256 << 20  # free memory at the heap's top kept before it is given back
TOP_PAD = 64 << 20  # the heap grows by this much at a time: fewer brk calls

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
        for parameter, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    )
    if kept:
        os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
    return kept
