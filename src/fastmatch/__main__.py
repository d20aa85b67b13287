"""``python -m fastmatch`` and the ``fastmatch`` command: the command line.

Kept light (the package imports its modules on first use), so that Ctrl-C
while numpy and the kernel are still being imported is one line too.
"""

import os
import sys


def entry() -> None:
    serving = sys.argv[1:2] == ["serve"]
    numpy_settings(serving)
    if not serving:
        # The command owns its process until it exits (fastmatch.allocator), and another core
        # faults in memory it will use while this one imports.
        from .allocator import keep_freed_memory, touch_ahead, touch_budget

        if keep_freed_memory():
            touch_ahead(touch_budget(sys.argv[1:]))
    try:
        from . import cli
    except KeyboardInterrupt:
        sys.stderr.write("fastmatch: interrupted\n")
        os._exit(130)
    cli.exit_at_once = True
    status = cli.main()
    # Nothing follows main(): leaving without freeing a large fleet object by object
    # (seconds for millions of devices) once what was written is flushed.
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


def numpy_settings(serving: bool = False) -> None:
    """What the command asks of NumPy, before it is imported (a user's own setting of each is
    kept, and the processes the command starts inherit them):

    - one BLAS thread: OpenBLAS starts a thread per core when NumPy is imported, and each
      spins for about a tenth of a second of its core before it sleeps, on every run, beside
      the command's own threads reading the fleets; fastmatch calls BLAS for nothing larger
      than a small product.
    - no transparent huge pages for NumPy's arrays (it asks for them from 4 MiB), unless
      ``serving``: the kernel zeroes 2 MiB at a time where an array is first written, and in
      a VM whose host provides memory as it is first touched, that made the system time of a
      whole-fleet match swing from 0.5 to 1.1 s, against 0.7-0.8 s in 4 KiB pages
      (BENCHMARKS.md). A server touches its memory once, at its start, and keeps NumPy's
      default, as it keeps the allocator's (``fastmatch.allocator``).
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not serving:
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


if __name__ == "__main__":
    entry()
