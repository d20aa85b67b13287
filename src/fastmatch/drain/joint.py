"""The joint plan: which model to solve, and whether its answer is proven optimal.

Without VM groups every host not under a limit folds into one place per target class: the
model is a transportation problem over classes, solved once, exactly.

VM groups need the hosts they may go to. A group type's candidate hosts are those where each
of its commodities alone has the compatible capacity it needs. When all (type, candidate host)
pairs are few enough (``FULL_MODEL_GROUP_VARIABLES``), the model holds them all and its optimum
is the optimum. Otherwise the model holds the most capacious candidates of each type, and the
answer is compared with a bound: the same model with the one-host rule relaxed (a group's
devices may go to any hosts). Equal on all three objectives: proven optimal; otherwise the
summary says which parts are proven and by how much the rest may fall short.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .assign import assign
from .classes import ClassView
from .greedy import greedy
from .model import ANY_PLACE, Commodities, _scipy, build_model, solve

FULL_MODEL_GROUP_VARIABLES = 200_000
RESTRICTED_EXTRA_HOSTS = 8  # candidate hosts kept per group type beyond twice its VMs


@dataclass
class JointOutcome:
    target: np.ndarray
    status: str  # optimal | feasible | time-limit
    seconds: float
    variables: int = 0
    constraints: int = 0
    objective: tuple[int, ...] = ()
    bound: tuple[int, ...] | None = None
    stages: list[dict] = field(default_factory=list)
    model: str = "classes"


def joint(view: ClassView, time_limit: float | None = None) -> JointOutcome:
    started = time.perf_counter()
    commodities = Commodities.build(view)
    limited = np.flatnonzero(view.fleet.host_limit >= 0)
    if not len(commodities.group_count):
        model = build_model(view, commodities, limited, [])
        return _finish(view, model, solve(model, time_limit), started, "classes")

    candidates = candidate_hosts(view, commodities)
    total = sum(len(c) for c in candidates)
    if total <= FULL_MODEL_GROUP_VARIABLES:
        places = np.unique(np.concatenate([limited, *candidates])).astype(np.int64)
        model = build_model(view, commodities, places, candidates)
        return _finish(view, model, solve(model, time_limit), started, "classes and candidate hosts")

    relaxed = build_model(view, commodities, limited, [np.array([ANY_PLACE])] * len(candidates))
    bound = solve(relaxed, time_limit)
    kept = [c[: 2 * int(n) + RESTRICTED_EXTRA_HOSTS] for c, n in zip(candidates, commodities.group_count)]
    places = np.unique(np.concatenate([limited, *kept])).astype(np.int64)
    model = build_model(view, commodities, places, kept)
    left = None if time_limit is None else max(time_limit - (time.perf_counter() - started), 0.0)
    outcome = _finish(view, model, solve(model, left), started, "classes and the most capacious candidate hosts")
    outcome.bound = bound.objective
    outcome.stages = bound.stages + outcome.stages
    if outcome.status == "optimal" and bound.status == "optimal" and outcome.objective != bound.objective:
        outcome.status = "feasible"
    return outcome


def _finish(view, model, solution, started, kind) -> JointOutcome:
    if not solution.objective:  # the time limit came before any plan: the greedy one is feasible
        target = greedy(view)
        status = "time-limit"
    else:
        target = assign(view, model, solution)
        status = solution.status
    return JointOutcome(
        target,
        status,
        time.perf_counter() - started,
        model.n_variables,
        model.rows,
        solution.objective,
        None,
        solution.stages,
        kind,
    )


def candidate_hosts(view: ClassView, commodities: Commodities) -> list[np.ndarray]:
    """Per group type, the hosts where each of its commodities alone finds the compatible
    capacity it needs (and the host's limit and capacity allow the group's size), most
    compatible capacity first, then host order."""
    _, sparse = _scipy()
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
        hosts = None
        room = None
        for k, m in members:
            r = row_of[k]
            start, end = per_commodity.indptr[r], per_commodity.indptr[r + 1]
            idx, cap = per_commodity.indices[start:end], per_commodity.data[start:end]
            ok = idx[cap >= m]
            capacity_there = dict(zip(idx.tolist(), cap.tolist()))
            hosts = ok if hosts is None else np.intersect1d(hosts, ok, assume_unique=True)
            room = {h: room.get(h, 0) + capacity_there[h] for h in hosts.tolist()} if room is not None else {h: capacity_there[h] for h in hosts.tolist()}
        limit = fleet.host_limit[hosts]
        hosts = hosts[((limit < 0) | (limit >= size)) & (host_capacity[hosts] >= size)]
        order = sorted(hosts.tolist(), key=lambda h: (-room[h], h))
        out.append(np.asarray(order, dtype=np.int64))
    return out
