"""The drain at class level: which movers can go to which targets, and how good each is.

A match of the movers against every target gives each mover's descriptor class and each
target's; compatibility and scores are the same for every device of a class pair. What depends
on the devices is settled here: targets on drained hosts or without capacity receive nothing,
and a mover never goes to the target with its own id (docs/model.md section 6.1). Movers on drained
hosts never share a host with a target that may receive, so ``exclude_same_host`` excludes
nothing more.

Scores become ranks for the objective: a mover's rank at a target is how many distinct scores
better than that target's its available compatible targets offer (0: one of its best). Ranks
are small integers, where the scores are int64s of up to 2^62 that no LP should carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..devices import DeviceSet
from ..engine import match
from ..result import Int64s, MatchResult
from .fleet import DrainFleet


def mover_set(sources: DeviceSet, movers: Int64s) -> DeviceSet:
    """The sources at ``movers`` as a DeviceSet of their own, descriptors renumbered in order of
    first device as a read would number them."""
    kept, descriptor_of = np.unique(sources.descriptor_of[movers], return_inverse=True)
    first = np.full(len(kept), len(movers), dtype=np.int64)
    np.minimum.at(first, descriptor_of, np.arange(len(movers)))
    order = np.argsort(first, kind="stable")
    renumber = np.empty(len(kept), dtype=np.int64)
    renumber[order] = np.arange(len(kept))
    return DeviceSet(
        sources.policy,
        [sources.ids[i] for i in movers.tolist()],
        [sources.hosts[i] for i in movers.tolist()],
        [sources.vms[i] for i in movers.tolist()],
        sources.capacities[movers],
        renumber[descriptor_of].astype(np.int64),
        [sources.descriptors[int(d)] for d in kept[order]],
    )


@dataclass
class ClassView:
    fleet: DrainFleet
    result: MatchResult  # the movers (as result.sources) against every target
    mover_class: Int64s  # per mover
    target_class: Int64s  # per target
    scores: Int64s  # (mover classes, target classes), -1 incompatible
    capacity: Int64s  # per target: what it can take in this plan (0 when not eligible)
    twin: Int64s  # per mover: the eligible target with its id, or -1

    @classmethod
    def build(cls, fleet: DrainFleet, workers: int = -1) -> "ClassView":
        movers = mover_set(fleet.sources, fleet.movers)
        result = match(movers, fleet.targets, fleet.sources.policy, workers)
        # No target takes more devices than there are movers: the sums below stay in int64.
        capacity = np.where(fleet.eligible, np.minimum(fleet.targets.capacities, len(movers)), 0).astype(np.int64)
        twin = np.asarray(result.rules.source_twin, dtype=np.int64).copy()
        twin[(twin >= 0) & (capacity[np.maximum(twin, 0)] == 0)] = -1
        scores = result.class_scores if len(movers) else np.zeros((0, result.class_shape[1]), dtype=np.int64)
        return cls(fleet, result, result.source_class, result.target_class, scores, capacity, twin)

    @cached_property
    def class_capacity(self) -> Int64s:
        """int64 per target class: the capacity its eligible targets offer."""
        return np.bincount(self.target_class, weights=self.capacity, minlength=self.scores.shape[1]).astype(np.int64)

    def ranks(self, source_class: int, twin: int = -1) -> Int64s:
        """int64 per target class: the rank of its score for a mover of ``source_class`` (whose own
        id is target ``twin``, or -1), -1 where incompatible or where nothing has capacity."""
        row = self.scores[source_class]
        capacity = self.class_capacity
        if twin >= 0:
            capacity = capacity.copy()
            capacity[self.target_class[twin]] -= self.capacity[twin]
        available = (row >= 0) & (capacity > 0)
        distinct = np.unique(row[available])
        ranks = np.full(len(row), -1, dtype=np.int64)
        ranks[available] = len(distinct) - 1 - np.searchsorted(distinct, row[available])
        return ranks

    @cached_property
    def class_ranks(self) -> Int64s:
        """int64 (mover classes, target classes): :meth:`ranks` of each class, without twins."""
        out = np.full(self.scores.shape, -1, dtype=np.int64)
        for c in range(self.scores.shape[0]):
            out[c] = self.ranks(c)
        return out

    def move_ranks(self, positions: Int64s, targets: Int64s) -> Int64s:
        """int64 per (mover position, target) pair: :meth:`mover_ranks` of the mover at the
        target's class, in one lookup for all but the few movers whose own id is a target."""
        ranks: Int64s = self.class_ranks[self.mover_class[positions], self.target_class[targets]]
        for m in np.flatnonzero(self.twin[positions] >= 0).tolist():
            ranks[m] = self.mover_ranks(int(positions[m]))[self.target_class[targets[m]]]
        return ranks

    def mover_ranks(self, position: int) -> Int64s:
        """:meth:`ranks` for one mover (its class row, unless its own id is a target)."""
        twin = int(self.twin[position])
        c = int(self.mover_class[position])
        return self.class_ranks[c] if twin < 0 else self.ranks(c, twin)
