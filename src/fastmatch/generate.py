"""Synthetic fleets: realistic device records in fleet JSON Lines (docs/model.md section 2), fast.

``write_fleet(directory, sources, targets, distinct, seed)`` writes
``directory/sources.jsonl`` and ``directory/targets.jsonl``; it is what
``fastmatch generate`` runs, and what the benchmarks read.

What a fleet looks like
    Hosts of 4 to 16 devices each. A host has one kind of hardware, drawn by
    popularity: Intel GVT-g GPUs (three PCI ids, types ``i915-GVTg_V5_1..8``,
    ``aggregator``, ``pv_mode`` sets), NVIDIA vGPU (T4, A10, A100, L40S; types
    ``nvidia-NNN``; driver branches 470, 535 and 550 as ``software_version``),
    s390 ``vfio_ccw-io`` subchannels and ``vfio-ap`` adapters. Hosts are named
    alike on both sides (``host-000042``), and host *h* has the same hardware
    on both sides, so ``exclude_same_host`` bites where it would; hosts come in
    pairs of one hardware, so a source's kind is on another host too. Sources are
    mdev instances, one VM each; targets are (parent device, mdev type) entries
    with a ``capacity`` (0 on about one in eight). Targets run newer versions
    than sources. A third of the target descriptors (``record_fraction``)
    carry COMPATIBLE records, and by default no source descriptor
    (``source_record_fraction``, for ``direction = "both"``): the GVT-g template
    ``i915-GVTg_V5_{v:int:1,2,4,8}`` with ``aggregator`` ``{v}/2``, NVIDIA
    records that accept listed versions of the previous driver branch, ``"*"``
    patterns. Some A100 devices carry a ``migration_version``; one descriptor
    in 400 is not migratable.

Distinct descriptors
    A descriptor is what decides compatibility (``self``, ``compatible``,
    ``migratable``, ``migration_version``); ids, hosts, VMs and capacities do
    not count. Each side gets a pool of at most ``distinct`` descriptors, split
    between the kinds of hardware by how many devices each has, and devices
    draw from their hardware's pool with a skewed popularity (a few
    descriptors are very common, the tail is rare). The most common one is
    the hardware's standard setup, the same SELF on both sides. When ``distinct`` is at
    least the number of devices, no two devices of that side are alike (the
    dense kernel benchmark). Descriptors that would coincide get a higher
    bugfix number in ``software_version``, as real fleets differ.

Determinism and speed
    The same arguments give byte-identical files: everything is drawn from
    ``numpy.random.Generator`` streams spawned from ``seed`` (one for the host
    hardware, shared by both sides, and two per side), and a side's file does
    not depend on the other side's size. Each distinct descriptor is turned
    into its JSON text once; lines are then made by string formatting and
    written in chunks of about a megabyte: 1,000,000 + 1,000,000 devices in about 2 seconds
    on the project's 2-core machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

import numpy as np

from .errors import FastmatchError

SIDES = ("sources", "targets")
SOURCES_FILE = "sources.jsonl"
TARGETS_FILE = "targets.jsonl"
DEFAULT_RECORD_FRACTION = {"sources": 0.0, "targets": 1 / 3}  # descriptors with COMPATIBLE records
CHUNK_LINES = 4096  # lines per write, about 1 MB: larger chunks cost more in page faults than they save
MIN_SLOTS, MAX_SLOTS = 4, 16  # devices per host
ZERO_CAPACITY = 0.125  # share of targets that can create no more instances
NOT_MIGRATABLE = 1 / 400  # share of descriptors that are not migratable
MIGRATION_VERSION = 0.4  # share of A100 descriptors with a migration_version


# -- the hardware catalogue ------------------------------------------------------------------
@dataclass(frozen=True)
class _Hardware:
    name: str
    family: str  # gvt | nvidia | ccw | ap
    weight: float  # share of hosts
    device_id: str | None = None
    types: tuple[str, ...] = ()  # NVIDIA type numbers
    branches: tuple[int, ...] = ()  # NVIDIA driver branches supported


HARDWARE = (
    _Hardware("kbl", "gvt", 0.12, "8086591d"),
    _Hardware("cfl", "gvt", 0.10, "80863e92"),
    _Hardware("cml", "gvt", 0.08, "80869bc5"),
    _Hardware("t4", "nvidia", 0.15, "10de1eb8", tuple(str(n) for n in range(222, 234)), (470, 535, 550)),
    _Hardware("a10", "nvidia", 0.20, "10de2236", tuple(str(n) for n in range(588, 601)), (470, 535, 550)),
    _Hardware("a100", "nvidia", 0.10, "10de20b5", tuple(str(n) for n in range(699, 711)), (535, 550)),
    _Hardware("l40s", "nvidia", 0.10, "10de26b9", tuple(str(n) for n in range(1155, 1166)), (535, 550)),
    _Hardware("ccw", "ccw", 0.10),
    _Hardware("ap", "ap", 0.05),
)

GVT_TYPES = (1, 2, 4, 8)
GVT_TYPE_WEIGHTS = {"sources": (0.05, 0.25, 0.40, 0.30), "targets": (0.10, 0.25, 0.35, 0.30)}
GVT_VERSIONS = ("1.0.3", "1.1.2", "1.2.4", "1.3.1", "2.0.0")
GVT_VERSION_WEIGHTS = {"sources": (0.10, 0.20, 0.35, 0.25, 0.10), "targets": (0.05, 0.15, 0.30, 0.35, 0.15)}
GVT_PV_MODES = {
    "sources": ("none", "none+ppgtt", "none+ppgtt+context"),
    "targets": ("none+ppgtt", "none+ppgtt+context"),
}
GVT_PV_WEIGHTS = {"sources": (0.2, 0.5, 0.3), "targets": (0.3, 0.7)}

NVIDIA_VERSIONS = {
    470: ("470.199.02", "470.239.06", "470.256.02"),
    535: ("535.104.05", "535.161.08", "535.183.01", "535.216.01"),
    550: ("550.54.14", "550.90.07", "550.127.08", "550.144.03"),
}
NVIDIA_BRANCH_WEIGHTS = {"sources": {470: 0.15, 535: 0.45, 550: 0.40}, "targets": {470: 0.08, 535: 0.42, 550: 0.50}}
NVIDIA_CAPACITY = (16, 8, 4, 2, 1)  # instances per GPU by profile size, cycling over the types

CCW_VERSIONS = ("1.0.0", "1.1.0", "1.2.1")
AP_VERSIONS = ("1.0.0", "1.1.0")
SMALL_VERSION_WEIGHTS = {"sources": (0.5, 0.3, 0.2), "targets": (0.2, 0.3, 0.5)}


# `fastmatch generate` without --distinct: a fleet is mostly a few standard setups, so one
# distinct descriptor per this many devices of the larger side, and at least
# DEFAULT_MIN_DISTINCT, several per kind of hardware.
DEVICES_PER_DESCRIPTOR = 100
DEFAULT_MIN_DISTINCT = 16


def default_distinct(sources: int, targets: int) -> int:
    """The distinct descriptors per side that ``fastmatch generate`` uses unless told."""
    return max(DEFAULT_MIN_DISTINCT, max(sources, targets) // DEVICES_PER_DESCRIPTOR)


Option = TypeVar("Option")


def _pick(options: Sequence[Option], weights: Sequence[float], u: float) -> Option:
    """The option whose cumulative weight first exceeds ``u`` times the total."""
    total = sum(weights)
    acc = 0.0
    for option, weight in zip(options, weights):
        acc += weight
        if u * total < acc:
            return option
    return options[-1]


# -- one descriptor --------------------------------------------------------------------------
@dataclass
class _Draft:
    """A descriptor being built: its JSON parts, and what target ids and capacities need."""

    self_: dict[str, Any]
    compatible: list[dict[str, Any]]
    migration_version: str | None
    migratable: bool
    max_capacity: int
    parent: str  # how target ids name the parent device: pci | ccw | ap

    def fragment(self) -> str:
        """The record's descriptor keys as JSON text, without the enclosing braces."""
        parts = ['"self":' + json.dumps(self.self_, separators=(",", ":"))]
        if self.compatible:
            parts.append('"compatible":' + json.dumps(self.compatible, separators=(",", ":")))
        if self.migration_version is not None:
            parts.append('"migration_version":' + json.dumps(self.migration_version))
        if not self.migratable:
            parts.append('"migratable":false')
        return ",".join(parts)


def _bumped(version: str, by: int) -> str:
    """``version`` with its bugfix number raised by ``by``, keeping its width (``550.127.08``)."""
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + by:0{len(patch)}d}"


def _draft(hw: _Hardware, side: str, u: Iterator[float], record_fraction: float) -> _Draft:
    with_records = next(u) < record_fraction
    migratable = next(u) >= NOT_MIGRATABLE
    if hw.family == "gvt":
        return _gvt(hw, side, u, with_records, migratable)
    if hw.family == "nvidia":
        return _nvidia(hw, side, u, with_records, migratable)
    return _mainframe(hw, side, u, with_records, migratable)


def _gvt(hw: _Hardware, side: str, u: Iterator[float], with_records: bool, migratable: bool) -> _Draft:
    n = _pick(GVT_TYPES, GVT_TYPE_WEIGHTS[side], next(u))
    version = _pick(GVT_VERSIONS, GVT_VERSION_WEIGHTS[side], next(u))
    pv_mode = _pick(GVT_PV_MODES[side], GVT_PV_WEIGHTS[side], next(u))
    self_ = {
        "device_api": "vfio-pci",
        "vendor_driver": "i915",
        "device_id": hw.device_id,
        "mdev_type": f"i915-GVTg_V5_{n}",
        "aggregator": str(max(n // 2, 1)),
        "pv_mode": pv_mode,
        "software_version": version,
    }
    compatible: list[dict[str, Any]] = []
    if with_records:
        record: dict[str, Any] = {
            "device_api": "vfio-pci",
            "vendor_driver": "i915",
            "device_id": hw.device_id,
            "mdev_type": "i915-GVTg_V5_{v:int:1,2,4,8}",
            "aggregator": "{v}/2",
        }
        if next(u) < 0.4:
            record["pv_mode"] = pv_mode
        if next(u) < 0.3:  # the versions this target was validated with, as literals
            major, minor = version.split(".")[:2]
            record["software_version"] = [
                v for v in GVT_VERSIONS if v.split(".")[0] == major and int(v.split(".")[1]) <= int(minor)
            ]
        compatible.append(record)
    return _Draft(self_, compatible, None, migratable, n, "pci")


def _nvidia(hw: _Hardware, side: str, u: Iterator[float], with_records: bool, migratable: bool) -> _Draft:
    k = _pick(range(len(hw.types)), [1 / (i + 1) for i in range(len(hw.types))], next(u))
    mdev_type = f"nvidia-{hw.types[k]}"
    branch = _pick(hw.branches, [NVIDIA_BRANCH_WEIGHTS[side][b] for b in hw.branches], next(u))
    versions = NVIDIA_VERSIONS[branch]
    newer = [1.0] * len(versions) if side == "sources" else [i + 1.0 for i in range(len(versions))]
    version = _pick(versions, newer, next(u))
    self_ = {
        "device_api": "vfio-pci",
        "vendor_driver": "nvidia",
        "device_id": hw.device_id,
        "mdev_type": mdev_type,
        "software_version": version,
    }
    compatible: list[dict[str, Any]] = []
    # Drawn with records or without, so that what follows (migration_version) does not
    # depend on them: a hardware's standard descriptor has one SELF on both sides.
    accepts_older = next(u) < 0.5
    if with_records:
        plain = {"device_api": "vfio-pci", "vendor_driver": "nvidia", "device_id": hw.device_id, "mdev_type": mdev_type}
        older = [b for b in hw.branches if b < branch]
        if older and accepts_older:
            # Also accepts the two newest drivers of the previous branch (validated by the vendor).
            compatible.append({**plain, "software_version": list(NVIDIA_VERSIONS[older[-1]][-2:])})
        compatible.append(plain)
    migration_version = None
    if hw.name == "a100" and next(u) < MIGRATION_VERSION:
        migration_version = f"nvidia-vgpu/{mdev_type}/r{branch}/v2"
    return _Draft(self_, compatible, migration_version, migratable, NVIDIA_CAPACITY[k % len(NVIDIA_CAPACITY)], "pci")


def _mainframe(hw: _Hardware, side: str, u: Iterator[float], with_records: bool, migratable: bool) -> _Draft:
    versions: tuple[str, ...]
    if hw.family == "ccw":
        api, driver, mdev_type, versions, capacity = "vfio-ccw", "vfio_ccw", "vfio_ccw-io", CCW_VERSIONS, 1
    else:
        api, driver, mdev_type, versions, capacity = "vfio-ap", "vfio_ap", "vfio_ap-passthrough", AP_VERSIONS, 4
    version = _pick(versions, SMALL_VERSION_WEIGHTS[side][: len(versions)], next(u))
    self_ = {"device_api": api, "vendor_driver": driver, "mdev_type": mdev_type, "software_version": version}
    compatible: list[dict[str, Any]] = []
    if with_records:
        if hw.family == "ccw":  # any interface version of the same subchannel type
            compatible.append({"device_api": api, "mdev_type": mdev_type, "software_version": "*"})
        else:
            compatible.append({"device_api": api, "vendor_driver": driver, "mdev_type": mdev_type,
                               "software_version": list(AP_VERSIONS)})
    return _Draft(self_, compatible, None, migratable, capacity, hw.family)


# -- one side ----------------------------------------------------------------------------------
@dataclass
class _Side:
    """Everything a side's lines are made of: per device, indices; per descriptor, text."""

    host: np.ndarray  # int64 per device: host number
    slot: np.ndarray  # int64 per device: position on its host
    descriptor: np.ndarray  # int64 per device: into the pool
    capacity: np.ndarray | None  # int64 per device (targets)
    fragments: list[str]  # per descriptor: JSON text of self/compatible/...
    id_parts: list[tuple[str, str]]  # per descriptor: (parent kind, mdev_type)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    # A stream's draws do not depend on how many streams there are (spawn keys count up).
    children = np.random.SeedSequence(seed).spawn(6)
    names = ("hardware", "sources.pool", "sources.devices", "targets.pool", "targets.devices", "common")
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}


def _host_hardware(seed: int, n_hosts: int) -> np.ndarray:
    """Hardware of hosts 0..n_hosts-1: the same on both sides, whatever their sizes.

    Hosts come in pairs of one hardware (0 and 1, 2 and 3, ...), as racks are bought: a
    source always has targets of its hardware on a host other than its own (which
    ``exclude_same_host`` rules out), so a fleet of a few hosts has matches too.
    """
    u = np.repeat(_streams(seed)["hardware"].random((n_hosts + 1) // 2), 2)[:n_hosts]
    weights = np.array([hw.weight for hw in HARDWARE])
    return np.minimum(np.searchsorted(np.cumsum(weights) / weights.sum(), u, side="right"), len(HARDWARE) - 1)


def _allocate(devices_per_group: np.ndarray, distinct: int) -> np.ndarray:
    """Pool sizes per hardware group: at most ``distinct`` in all, by number of devices."""
    n = int(devices_per_group.sum())
    if distinct >= n:
        return devices_per_group.copy()  # no two alike
    sizes = np.zeros_like(devices_per_group)
    used = np.flatnonzero(devices_per_group)
    used = used[np.argsort(-devices_per_group[used], kind="stable")][:distinct]
    sizes[used] = 1
    spare = distinct - len(used)
    sizes[used] += (spare * devices_per_group[used]) // n
    allocated: np.ndarray = np.minimum(sizes, devices_per_group)
    return allocated


def _build_side(side: str, count: int, distinct: int, seed: int, record_fraction: float) -> _Side:
    streams = _streams(seed)
    rng = streams[f"{side}.devices"]
    # Hosts of 4..16 devices, enough of them for `count` devices; the last one is cut short.
    slots = rng.integers(MIN_SLOTS, MAX_SLOTS + 1, size=count // MIN_SLOTS + 1)
    ends = np.cumsum(slots)
    n_hosts = int(np.searchsorted(ends, count)) + 1 if count else 0
    slots = slots[:n_hosts].copy()
    if n_hosts:
        slots[-1] -= ends[n_hosts - 1] - count
    host = np.repeat(np.arange(n_hosts, dtype=np.int64), slots)
    slot = np.arange(count, dtype=np.int64) - np.repeat(np.cumsum(slots) - slots, slots)
    group = _host_hardware(seed, n_hosts)[host]

    sizes = _allocate(np.bincount(group, minlength=len(HARDWARE)), distinct)
    if count and (sizes == 0).any():  # fewer descriptors than kinds of hardware: share the popular ones
        fallback = int(np.argmax(sizes))
        group = np.where(sizes[group] == 0, fallback, group)
    starts = np.concatenate([[0], np.cumsum(sizes)])

    fragments, id_parts, max_capacity = _pool(side, sizes, streams[f"{side}.pool"], streams["common"], record_fraction)
    if distinct >= count:  # every device its own descriptor, in the order of its hardware's pool
        order = np.argsort(group, kind="stable")
        descriptor = np.empty(count, dtype=np.int64)
        descriptor[order] = np.arange(count, dtype=np.int64)
    else:  # skewed popularity: index floor(size * u^2) within the hardware's pool
        u = rng.random(count)
        descriptor = starts[group] + np.minimum((sizes[group] * u * u).astype(np.int64), sizes[group] - 1)

    capacity = None
    if side == "targets":
        zero, u = rng.random(count), rng.random(count)
        most = np.asarray(max_capacity, dtype=np.int64)[descriptor] if count else np.zeros(0, dtype=np.int64)
        capacity = np.where(zero < ZERO_CAPACITY, 0, 1 + (u * most).astype(np.int64))
    return _Side(host, slot, descriptor, capacity, fragments, id_parts)


def _pool(
    side: str, sizes: np.ndarray, rng: np.random.Generator, common: np.random.Generator, record_fraction: float
) -> tuple[list[str], list[tuple[str, str]], list[int]]:
    """``sizes[g]`` distinct descriptors of each kind of hardware ``g``, as JSON text.

    Each hardware's first descriptor, its most popular, is the fleet's standard setup of that
    hardware: the same SELF on both sides (drawn from the ``common`` stream, as a target's),
    so that it migrates to itself; only COMPATIBLE records differ with ``record_fraction``.
    Without it, the two sides' independent draws (types, newer target versions) left a
    fleet of a few hosts with no compatible pair at all.
    """
    standard = common.random((len(HARDWARE), 8)).tolist()
    fragments: list[str] = []
    id_parts: list[tuple[str, str]] = []
    max_capacity: list[int] = []
    seen: set[str] = set()
    bumps: dict[str, int] = {}
    for g, size in enumerate(sizes.tolist()):
        uniforms = [standard[g], *rng.random((size - 1, 8)).tolist()] if size else []
        for k, row in enumerate(uniforms):
            draft = _draft(HARDWARE[g], side if k else "targets", iter(row), record_fraction)
            text = draft.fragment()
            if text in seen:  # an equal descriptor exists: make this one a later bugfix release
                base, version, n = text, draft.self_["software_version"], bumps.get(text, 0)
                while text in seen:
                    n += 1
                    draft.self_["software_version"] = _bumped(version, n)
                    text = draft.fragment()
                bumps[base] = n
            seen.add(text)
            fragments.append(text)
            id_parts.append((draft.parent, draft.self_["mdev_type"]))
            max_capacity.append(draft.max_capacity)
    return fragments, id_parts, max_capacity


# -- lines ---------------------------------------------------------------------------------------
def _parents(kind: str) -> list[str]:
    """How the parent device in slot k of a host is named."""
    if kind == "pci":
        return [f"0000:{0x17 + 0x0b * k:02x}:00.0" for k in range(MAX_SLOTS)]
    if kind == "ccw":
        return [f"0.0.{0x0100 + k:04x}" for k in range(MAX_SLOTS)]
    return [f"{k:02x}.0047" for k in range(MAX_SLOTS)]


def _check(side: str, count: int, distinct: int, seed: int, record_fraction: float | None) -> None:
    if side not in SIDES:
        raise FastmatchError(f"side must be 'sources' or 'targets', got {side!r}")
    for name, value, least in (("count", count, 0), ("distinct", distinct, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise FastmatchError(f"{name} must be an integer >= {least}, got {value!r}")
    if record_fraction is not None and not 0.0 <= record_fraction <= 1.0:
        raise FastmatchError(f"record_fraction must be between 0 and 1, got {record_fraction!r}")


def _vm_firsts(host: np.ndarray, seed: int, vm_devices: tuple[int, int] | None) -> np.ndarray:
    """Per source device, the index of the first device of its VM: VMs of ``vm_devices``
    (low, high) consecutive devices of one host, sizes drawn uniformly (a stream of their own,
    so the devices themselves do not change); ``None``: each device its own VM."""
    count = len(host)
    if vm_devices is None:
        return np.arange(count, dtype=np.int64)
    low, high = vm_devices
    sizes = np.random.default_rng(np.random.SeedSequence(seed).spawn(6)[5]).integers(low, high + 1, size=count).tolist()
    first = np.empty(count, dtype=np.int64)
    hosts = host.tolist()
    start, drawn = 0, 0
    for i in range(count):
        if i == 0 or hosts[i] != hosts[i - 1] or i - start >= sizes[drawn]:
            if i:
                drawn += 1
            start = i
        first[i] = start
    return first


def generate_lines(
    side: str,
    count: int,
    distinct: int,
    seed: int = 0,
    *,
    record_fraction: float | None = None,
    chunk: int = CHUNK_LINES,
    vm_devices: tuple[int, int] | None = None,
) -> Iterator[str]:
    """One side's JSON Lines text, in chunks of ``chunk`` lines (each ending with a newline).

    ``side`` is ``"sources"`` or ``"targets"``; ``count`` devices share at
    most ``distinct`` descriptors (all distinct when ``distinct >= count``);
    ``record_fraction`` is the share of this side's descriptors with
    COMPATIBLE records (default: a third of the targets', none of the sources').
    ``vm_devices`` ``(low, high)`` groups sources into VMs of that many devices of one host.
    """
    _check(side, count, distinct, seed, record_fraction)
    _check_vm_devices(vm_devices)
    if record_fraction is None:
        record_fraction = DEFAULT_RECORD_FRACTION[side]
    data = _build_side(side, int(count), int(distinct), int(seed), record_fraction)
    fragments = data.fragments
    hosts = [f"host-{h:06d}" for h in range(int(data.host[-1]) + 1 if count else 0)]
    if side == "targets":
        parents = {kind: _parents(kind) for kind in ("pci", "ccw", "ap")}
        # Per descriptor, the id's tail after the parent device: "/<mdev_type>".
        parent_of = [parents[kind] for kind, _ in data.id_parts]
        type_of = [mdev_type for _, mdev_type in data.id_parts]
    vm_first = _vm_firsts(data.host, int(seed), vm_devices) if side == "sources" else None
    for start in range(0, count, chunk):
        end = min(count, start + chunk)
        host = data.host[start:end].tolist()
        descriptor = data.descriptor[start:end].tolist()
        if side == "sources":
            assert vm_first is not None, "a source side has its VMs"
            yield "".join(
                [
                    f'{{"id":"{hosts[h]}/mdev-{i:07d}","host":"{hosts[h]}","vm":"vm-{v:07d}",{fragments[d]}}}\n'
                    for i, h, d, v in zip(range(start, end), host, descriptor, vm_first[start:end].tolist())
                ]
            )
        else:
            assert data.capacity is not None, "a target side has capacities"
            slot = data.slot[start:end].tolist()
            capacity = data.capacity[start:end].tolist()
            yield "".join(
                [
                    f'{{"id":"{hosts[h]}/{parent_of[d][s]}/{type_of[d]}","host":"{hosts[h]}",'
                    f'{fragments[d]},"capacity":{c}}}\n'
                    for h, s, d, c in zip(host, slot, descriptor, capacity)
                ]
            )


def _check_vm_devices(vm_devices: tuple[int, int] | None) -> None:
    if vm_devices is None:
        return
    if (
        not isinstance(vm_devices, tuple)
        or len(vm_devices) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in vm_devices)
        or not 1 <= vm_devices[0] <= vm_devices[1] <= MAX_SLOTS
    ):
        raise FastmatchError(f"vm_devices must be (low, high) with 1 <= low <= high <= {MAX_SLOTS}, got {vm_devices!r}")


def generate_records(
    side: str,
    count: int,
    distinct: int,
    seed: int = 0,
    *,
    record_fraction: float | None = None,
    vm_devices: tuple[int, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """The records of :func:`generate_lines`, decoded (for tests and small fleets)."""
    for text in generate_lines(side, count, distinct, seed, record_fraction=record_fraction, vm_devices=vm_devices):
        for line in text.splitlines():
            yield json.loads(line)


def write_side(
    path: str | os.PathLike[str],
    side: str,
    count: int,
    distinct: int,
    seed: int = 0,
    *,
    record_fraction: float | None = None,
    vm_devices: tuple[int, int] | None = None,
) -> Path:
    """Write one side's JSON Lines to ``path`` (through a temporary file, then renamed)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            for text in generate_lines(side, count, distinct, seed, record_fraction=record_fraction, vm_devices=vm_devices):
                out.write(text.encode("utf-8"))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_fleet(
    directory: str | os.PathLike[str],
    sources: int,
    targets: int,
    distinct: int,
    seed: int = 0,
    *,
    record_fraction: float = DEFAULT_RECORD_FRACTION["targets"],
    source_record_fraction: float = DEFAULT_RECORD_FRACTION["sources"],
    vm_devices: tuple[int, int] | None = None,
) -> tuple[Path, Path]:
    """Write ``directory/sources.jsonl`` and ``directory/targets.jsonl``; returns their paths.

    ``distinct`` bounds the distinct descriptors of each side (each device its
    own when ``distinct`` is at least that side's count). ``record_fraction``
    and ``source_record_fraction`` are the shares of target and source
    descriptors with COMPATIBLE records; ``vm_devices`` ``(low, high)`` groups the sources
    into VMs of that many devices of one host. The directory is created if needed;
    the same arguments always give the same bytes.
    """
    _check("sources", sources, distinct, seed, source_record_fraction)
    _check_vm_devices(vm_devices)
    _check("targets", targets, distinct, seed, record_fraction)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return (
        write_side(
            directory / SOURCES_FILE, "sources", sources, distinct, seed, record_fraction=source_record_fraction,
            vm_devices=vm_devices,
        ),
        write_side(directory / TARGETS_FILE, "targets", targets, distinct, seed, record_fraction=record_fraction),
    )
