"""The fast path for large fleet JSON Lines files.

A typed decoder (msgspec) reads each line into a small struct whose ``self``
and ``compatible`` stay raw JSON bytes; devices are grouped by those bytes, and
each distinct descriptor is decoded and validated once. Anything this path
does not accept as it is (a decoding error, a bad descriptor, a duplicate id)
makes it step aside: the careful reader in ``formats.json`` then reads the
file again and reports the problem with its line and field.
"""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import msgspec
import numpy as np

from ..devices import DeviceSet, DeviceSetBuilder
from ..errors import FastmatchError
from ..policy import Policy
from ..progress import SILENT, Stages

# Lines decoded between two updates of the progress bar: a few milliseconds' work.
LINES_PER_UPDATE = 1 << 16


class _Line(msgspec.Struct, forbid_unknown_fields=True, gc=False):  # no cycles: not tracked by the GC
    id: str
    self_: msgspec.Raw = msgspec.field(name="self")
    host: str | None = None
    vm: str | None = None
    compatible: msgspec.Raw = msgspec.Raw()  # empty when the key is missing
    capacity: int = 1
    migration_version: str | None = None
    migratable: bool = True


_DECODER = msgspec.json.Decoder(_Line)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # one pass over the bytes


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
    # What the careful reader refuses or words differently: surrogate escapes
    # (\ud800-\udfff) that may not pair up. (Over-long lines never get here: fastmatch.files.)
    if _SURROGATE_ESCAPE.search(data):
        return None
    decode = _DECODER.decode
    try:
        # One value per line, as the careful reader wants: decoding line by line refuses
        # a line holding two values, or a value spread over two lines.
        pieces = [line for line in data.split(b"\n") if line and not line.isspace()]
        lines = []
        with closing(stages.stage("decoding", len(pieces), "line")) as bar:
            for start in range(0, len(pieces), LINES_PER_UPDATE):
                lines += [decode(line) for line in pieces[start : start + LINES_PER_UPDATE]]
                bar.update(min(LINES_PER_UPDATE, len(pieces) - start))
        del pieces
    except (ValueError, RecursionError):  # msgspec.DecodeError, UnicodeDecodeError
        return None
    ids = [line.id for line in lines]
    id_set = frozenset(ids)
    if "" in id_set or len(id_set) != len(ids):
        return None
    try:
        capacities = np.fromiter((line.capacity for line in lines), dtype=np.int64, count=len(lines))
    except OverflowError:  # beyond 64 bits
        return None
    if len(lines) and capacities.min() < 0:
        return None

    # Devices that share their descriptor's raw bytes share its parsing.
    keys = [(bytes(line.self_), bytes(line.compatible), line.migration_version, line.migratable) for line in lines]
    position = {key: k for k, key in enumerate(dict.fromkeys(keys))}
    descriptor_of = np.fromiter(map(position.__getitem__, keys), dtype=np.int64, count=len(keys))
    builder = DeviceSetBuilder(policy)
    try:
        for key in stages.counted(position, "parsing", len(position), "descriptor"):
            builder.add_descriptor(_descriptor_parts(key))
    except (FastmatchError, ValueError, RecursionError):
        return None
    devices = builder.build_columns(
        ids,
        [line.host or "" for line in lines],
        [line.vm or "" for line in lines],
        capacities,
        descriptor_of,
    )
    devices.id_set = id_set  # already built to find duplicates
    return devices


def _descriptor_parts(key: tuple[bytes, bytes, str | None, bool]) -> dict[str, Any]:
    raw_self, raw_compatible, migration_version, migratable = key
    parts: dict[str, Any] = {"self": msgspec.json.decode(raw_self), "migratable": migratable}
    if raw_compatible:
        parts["compatible"] = msgspec.json.decode(raw_compatible)
    if migration_version is not None:
        parts["migration_version"] = migration_version
    return parts
