"""From class-level counts to device moves, deterministically.

The solver says how many devices of each commodity go to each bucket, and how many VM groups
of each type go to each place; any devices and targets that fit those counts make an equally
good plan. The choice is fixed so that the same input always gives the same plan:

- VM groups of a type take their places in input order, places in host order;
- each device takes its commodity's buckets best rank first (then by the bucket's first
  target in input order), so earlier VMs get the better targets where counts allow;
- within a bucket, targets fill in input order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..result import Int64s
from .classes import ClassView
from .model import Model, Solution


class TargetFill:
    """Targets of buckets taken one instance at a time, in input order."""

    def __init__(self, view: ClassView, model: Model) -> None:
        self.remaining = view.capacity.copy()
        self.order = model.buckets.order
        self.pointer = model.buckets.start[:-1].copy()

    def take(self, b: int) -> int:
        p = self.pointer[b]
        while self.remaining[self.order[p]] == 0:
            p += 1
        self.pointer[b] = p
        j = int(self.order[p])
        self.remaining[j] -= 1
        return j


def assign(view: ClassView, model: Model, solution: Solution) -> Int64s:
    """int64 per mover: its target, or -1."""
    fleet, commodities, buckets = view.fleet, model.commodities, model.buckets
    target = np.full(len(fleet.movers), -1, dtype=np.int64)
    fill = TargetFill(view, model)
    left = solution.x.copy()
    first_target = buckets.order[buckets.start[:-1]] if len(buckets) else np.zeros(0, np.int64)
    preference = np.lexsort((first_target[model.pair_b], model.pair_rank, model.pair_k)) if len(left) else np.zeros(0, np.int64)
    pair_place = buckets.place[model.pair_b]

    # Per commodity, its pairs in preference order (and per commodity and place, for groups).
    k_sorted = model.pair_k[preference]
    k_start = np.searchsorted(k_sorted, np.arange(len(commodities) + 1))

    at_place: dict[tuple[int, int], Int64s] = {}

    def pairs_of(k: int, place: int | None) -> Int64s:
        chosen = preference[k_start[k] : k_start[k + 1]]
        if place is None:
            return chosen
        if (k, place) not in at_place:
            at_place[k, place] = chosen[pair_place[chosen] == place]
        return at_place[k, place]

    def place_device(position: int, pairs: Int64s) -> None:
        for p in pairs.tolist():
            if left[p] > 0:
                left[p] -= 1
                target[position] = fill.take(int(model.pair_b[p]))
                return
        raise AssertionError("the solver's counts leave a device without a bucket")  # the rows forbid it

    vms_of_type: dict[int, list[int]] = {}
    for v, g in enumerate(commodities.group_type_of_vm.tolist()):
        if g >= 0:
            vms_of_type.setdefault(g, []).append(v)
    next_vm = {g: 0 for g in vms_of_type}
    for var in np.lexsort((model.group_place, model.group_g)).tolist():
        g, place = int(model.group_g[var]), int(model.group_place[var])
        for _ in range(int(solution.y[var])):
            v = vms_of_type[g][next_vm[g]]
            next_vm[g] += 1
            for position in fleet.vm_devices(v).tolist():
                place_device(position, pairs_of(int(commodities.of_mover[position]), place))

    sizes = fleet.vm_sizes
    single_positions = fleet.vm_members[fleet.vm_start[np.flatnonzero(sizes == 1)]]
    single_positions = np.sort(single_positions)
    for k, positions in _grouped(commodities.of_mover[single_positions], single_positions, len(commodities)):
        pairs = pairs_of(k, None).tolist()
        i = 0
        for position in positions.tolist():
            while i < len(pairs) and left[pairs[i]] == 0:
                i += 1
            if i == len(pairs):
                break
            left[pairs[i]] -= 1
            target[position] = fill.take(int(model.pair_b[pairs[i]]))
    return target


def _grouped(keys: Int64s, values: Int64s, n: int) -> Iterator[tuple[int, Int64s]]:
    order = np.argsort(keys, kind="stable")
    start = np.searchsorted(keys[order], np.arange(n + 1))
    for k in range(n):
        if start[k + 1] > start[k]:
            yield k, values[order[start[k] : start[k + 1]]]
