"""The fast path for large fleet JSON Lines files.

A typed decoder (msgspec) reads each line into a small struct whose ``self``
and ``compatible`` stay raw JSON bytes; devices are grouped by those bytes, and
each distinct descriptor is decoded and validated once. Anything this path
does not accept as it is (a decoding error, a bad descriptor, a duplicate id)
makes it step aside: the careful reader in ``formats.json`` then reads the
file again and reports the problem with its line and field.
"""

from __future__ import annotations

import gc
from contextlib import closing, contextmanager
from operator import attrgetter
from typing import Any, Iterator

import msgspec
import numpy as np

from ..devices import DeviceSet, DeviceSetBuilder
from ..errors import FastmatchError
from ..policy import Policy
from ..progress import SILENT, Stages
from .grouping import group_rows, value_codes

# Lines (or, decoded in one call, bytes) between two updates of the progress bar: a few
# milliseconds' work.
LINES_PER_UPDATE = 1 << 16
BYTES_PER_UPDATE = 1 << 23


class _Line(msgspec.Struct, forbid_unknown_fields=True, gc=False):  # no cycles: not tracked by the GC
    id: str
    self_: msgspec.Raw = msgspec.field(name="self")
    host: str | None = ""  # None where the line says null
    vm: str | None = ""
    compatible: msgspec.Raw = msgspec.Raw()  # empty when the key is missing
    capacity: int = 1
    migration_version: str | None = None
    migratable: bool = True


_DECODER = msgspec.json.Decoder(_Line)


def looks_like_fleet_lines(data: bytes) -> bool:
    """Whether the file starts with a one-line device record (an object with an id) and goes on."""
    head = data[: 1 << 16]
    start = len(head) - len(head.lstrip())
    end = data.find(b"\n", start)
    return head[start : start + 1] == b"{" and end != -1 and b'"id"' in data[start:end] and data.find(b"{", end) != -1


def read_fleet_lines(data: bytes, policy: Policy, stages: Stages = SILENT) -> DeviceSet | None:
    """The devices of a valid fleet JSON Lines file, or ``None`` to leave it to the careful reader.

    ``stages`` shows the lines as they are decoded, then the distinct descriptors as they are parsed.
    """
    # Unpaired surrogate escapes (\ud800-\udfff), which the careful reader refuses with its own
    # words, need no scan of the file: msgspec refuses them in every string it decodes (each
    # line's, and each distinct descriptor's below), and this path then steps aside.
    # (Over-long lines never get here: fastmatch.files.)
    with _gc_paused():  # a million objects made and none of them in a cycle: no collection can free any
        lines = _decode(data, stages)
        return None if lines is None else _devices(lines, policy, stages)


def _devices(lines: list[_Line], policy: Policy, stages: Stages) -> DeviceSet | None:
    # Each column read at C speed (map and attrgetter): no Python code runs per line.
    n = len(lines)
    ids = list(map(attrgetter("id"), lines))
    id_set = frozenset(ids)
    if "" in id_set or len(id_set) != n:
        return None
    try:
        capacities = np.fromiter(map(attrgetter("capacity"), lines), dtype=np.int64, count=n)
    except OverflowError:  # beyond 64 bits
        return None
    if n and capacities.min() < 0:
        return None

    # Devices that share their descriptor's raw bytes share its parsing: each descriptor column
    # is coded on its own (few devices have records), then the rows of codes are grouped.
    selves = list(map(bytes, map(attrgetter("self_"), lines)))
    self_code, _ = value_codes(selves, n)
    compatible = list(map(attrgetter("compatible"), lines))
    with_records = np.flatnonzero(np.fromiter(map(len, compatible), dtype=np.int64, count=n))
    compatible_code = np.zeros(n, dtype=np.int64)
    records = [bytes(compatible[i]) for i in with_records.tolist()]
    compatible_code[with_records] = 1 + value_codes(records, len(records))[0]
    version_code, _ = value_codes(map(attrgetter("migration_version"), lines), n)
    migratable = np.fromiter(map(attrgetter("migratable"), lines), dtype=bool, count=n)
    descriptor_of, first_rows = group_rows([self_code, compatible_code, version_code, migratable.astype(np.int64)], n)
    builder = DeviceSetBuilder(policy)
    try:
        for row in stages.counted(first_rows.tolist(), "parsing", len(first_rows), "descriptor"):
            line = lines[row]
            builder.add_descriptor(_descriptor_parts((selves[row], bytes(line.compatible), line.migration_version, line.migratable)))
    except (FastmatchError, ValueError, RecursionError):
        return None
    devices = builder.build_columns(ids, _strings(lines, "host"), _strings(lines, "vm"), capacities, descriptor_of)
    devices.id_set = id_set  # already built to find duplicates
    return devices


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decode(data: bytes, stages: Stages) -> list[_Line] | None:
    """Each line's struct, one value per line as the careful reader wants (a line holding two
    values, or a value spread over two lines, is refused); ``None`` when a line does not decode.

    A file whose every newline sits between a ``}`` and a ``{`` (no blank or indented lines,
    no CRs) holds no value over two lines: inside a value, ``}`` is followed by ``,``, ``}``
    or ``]``. Its values are then one a line when there are as many as lines, and the file is
    decoded in a few ``decode_lines`` calls (slices of 8 MiB that end at a newline); other
    files are decoded line by line.
    """
    newlines = data.count(b"\n")
    lines_in_file = newlines + (not data.endswith(b"\n"))
    try:
        if data.startswith(b"{") and data.endswith((b"}", b"}\n")) and data.count(b"}\n{") == lines_in_file - 1:
            lines: list[_Line] = []
            view = memoryview(data)
            with closing(stages.stage("decoding", lines_in_file, "line")) as bar:
                start = 0
                while start < len(data):
                    end = data.find(b"\n", start + BYTES_PER_UPDATE) + 1 or len(data)
                    decoded = _DECODER.decode_lines(view[start:end])
                    lines += decoded
                    bar.update(len(decoded))
                    start = end
            return lines if len(lines) == lines_in_file else None
        pieces = [line for line in data.split(b"\n") if line and not line.isspace()]
        lines = []
        with closing(stages.stage("decoding", len(pieces), "line")) as bar:
            for start in range(0, len(pieces), LINES_PER_UPDATE):
                lines += map(_DECODER.decode, pieces[start : start + LINES_PER_UPDATE])
                bar.update(min(LINES_PER_UPDATE, len(pieces) - start))
        return lines
    except (ValueError, RecursionError):  # msgspec.DecodeError, UnicodeDecodeError
        return None


def _strings(lines: list[_Line], field: str) -> list[str]:
    """An optional string field of every line, ``""`` where it is null or missing."""
    values = list(map(attrgetter(field), lines))
    if None in values:
        values = [value or "" for value in values]
    return values


def _descriptor_parts(key: tuple[bytes, bytes, str | None, bool]) -> dict[str, Any]:
    raw_self, raw_compatible, migration_version, migratable = key
    parts: dict[str, Any] = {"self": msgspec.json.decode(raw_self), "migratable": migratable}
    if raw_compatible:
        parts["compatible"] = msgspec.json.decode(raw_compatible)
    if migration_version is not None:
        parts["migration_version"] = migration_version
    return parts
