"""The baseline: what today's schedulers do, one VM at a time (``--strategy greedy``).

VMs in input order; a single-device VM takes its best available target (least rank, then
input order); a VM group takes the host where its devices' best available targets have the
least total rank, then the first host (:class:`HostChooser`). Nothing is reconsidered: a VM
placed early may take the only target a later one had.
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

    hosts = HostChooser(view) if (fleet.vm_sizes > 1).any() else None
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


class HostChooser:
    """Where a VM group goes, one group at a time: the host where each of its devices' best
    available target, added up, has the least rank (then the host first in order), provided
    the devices, taking their best targets there one after another, all find one."""

    BIG = np.iinfo(np.int64).max // 64  # a rank no target has: "nothing here"
    CHUNK = 256  # candidate hosts scored at once

    def __init__(self, view: ClassView) -> None:
        self.view = view
        fleet = view.fleet
        eligible = np.flatnonzero(view.capacity > 0)
        hosts = fleet.target_host[eligible]
        order = np.argsort(hosts, kind="stable")
        self.order = eligible[order]
        self.start = np.searchsorted(hosts[order], np.arange(len(fleet.host_names) + 1))
        self.hosts_of: dict[tuple[int, int], np.ndarray] = {}
        self.class_left = view.class_capacity.copy()
        by_class = np.argsort(view.target_class[eligible], kind="stable")
        self.class_order = eligible[by_class]
        self.class_start = np.searchsorted(view.target_class[eligible][by_class], np.arange(view.scores.shape[1] + 1))

    def _hosts_for(self, position: int) -> np.ndarray:
        """Hosts with an eligible target compatible with the mover at ``position``."""
        view = self.view
        key = (int(view.mover_class[position]), int(view.twin[position]))
        if key not in self.hosts_of:
            classes = np.flatnonzero(view.mover_ranks(position) >= 0)
            start, end = self.class_start[classes], self.class_start[classes + 1]
            lengths = end - start
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, np.int64)
            targets = self.class_order[np.repeat(start - offsets, lengths) + np.arange(int(lengths.sum()))]
            targets = targets[targets != key[1]]
            self.hosts_of[key] = np.unique(view.fleet.target_host[targets])
        return self.hosts_of[key]

    def best(self, positions: list[int], remaining: np.ndarray, used: np.ndarray) -> list[int] | None:
        """Targets for the devices at ``positions`` (mover positions), all on one host, or None.

        Candidate hosts are scored a chunk at a time, in host order; the scan stops at a host
        whose total reaches the lower bound (each device's best rank among the classes with
        capacity left anywhere), since no host can do better and the first such host wins."""
        view, fleet = self.view, self.view.fleet
        candidates = self._hosts_for(positions[0])
        for position in positions[1:]:
            candidates = np.intersect1d(candidates, self._hosts_for(position), assume_unique=True)
        limit = fleet.host_limit[candidates]
        candidates = candidates[(limit < 0) | (used[candidates] + len(positions) <= limit)]
        bound = sum(int(self._best_rank(p)) for p in positions)
        best_total, best = None, None
        for first in range(0, len(candidates), self.CHUNK):
            chunk = candidates[first : first + self.CHUNK]
            lengths = self.start[chunk + 1] - self.start[chunk]
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            on_hosts = self.order[np.repeat(self.start[chunk] - offsets, lengths) + np.arange(int(lengths.sum()))]
            classes = view.target_class[on_hosts]
            total = np.zeros(len(chunk), dtype=np.int64)
            for position in positions:
                ranks = view.mover_ranks(position)[classes]
                usable = (ranks >= 0) & (remaining[on_hosts] > 0) & (on_hosts != view.twin[position])
                total += np.minimum.reduceat(np.where(usable, ranks, self.BIG), offsets)
            for c in np.lexsort((chunk, total)).tolist():
                if total[c] >= self.BIG or (best_total is not None and total[c] >= best_total):
                    break
                chosen = self._fill(positions, on_hosts[offsets[c] : offsets[c] + lengths[c]], remaining)
                if chosen is not None:
                    best_total, best = int(total[c]), chosen
                    break
            if best_total is not None and best_total <= bound:
                break
        if best is not None:
            np.subtract.at(self.class_left, view.target_class[best], 1)
        return best

    def candidate_count(self, positions: list[int]) -> int:
        """How many hosts have an eligible compatible target for each of these devices."""
        candidates = self._hosts_for(positions[0])
        for position in positions[1:]:
            candidates = np.intersect1d(candidates, self._hosts_for(position), assume_unique=True)
        return len(candidates)

    def _best_rank(self, position: int) -> int:
        """The best rank the device could still have anywhere (a lower bound: ``class_left``
        counts only what this chooser took, so it is never below what is really left)."""
        ranks = self.view.mover_ranks(position)
        usable = (ranks >= 0) & (self.class_left > 0)
        return int(ranks[usable].min()) if usable.any() else 0

    def _fill(self, positions: list[int], on_host: np.ndarray, remaining: np.ndarray) -> list[int] | None:
        """Each device in turn takes its best target on this host (least rank, then input order)."""
        view = self.view
        taken: dict[int, int] = {}
        chosen = []
        for position in positions:
            ranks = view.mover_ranks(position)[view.target_class[on_host]]
            twin = int(view.twin[position])
            pick = -1
            for j, r in sorted(zip(on_host.tolist(), ranks.tolist()), key=lambda jr: (jr[1], jr[0])):
                if r >= 0 and j != twin and remaining[j] - taken.get(j, 0) > 0:
                    pick = j
                    break
            if pick < 0:
                return None
            taken[pick] = taken.get(pick, 0) + 1
            chosen.append(pick)
        return chosen
