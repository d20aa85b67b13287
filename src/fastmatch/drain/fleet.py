"""What a drain plan starts from (issue 11's set semantics): the source devices on drained
hosts must move, grouped into their VMs; the targets that may receive them are those off the
drained hosts with capacity; hosts may carry a limit of new devices. Checked here, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from ..devices import DeviceSet
from ..errors import InputError
from ..result import Bools, Int64s


@dataclass
class DrainFleet:
    """The fleets and the drain, as arrays the planners read.

    Movers are the source devices on drained hosts, in input order. VMs are numbered in the
    order of their first mover; a device without a ``vm`` is a VM of its own. Target hosts are
    numbered by ``host_names``; a target without a host is a host of its own (nothing says it
    shares one with another), named ``""``.
    """

    sources: DeviceSet
    targets: DeviceSet
    drained: tuple[str, ...]
    movers: Int64s  # source indices
    vm_of_mover: Int64s  # per mover, its VM
    vm_names: list[str]  # per VM: its name (a device without a vm: the device's id)
    vm_start: Int64s  # the movers of VM v are vm_members[vm_start[v]:vm_start[v + 1]]
    vm_members: Int64s  # positions into movers, grouped by VM, in input order
    eligible: Bools  # per target: off the drained hosts, capacity > 0
    target_host: Int64s  # per target: its host's number
    host_names: list[str]
    host_limit: Int64s  # per host number: most new devices, -1 for no limit

    @property
    def n_vms(self) -> int:
        return len(self.vm_names)

    def vm_devices(self, v: int) -> Int64s:
        """Mover positions of VM ``v``."""
        return self.vm_members[self.vm_start[v] : self.vm_start[v + 1]]

    @property
    def vm_sizes(self) -> Int64s:
        return np.diff(self.vm_start)


def drain_fleet(
    sources: DeviceSet,
    targets: DeviceSet,
    drain: Iterable[str],
    host_limits: Mapping[str, int] | None = None,
    *,
    sources_name: str | None = None,
    drain_name: str | None = None,
    drain_lines: list[int] | None = None,
    limits_name: str | None = None,
) -> DrainFleet:
    """Check the drain against the fleets and number what the planners read.

    Errors name the input (``*_name``; a drain host's line in its file with ``drain_lines``):
    a drained host no device is on, a VM whose devices are on different hosts, a host limit
    for a host no target is on, or a limit that is not an integer >= 0.
    """
    drained = list(drain) if not isinstance(drain, str) else [drain]
    field = None if drain_name else "drain"  # a file (or the --drain option) names where already
    for host in drained:
        if not isinstance(host, str) or not host:
            raise InputError(f"a drained host is a non-empty string, got {host!r}", file=drain_name, field=field)
    source_hosts, target_hosts = set(sources.hosts), set(targets.hosts)
    for k, host in enumerate(drained):
        if host not in source_hosts and host not in target_hosts:
            line = drain_lines[k] if drain_lines is not None else None
            raise InputError(f"drained host {host!r}: no source or target device is on it", file=drain_name, line=line, field=field)
    drained_set = frozenset(drained)

    mover_mask = np.fromiter((h in drained_set for h in sources.hosts), bool, len(sources))
    movers = np.flatnonzero(mover_mask).astype(np.int64)
    vm_names, vm_of_mover = _vms(sources, movers, sources_name)
    order = np.argsort(vm_of_mover, kind="stable").astype(np.int64)
    vm_start = np.searchsorted(vm_of_mover[order], np.arange(len(vm_names) + 1)).astype(np.int64)

    names, codes = targets.host_codes  # the empty host is code 0
    codes = codes.copy()
    hostless = np.flatnonzero(codes == 0)
    host_names = list(names)
    codes[hostless] = len(host_names) + np.arange(len(hostless))
    host_names.extend("" for _ in hostless)
    drained_code = np.fromiter((n in drained_set for n in host_names), bool, len(host_names))
    eligible = ~drained_code[codes] & (targets.capacities > 0)

    host_limit = np.full(len(host_names), -1, dtype=np.int64)
    if host_limits:
        code_of = {name: code for code, name in enumerate(names) if name}
        for host, limit in host_limits.items():
            if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
                raise InputError(f"expected an integer >= 0 (new devices on the host), got {limit!r}", file=limits_name, field=str(host))
            if host not in code_of:
                raise InputError(f"unknown host {host!r}: no target device is on it", file=limits_name, field=str(host))
            host_limit[code_of[host]] = int(limit)
    return DrainFleet(
        sources, targets, tuple(drained), movers, vm_of_mover, vm_names, vm_start, order, eligible, codes, host_names, host_limit
    )


def _vms(sources: DeviceSet, movers: Int64s, sources_name: str | None) -> tuple[list[str], Int64s]:
    """The movers' VMs in order of first mover, and each mover's VM; a VM's devices must all be
    on one host (every device of it, moving or not)."""
    number: dict[str, int] = {}
    names: list[str] = []
    vm_of = np.empty(len(movers), dtype=np.int64)
    ids, hosts, vms = sources.ids, sources.hosts, sources.vms
    host_of_vm: dict[str, str] = {}
    for position, i in enumerate(movers.tolist()):
        vm = vms[i]
        key = vm if vm else "\0" + ids[i]  # a device without a VM is its own; no VM name starts with NUL
        if key not in number:
            number[key] = len(names)
            names.append(vm if vm else ids[i])
            if vm:
                host_of_vm[vm] = hosts[i]
        vm_of[position] = number[key]
    if host_of_vm:
        for i, vm in enumerate(vms):
            if vm and vm in host_of_vm and hosts[i] != host_of_vm[vm]:
                raise InputError(
                    f"VM {vm!r} has devices on hosts {host_of_vm[vm]!r} and {hosts[i]!r}; a VM's devices are on one host",
                    file=sources_name,
                    record=repr(ids[i]),
                    field="vm",
                )
    return names, vm_of
