"""Device records (docs/model.md section 2), validated and normalised under a policy.

A :class:`DeviceSet` keeps per-device columns (id, host, vm, capacity) and a
list of distinct *descriptors*: everything that decides compatibility apart
from identity and placement. Devices that share a descriptor are parsed and
grounded once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import compress, count
from operator import attrgetter
from functools import cached_property
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

import numpy as np
import numpy.typing as npt

from ._lines import code_strings, code_texts
from ._numbering import keys_in_order
from .packed import Texts
from .errors import FastmatchError, InputError, UnknownIdError, fields_of
from .policy import Policy
from .records import (
    COMBINATIONS_PER_DEVICE,
    MAX_DEVICE_COMBINATIONS,
    MAX_INPUT_COMBINATIONS,
    GroundedRecord,
    GroundingBudget,
    canonical_fields,
    ground_record,
)
from .values import INT64_MAX, parse_value

T = TypeVar("T")
RECORD_KEYS = ("id", "host", "vm", "self", "compatible", "capacity", "migration_version", "migratable")
_RECORD_KEY_SET = frozenset(RECORD_KEYS)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """The part of a device record that decides compatibility.

    ``values`` holds the present SELF values in normal form (absent ones and
    empty sets are left out); ``raw_self`` and ``raw_compatible`` keep what was
    written, with canonical attribute names, for :meth:`DeviceSet.to_records`.
    """

    values: Mapping[str, Any]
    records: tuple[GroundedRecord, ...]
    migratable: bool
    migration_version: str | None
    raw_self: Mapping[str, Any]
    raw_compatible: tuple[Mapping[str, Any], ...]

    def attribute_names(self) -> Iterable[str]:
        """Attribute names in order of appearance: SELF first, then the records'."""
        yield from self.raw_self
        for record in self.records:
            yield from record.attrs


class DeviceSet:
    """Validated device records under one policy (docs/model.md section 2).

    Made by :func:`fastmatch.load` or :meth:`from_records`. Per device, in input order:
    ``ids``, ``hosts``, ``vms`` (``""`` when absent; sequences of str: lists, or for a columnar
    fleet's columns, their bytes read a str at a time, :class:`fastmatch.packed.Texts`),
    ``capacities`` (int64) and
    ``descriptor_of`` (int64, its position in ``descriptors``, the distinct
    :class:`Descriptor` values: devices that are alike share one). ``policy`` is the
    policy the records were read under. A device's position is its row (as a source)
    or column (as a target) in every result: :meth:`index_of` finds it from its id.

    What decides compatibility cannot change once the set is made: ``descriptors`` is a
    tuple and ``descriptor_of`` a read-only array, so that what a match finds in the set
    on its own (its values and classes, ``fastmatch.intern.side_values``) is kept in
    ``interning`` and serves every later match of the set.
    """

    def __init__(
        self,
        policy: Policy,
        ids: Sequence[str],
        hosts: Sequence[str],
        vms: Sequence[str],
        capacities: np.ndarray,
        descriptor_of: np.ndarray,
        descriptors: list[Descriptor],
    ) -> None:
        self.policy = policy
        self.ids = ids
        self.hosts = hosts
        self.vms = vms
        self.capacities = capacities
        self.descriptor_of = np.asarray(descriptor_of, dtype=np.int64)
        self.descriptor_of.flags.writeable = False
        self.descriptors: tuple[Descriptor, ...] = tuple(descriptors)
        self.interning: dict[Any, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        """A set pickles without what matches kept on it (``interning``): the copy finds it
        again at its first match."""
        return {**self.__dict__, "interning": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.descriptor_of.flags.writeable = False  # NumPy unpickles arrays writeable

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        policy: Policy | None = None,
        *,
        source: str | None = None,
        lines: Sequence[int | str | None] | None = None,
        on_error: Callable[[Any, FastmatchError], None] | None = None,
    ) -> "DeviceSet":
        """Validate device records; the first bad one raises :class:`FastmatchError`.

        ``source`` and ``lines`` (one place per record: a line number, or a place inside
        the input such as a file of a directory) let readers make errors name the file and
        line; without them errors name the record index.
        With ``on_error``, a bad record is instead handed to it with its error
        (located as it would have been raised) and left out.
        """
        check_records_argument(records, "records")
        if policy is None:
            policy = Policy.default()
        elif not isinstance(policy, Policy):
            raise TypeError(f"policy must be a fastmatch.Policy or None, got {type(policy).__name__}")
        if source is not None and not isinstance(source, str):
            raise TypeError(f"source must be a str or None, got {type(source).__name__}")
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable or None, got {type(on_error).__name__}")
        builder = DeviceSetBuilder(policy)
        for index, raw in enumerate(records):
            line = lines[index] if lines is not None else None
            try:
                builder.add(raw)
            except FastmatchError as exc:
                _locate_field(exc, line, policy)
                exc.located(file=source, line=line, record=_record_label(raw, index, line))
                if on_error is None:
                    raise exc from None
                on_error(raw, exc)
        return builder.build()

    def with_policy(self, policy: Policy) -> "DeviceSet":
        """The same devices read under another policy."""
        if policy == self.policy:
            return self
        return DeviceSet.from_records(self.to_records(), policy)

    def to_records(self) -> list[dict[str, Any]]:
        """The records as read, with canonical attribute names."""
        out = []
        for i, device_id in enumerate(self.ids):
            d = self.descriptors[self.descriptor_of[i]]
            record: dict[str, Any] = {"id": device_id}
            if self.hosts[i]:
                record["host"] = self.hosts[i]
            if self.vms[i]:
                record["vm"] = self.vms[i]
            record["self"] = dict(d.raw_self)
            if d.raw_compatible:
                record["compatible"] = [dict(r) for r in d.raw_compatible]
            if self.capacities[i] != 1:
                record["capacity"] = int(self.capacities[i])
            if d.migration_version is not None:
                record["migration_version"] = d.migration_version
            if not d.migratable:
                record["migratable"] = False
            out.append(record)
        return out

    # -- views --------------------------------------------------------------------------
    def __len__(self) -> int:
        """The number of devices."""
        return len(self.ids)

    def __repr__(self) -> str:
        return f"DeviceSet({len(self)} devices, {len(self.descriptors)} distinct descriptors)"

    def descriptor(self, index: int) -> Descriptor:
        """The descriptor of the device at position ``index``: what decides its compatibility."""
        return self.descriptors[int(self.descriptor_of[index])]

    def attribute_names(self) -> list[str]:
        """Attribute names in order of first appearance (docs/model.md section 8)."""
        return list(self._attribute_names)

    @cached_property
    def _attribute_names(self) -> tuple[str, ...]:
        # Descriptors are numbered in order of first device; each reads its SELF's names, then
        # its records'. The SELF names are found natively, in their order of first appearance
        # with where each first appears; the records' names (few descriptors have records) are
        # then placed where they first appear, if that comes before their first SELF.
        descriptors = self.descriptors
        names, rows, places = keys_in_order(descriptors, "raw_self")
        with_records = list(compress(count(), map(attrgetter("records"), descriptors)))
        if not with_records:
            return tuple(names)
        first = dict(zip(names, zip(rows, places)))  # name -> (descriptor, place among its names)
        never = (len(descriptors), 0)
        # A name first in a SELF before the first records stays where it is: records that
        # name only such attributes (most do) are passed over at C speed.
        settled = {name for name, (d, _) in first.items() if d < with_records[0]}
        for d in with_records:
            place = len(descriptors[d].raw_self)
            for record in descriptors[d].records:
                if settled.issuperset(record.attrs):
                    place += len(record.attrs)
                    continue
                for name in record.attrs:
                    if (d, place) < first.get(name, never):
                        first[name] = (d, place)
                    place += 1
        return tuple(sorted(first, key=first.__getitem__))

    def index_of(self, device_id: str) -> int:
        """The position of the device ``device_id`` (the row or column of a result), in O(1).

        An id that is not in the set raises :class:`~fastmatch.UnknownIdError`
        (a ``KeyError`` too), which names it.
        """
        if not isinstance(device_id, str):
            raise TypeError(f"device_id must be a str, got {type(device_id).__name__}")
        position = self.id_index.get(device_id)
        if position is None:
            raise UnknownIdError(f"no device has id {device_id!r} (among {len(self):,} devices)")
        return position

    @cached_property
    def id_index(self) -> dict[str, int]:
        """Device id -> position."""
        return {d: i for i, d in enumerate(self.ids)}

    @cached_property
    def host_codes(self) -> tuple[list[str], npt.NDArray[np.int64]]:
        """The distinct hosts (the empty host first) and each device's position among them."""
        if isinstance(self.hosts, Texts):  # a str made for each distinct host only
            return code_texts(self.hosts.offsets, self.hosts.data)
        return code_strings(self.hosts)  # native: no dict of a million hosts


def check_records_argument(records: Any, argument: str) -> None:
    """Device records are an iterable of mappings: a string, a mapping (one record) or a
    number is a mistake in the call, not bad input, and says which argument it is."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        accepted = "a DeviceSet or an iterable" if argument in ("sources", "targets") else "an iterable"
        raise TypeError(f"{argument} must be {accepted} of device records (mappings), got {type(records).__name__}")


def fleet_attribute_order(policy: Policy, sources: DeviceSet, targets: DeviceSet) -> list[str]:
    """The attribute order of the reason bits (docs/model.md section 8) for one match."""
    return policy.attribute_order([*sources.attribute_names(), *targets.attribute_names()])


def _locate_field(exc: FastmatchError, place: Any, policy: Policy) -> None:
    """Name the line (and element) of the value an error is about, where the reader knows it:
    the field itself, else the nearest field that holds it (``compatible[0]`` for
    ``compatible[0].mdev_type``). Readers key fields as written; errors name them canonically."""
    fields = fields_of(place)
    if not fields or exc.field is None or exc.line is not None:
        return
    canonical = {_canonical_field(key, policy): where for key, where in fields.items()}
    parts = exc.field.split(".")
    for end in range(len(parts), 0, -1):
        where = canonical.get(".".join(parts[:end]))
        if where is not None:
            exc.line = where.line
            if where.element is not None:
                exc.message += f" (at {where.element})"
            return


def _canonical_field(key: str, policy: Policy) -> str:
    head, dot, name = key.rpartition(".")
    return f"{head}.{policy.canonical(name)}" if dot else key


def _record_label(raw: Any, index: int, line: int | str | None) -> str:
    device_id = raw.get("id") if isinstance(raw, Mapping) else None
    shown = f"'{device_id}'" if isinstance(device_id, str) and device_id else None
    if line is not None and shown:
        return shown
    return f"#{index} {shown}" if shown else f"#{index}"


class DeviceSetBuilder:
    """Validates records one at a time (``add``), or descriptors for given columns
    (``add_descriptor`` then ``build_columns``), into a :class:`DeviceSet`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.ids: list[str] = []
        self.hosts: list[str] = []
        self.vms: list[str] = []
        self.capacities: list[int] = []
        self.descriptor_of: list[int] = []
        self.descriptors: list[Descriptor] = []
        self.descriptor_index: dict[str, int] = {}
        self.seen_ids: dict[str, int] = {}
        # (attribute, type, value) -> its parsed value: descriptors share most SELF values, and
        # parsed values are immutable (str, int, frozenset, Version).
        self.self_values: dict[tuple[str, type, Any], Any] = {}
        self.grounding = GroundingBudget(MAX_INPUT_COMBINATIONS, "input")

    def add(self, raw: Any) -> None:
        self.grounding.grant(COMBINATIONS_PER_DEVICE)
        device_id, host, vm, capacity = device_fields(raw, self.seen_ids)
        descriptor = self._descriptor(raw)
        self.seen_ids[device_id] = len(self.ids)
        self.ids.append(device_id)
        self.hosts.append(host)
        self.vms.append(vm)
        self.capacities.append(capacity)
        self.descriptor_of.append(descriptor)

    def add_descriptor(self, parts: Mapping[str, Any]) -> int:
        """A new descriptor from a record's self, compatible, migration_version and migratable."""
        self.descriptors.append(self._parse_descriptor(parts))
        return len(self.descriptors) - 1

    def build_columns(
        self, ids: Sequence[str], hosts: Sequence[str], vms: Sequence[str], capacities: np.ndarray, descriptor_of: np.ndarray
    ) -> DeviceSet:
        """The devices given as columns, whose descriptors were added with ``add_descriptor``."""
        return DeviceSet(self.policy, ids, hosts, vms, capacities, descriptor_of, self.descriptors)

    def _descriptor(self, raw: Mapping[str, Any]) -> int:
        parts = {k: raw.get(k) for k in ("self", "compatible", "migration_version", "migratable")}
        try:
            key = json.dumps(parts, separators=(",", ":"))
        except (TypeError, ValueError):
            key = None  # not JSON-shaped: let validation below name the bad field
        if key is not None and key in self.descriptor_index:
            return self.descriptor_index[key]
        descriptor = self._parse_descriptor(raw)
        self.descriptors.append(descriptor)
        if key is not None:
            self.descriptor_index[key] = len(self.descriptors) - 1
        return len(self.descriptors) - 1

    def _parse_descriptor(self, raw: Mapping[str, Any]) -> Descriptor:
        policy = self.policy
        if "self" not in raw:
            raise InputError("a device needs a 'self' object", field="self")
        raw_self = raw["self"]
        if not isinstance(raw_self, Mapping):
            raise InputError(f"expected an object of attributes, got {type(raw_self).__name__}", field="self")
        canonical_self = _located(lambda: canonical_fields(raw_self, policy, "self"), "self")
        values: dict[str, Any] = {}
        known = self.self_values
        for name, value in canonical_self.items():
            key = (name, type(value), value) if type(value) in _KEYED_VALUES else None
            parsed = known.get(key, _UNPARSED) if key is not None else _UNPARSED
            if parsed is _UNPARSED:
                if isinstance(value, str) and ("{" in value or "}" in value):
                    raise InputError("templates appear only in COMPATIBLE records, never in SELF", field=f"self.{name}")
                parsed = _located(lambda: parse_value(policy.attribute(name).type, value), f"self.{name}")
                if key is not None:
                    known[key] = parsed
            if parsed is not None and parsed != frozenset():
                values[name] = parsed

        raw_compatible = raw.get("compatible", [])
        if raw_compatible is None:
            raw_compatible = []
        if not isinstance(raw_compatible, list):
            raise InputError("expected a list of records", field="compatible")
        records = []
        canonical_records = []
        budgets = (GroundingBudget(MAX_DEVICE_COMBINATIONS, "device"), self.grounding)
        for k, record in enumerate(raw_compatible):
            where = f"compatible[{k}]"
            if not isinstance(record, Mapping):
                raise InputError(f"a COMPATIBLE record is an object, got {type(record).__name__}", field=where)
            fields = _located(lambda: canonical_fields(record, policy, where), where)
            records.append(_located(lambda: ground_record(fields, policy, budgets), where))
            canonical_records.append(fields)

        migration_version = raw.get("migration_version")
        if migration_version is not None and not isinstance(migration_version, str):
            raise InputError(f"expected a string, got {migration_version!r}", field="migration_version")
        migratable = raw.get("migratable", True)
        if not isinstance(migratable, bool):
            raise InputError(f"expected true or false, got {migratable!r}", field="migratable")
        return Descriptor(
            values=values,
            records=tuple(records),
            migratable=migratable,
            migration_version=migration_version or None,
            raw_self=canonical_self,
            raw_compatible=tuple(canonical_records),
        )

    def build(self) -> DeviceSet:
        return DeviceSet(
            self.policy,
            self.ids,
            self.hosts,
            self.vms,
            np.asarray(self.capacities, dtype=np.int64),
            np.asarray(self.descriptor_of, dtype=np.int64),
            self.descriptors,
        )


def device_fields(raw: Any, seen_ids: Mapping[str, int]) -> tuple[str, str, str, int]:
    """A record's ``(id, host, vm, capacity)``, checked, and its keys (its descriptor is checked
    apart: ``DeviceSetBuilder``); ``seen_ids`` are the ids of the records before it."""
    if not isinstance(raw, Mapping):
        raise InputError(f"a device record is a JSON object, got {type(raw).__name__}")
    if not _RECORD_KEY_SET.issuperset(raw):
        unknown = next(key for key in raw if key not in _RECORD_KEY_SET)
        raise InputError(f"unknown key {unknown!r} (expected {', '.join(RECORD_KEYS)})", field=str(unknown))
    device_id = raw.get("id")
    if not isinstance(device_id, str) or device_id == "":
        raise InputError("a device needs a non-empty string id", field="id")
    if device_id in seen_ids:
        raise InputError(f"duplicate id {device_id!r} (first seen in record #{seen_ids[device_id]})", field="id")
    host = _optional_string(raw, "host")
    vm = _optional_string(raw, "vm")
    capacity = raw.get("capacity", 1)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= INT64_MAX:
        raise InputError(f"expected an integer >= 0, got {capacity!r}", field="capacity")
    return device_id, host, vm, capacity


_KEYED_VALUES = frozenset({str, int})  # SELF values whose parsing is kept (bools and lists are rare, and refused or parsed anew)
_UNPARSED = object()


class _NotKeyed(Exception):
    """A descriptor part holds a value that ``descriptor_key`` does not key."""


_KEYED_SCALARS = frozenset({str, int, bool, type(None)})


def descriptor_key(raw: Mapping[str, Any]) -> Hashable | None:
    """A key that two records share exactly when the parts of their descriptors (``self``,
    ``compatible``, ``migration_version``, ``migratable``) are equal value for value and type for
    type (``1``, ``True`` and ``"1"`` differ, as validation tells them apart), so that the
    descriptor of one serves the other: a 4-tuple of the parts, each value tagged with its type.
    None when a part holds anything but dicts, lists, str, int, bool and None (a float, a tuple,
    another mapping): such a record is not keyed."""
    try:
        return (
            _tagged(raw.get("self")),
            _tagged(raw.get("compatible")),
            _tagged(raw.get("migration_version")),
            _tagged(raw.get("migratable", True)),
        )
    except _NotKeyed:
        return None


def _tagged(value: Any) -> Hashable:
    kind = type(value)
    if kind is dict:
        return (dict, tuple([(_tagged(name), _tagged(item)) for name, item in value.items()]))
    if kind is list:
        return (list, tuple(map(_tagged, value)))
    if kind in _KEYED_SCALARS:
        return (kind, value)
    raise _NotKeyed


def _optional_string(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {value!r}", field=key)
    return value


def _located(thunk: Callable[[], T], field: str) -> T:
    try:
        return thunk()
    except FastmatchError as exc:
        raise exc.located(field=field) from None
