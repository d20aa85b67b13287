"""Writing a command's output file: whole or not at all, and never in place of something else.

- A path that does not exist, or is a regular file, gets a temporary file
  beside it that is renamed over it once written: readers see the old file or
  the whole new one, and on any failure (an error, Ctrl-C, SIGTERM) the
  temporary file is removed and the path is left as it was.
- A symbolic link is followed: the file it points to is replaced, the link stays.
- An existing file that is not a regular file (``/dev/null``, a terminal, a
  FIFO, ``/dev/stdout``) is written into: renaming over it would replace a
  device node or a pipe with a plain file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import IO, Any, Iterable

from .errors import FastmatchError


class StagedOutput:
    """One output file: :meth:`write` its chunks, then :meth:`commit` (or :meth:`discard`) it."""

    def __init__(self, path: str | os.PathLike[str], *, binary: bool = False) -> None:
        self.path = str(path)
        self.binary = binary  # chunks are bytes (a Parquet file), not text
        self._temporary: str | None = None
        self._handle: IO[Any] | None = None
        try:
            mode = os.stat(self.path).st_mode  # follows links
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise self._error(exc) from None
        self.in_place = mode is not None and not stat.S_ISREG(mode)
        # The file a link points to is the one replaced (a dangling link: the file it names).
        self.target = Path(self.path) if self.in_place else Path(os.path.realpath(self.path))
        self._mode = stat.S_IMODE(mode) if mode is not None else _new_file_mode()

    def same_file_as(self, other: "StagedOutput") -> bool:
        return not self.in_place and not other.in_place and self.target == other.target

    def write(self, chunks: Iterable[str] | Iterable[bytes]) -> None:
        try:
            if self._handle is None:
                self._handle = self._open()
            handle = self._handle
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
        except OSError as exc:
            raise self._error(exc) from None

    def commit(self) -> None:
        """Make the output visible: flush it, or rename the temporary file over the path."""
        try:
            if self._handle is None:
                self._handle = self._open()
            handle = self._handle
            if self._temporary is not None:
                handle.flush()
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), self._mode)
            handle.close()
            if self._temporary is not None:
                os.replace(self._temporary, self.target)
                self._temporary = None
        except OSError as exc:
            raise self._error(exc) from None

    def discard(self) -> None:
        """Leave the path as it was (an output written in place keeps what was written)."""
        if self._handle is not None:
            with suppress(OSError):
                self._handle.close()
        if self._temporary is not None:
            with suppress(OSError):
                os.unlink(self._temporary)
            self._temporary = None

    def _open(self) -> IO[Any]:
        if self.in_place:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        else:
            fd, self._temporary = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        if self.binary:
            return os.fdopen(fd, "wb")
        return os.fdopen(fd, "w", encoding="utf-8", newline="")

    def _error(self, exc: OSError) -> FastmatchError:
        return FastmatchError(f"cannot write: {exc.strerror or exc}", file=self.path)


def write_atomically(path: str | os.PathLike[str], chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``path`` as :class:`StagedOutput` does: all of it, or nothing."""
    output = StagedOutput(path)
    try:
        output.write(chunks)
        output.commit()
    except BaseException:
        output.discard()
        raise


def _new_file_mode() -> int:
    """0666 less the umask, as a new file would get."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
