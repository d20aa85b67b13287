"""The baseline: what today's schedulers do, one VM at a time (``--strategy greedy``).

VMs in input order; a single-device VM takes its best available target (least rank, then
input order); a VM group takes the host where its devices' best available targets have the
least total rank, then the first host (:class:`HostChooser`). Nothing is reconsidered: a VM
placed early may take the only target a later one had.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..result import Int64s
from .classes import ClassView

DeviceKind = tuple[int, int]  # a mover's (class, twin): devices of one kind go to the same targets
Places = npt.NDArray[np.int32]  # positions among a kind's candidate hosts (hosts are far fewer than 2**31)


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


def greedy(view: ClassView, like: HostChooser | None = None) -> Int64s:
    """int64 per mover: its target, or -1. ``like``: a chooser of the same view whose
    candidate hosts and first scores the VM groups' chooser may share."""
    fleet = view.fleet
    target = np.full(len(fleet.movers), -1, dtype=np.int64)
    available = _Available(view)
    levels: dict[DeviceKind, list[Int64s]] = {}  # (class, twin) -> target classes by rank

    def rank_levels(position: int) -> list[Int64s]:
        key = (int(view.mover_class[position]), int(view.twin[position]))
        if key not in levels:
            ranks = view.mover_ranks(position)
            compatible = np.flatnonzero(ranks >= 0)
            order = compatible[np.argsort(ranks[compatible], kind="stable")]
            cuts = np.flatnonzero(np.diff(ranks[order])) + 1
            levels[key] = np.split(order, cuts) if len(order) else []
        return levels[key]

    hosts = HostChooser(view, available.remaining, like) if (fleet.vm_sizes > 1).any() else None

    def take(j: int) -> None:
        if hosts is None:
            available.remaining[j] -= 1
        else:
            hosts.take(j)
        used[fleet.target_host[j]] += 1

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
                    take(j)
                    target[position] = j
                    break
        else:
            assert hosts is not None  # made whenever a VM has several devices
            chosen = hosts.best(positions, used)
            if chosen is not None:
                for position, j in zip(positions, chosen):
                    take(j)
                    target[position] = j
    return target


def _first_within_limits(view: ClassView, available: _Available, level: Int64s, twin: int, used: Int64s) -> list[int]:
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
    the devices, taking their best targets there one after another, all find one.

    Each device kind (class, twin) keeps its best available rank on each of its candidate
    hosts, so a group's choice is a few array lookups over its candidate hosts instead of a
    walk over their targets. A kind's rank on a host changes only when a target there runs
    out (capacity only ever goes down), so every decrement goes through :meth:`take`, which
    marks that host for rescoring. Choosers made ``like`` another share what does not depend
    on capacity used (candidate hosts and the first scores): the joint plan and its greedy
    comparison score each kind once."""

    BIG = np.iinfo(np.int64).max // 64  # a rank no target has: "nothing here"
    order: Int64s  # eligible targets, grouped by host
    start: Int64s  # per host, where its targets start in order
    shared: _Shared

    def __init__(self, view: ClassView, remaining: Int64s, like: HostChooser | None = None) -> None:
        self.view = view
        self.remaining = remaining  # the caller's array, changed only through take()
        fleet = view.fleet
        self.host_version = np.zeros(len(fleet.host_names), dtype=np.int64)
        self.scores: dict[DeviceKind, tuple[Int64s, Int64s]] = {}  # kind -> (rank per candidate host, host versions then)
        if like is not None:
            self.order, self.start, self.shared = like.order, like.start, like.shared
            return
        eligible = np.flatnonzero(view.capacity > 0)
        hosts = fleet.target_host[eligible]
        order = np.argsort(hosts, kind="stable")
        self.order = eligible[order]
        self.start = np.searchsorted(hosts[order], np.arange(len(fleet.host_names) + 1))
        by_class = np.argsort(view.target_class[eligible], kind="stable")
        self.shared = _Shared(
            class_order=eligible[by_class],
            class_start=np.searchsorted(view.target_class[eligible][by_class], np.arange(view.scores.shape[1] + 1)),
        )

    def take(self, j: int) -> None:
        """One instance of target ``j`` used."""
        self.remaining[j] -= 1
        if self.remaining[j] == 0:
            self.host_version[self.view.fleet.target_host[j]] += 1

    def _kind(self, position: int) -> DeviceKind:
        return int(self.view.mover_class[position]), int(self.view.twin[position])

    def _hosts_for(self, kind: DeviceKind, position: int) -> Int64s:
        """Hosts (sorted) with an eligible target compatible with the mover at ``position``."""
        shared = self.shared
        if kind not in shared.hosts_of:
            view = self.view
            classes = np.flatnonzero(view.mover_ranks(position) >= 0)
            start, end = shared.class_start[classes], shared.class_start[classes + 1]
            lengths = end - start
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, np.int64)
            targets = shared.class_order[np.repeat(start - offsets, lengths) + np.arange(int(lengths.sum()))]
            targets = targets[targets != kind[1]]
            # Before anything is used, a host's score is its best compatible class's rank; one
            # slot per host (no sort of the targets, which can be most of a large fleet's).
            scores = np.full(len(self.start) - 1, self.BIG, dtype=np.int64)
            np.minimum.at(scores, view.fleet.target_host[targets], view.mover_ranks(position)[view.target_class[targets]])
            hosts = np.flatnonzero(scores < self.BIG)
            shared.hosts_of[kind] = hosts
            shared.first_scores[kind] = scores[hosts]
        return shared.hosts_of[kind]

    def _candidates(self, positions: list[int]) -> tuple[Int64s, dict[DeviceKind, Places]]:
        """Hosts (sorted) with an eligible compatible target for each of these devices, and
        per device kind where those hosts are among its own candidate hosts."""
        kinds = dict(sorted({self._kind(p): p for p in positions}.items()))
        shared = self.shared
        key = tuple(kinds)
        if key not in shared.candidates:
            own = {kind: self._hosts_for(kind, position) for kind, position in kinds.items()}
            candidates: Int64s | None = None
            for hosts in own.values():
                candidates = hosts if candidates is None else np.intersect1d(candidates, hosts, assume_unique=True)
            assert candidates is not None  # a group has devices
            # int32 places (hosts are far fewer than 2**31): these are kept for every group kind.
            shared.candidates[key] = candidates, {kind: np.searchsorted(hosts, candidates).astype(np.int32) for kind, hosts in own.items()}
        return shared.candidates[key]

    def _score(self, position: int, hosts: Int64s, remaining: Int64s) -> Int64s:
        """Per host, the best rank of a target there with capacity left for this device (BIG: none)."""
        if not len(hosts):
            return np.zeros(0, dtype=np.int64)
        view = self.view
        lengths = self.start[hosts + 1] - self.start[hosts]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        on_hosts = self.order[np.repeat(self.start[hosts] - offsets, lengths) + np.arange(int(lengths.sum()))]
        ranks = view.mover_ranks(position)[view.target_class[on_hosts]]
        usable = (ranks >= 0) & (remaining[on_hosts] > 0) & (on_hosts != view.twin[position])
        best: Int64s = np.minimum.reduceat(np.where(usable, ranks, self.BIG), offsets)
        return best

    def _ranks_on(self, position: int, candidates: Int64s, at: Places) -> Int64s:
        """The device's best available rank on each candidate host (at ``at`` among its own
        candidate hosts), rescoring hosts where a target ran out since this kind was last
        scored there."""
        kind = self._kind(position)
        hosts = self._hosts_for(kind, position)
        if kind not in self.scores:
            self.scores[kind] = (self.shared.first_scores[kind].copy(), np.zeros(len(hosts), dtype=np.int64))
        scores, versions = self.scores[kind]
        stale = at[versions[at] != self.host_version[candidates]]
        if len(stale):
            scores[stale] = self._score(position, hosts[stale], self.remaining)
            versions[stale] = self.host_version[hosts[stale]]
        at_candidates: Int64s = scores[at]
        return at_candidates

    def best(self, positions: list[int], used: Int64s) -> list[int] | None:
        """Targets for the devices at ``positions`` (mover positions), all on one host, or None:
        the host of least total rank (then first in order) where the devices find targets."""
        fleet = self.view.fleet
        candidates, at_of_kind = self._candidates(positions)
        limit = fleet.host_limit[candidates]
        within = (limit < 0) | (used[candidates] + len(positions) <= limit)
        if not within.all():
            candidates = candidates[within]
            at_of_kind = {kind: at[within] for kind, at in at_of_kind.items()}
        total = np.zeros(len(candidates), dtype=np.int64)
        for position in positions:
            total += self._ranks_on(position, candidates, at_of_kind[self._kind(position)])
        while len(total):
            c = int(np.argmin(total))  # candidates are in host order: the first least total
            if total[c] >= self.BIG:
                break
            h = candidates[c]
            chosen = self._fill(positions, self.order[self.start[h] : self.start[h + 1]])
            if chosen is not None:
                return chosen
            total[c] = self.BIG
        return None

    def candidate_count(self, positions: list[int]) -> int:
        """How many hosts have an eligible compatible target for each of these devices."""
        return len(self._candidates(positions)[0])

    def _fill(self, positions: list[int], on_host: Int64s) -> list[int] | None:
        """Each device in turn takes its best target on this host (least rank, then input order)."""
        view = self.view
        remaining = self.remaining
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


@dataclass
class _Shared:
    """What choosers of one view share: target classes' eligible targets, each device kind's
    candidate hosts and its scores before anything is used, each group's candidate hosts."""

    class_order: Int64s
    class_start: Int64s
    hosts_of: dict[DeviceKind, Int64s] = field(default_factory=dict)
    first_scores: dict[DeviceKind, Int64s] = field(default_factory=dict)
    # per group's device kinds: its candidate hosts, and per kind their places among the kind's own
    candidates: dict[tuple[DeviceKind, ...], tuple[Int64s, dict[DeviceKind, Places]]] = field(default_factory=dict)
