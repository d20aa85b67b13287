"""The fast path for large fleet JSON Lines files.

A typed decoder (msgspec) reads each line into a small struct whose ``self``
and ``compatible`` stay raw JSON bytes; devices are grouped by those bytes, and
each distinct descriptor is decoded and validated once. Anything this path
does not accept as it is (a decoding error, a bad descriptor, a duplicate id)
makes it step aside: the careful reader in ``formats.json`` then reads the
file again and reports the problem with its line and field.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import msgspec
import numpy as np
from .._lines import LineCoder, lines_of_one_value
from ..devices import DeviceSet, DeviceSetBuilder
from ..errors import FastmatchError
from ..policy import Policy
from ..progress import SILENT, Stages
from ..gcpause import gc_paused

# Lines decoded one by one between two updates of the progress bar: a few milliseconds' work.
LINES_PER_UPDATE = 1 << 16
# Bytes decoded in one call: a slice and the objects decoded from it stay in the caches until
# they are coded (a 1,000,000-line file in about 200 slices).
BYTES_PER_SLICE = 1 << 20


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
    with gc_paused():  # a million objects made and none of them in a cycle: no collection can free any
        columns = _decode(data, stages)
        return None if columns is None else _devices(columns, policy, stages)


Columns = tuple[list[str], list[str], list[str], np.ndarray, np.ndarray, list[_Line]]


def _devices(columns: Columns, policy: Policy, stages: Stages) -> DeviceSet | None:
    ids, hosts, vms, capacities, descriptor_of, first_lines = columns
    builder = DeviceSetBuilder(policy)
    try:
        for line in stages.counted(first_lines, "parsing", len(first_lines), "descriptor"):
            builder.add_descriptor(_descriptor_parts(line.self_, line.compatible, line.migration_version, line.migratable))
    except (FastmatchError, ValueError, RecursionError):
        return None
    return builder.build_columns(ids, hosts, vms, capacities, descriptor_of)


def _decode(data: bytes, stages: Stages) -> Columns | None:
    """The columns of every line (``LineCoder``), one value per line as the careful reader
    wants (a line holding two values, or a value spread over two lines, is refused); ``None``
    when a line does not decode, or the columns refuse a line (an empty or repeated id, a
    capacity out of range).

    A file whose every newline sits between a ``}`` and a ``{`` (no blank or indented lines,
    no CRs: ``lines_of_one_value``) holds no value over two lines. Its values are then one a
    line when there are as many as lines, and the file is decoded by ``decode_lines`` a slice
    (ending at a newline) at a time, each coded while its bytes and objects are in cache;
    other files are decoded line by line.
    """
    lines_in_file = lines_of_one_value(data)
    try:
        if lines_in_file > 0:
            coder = LineCoder(_Line, lines_in_file, "")
            view = memoryview(data)
            # Every slice's lines are kept to the end: freed one slice at a time, their memory
            # went back to the system and the next slice's faulted it in again (about a third
            # more time than the decoding itself).
            decoded = []
            with closing(stages.stage("decoding", lines_in_file, "line")) as bar:
                start = 0
                while start < len(data):
                    end = data.find(b"\n", start + BYTES_PER_SLICE) + 1 or len(data)
                    lines = _DECODER.decode_lines(view[start:end])
                    if not coder.add(lines):
                        return None
                    decoded.append(lines)
                    bar.update(len(lines))
                    start = end
            return coder.columns()
        pieces = [line for line in data.split(b"\n") if line and not line.isspace()]
        coder = LineCoder(_Line, len(pieces), "")
        with closing(stages.stage("decoding", len(pieces), "line")) as bar:
            for start in range(0, len(pieces), LINES_PER_UPDATE):
                if not coder.add(list(map(_DECODER.decode, pieces[start : start + LINES_PER_UPDATE]))):
                    return None
                bar.update(min(LINES_PER_UPDATE, len(pieces) - start))
        return coder.columns()
    except (ValueError, RecursionError):  # msgspec.DecodeError, UnicodeDecodeError
        return None


def _descriptor_parts(
    raw_self: msgspec.Raw, raw_compatible: msgspec.Raw, migration_version: str | None, migratable: bool
) -> dict[str, Any]:
    parts: dict[str, Any] = {"self": msgspec.json.decode(raw_self), "migratable": migratable}
    if raw_compatible:
        parts["compatible"] = msgspec.json.decode(raw_compatible)
    if migration_version is not None:
        parts["migration_version"] = migration_version
    return parts
