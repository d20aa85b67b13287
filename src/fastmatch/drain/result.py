"""Plan: the moves, the VMs left behind and why, and a summary; as arrays and as records."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..result import Int64s
from ..scores import ScoreParts
from .classes import ClassView
from .unplaced import Explainer
from .waves import fewest_waves, schedule

HIGHS = "HiGHS (scipy.optimize.milp)"
MIN_COST_FLOW = "OR-Tools (min-cost flow)"


def solver_name(stages: list[str]) -> str:
    """The solvers that made a joint plan, from its stages' names (a model without VM groups
    may be OR-Tools' alone)."""
    by_flow = ["OR-Tools" in stage for stage in stages]
    names = ([HIGHS] if not all(by_flow) else []) + ([MIN_COST_FLOW] if any(by_flow) else [])
    return " and ".join(names) or HIGHS  # no stage: nothing to solve


class Plan:
    """A drain plan (see :func:`fastmatch.plan`).

    Arrays, one entry per move, in wave order (then VM order, then device order):
    ``move_source`` and ``move_target`` (indices into the source and target fleets),
    ``move_wave`` (from 1), ``move_vm`` (VM number, into ``vm_names``). ``unplaced`` lists
    the VMs that stay, each ``{"vm", "sources", "reasons"}``; ``summary`` the counts, the
    capacity used per host and the solver's status and time. :meth:`to_records` gives the
    moves as ``fastmatch plan --format json`` writes them, :meth:`json` the whole document.
    """

    def __init__(self, view: ClassView, target_of_mover: Int64s, strategy: str, solver: dict[str, Any],
                 max_parallel: int | None, max_per_host: int | None, seconds: float) -> None:
        self.view = view
        fleet = view.fleet
        self.fleet = fleet
        self.strategy = strategy
        self.max_parallel = max_parallel
        self.max_per_host = max_per_host
        sizes = fleet.vm_sizes
        placed_devices = np.bincount(fleet.vm_of_mover, weights=target_of_mover >= 0, minlength=fleet.n_vms)
        self.vm_placed = placed_devices == sizes
        # A VM is whole or not at all: a part placed (a planner's bug) would be unplaced here and the
        # validator would say so; the plans built here never have one.
        self.target_of_mover = np.where(self.vm_placed[fleet.vm_of_mover], target_of_mover, -1)
        self.vm_names = fleet.vm_names

        placed_vms = np.flatnonzero(self.vm_placed)
        first = fleet.vm_members[fleet.vm_start[placed_vms]]
        from_host = np.array([fleet.sources.hosts[i] for i in fleet.movers[first].tolist()], dtype=object)
        from_code = np.unique(from_host, return_inverse=True)[1].reshape(-1) if len(from_host) else np.zeros(0, np.int64)
        to_code = fleet.target_host[self.target_of_mover[first]] if len(first) else np.zeros(0, np.int64)
        vm_wave = np.zeros(fleet.n_vms, dtype=np.int64)
        vm_wave[placed_vms] = schedule(from_code, to_code, max_parallel, max_per_host)
        self.fewest_waves = fewest_waves(from_code, to_code, max_parallel, max_per_host)
        self.vm_wave = vm_wave

        positions = np.flatnonzero(self.target_of_mover >= 0)
        order = np.lexsort((positions, fleet.vm_of_mover[positions], vm_wave[fleet.vm_of_mover[positions]]))
        positions = positions[order]
        self.move_position = positions
        self.move_source = fleet.movers[positions]
        self.move_target = self.target_of_mover[positions]
        self.move_vm = fleet.vm_of_mover[positions]
        self.move_wave = vm_wave[self.move_vm]
        self.solver = solver
        self.seconds = seconds

    # -- what people read --------------------------------------------------------------
    @property
    def status(self) -> str:
        """``optimal`` (proven), ``feasible`` (not proven: see summary['solver']), ``time-limit``
        (the best plan found when the time ran out) or ``greedy`` (the baseline, never proven)."""
        status: str = self.solver["status"]
        return status

    @cached_property
    def move_rank(self) -> Int64s:
        """int64 per move: 1 if the target is among the source's best available ones, 2 for the next
        best distinct score, and so on."""
        return self.view.move_ranks(self.move_position, self.move_target) + 1

    @cached_property
    def move_score(self) -> Int64s:
        """int64 per move: the kernel's score (internal; outputs carry its parts and the rank)."""
        view = self.view
        scores: Int64s = view.scores[view.mover_class[self.move_position], view.target_class[self.move_target]]
        return scores

    @cached_property
    def score_parts(self) -> ScoreParts:
        """The parts that decided each move's score (``fastmatch.scores.ScoreParts``)."""
        return self.view.result.score_parts(self.move_position, self.move_target, self.move_score)

    @cached_property
    def unplaced(self) -> list[dict[str, Any]]:
        """One dict per VM left where it is: ``vm``, its ``sources`` (device ids) and the
        ``reasons`` it could not move, in words."""
        fleet = self.fleet
        explainer = Explainer(self.view, self.target_of_mover, self.vm_placed)
        out = []
        for v in np.flatnonzero(~self.vm_placed).tolist():
            sources = [fleet.sources.ids[fleet.movers[p]] for p in fleet.vm_devices(v).tolist()]
            out.append({"vm": fleet.vm_names[v], "sources": sources, "reasons": explainer.reasons(v)})
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per move: wave, vm, source, from_host, target, to_host, rank, score (its parts)."""
        fleet = self.fleet
        sources, targets = fleet.sources, fleet.targets
        parts = self.score_parts
        return [
            {
                "wave": int(self.move_wave[m]),
                "vm": self.vm_names[self.move_vm[m]],
                "source": sources.ids[i],
                "from_host": sources.hosts[i],
                "target": targets.ids[j],
                "to_host": targets.hosts[j],
                "rank": int(self.move_rank[m]),
                "score": parts.json(m),
            }
            for m, (i, j) in enumerate(zip(self.move_source.tolist(), self.move_target.tolist()))
        ]

    @cached_property
    def summary(self) -> dict[str, Any]:
        """The plan in figures: strategy and solver status, drained hosts, VMs and devices
        placed and not, waves, the limits used, capacity used per host, solver and seconds."""
        fleet = self.fleet
        sizes = fleet.vm_sizes
        placed_devices = int(sizes[self.vm_placed].sum())
        to_hosts = fleet.target_host[self.move_target]
        used = np.bincount(to_hosts, minlength=len(fleet.host_names))
        capacity_used = {fleet.host_names[h] or fleet.targets.ids[self.move_target[to_hosts == h][0]]: int(used[h])
                         for h in np.flatnonzero(used).tolist()}
        return {
            "strategy": self.strategy,
            "status": self.status,
            "drained_hosts": list(fleet.drained),
            "vms": {"total": fleet.n_vms, "placed": int(self.vm_placed.sum()), "unplaced": int((~self.vm_placed).sum())},
            "devices": {"total": len(fleet.movers), "placed": placed_devices, "unplaced": len(fleet.movers) - placed_devices},
            "total_rank_above_best": int((self.move_rank - 1).sum()),
            "waves": int(self.move_wave.max(initial=0)),
            "fewest_waves_possible": self.fewest_waves,
            "max_parallel": self.max_parallel,
            "max_per_host": self.max_per_host,
            "capacity_used": capacity_used,
            "solver": self.solver,
            "seconds": round(self.seconds, 3),
        }

    def json(self) -> dict[str, Any]:
        """The document ``fastmatch plan --format json`` writes."""
        return {"moves": self.to_records(), "unplaced": self.unplaced, "summary": self.summary}

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<Plan {self.strategy} ({self.status}): {s['vms']['placed']:,} of {s['vms']['total']:,} VMs placed, "
            f"{len(self.move_source):,} moves in {s['waves']} waves>"
        )
