"""The fast path for large fleet JSON Lines files.

Each line's fields are read where they lie (``fastmatch._lines.LineCoder``): nearly every
line is written plainly and is scanned natively, its ``self`` and ``compatible`` kept as the
raw JSON bytes they are; any other line is decoded by a typed decoder (msgspec) into a small
struct of the same fields. Devices are grouped by those bytes, and each distinct descriptor
is decoded and validated once. Anything this path does not accept as it is (a decoding
error, a bad descriptor, a duplicate id) makes it step aside: the careful reader in
``formats.json`` then reads the file again and reports the problem with its line and field.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import msgspec
import numpy as np
from .._lines import LineCoder, count_lines
from ..devices import DeviceSet, DeviceSetBuilder
from ..errors import FastmatchError
from ..policy import Policy
from ..progress import SILENT, Stages
from ..gcpause import gc_paused

# Bytes read in one call, between two updates of the progress bar: a few milliseconds' work
# (a 1,000,000-line file in about 200 slices).
BYTES_PER_SLICE = 1 << 20


# The fields of a line that LineCoder does not scan (an escape in its id, a key twice, ...).
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
    # words, need no scan of the file: msgspec refuses them in every string it decodes (a line
    # with an escape outside its self and compatible is decoded by it, and so is each distinct
    # descriptor below), and this path then steps aside.
    # (Over-long lines never get here: fastmatch.files.)
    with gc_paused():  # a million objects made and none of them in a cycle: no collection can free any
        columns = _decode(data, stages)
        return None if columns is None else _devices(columns, policy, stages)


# A descriptor as its first line holds it: the bytes of ``self`` and ``compatible`` (b"" when
# the line has none), the migration version's UTF-8 bytes (or None), migratable.
DescriptorBytes = tuple[bytes, bytes, bytes | None, bool]
Columns = tuple[list[str], list[str], list[str], np.ndarray, np.ndarray, list[DescriptorBytes]]


def _devices(columns: Columns, policy: Policy, stages: Stages) -> DeviceSet | None:
    ids, hosts, vms, capacities, descriptor_of, descriptors = columns
    builder = DeviceSetBuilder(policy)
    try:
        for parts in stages.counted(descriptors, "parsing", len(descriptors), "descriptor"):
            builder.add_descriptor(_descriptor_parts(*parts))
    except (FastmatchError, ValueError, RecursionError):
        return None
    return builder.build_columns(ids, hosts, vms, capacities, descriptor_of)


def _decode(data: bytes, stages: Stages) -> Columns | None:
    """The columns of every line that is not blank (``LineCoder``), a slice of the file at a
    time (each ending at a newline); ``None`` when a line does not decode, or the columns
    refuse a line (an empty or repeated id, a capacity out of range).

    Each line is read on its own, as the careful reader reads it: a line holding two values,
    or a value spread over two lines, does not decode."""
    lines = count_lines(data)
    coder = LineCoder(data, lines, "", _DECODER.decode)
    try:
        with closing(stages.stage("decoding", lines, "line")) as bar:
            start = 0
            while start < len(data):
                end = data.find(b"\n", start + BYTES_PER_SLICE) + 1 or len(data)
                added = coder.add(start, end)
                if added < 0:
                    return None
                bar.update(added)
                start = end
        return coder.columns()
    except (ValueError, RecursionError):  # msgspec.DecodeError, UnicodeDecodeError
        return None


def _descriptor_parts(raw_self: bytes, raw_compatible: bytes, migration_version: bytes | None, migratable: bool) -> dict[str, Any]:
    parts: dict[str, Any] = {"self": msgspec.json.decode(raw_self), "migratable": migratable}
    if raw_compatible:
        parts["compatible"] = msgspec.json.decode(raw_compatible)
    if migration_version is not None:
        parts["migration_version"] = migration_version.decode()
    return parts
