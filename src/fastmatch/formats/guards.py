"""What every reader does with raw input: the checks made before or while decoding it, and more.

The checks live apart from the readers so that every way into a format (the
careful readers here and the fast fleet JSON Lines path alike) refuses the
same inputs with the same messages: a byte-order mark, bytes that are not
UTF-8, values nested too deeply, strings that are not text. (Lines too long
to be one record are refused as a file is read, in :mod:`fastmatch.files`.)
Below them are the small parts the readers share: going on past bad
records, the numbers they parse, and ids made of file names.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Callable, Iterable

from ..errors import FastmatchError, InputError
from ..files import MAX_LINE_BYTES  # noqa: F401  (enforced as a file is read, in fastmatch.files)
from ..values import INT64_MAX
# A record nests four levels deep at most (record, compatible, record, array);
# deeper values are errors anyway, and refusing them early keeps validation
# (and json.dumps inside it) far from Python's recursion limit.
MAX_DEPTH = 32
TOO_DEEP = f"JSON nested too deeply (more than {MAX_DEPTH} levels)"

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_COUNT = re.compile(r"[0-9]{1,19}\Z")  # 19 digits hold every int64; int() never sees a huge string
_PCI_ID = re.compile(r"0[xX][0-9a-fA-F]{1,4}\Z")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def decode_utf8(data: bytes, name: str) -> str:
    """The text of a file, which must be UTF-8 without a byte-order mark."""
    if data.startswith(codecs.BOM_UTF8):
        raise InputError("starts with a byte-order mark (U+FEFF); save the file as UTF-8 without one", file=name, line=1)
    if data.startswith(_UTF16_BOMS):
        raise InputError("is UTF-16 (it starts with a UTF-16 byte-order mark); fastmatch reads UTF-8", file=name, line=1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=name, line=line) from None


def check_decoded(value: Any, name: str, line: int | None, text: str | None = None) -> None:
    """Refuse a decoded JSON value nested more than :data:`MAX_DEPTH` levels, or holding a string
    that is not text: an unpaired surrogate escape (``"\\ud800"``) decodes, but no output can write it.

    ``text``, the JSON the value was decoded from, lets the common case skip
    the walk: a value cannot be deeper than its number of opening brackets,
    and holds no surrogate without a ``\\ud8``-``\\udf`` escape.
    """
    if text is not None and text.count("[") + text.count("{") <= MAX_DEPTH and not _SURROGATE_ESCAPE.search(text):
        return
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    f"a string holds an unpaired surrogate escape (\\u{ord(item[exc.start]):04x}), which is not text",
                    file=name, line=line,
                ) from None
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise InputError(TOO_DEEP, file=name, line=line)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def line_too_deep(text: str) -> int | None:
    """The line of JSON text where nesting first goes past :data:`MAX_DEPTH` (for errors only: it is slow)."""
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth -= 1
    return None


# -- shared by the readers ---------------------------------------------------------------
OnError = Callable[[Any, FastmatchError], None]


def build_each(
    jobs: Iterable[tuple[Callable[[], Any], Callable[[], Any], Any]], on_error: OnError | None
) -> tuple[list[Any], list[Any]]:
    """Records and their places from ``(make, raw, place)`` jobs.

    Without ``on_error`` the first error stops everything; with it, a job whose
    ``make()`` fails hands ``raw()`` (what was read) and the error over, and the
    others go on.
    """
    records, places = [], []
    for make, raw, place in jobs:
        try:
            records.append(make())
        except FastmatchError as exc:
            if on_error is None:
                raise
            on_error(raw(), exc)
            continue
        places.append(place)
    return records, places


def keep_role(
    build: Callable[[str], tuple[list[Any], list[Any]]], role: str | None, others: list[tuple[Any, Any]] | None
) -> tuple[list[Any], list[Any]]:
    """The sources then the targets an input describes, or those of ``role`` only.

    ``build(kind)`` makes the records and places of ``"source"`` or ``"target"``.
    Both are always built, so that a bad record is found whatever the role; those
    of the other role go into ``others``, when given, as ``(record, place)``.
    """
    records: list[Any] = []
    places: list[Any] = []
    # The role asked for first: its errors are the ones to report first.
    for kind in sorted(("source", "target"), key=lambda kind: kind != role):
        found, where = build(kind)
        if role in (None, kind):
            records += found
            places += where
        elif others is not None:
            others.extend(zip(found, where))
    return records, places


def parse_count(text: str) -> int | None:
    """A decimal integer >= 0 that fits in 64 bits (a capacity), or ``None``."""
    return int(text) if _COUNT.match(text) and int(text) <= INT64_MAX else None


def parse_pci_id(text: str) -> str | None:
    """A 16-bit PCI id as written (``0x8086``), as 4 lowercase hex digits, or ``None``."""
    return f"{int(text, 16):04x}" if _PCI_ID.match(text) else None


def id_from_name(name: str, file: str) -> str:
    """A file or directory name that becomes a device id: it must be text (os.listdir keeps
    bytes that are not UTF-8 as surrogates, which no output can write)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the name {name!r} is not UTF-8, and a device id must be", file=file) from None
    return name
