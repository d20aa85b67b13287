"""A brute-force drain planner for tiny fleets: every way of placing every VM, the best kept.

Deliberately naive and independent of fastmatch.drain: compatibility and scores from the
plain-Python reference, one device at a time, every combination enumerated. Its optimum is the
oracle the joint planner's optimum is held to.

The objective, as the issue states it: most VMs, then most devices, then the best total
score, where a device's score counts as its rank (0: one of the best scores among the
targets it could go to, 1: the next distinct score, ...), summed, less is better.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Mapping

from fastmatch import DeviceSet
from fastmatch.engine import match_reference


class Oracle:
    def __init__(self, sources: DeviceSet, targets: DeviceSet, drain: Iterable[str], host_limits: Mapping[str, int] | None = None):
        self.sources, self.targets = sources, targets
        self.drained = set(drain)
        self.limits = dict(host_limits or {})
        result = match_reference(sources, targets, sources.policy)
        self.scores = result.scores
        self.movers = [i for i, h in enumerate(sources.hosts) if h in self.drained]
        self.eligible = [j for j, h in enumerate(targets.hosts) if h not in self.drained and targets.capacities[j] > 0]
        vms: dict[str, list[int]] = {}
        for i in self.movers:
            vms.setdefault(sources.vms[i] or "\0" + sources.ids[i], []).append(i)
        self.vms = list(vms.values())

    def host(self, j: int) -> str:
        return self.targets.hosts[j] or "\0" + self.targets.ids[j]  # a target without a host is one of its own

    def rank(self, i: int, j: int) -> int:
        mine = {int(self.scores[i, k]) for k in self.eligible if self.scores[i, k] >= 0}
        return sum(1 for s in mine if s > self.scores[i, j])

    def objective(self, moves: Mapping[int, int]) -> tuple[int, int, int]:
        """(VMs placed, devices placed, -total rank) of a plan {source index: target index}."""
        vms = sum(1 for devices in self.vms if all(i in moves for i in devices))
        return vms, len(moves), -sum(self.rank(i, j) for i, j in moves.items())

    def best(self) -> tuple[int, int, int]:
        options = []
        for devices in self.vms:
            choices = [None]
            per_device = [[j for j in self.eligible if self.scores[i, j] >= 0] for i in devices]
            for combo in itertools.product(*per_device):
                if len({self.host(j) for j in combo}) == 1:
                    choices.append(combo)
            options.append(choices)
        best = (0, 0, 0)
        for plan in itertools.product(*options):
            used: dict[int, int] = {}
            per_host: dict[str, int] = {}
            moves = {}
            ok = True
            for devices, combo in zip(self.vms, plan):
                if combo is None:
                    continue
                for i, j in zip(devices, combo):
                    used[j] = used.get(j, 0) + 1
                    per_host[self.host(j)] = per_host.get(self.host(j), 0) + 1
                    moves[i] = j
            for j, n in used.items():
                ok &= n <= self.targets.capacities[j]
            for host, n in per_host.items():
                ok &= host not in self.limits or n <= self.limits[host]
            if ok:
                best = max(best, self.objective(moves))
        return best

    def objective_of(self, document) -> tuple[int, int, int]:
        at_s = {d: i for i, d in enumerate(self.sources.ids)}
        at_t = {d: j for j, d in enumerate(self.targets.ids)}
        return self.objective({at_s[m["source"]]: at_t[m["target"]] for m in document["moves"]})
