"""``python -m fastmatch`` and the ``fastmatch`` command: the command line.

Kept light (the package imports its modules on first use), so that Ctrl-C
while numpy and the kernel are still being imported is one line too.
"""

import os
import sys


def entry() -> None:
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


if __name__ == "__main__":
    entry()
