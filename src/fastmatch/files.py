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
  1 GB single-line file costs a chunk of memory (at most 8 MiB), not 1 GB.

A regular file is read straight into one buffer of its size, a chunk at a time
(``fastmatch._lines.read_file``): no chunks to join, about what one ``read()`` costs.

Input compressed with gzip or zstd is told by its first bytes (never by its
name) and decompressed as it is read, a chunk at a time: every limit above
holds on the decompressed bytes, so a gzip bomb is refused once it passes the
limit, having cost no more memory than the limit. The compressed bytes are
bounded by the same limit (a pipe of empty gzip members would never end).
"""

from __future__ import annotations

import gzip
import importlib
import os
import re
import stat
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ._lines import read_file
from .errors import InputError
from .progress import SILENT, Stages

STDIN = "-"
# One device record on one line is a few hundred bytes; a line of more than
# this is a broken or hostile file, and error messages must not echo it.
MAX_LINE_BYTES = 1 << 20
# A fleet of ten million devices in JSON Lines is about 3 GB.
MAX_INPUT_BYTES = 4 << 30
_CHUNK = MAX_LINE_BYTES  # no larger: see the line check in _read
_SPACE = b" \t\r\n"
_COLUMNAR_MAGIC = (b"PAR1", b"ARROW1", b"\xff\xff\xff\xff", b"FEA1")  # as fastmatch.formats.columnar tells them

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Compressions fastmatch does not decompress, named so that the error says what the file is
# instead of "not UTF-8".
_UNREAD_MAGIC = {
    re.compile(rb"\xfd7zXZ\x00"): "xz-compressed (decompress it first: xz -d)",
    re.compile(rb"BZh[1-9]1AY&SY"): "bzip2-compressed (decompress it first: bunzip2)",  # block size, a block's magic
    re.compile(rb"PK\x03\x04"): "a zip archive (extract it first)",
}
_MAGIC_BYTES = 10  # the longest magic above
_SNIFF_BYTES = 1 << 16  # where a regular file's first byte that is not white space is looked for


def read_input(
    path: str | os.PathLike[str],
    *,
    limit: int = MAX_INPUT_BYTES,
    line_limit: bool | None = None,
    regular_only: bool = False,
    stages: Stages = SILENT,
) -> bytes:
    """The bytes of ``path`` (``-``: standard input), read once.

    ``line_limit``: refuse a line longer than :data:`MAX_LINE_BYTES`; ``None``
    decides from the first byte that is not white space: input that starts with
    ``[`` (a JSON array) or ``<`` (XML) may be one long line, other input not.
    ``regular_only`` refuses anything but a regular file without opening it (a
    FIFO in a directory would block until some process writes to it). ``stages``
    shows the bytes as they arrive.
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
        return _read(fd, name, limit, line_limit, regular_only, stages)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=name) from None
    finally:
        os.close(fd)


def _read(fd: int, name: str, limit: int, line_limit: bool | None, regular_only: bool, stages: Stages) -> bytes:
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
    raw = _Descriptor(fd, name, limit)
    source, compression, errors = _decompressing(raw, name)
    # Over the bytes of the file as they come (compressed ones, for a compressed file).
    bar = stages.stage("reading", status.st_size if stat.S_ISREG(mode) else None, "B")
    try:
        if compression is None and stat.S_ISREG(mode):
            # From where the descriptor stood before the peek: standard input redirected from
            # a file may have been read in part already.
            start = os.lseek(fd, 0, os.SEEK_CUR) - len(raw.ahead)
            data = _read_regular(fd, name, start, status.st_size - start, line_limit, bar)
            if data is not None:
                return data
        return _read_chunks(source, raw, name, limit, line_limit, compression, errors, bar)
    finally:
        bar.close()


def _read_regular(fd: int, name: str, start: int, size: int, line_limit: bool | None, bar: Any) -> bytes | None:
    """A regular file read straight into one buffer of its size (no chunks to join), its lines
    checked as they arrive; ``None`` leaves it to the chunked reader: a file whose first
    64 KiB are all white space (line-oriented or not is not known yet), or one that grew while
    it was read (or says it is empty, as files in /proc do). Reads from ``start`` and leaves
    the descriptor's position alone, so that the chunked reader can still take over."""
    if line_limit is None:
        line_limit = _line_oriented(os.pread(fd, _SNIFF_BYTES, start))
        if line_limit is None:
            return None
    data, long_line = read_file(fd, start, size, MAX_LINE_BYTES if line_limit else -1, bar.update)
    if long_line:
        raise InputError(f"line is longer than the limit of {MAX_LINE_BYTES} bytes for one line", file=name, line=long_line)
    if len(data) < size or os.pread(fd, 1, start + len(data)):  # it changed while read: read it as a stream
        return None
    return data


def _read_chunks(
    source: _Readable,
    raw: _Descriptor,
    name: str,
    limit: int,
    line_limit: bool | None,
    compression: str | None,
    errors: tuple[type[Exception], ...],
    bar: Any,
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    lines_before = 0  # newlines before the current line
    line_length = 0  # bytes of the current line read so far
    shown = 0  # bytes the bar has counted
    while True:
        chunk = _read_chunk(source, name, compression, errors)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            grown = "is" if compression is None else f"is {compression}-compressed and decompresses to"
            raise InputError(f"{grown} more than the limit of {limit} bytes for one input", file=name)
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
        bar.update(raw.taken - shown)
        shown = raw.taken
    return b"".join(chunks)


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Descriptor:
    """The raw bytes of a file descriptor as a readable stream, the first few of them
    looked at before anything reads them, and no more than ``limit`` of them."""

    def __init__(self, fd: int, name: str, limit: int) -> None:
        self.fd = fd
        self.name = name
        self.limit = limit
        self.taken = 0
        self.ahead = b""

    def peek(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer at the end of the input), left to be read."""
        while len(self.ahead) < size:
            chunk = os.read(self.fd, size - len(self.ahead))
            if not chunk:
                break
            self.ahead += chunk
        return self.ahead[:size]

    def read(self, size: int = -1, /) -> bytes:
        if self.ahead:
            size = len(self.ahead) if size < 0 else size
            chunk, self.ahead = self.ahead[:size], self.ahead[size:]
        else:
            chunk = os.read(self.fd, _CHUNK if size < 0 else size)
        self.taken += len(chunk)
        if self.taken > self.limit:
            raise InputError(f"is larger than the limit of {self.limit} bytes for one input", file=self.name)
        return chunk


def _decompressing(raw: _Descriptor, name: str) -> tuple[_Readable, str | None, tuple[type[Exception], ...]]:
    """``raw`` itself, or a stream of its decompressed bytes when it starts as gzip or zstd
    does; with the compression's name and the errors its stream raises on bad data."""
    head = raw.peek(_MAGIC_BYTES)
    if head.startswith(GZIP_MAGIC):
        # Members one after another (as `cat a.gz b.gz` makes) are one input, as gzip -d reads them.
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip", (gzip.BadGzipFile, zlib.error)  # type: ignore[call-overload]
    if head.startswith(ZSTD_MAGIC):
        zstd = _zstd_module(name)
        return zstd.ZstdFile(raw, mode="rb"), "zstd", (zstd.ZstdError,)
    for magic, what in _UNREAD_MAGIC.items():
        if magic.match(head):
            raise InputError(f"is {what}; fastmatch reads plain, gzip- or zstd-compressed input", file=name)
    return raw, None, ()


def _zstd_module(name: str) -> ModuleType:
    """Python's zstd module (3.14 on), or its backport for older Pythons (the ``zstd`` extra)."""
    for module in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise InputError(
        "is zstd-compressed, which needs Python 3.14 or the backports.zstd package: "
        "pip install 'fastmatch[zstd]' (or decompress it first: zstd -d)",
        file=name,
    )


def _read_chunk(source: _Readable, name: str, compression: str | None, errors: tuple[type[Exception], ...]) -> bytes:
    """At most one chunk of ``source``: however far a compressed chunk expands, no more is made."""
    try:
        return source.read(_CHUNK)
    except EOFError:  # the input ends inside a gzip member or a zstd frame
        raise InputError(f"is {compression}-compressed and ends early (truncated)", file=name) from None
    except errors as exc:
        raise InputError(f"is {compression}-compressed and cannot be decompressed ({exc})", file=name) from None


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
