"""The fast path for large fleet JSON Lines files.

A typed decoder (msgspec) reads every line into a small struct whose ``self``
and ``compatible`` stay raw JSON bytes; devices are grouped by those bytes, and
each distinct descriptor is decoded and validated once. Anything this path
does not accept as it is (a decoding error, a bad descriptor, a duplicate id)
makes it step aside: the careful reader in ``formats.json`` then reads the
file again and reports the problem with its line and field.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from ..devices import DeviceSet, DeviceSetBuilder
from ..errors import FastmatchError
from ..policy import Policy
from ..values import INT64_MAX


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    self_: msgspec.Raw = msgspec.field(name="self")
    host: str | None = None
    vm: str | None = None
    compatible: msgspec.Raw = msgspec.Raw()  # empty when the key is missing
    capacity: int = 1
    migration_version: str | None = None
    migratable: bool = True


_DECODER = msgspec.json.Decoder(_Line)


def looks_like_fleet_lines(data: bytes) -> bool:
    """Whether the first line is one device record (an object with an id and more lines after)."""
    start = len(data) - len(data.lstrip())
    end = data.find(b"\n", start)
    return data[start : start + 1] == b"{" and end != -1 and data[end:].strip() != b"" and b'"id"' in data[start:end]


def read_fleet_lines(data: bytes, policy: Policy) -> DeviceSet | None:
    """The devices of a valid fleet JSON Lines file, or ``None`` to leave it to the careful reader."""
    try:
        lines = _DECODER.decode_lines(data)
    except (ValueError, RecursionError):  # msgspec.DecodeError, UnicodeDecodeError
        return None
    ids = [line.id for line in lines]
    if "" in ids or len(set(ids)) != len(ids):
        return None
    capacities = np.fromiter((line.capacity for line in lines), dtype=object, count=len(lines))
    if len(lines) and (min(capacities) < 0 or max(capacities) > INT64_MAX):
        return None

    builder = DeviceSetBuilder(policy)
    keys: dict[tuple, int] = {}
    descriptor_of = np.empty(len(lines), dtype=np.int64)
    try:
        for k, line in enumerate(lines):
            key = (
                bytes(line.self_),
                bytes(line.compatible),
                line.migration_version,
                line.migratable,
            )
            index = keys.get(key)
            if index is None:
                index = keys[key] = builder.add_descriptor(_descriptor_parts(key))
            descriptor_of[k] = index
    except (FastmatchError, ValueError, RecursionError):
        return None
    return builder.build_columns(
        ids,
        [line.host or "" for line in lines],
        [line.vm or "" for line in lines],
        capacities.astype(np.int64),
        descriptor_of,
    )


def _descriptor_parts(key: tuple) -> dict[str, Any]:
    raw_self, raw_compatible, migration_version, migratable = key
    parts: dict[str, Any] = {"self": msgspec.json.decode(raw_self), "migratable": migratable}
    if raw_compatible:
        parts["compatible"] = msgspec.json.decode(raw_compatible)
    if migration_version is not None:
        parts["migration_version"] = migration_version
    return parts
