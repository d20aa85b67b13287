"""Why a VM is not in the plan, in words an operator can act on.

- No compatible target anywhere: the reasons, counted over every target, as ``explain``
  names them (or: its compatible targets are all on drained hosts or have no capacity).
- Compatible targets exist, but other moves took their capacity: how much there was, and
  which VMs took it.
- Compatible targets with capacity left are on hosts at their ``--host-limits``.
- A VM group that no single host can take whole.
"""

from __future__ import annotations

import collections

import numpy as np

from ..reasons import reason_names
from ..result import Bools, Int64s
from .classes import ClassView

SHOWN = 5  # VMs or hosts named in a reason before "and N more"


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


class Explainer:
    def __init__(self, view: ClassView, target_of_mover: Int64s, vm_placed: Bools) -> None:
        self.view = view
        self.fleet = view.fleet
        self.target = target_of_mover
        self.vm_placed = vm_placed
        fleet = view.fleet
        self.remaining = view.capacity - np.bincount(target_of_mover[target_of_mover >= 0], minlength=len(fleet.targets))
        placed = np.flatnonzero(target_of_mover >= 0)
        self.new_on_host = np.bincount(fleet.target_host[target_of_mover[placed]], minlength=len(fleet.host_names))
        # Per target class, the VMs whose moves went there.
        classes = view.target_class[target_of_mover[placed]]
        order = np.argsort(classes, kind="stable")
        self._into_vm = fleet.vm_of_mover[placed][order]
        self._into_start = np.searchsorted(classes[order], np.arange(view.scores.shape[1] + 1))
        self._takers_cache: dict[tuple[int, ...], list[str]] = {}
        self._none_cache: dict[int, str] = {}

    def reasons(self, v: int) -> list[str]:
        fleet, view = self.fleet, self.view
        positions = fleet.vm_devices(v).tolist()
        ids = [fleet.sources.ids[fleet.movers[p]] for p in positions]
        out = []
        for position, device_id in zip(positions, ids):
            ranks = view.mover_ranks(position)
            if not (ranks >= 0).any():
                out.append(f"{device_id}: {self._nothing_compatible(int(view.mover_class[position]))}")
        if out:
            return out
        if len(positions) > 1:
            hosts = self._hosts_fitting(positions)
            if not hosts:
                return [f"VM group of {len(positions)} devices: no single host has compatible capacity for all of them"]
            named = _listed([fleet.host_names[h] for h in hosts[:SHOWN]]) + (" and more" if len(hosts) > SHOWN else "")
            return [
                f"VM group of {len(positions)} devices fits whole on host{'s' if len(hosts) > 1 else ''} "
                f"{named} before the drain, "
                f"but other moves took that capacity: VMs {_listed(self._takers(positions))}"
            ]
        position = positions[0]
        ranks = view.mover_ranks(position)
        compatible = (ranks[view.target_class] >= 0) & (view.capacity > 0)
        twin = int(view.twin[position])
        if twin >= 0:
            compatible[twin] = False
        total = int(view.capacity[compatible].sum())
        left = compatible & (self.remaining > 0)
        if left.any():
            hosts_left = np.unique(fleet.target_host[left])
            at_limit = [h for h in hosts_left.tolist() if 0 <= fleet.host_limit[h] <= self.new_on_host[h]]
            if len(at_limit) == len(hosts_left):
                return [
                    f"{ids[0]}: its compatible targets with capacity left are on hosts at their host limit: "
                    f"{_listed([fleet.host_names[h] for h in at_limit])}"
                ]
            return [f"{ids[0]}: compatible capacity is left, but the plan stopped at its time limit before using it"]
        return [
            f"{ids[0]}: all {total} compatible target slot{'s' if total != 1 else ''} off the drained hosts are "
            f"taken by other moves: VMs {_listed(self._takers(positions))}"
        ]

    def _nothing_compatible(self, source_class: int) -> str:
        if source_class in self._none_cache:
            return self._none_cache[source_class]
        view, fleet = self.view, self.fleet
        result = view.result
        per_class = np.bincount(view.target_class, minlength=view.scores.shape[1])
        row = view.scores[source_class]
        compatible_targets = int(per_class[row >= 0].sum())
        if compatible_targets:
            of_class = (row >= 0)[view.target_class]
            drained_hosts = set(fleet.drained)
            on_drained = sum(1 for j in np.flatnonzero(of_class).tolist() if fleet.targets.hosts[j] in drained_hosts)
            parts = [f"{on_drained} on drained hosts"] if on_drained else []
            if compatible_targets - on_drained:
                parts.append(f"{compatible_targets - on_drained} without capacity")
            text = f"its {compatible_targets} compatible target{'s' if compatible_targets != 1 else ''} off limits: {', '.join(parts)}"
        else:
            counts: collections.Counter[str] = collections.Counter()
            masks = result.class_reasons[source_class]
            for mask in np.unique(masks).tolist():
                n = int(per_class[masks == mask].sum())
                for name in reason_names(int(mask), result.attributes):
                    counts[name] += n
            described = ", ".join(f"{name} ({n})" for name, n in counts.most_common())
            text = f"no compatible target among {len(fleet.targets)}: {described or 'no targets'}"
        self._none_cache[source_class] = text
        return text

    def _hosts_fitting(self, positions: list[int]) -> list[int]:
        """Hosts that could take the whole VM group before any move (each device a compatible
        target with capacity, none over its capacity), in host order."""
        view, fleet = self.view, self.fleet
        candidates: Int64s | None = None
        per_device = []
        for position in positions:
            ranks = view.mover_ranks(position)
            compatible = np.flatnonzero((ranks[view.target_class] >= 0) & (view.capacity > 0))
            per_device.append(compatible)
            hosts = np.unique(fleet.target_host[compatible])
            candidates = hosts if candidates is None else np.intersect1d(candidates, hosts)
        assert candidates is not None  # a VM group has devices
        fitting: list[int] = []
        for host in candidates.tolist():
            if len(fitting) > SHOWN:  # enough to name SHOWN of them and say there are more
                break
            limit = fleet.host_limit[host]
            if 0 <= limit < len(positions):
                continue
            if _matches(
                [c[fleet.target_host[c] == host] for c in per_device],
                view.capacity,
                [int(view.twin[p]) for p in positions],
            ):
                fitting.append(host)
        return fitting

    def _takers(self, positions: list[int]) -> list[str]:
        """The VMs whose moves went to targets of a class compatible with any of these devices."""
        view, fleet = self.view, self.fleet
        key = tuple(sorted({int(view.mover_class[p]) for p in positions}))
        if key not in self._takers_cache:
            classes = np.unique(np.concatenate([np.flatnonzero(view.class_ranks[c] >= 0) for c in key]))
            start, end = self._into_start[classes], self._into_start[classes + 1]
            vms = np.unique(np.concatenate([self._into_vm[a:b] for a, b in zip(start.tolist(), end.tolist())] or [np.zeros(0, np.int64)]))
            self._takers_cache[key] = [fleet.vm_names[v] for v in vms.tolist()]
        return self._takers_cache[key]


def _matches(options: list[Int64s], capacity: Int64s, twins: list[int]) -> bool:
    """Whether each device can have one of its ``options`` targets, no target over its capacity
    (a small bipartite matching: VM groups have a few devices)."""
    used: dict[int, int] = {}

    def place(d: int) -> bool:
        if d == len(options):
            return True
        for j in options[d].tolist():
            if j != twins[d] and used.get(j, 0) < capacity[j]:
                used[j] = used.get(j, 0) + 1
                if place(d + 1):
                    return True
                used[j] -= 1
        return False

    return place(0)
