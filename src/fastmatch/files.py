"""Reading an input file once, whatever it is, within limits.

Every input (a device file, a file of a directory input, a policy) is read
here, once: a pipe, a process substitution (``<(...)``) or ``-`` (standard
input) can be read only once, so the readers and the fast path all work on
the bytes read here. What is refused, before or while reading:

- a character or block device (``/dev/zero``, ``/dev/urandom``) or a socket:
  it is not a file and may never end (a FIFO named on the command line is a
  pipe and is read; inside a directory input it is refused, see ``regular_only``);
- an input of more than :data:`MAX_INPUT_BYTES` (a policy: ``limit``);
- for line-oriented input (JSON Lines, a seed document, SELF/COMPATIBLE text),
  a line of more than :data:`MAX_LINE_BYTES`, found as the bytes arrive: a
  1 GB single-line file costs 1 MiB of memory, not 1 GB.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from .errors import InputError

STDIN = "-"
# One device record on one line is a few hundred bytes; a line of more than
# this is a broken or hostile file, and error messages must not echo it.
MAX_LINE_BYTES = 1 << 20
# A fleet of ten million devices in JSON Lines is about 3 GB.
MAX_INPUT_BYTES = 4 << 30
_CHUNK = MAX_LINE_BYTES  # no larger: see the line check in _read
_SPACE = b" \t\r\n"
_COLUMNAR_MAGIC = (b"PAR1", b"ARROW1", b"\xff\xff\xff\xff", b"FEA1")  # as fastmatch.formats.columnar tells them


def read_input(
    path: str | os.PathLike[str],
    *,
    limit: int = MAX_INPUT_BYTES,
    line_limit: bool | None = None,
    regular_only: bool = False,
) -> bytes:
    """The bytes of ``path`` (``-``: standard input), read once.

    ``line_limit``: refuse a line longer than :data:`MAX_LINE_BYTES`; ``None``
    decides from the first byte that is not white space: input that starts with
    ``[`` (a JSON array) or ``<`` (XML) may be one long line, other input not.
    ``regular_only`` refuses anything but a regular file without opening it (a
    FIFO in a directory would block until some process writes to it).
    """
    name = "<stdin>" if str(path) == STDIN else str(path)
    if str(path) == STDIN:
        try:
            fd = os.dup(sys.stdin.fileno())
        except (AttributeError, OSError, ValueError):  # None (closed at start), or not a file
            raise InputError("standard input is closed", file=name) from None
    else:
        try:
            if regular_only and not stat.S_ISREG(os.stat(path).st_mode):
                raise InputError(f"is {_kind(os.stat(path).st_mode)}, not a regular file", file=name)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if regular_only else 0))
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=name) from None
    try:
        return _read(fd, name, limit, line_limit, regular_only)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=name) from None
    finally:
        os.close(fd)


def _read(fd: int, name: str, limit: int, line_limit: bool | None, regular_only: bool) -> bytes:
    status = os.fstat(fd)
    mode = status.st_mode
    if stat.S_ISREG(mode):
        if status.st_size > limit:
            raise InputError(f"is larger than the limit of {limit} bytes for one input", file=name)
    elif regular_only or not stat.S_ISFIFO(mode):
        if name == "<stdin>" and os.isatty(fd):
            raise InputError("standard input is a terminal; give a file, or pipe one into fastmatch", file=name)
        raise InputError(f"is {_kind(mode)}, not a file or a pipe", file=name)
    if regular_only:  # opened without blocking, to be safe from a FIFO put there meanwhile
        os.set_blocking(fd, True)
    chunks: list[bytes] = []
    size = 0
    lines_before = 0  # newlines before the current line
    line_length = 0  # bytes of the current line read so far
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise InputError(f"is larger than the limit of {limit} bytes for one input", file=name)
        if line_limit is None:  # not known until the first byte that is not white space
            line_limit = _line_oriented(chunk)
        # A line that starts and ends inside one chunk is shorter than the chunk, so only
        # the line that runs on from chunk to chunk can pass the limit.
        end = chunk.find(b"\n")
        if end == -1 or line_length + end > MAX_LINE_BYTES:
            line_length += len(chunk) if end == -1 else end
        else:
            lines_before += chunk.count(b"\n")
            line_length = len(chunk) - chunk.rfind(b"\n") - 1
        if line_limit and line_length > MAX_LINE_BYTES:
            raise InputError(
                f"line is longer than the limit of {MAX_LINE_BYTES} bytes for one line", file=name, line=lines_before + 1
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _line_oriented(chunk: bytes) -> bool | None:
    """Whether input that starts (after white space) with ``chunk`` is line-oriented; ``None``: all white space.
    A columnar fleet (Parquet, Arrow: binary, told by its magic number) is not."""
    if chunk.startswith(_COLUMNAR_MAGIC):
        return False
    start = chunk.lstrip(_SPACE)[:1]
    return None if not start else start not in (b"[", b"<")


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def input_name(path: str | os.PathLike[str]) -> str:
    """How messages name an input: its path, or ``<stdin>``."""
    return "<stdin>" if str(path) == STDIN else str(Path(path))
