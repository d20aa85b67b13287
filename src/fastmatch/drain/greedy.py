"""The baseline: what today's schedulers do, one VM at a time (``--strategy greedy``).

VMs in input order; a single-device VM takes its best available target (least rank, then
input order); a VM group takes the host where each device in turn, taking its best available
target there, ends with the least total rank (then the host whose first chosen target comes
first). Nothing is reconsidered: a VM placed early may take the only target a later one had.
"""

from __future__ import annotations

import numpy as np

from .classes import ClassView


class _Available:
    """Eligible targets per target class, in input order, with what each can still take."""

    def __init__(self, view: ClassView) -> None:
        self.remaining = view.capacity.copy()
        eligible = np.flatnonzero(self.remaining > 0)
        classes = view.target_class[eligible]
        order = np.argsort(classes, kind="stable")
        self.order = eligible[order]
        self.start = np.searchsorted(classes[order], np.arange(view.scores.shape[1] + 1))
        self.pointer = self.start[:-1].copy()

    def first(self, t: int, twin: int) -> int:
        """The first target of class ``t`` with capacity left that is not ``twin``, or -1."""
        p, end = self.pointer[t], self.start[t + 1]
        while p < end and self.remaining[self.order[p]] == 0:
            p += 1
        self.pointer[t] = p
        while p < end and (self.remaining[self.order[p]] == 0 or self.order[p] == twin):
            p += 1
        return int(self.order[p]) if p < end else -1


def greedy(view: ClassView) -> np.ndarray:
    """int64 per mover: its target, or -1."""
    fleet = view.fleet
    target = np.full(len(fleet.movers), -1, dtype=np.int64)
    available = _Available(view)
    levels: dict[tuple[int, int], list[np.ndarray]] = {}  # (class, twin) -> target classes by rank

    def rank_levels(position: int) -> list[np.ndarray]:
        key = (int(view.mover_class[position]), int(view.twin[position]))
        if key not in levels:
            ranks = view.mover_ranks(position)
            compatible = np.flatnonzero(ranks >= 0)
            order = compatible[np.argsort(ranks[compatible], kind="stable")]
            cuts = np.flatnonzero(np.diff(ranks[order])) + 1
            levels[key] = np.split(order, cuts) if len(order) else []
        return levels[key]

    hosts = _HostTargets(view) if (fleet.vm_sizes > 1).any() else None
    limit = fleet.host_limit
    used = np.zeros(len(limit), dtype=np.int64)  # new devices per host
    limited = bool((limit >= 0).any())
    for v in range(fleet.n_vms):
        positions = fleet.vm_devices(v).tolist()
        if len(positions) == 1:
            position = positions[0]
            twin = int(view.twin[position])
            for level in rank_levels(position):
                if limited:
                    found = _first_within_limits(view, available, level, twin, used)
                else:
                    found = [j for j in (available.first(t, twin) for t in level.tolist()) if j >= 0]
                if found:
                    j = min(found)
                    available.remaining[j] -= 1
                    used[fleet.target_host[j]] += 1
                    target[position] = j
                    break
        else:
            chosen = hosts.best(positions, available.remaining, used)
            if chosen is not None:
                for position, j in zip(positions, chosen):
                    available.remaining[j] -= 1
                    used[fleet.target_host[j]] += 1
                    target[position] = j
    return target


def _first_within_limits(view: ClassView, available: _Available, level: np.ndarray, twin: int, used: np.ndarray) -> list[int]:
    """The first target of each class of ``level`` with capacity left on a host under its limit."""
    fleet = view.fleet
    found = []
    for t in level.tolist():
        for j in available.order[available.start[t] : available.start[t + 1]].tolist():
            host = fleet.target_host[j]
            if available.remaining[j] > 0 and j != twin and (fleet.host_limit[host] < 0 or used[host] < fleet.host_limit[host]):
                found.append(j)
                break
    return found


class _HostTargets:
    """Eligible targets per host, for VM groups."""

    def __init__(self, view: ClassView) -> None:
        self.view = view
        fleet = view.fleet
        eligible = np.flatnonzero(view.capacity > 0)
        hosts = fleet.target_host[eligible]
        order = np.argsort(hosts, kind="stable")
        self.order = eligible[order]
        self.start = np.searchsorted(hosts[order], np.arange(len(fleet.host_names) + 1))
        self.hosts_of_class: dict[int, np.ndarray] = {}

    def _hosts_for(self, position: int) -> np.ndarray:
        """Hosts with an eligible target compatible with the mover at ``position``."""
        view = self.view
        ranks = view.mover_ranks(position)
        compatible = ranks[view.target_class] >= 0
        compatible &= view.capacity > 0
        return np.unique(view.fleet.target_host[compatible])

    def best(self, positions: list[int], remaining: np.ndarray, used: np.ndarray) -> list[int] | None:
        view, fleet = self.view, self.view.fleet
        candidates = None
        for position in positions:
            key = int(view.mover_class[position]) * (len(fleet.targets) + 1) + int(view.twin[position]) + 1
            if key not in self.hosts_of_class:
                self.hosts_of_class[key] = self._hosts_for(position)
            hosts = self.hosts_of_class[key]
            candidates = hosts if candidates is None else np.intersect1d(candidates, hosts, assume_unique=True)
        best, best_key = None, None
        for host in candidates.tolist():
            limit = fleet.host_limit[host]
            if limit >= 0 and used[host] + len(positions) > limit:
                continue
            on_host = self.order[self.start[host] : self.start[host + 1]]
            taken: dict[int, int] = {}
            chosen, total = [], 0
            for position in positions:
                ranks = view.mover_ranks(position)[view.target_class[on_host]]
                twin = int(view.twin[position])
                pick = -1
                for j, r in sorted(zip(on_host.tolist(), ranks.tolist()), key=lambda jr: (jr[1], jr[0])):
                    if r >= 0 and j != twin and remaining[j] - taken.get(j, 0) > 0:
                        pick = j
                        total += r
                        break
                if pick < 0:
                    break
                taken[pick] = taken.get(pick, 0) + 1
                chosen.append(pick)
            if len(chosen) == len(positions):
                key = (total, min(chosen))
                if best_key is None or key < best_key:
                    best, best_key = chosen, key
        return best
