"""The joint plan: which model to solve, and whether its answer is proven optimal.

Without VM groups every host not under a limit folds into one place per target class: the
model is a transportation problem over classes, solved once, exactly.

VM groups need the hosts they may go to. A group type's candidate hosts are those where each
of its commodities alone has the compatible capacity it needs. With up to
``FULL_MODEL_GROUPS`` groups the model holds every (type, candidate host) pair, and its
optimum is the optimum.

More groups than that (a fleet's worth: thousands of groups, nearly each of a type of its
own, each with hundreds of candidate hosts) make a model of millions of integer variables.
Then the plan is made in two exact steps around one heuristic one, and measured against a
bound:

1. the bound: the same model with the one-host rule relaxed (a group's devices may go to any
   hosts, if some host has a compatible target for each of them), over classes only; it
   also says how many groups of each type to place;
2. those groups, the ones with the fewest candidate hosts first, each to the host
   :class:`~fastmatch.drain.greedy.HostChooser` picks (least total rank);
3. the single-device VMs, exactly, on the capacity left;
4. the greedy baseline's plan instead, should it be better (step 2 is a heuristic).

When the plan reaches the bound on all three objectives it is proven optimal; otherwise its
status is ``feasible`` and the summary gives both, so the gap is known.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from ..result import Int64s
from .assign import assign
from .classes import ClassView
from .greedy import HostChooser, greedy
from .model import (
    ANY_PLACE,
    Commodities,
    Model,
    Solution,
    StageSummary,
    build_model,
    require_scipy,
    solve,
)

FULL_MODEL_GROUPS = 200


@dataclass
class JointOutcome:
    target: Int64s
    status: str  # optimal | feasible | time-limit
    seconds: float
    variables: int = 0
    constraints: int = 0
    objective: tuple[int, ...] = ()
    bound: tuple[int, ...] | None = None
    stages: list[StageSummary] = field(default_factory=list)
    model: str = "classes"


def joint_plan(view: ClassView, time_limit: float | None = None) -> JointOutcome:
    started = time.perf_counter()
    commodities = Commodities.build(view)
    limited = np.flatnonzero(view.fleet.host_limit >= 0)
    if not len(commodities.group_count):
        model = build_model(view, commodities, limited, [])
        return _finish(view, model, solve(model, time_limit), started, "classes")
    if int(commodities.group_count.sum()) <= FULL_MODEL_GROUPS:
        candidates = candidate_hosts(view, commodities)
        places = np.unique(np.concatenate([limited, *candidates])).astype(np.int64)
        model = build_model(view, commodities, places, candidates)
        return _finish(view, model, solve(model, time_limit), started, "classes and every candidate host of each VM group")
    return _groups_then_singles(view, commodities, limited, time_limit, started)


def _groups_then_singles(
    view: ClassView, commodities: Commodities, limited: Int64s, time_limit: float | None, started: float
) -> JointOutcome:
    fleet = view.fleet
    # A group type with no host where each of its devices has a compatible target is left out of
    # the bound: its relaxation would place it anyway, and the bound would promise what none can do.
    remaining = view.capacity.copy()
    chooser = HostChooser(view, remaining)
    first_vm: dict[int, int] = {}
    for v, g in enumerate(commodities.group_type_of_vm.tolist()):
        if g >= 0:
            first_vm.setdefault(g, v)
    choices = [chooser.candidate_count(fleet.vm_devices(first_vm[g]).tolist()) for g in range(len(commodities.group_count))]
    places = [np.array([ANY_PLACE]) if n else np.zeros(0, dtype=np.int64) for n in choices]
    relaxed = build_model(view, commodities, limited, places)
    bound = solve(relaxed, time_limit)
    target = np.full(len(fleet.movers), -1, dtype=np.int64)
    used = np.zeros(len(fleet.host_names), dtype=np.int64)
    wanted = np.zeros(len(commodities.group_count), dtype=np.int64)
    if bound.objective:
        wanted[relaxed.group_g] = bound.y
    # The groups with the fewest hosts to go to first (then input order): a group with many
    # choices is the one that can still find a place when others have taken theirs.
    groups = [v for v, g in enumerate(commodities.group_type_of_vm.tolist()) if g >= 0 and wanted[g] > 0]
    for v in sorted(groups, key=lambda v: (choices[commodities.group_type_of_vm[v]], v)):
        g = int(commodities.group_type_of_vm[v])
        if wanted[g] == 0:
            continue
        positions = fleet.vm_devices(v).tolist()
        chosen = chooser.best(positions, used)
        if chosen is None:
            continue
        wanted[g] -= 1
        for position, j in zip(positions, chosen):
            target[position] = j
            chooser.take(j)
            used[fleet.target_host[j]] += 1

    # The single-device VMs, exactly, on what the groups left (ranks keep their meaning: they
    # are measured against the fleet before the drain, as everywhere).
    limits = np.where(fleet.host_limit >= 0, fleet.host_limit - used, -1)
    residual = dataclasses.replace(view, fleet=dataclasses.replace(fleet, host_limit=limits), capacity=remaining)
    residual.__dict__.update(class_ranks=view.class_ranks, class_capacity=view.class_capacity)
    singles = dataclasses.replace(
        commodities,
        group_type_of_vm=np.full(fleet.n_vms, -1, dtype=np.int64),
        group_members=[],
        group_count=np.zeros(0, dtype=np.int64),
    )
    left = None if time_limit is None else max(time_limit - (time.perf_counter() - started), 1e-3)
    model = build_model(residual, singles, limited, [])
    solution = solve(model, left)
    placed_singles = assign(residual, model, solution)
    target = np.where(target >= 0, target, placed_singles)
    objective = plan_objective(view, target)
    # The groups' step is a heuristic: where the baseline does better, its plan is the answer,
    # so that the joint plan never places fewer VMs than the greedy one.
    baseline = greedy(view, like=chooser)
    baseline_objective = plan_objective(view, baseline)
    if _better(baseline_objective, objective):
        target, objective = baseline, baseline_objective
    status = "time-limit" if "time-limit" in (bound.status, solution.status) else "optimal" if objective == bound.objective else "feasible"
    return JointOutcome(
        target,
        status,
        time.perf_counter() - started,
        relaxed.n_variables + model.n_variables,
        relaxed.rows + model.rows,
        objective,
        bound.objective,
        _prefixed("bound", bound.stages) + _prefixed("single-device VMs", solution.stages),
        "bound over classes; VM groups one by one (HostChooser); single-device VMs over classes",
    )


def _better(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Whether objective ``a`` is lexicographically better than ``b`` (ranks: less is better)."""
    return (a[0], a[1], -a[2]) > (b[0], b[1], -b[2])


def _prefixed(prefix: str, stages: list[StageSummary]) -> list[StageSummary]:
    return [{**s, "stage": f"{prefix}: {s['stage']}"} for s in stages]


def plan_objective(view: ClassView, target: Int64s) -> tuple[int, int, int]:
    """(VMs placed, devices placed, total rank) of a plan, VMs whole."""
    fleet = view.fleet
    placed = np.bincount(fleet.vm_of_mover, weights=target >= 0, minlength=fleet.n_vms) == fleet.vm_sizes
    moving = np.flatnonzero(placed[fleet.vm_of_mover])
    rank = int(view.move_ranks(moving, target[moving]).sum())
    return int(placed.sum()), len(moving), rank


def _finish(view: ClassView, model: Model, solution: Solution, started: float, kind: str) -> JointOutcome:
    target = assign(view, model, solution)
    objective = solution.objective
    if solution.status == "time-limit":
        # Blocks the time did not reach place nothing; the greedy plan, feasible too, may do better.
        baseline = greedy(view)
        baseline_objective = plan_objective(view, baseline)
        if _better(baseline_objective, plan_objective(view, target)):
            target, objective = baseline, baseline_objective
    return JointOutcome(
        target,
        solution.status,
        time.perf_counter() - started,
        model.n_variables,
        model.rows,
        objective,
        None,
        solution.stages,
        kind,
    )


def candidate_hosts(view: ClassView, commodities: Commodities) -> list[Int64s]:
    """Per group type, the hosts where each of its commodities alone finds the compatible
    capacity it needs (and the host's limit and capacity allow the group's size), most
    compatible capacity first, then host order."""
    require_scipy()
    from scipy import sparse

    fleet = view.fleet
    eligible = np.flatnonzero(view.capacity > 0)
    n_hosts = len(fleet.host_names)
    n_classes = view.scores.shape[1]
    class_host = sparse.csr_array(
        (view.capacity[eligible].astype(np.float64), (view.target_class[eligible], fleet.target_host[eligible])),
        shape=(n_classes, n_hosts),
    )
    in_groups = sorted({k for members in commodities.group_members for k, _ in members})
    rows = np.array([view.class_ranks[commodities.key_class[k]] >= 0 for k in in_groups], dtype=np.float64).reshape(len(in_groups), n_classes)
    per_commodity = (sparse.csr_array(rows) @ class_host).tocsr()
    row_of = {k: r for r, k in enumerate(in_groups)}
    host_capacity = np.bincount(fleet.target_host[eligible], weights=view.capacity[eligible], minlength=n_hosts)
    out = []
    for members in commodities.group_members:
        size = sum(m for _, m in members)
        hosts: np.ndarray | None = None  # sparse indices: int32 or int64
        room: dict[int, float] = {}
        for k, m in members:
            r = row_of[k]
            start, end = per_commodity.indptr[r], per_commodity.indptr[r + 1]
            idx, cap = per_commodity.indices[start:end], per_commodity.data[start:end]
            ok = idx[cap >= m]
            capacity_there = dict(zip(idx.tolist(), cap.tolist()))
            hosts = ok if hosts is None else np.intersect1d(hosts, ok, assume_unique=True)
            room = {h: room.get(h, 0) + capacity_there[h] for h in hosts.tolist()}
        assert hosts is not None  # a group has devices
        limit = fleet.host_limit[hosts]
        hosts = hosts[((limit < 0) | (limit >= size)) & (host_capacity[hosts] >= size)]
        order = sorted(hosts.tolist(), key=lambda h: (-room[h], h))
        out.append(np.asarray(order, dtype=np.int64))
    return out
