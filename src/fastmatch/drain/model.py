"""The drain as an integer program over classes, solved exactly by HiGHS (scipy.optimize.milp).

Commodities are the movers' (class, own-id target) keys; buckets gather the eligible targets of
one class on one *place*: a host the model must see on its own (a host with a limit, a host a
VM group may go to), or, for every other host, all of them at once. Variables:

``x[k, b]``  devices of commodity k that go to bucket b (single-device VMs and VM groups alike)
``y[g, P]``  VM groups of type g (the multiset of their devices' commodities) placed on place P

Rows: a commodity's single-device VMs bound what it sends beyond its groups' devices; the
devices of the groups on a place find buckets on that place; buckets hold their capacity;
places their limit; group types their count. With y fixed this is a network flow (two laminar
families of rows), so its optimum is integral; y makes it an integer program, and all
variables are declared integer so that HiGHS's answer is integral as it stands.

The objective is lexicographic and solved in stages, each fixing the optimum of the one
before: most VMs, then most devices (only when VM groups exist: otherwise the two are the
same), then the least total rank (ranks: :mod:`fastmatch.drain.classes`).

Each solve tries the LP relaxation first and keeps it when integral (:func:`_integral_lp`).
Without VM groups (no y) the model is a network outright: OR-Tools' min-cost flow solves
it when installed (:func:`_min_cost_flow`), one HiGHS LP otherwise (:func:`_transportation`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import numpy.typing as npt

from ..errors import FastmatchError
from ..result import Int64s
from .classes import ClassView

if TYPE_CHECKING:
    from scipy import optimize, sparse
    from scipy.optimize._milp import _OptionsMILP  # the stubs' name for milp's options

ANY_PLACE = -2  # a group "place" that is every bucket: the bound of the relaxation
AGGREGATE = -1  # the bucket place of hosts the model does not see one by one


Floats = npt.NDArray[np.float64]
# A part of the objective: its name, coefficients over x then y, and sense (+1 maximise, -1 minimise).
Objective = tuple[str, Floats, int]


class StageCall(TypedDict):
    """One solver call."""

    stage: str
    status: int  # scipy.optimize.milp's
    seconds: float


class BlockStageCall(StageCall):
    block: int
    variables: int


class StageSummary(TypedDict):
    """The solver calls of one stage, summed over the blocks."""

    stage: str
    calls: int
    seconds: float
    largest_block: int
    not_optimal: int


def require_scipy() -> None:
    try:
        from scipy import optimize, sparse  # noqa: F401
    except ImportError:
        raise FastmatchError("fastmatch plan needs SciPy's HiGHS solver: pip install 'fastmatch[plan]'") from None


@dataclass
class Commodities:
    """Movers grouped by what decides where they may go: their class and their own-id target."""

    key_class: Int64s  # per commodity
    key_twin: Int64s  # per commodity
    of_mover: Int64s  # per mover
    singles: Int64s  # per commodity: single-device VMs
    group_type_of_vm: Int64s  # per VM: its group type, -1 for a single-device VM
    group_members: list[tuple[tuple[int, int], ...]]  # per group type: ((commodity, count), ...)
    group_count: Int64s  # per group type

    @classmethod
    def build(cls, view: ClassView) -> "Commodities":
        fleet = view.fleet
        keys = np.stack([view.mover_class, view.twin], axis=1) if len(fleet.movers) else np.zeros((0, 2), np.int64)
        unique, of_mover = np.unique(keys, axis=0, return_inverse=True)
        of_mover = of_mover.reshape(-1).astype(np.int64)
        sizes = fleet.vm_sizes
        singles = np.zeros(len(unique), dtype=np.int64)
        single_vms = np.flatnonzero(sizes == 1)
        np.add.at(singles, of_mover[fleet.vm_members[fleet.vm_start[single_vms]]], 1)
        type_of_vm = np.full(fleet.n_vms, -1, dtype=np.int64)
        types: dict[tuple[tuple[int, int], ...], int] = {}
        for v in np.flatnonzero(sizes > 1).tolist():
            members = of_mover[fleet.vm_devices(v)]
            commodity, count = np.unique(members, return_counts=True)
            key = tuple(zip(commodity.tolist(), count.tolist()))
            type_of_vm[v] = types.setdefault(key, len(types))
        counts = np.bincount(type_of_vm[type_of_vm >= 0], minlength=len(types)).astype(np.int64)
        return cls(unique[:, 0].copy(), unique[:, 1].copy(), of_mover, singles, type_of_vm, list(types), counts)

    def __len__(self) -> int:
        return len(self.key_class)


@dataclass
class Buckets:
    """Eligible targets of one class on one place (and a target some mover has the id of, alone)."""

    target_class: Int64s
    place: Int64s  # host number, or AGGREGATE
    twin: Int64s  # the one target of a bucket kept apart, or -1
    capacity: Int64s
    order: Int64s  # eligible target indices, grouped by bucket, in input order
    start: Int64s

    @classmethod
    def build(cls, view: ClassView, places: Int64s) -> "Buckets":
        """``places``: the host numbers the model sees one by one."""
        fleet = view.fleet
        eligible = np.flatnonzero(view.capacity > 0)
        seen = np.zeros(len(fleet.host_names), dtype=bool)
        seen[places] = True
        host = fleet.target_host[eligible]
        place = np.where(seen[host], host, AGGREGATE)
        twins = np.zeros(len(fleet.targets), dtype=bool)
        twins[view.twin[view.twin >= 0]] = True
        apart = np.where(twins[eligible], eligible, -1)
        keys = np.stack([view.target_class[eligible], place, apart], axis=1)
        unique, bucket_of = np.unique(keys, axis=0, return_inverse=True) if len(eligible) else (np.zeros((0, 3), np.int64), np.zeros(0, np.int64))
        bucket_of = bucket_of.reshape(-1)
        order = eligible[np.argsort(bucket_of, kind="stable")]
        start = np.searchsorted(np.sort(bucket_of), np.arange(len(unique) + 1))
        capacity = np.bincount(bucket_of, weights=view.capacity[eligible], minlength=len(unique)).astype(np.int64)
        return cls(unique[:, 0].copy(), unique[:, 1].copy(), unique[:, 2].copy(), capacity, order.astype(np.int64), start.astype(np.int64))

    def __len__(self) -> int:
        return len(self.target_class)

    def targets(self, b: int) -> Int64s:
        return self.order[self.start[b] : self.start[b + 1]]


@dataclass
class Model:
    commodities: Commodities
    buckets: Buckets
    pair_k: Int64s  # per x variable
    pair_b: Int64s
    pair_rank: Int64s
    group_g: Int64s  # per y variable
    group_place: Int64s
    host_limit: Int64s
    rows: int = 0

    @property
    def n_variables(self) -> int:
        return len(self.pair_k) + len(self.group_g)


def compatible_pairs(view: ClassView, commodities: Commodities, buckets: Buckets) -> tuple[Int64s, Int64s, Int64s]:
    """``(k, b, rank)`` of every commodity and bucket it may send to."""
    by_class_order = np.argsort(buckets.target_class, kind="stable")
    by_class_start = np.searchsorted(buckets.target_class[by_class_order], np.arange(view.scores.shape[1] + 1))
    ks, bs, rs = [], [], []
    for k in range(len(commodities)):
        c, twin = int(commodities.key_class[k]), int(commodities.key_twin[k])
        ranks = view.class_ranks[c] if twin < 0 else view.ranks(c, twin)
        classes = np.flatnonzero(ranks >= 0)
        if not len(classes):
            continue
        lengths = by_class_start[classes + 1] - by_class_start[classes]
        starts = np.repeat(by_class_start[classes] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        chosen = by_class_order[starts + np.arange(int(lengths.sum()))]
        if twin >= 0:
            chosen = chosen[buckets.twin[chosen] != twin]
        ks.append(np.full(len(chosen), k, dtype=np.int64))
        bs.append(chosen.astype(np.int64))
        rs.append(ranks[buckets.target_class[chosen]])
    if not ks:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(ks), np.concatenate(bs), np.concatenate(rs)


def build_model(
    view: ClassView, commodities: Commodities, places: Int64s, group_places: list[Int64s]
) -> Model:
    """The model that sees ``places`` one by one and lets group type g go to ``group_places[g]``
    (host numbers among ``places``, or ANY_PLACE)."""
    buckets = Buckets.build(view, places)
    pair_k, pair_b, pair_rank = compatible_pairs(view, commodities, buckets)
    group_g = np.concatenate([np.full(len(p), g, dtype=np.int64) for g, p in enumerate(group_places)]) if group_places else np.zeros(0, np.int64)
    group_place = np.concatenate(group_places).astype(np.int64) if group_places else np.zeros(0, np.int64)
    return Model(commodities, buckets, pair_k, pair_b, pair_rank, group_g, group_place, view.fleet.host_limit)


@dataclass
class Solution:
    x: Int64s  # per pair
    y: Int64s  # per group variable
    status: str  # "optimal" or "time-limit"
    objective: tuple[int, ...]  # (VMs, devices, total rank)
    seconds: float
    stages: list[StageSummary] = field(default_factory=list)


def _matrix(model: Model) -> tuple[sparse.csr_array[np.float64], Floats, Floats]:
    """Rows (A, lower, upper) of the model, as a CSR matrix over x then y."""
    require_scipy()
    from scipy import sparse

    com, buckets = model.commodities, model.buckets
    n_x, n_y = len(model.pair_k), len(model.group_g)
    rows: list[Int64s] = []
    cols: list[Int64s] = []
    vals: list[Floats] = []
    lower: list[Floats] = []
    upper: list[Floats] = []
    n_rows = 0

    def add(r: npt.ArrayLike, c: npt.ArrayLike, v: npt.ArrayLike) -> None:
        rows.append(np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.asarray(v, dtype=np.float64))

    x_cols = np.arange(n_x)
    # Group members, expanded: per y variable, its (commodity, count) pairs.
    member_vars: list[int] = []
    member_ks: list[int] = []
    member_ms: list[int] = []
    for var, g in enumerate(model.group_g.tolist()):
        for k, m in com.group_members[g]:
            member_vars.append(var)
            member_ks.append(k)
            member_ms.append(m)
    member_var = np.asarray(member_vars, dtype=np.int64)
    member_k = np.asarray(member_ks, dtype=np.int64)
    member_m = np.asarray(member_ms, dtype=np.float64)

    # 1. per commodity: sum x - group devices <= single-device VMs
    add(model.pair_k, x_cols, np.ones(n_x))
    add(member_k, n_x + member_var, -member_m)
    lower.append(np.full(len(com), -np.inf))
    upper.append(com.singles.astype(np.float64))
    n_rows += len(com)

    # 2. per (commodity, group place): the groups' devices there find buckets there
    if len(member_var):
        place_of_member = model.group_place[member_var]
        keys = np.stack([member_k, place_of_member], axis=1)
        unique, row_of_member = np.unique(keys, axis=0, return_inverse=True)
        row_of_member = row_of_member.reshape(-1)
        add(n_rows + row_of_member, n_x + member_var, -member_m)
        # x pairs whose bucket is on a row's place, and every x pair of a commodity with an ANY_PLACE row
        width = len(model.host_limit) + 2
        row_keys = unique[:, 0] * width + (unique[:, 1] + 2)  # sorted, as np.unique sorts rows
        pair_place = model.buckets.place[model.pair_b]
        row_parts: list[npt.NDArray[np.intp]] = []
        col_parts: list[npt.NDArray[np.intp]] = []
        for place in (pair_place, np.full(n_x, ANY_PLACE)):
            wanted = model.pair_k * width + (place + 2)
            at = np.minimum(np.searchsorted(row_keys, wanted), max(len(row_keys) - 1, 0))
            hit = np.flatnonzero(row_keys[at] == wanted)
            row_parts.append(at[hit])
            col_parts.append(hit)
        row_list, col_list = np.concatenate(row_parts), np.concatenate(col_parts)
        add(n_rows + row_list, col_list, np.ones(len(col_list)))
        lower.append(np.zeros(len(unique)))
        upper.append(np.full(len(unique), np.inf))
        n_rows += len(unique)

    # 3. per bucket: capacity
    add(n_rows + model.pair_b, x_cols, np.ones(n_x))
    lower.append(np.full(len(buckets), -np.inf))
    upper.append(buckets.capacity.astype(np.float64))
    n_rows += len(buckets)

    # 4. per limited place
    limited = np.flatnonzero(model.host_limit >= 0)
    if len(limited):
        row_of_host = np.full(len(model.host_limit), -1, dtype=np.int64)
        row_of_host[limited] = np.arange(len(limited))
        pair_place = buckets.place[model.pair_b]
        on = np.flatnonzero((pair_place >= 0) & (row_of_host[np.maximum(pair_place, 0)] >= 0))
        add(n_rows + row_of_host[pair_place[on]], on, np.ones(len(on)))
        lower.append(np.full(len(limited), -np.inf))
        upper.append(model.host_limit[limited].astype(np.float64))
        n_rows += len(limited)

    # 5. per group type: count
    if len(model.group_g):
        add(n_rows + model.group_g, n_x + np.arange(n_y), np.ones(n_y))
        lower.append(np.full(len(com.group_count), -np.inf))
        upper.append(com.group_count.astype(np.float64))
        n_rows += len(com.group_count)

    matrix = sparse.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_x + n_y)
    )
    model.rows = n_rows
    return matrix, np.concatenate(lower), np.concatenate(upper)


def objectives(model: Model) -> list[Objective]:
    """The objective's parts: (name, coefficients over x then y, sense), sense +1 to maximise,
    -1 to minimise: VMs placed, devices placed, total rank."""
    n_x = len(model.pair_k)
    sizes = np.array([sum(m for _, m in members) for members in model.commodities.group_members], dtype=np.float64)
    vms = np.concatenate([np.ones(n_x), -(sizes[model.group_g] - 1) if len(model.group_g) else np.zeros(0)])
    devices = np.concatenate([np.ones(n_x), np.zeros(len(model.group_g))])
    rank = np.concatenate([model.pair_rank.astype(np.float64), np.zeros(len(model.group_g))])
    return [("vms", vms, 1), ("devices", devices, 1), ("rank", rank, -1)]


# A weighted objective is exact while every value it takes is an integer a double holds
# exactly, with room for the solver's tolerances.
EXACT_WEIGHTED = 2.0**50
INTEGRAL = 1e-6  # how far from an integer an LP value may be and still count as that integer


def solve(model: Model, time_limit: float | None = None) -> Solution:
    """The lexicographic optimum (or, when ``time_limit`` seconds run out, the best plan found).

    The rows split into independent blocks (kinds of hardware never compete for a target):
    each block is solved on its own, smallest first, and the lexicographic optimum of the
    whole is the blocks' optima together. A block whose objective fits :data:`EXACT_WEIGHTED`
    is solved once with weights that make the order strict (a VM outweighs every device, a
    device every rank); a larger one in stages, each fixing the optimum of the one before.
    """
    started = time.perf_counter()
    n_x, n_y = len(model.pair_k), len(model.group_g)
    n = n_x + n_y
    if n == 0:
        return Solution(np.zeros(0, np.int64), np.zeros(0, np.int64), "optimal", (0, 0, 0), 0.0)
    if n_y == 0:
        flow = _min_cost_flow(model)
        if flow is not None:  # and SciPy, about a second to import, is not needed
            return _whole(model, flow[0], flow[1], "min-cost flow (OR-Tools)", started)
    require_scipy()
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    matrix, lower, upper = _matrix(model)
    variable_upper = np.concatenate(
        [model.buckets.capacity[model.pair_b].astype(np.float64), model.commodities.group_count[model.group_g].astype(np.float64)]
    )
    parts = objectives(model)
    if n_y == 0:
        flow = _transportation(matrix, lower, upper, variable_upper, parts, int(model.commodities.singles.sum()), time_limit)
        if flow is not None:
            return _whole(model, flow[0], flow[1], "transportation (LP)", started)
    n_rows = matrix.shape[0]
    graph = sparse.block_array([[None, matrix], [matrix.T, None]], format="csr", dtype=np.float64)
    _, label = connected_components(graph, directed=False)
    row_label, column_label = label[:n_rows], label[n_rows:]
    blocks = np.unique(column_label)
    sizes = np.bincount(column_label)
    best = np.zeros(n, dtype=np.int64)
    status = "optimal"
    stages: list[BlockStageCall] = []
    devices_of = _devices_per_row(model)
    for block in sorted(blocks.tolist(), key=lambda b: (sizes[b], b)):
        columns = np.flatnonzero(column_label == block)
        rows = np.flatnonzero(row_label == block)
        left = None if time_limit is None else time_limit - (time.perf_counter() - started)
        if left is not None and left <= 0:
            status = "time-limit"  # the blocks not reached place nothing: still a feasible plan
            break
        values, block_status, block_stages = _solve_block(
            matrix[rows][:, columns], lower[rows], upper[rows], variable_upper[columns],
            [(name, c[columns], sense) for name, c, sense in parts], int(devices_of[rows].sum()), n_y > 0, left,
        )
        stages.extend(
            {"block": int(block), "variables": len(columns), "stage": stage["stage"], "status": stage["status"], "seconds": stage["seconds"]}
            for stage in block_stages
        )
        if values is not None:
            best[columns] = values
        if block_status != "optimal":
            status = "time-limit"
    objective = tuple(int(round(float(c @ best))) for _, c, _ in parts)
    return Solution(best[:n_x], best[n_x:], status, objective, time.perf_counter() - started, _summarised(stages))


def _whole(model: Model, values: Int64s, seconds: float, stage: str, started: float) -> Solution:
    """The solution of a model without VM groups solved in one call."""
    objective = tuple(int(round(float(c @ values))) for _, c, _ in objectives(model))
    summary: StageSummary = {"stage": stage, "calls": 1, "seconds": seconds, "largest_block": len(values), "not_optimal": 0}
    return Solution(values, values[:0], "optimal", objective, time.perf_counter() - started, [summary])


def _min_cost_flow(model: Model) -> tuple[Int64s, float] | None:
    """The optimum of a model without VM groups by OR-Tools' min-cost flow (the ``ortools``
    extra), or None without it.

    Without groups the model is a network: source -> commodity (its single-device VMs) ->
    bucket (the rank of the pair per device) -> the bucket's host when it has a limit -> sink.
    A maximum flow of least cost is the lexicographic optimum (every VM one device: most VMs,
    then least total rank), exactly, in integers, and some thirty times faster than HiGHS's LP
    on the same model (BENCHMARKS.md); it has no time limit, and needs none."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError:
        return None
    started = time.perf_counter()
    com, buckets = model.commodities, model.buckets
    n_k, n_b, n_x = len(com), len(buckets), len(model.pair_k)
    limited = np.flatnonzero(model.host_limit >= 0)
    source, sink = 0, 1
    commodity_node = 2 + np.arange(n_k)
    bucket_node = 2 + n_k + np.arange(n_b)
    host_node = np.full(len(model.host_limit) + 1, sink)  # the last slot: AGGREGATE, to the sink
    host_node[limited] = 2 + n_k + n_b + np.arange(len(limited))
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.concatenate([np.full(n_k, source), commodity_node[model.pair_k], bucket_node, host_node[limited]]),
        np.concatenate([commodity_node, bucket_node[model.pair_b], host_node[buckets.place], np.full(len(limited), sink)]),
        np.concatenate([com.singles, buckets.capacity[model.pair_b], buckets.capacity, model.host_limit[limited]]),
        np.concatenate([np.zeros(n_k, np.int64), model.pair_rank, np.zeros(n_b + len(limited), np.int64)]),
    )
    supply = int(com.singles.sum())
    flow.set_node_supply(source, supply)
    flow.set_node_supply(sink, -supply)
    if flow.solve_max_flow_with_min_cost() != flow.OPTIMAL:
        return None
    values = np.asarray(flow.flows(np.arange(n_k, n_k + n_x)), dtype=np.int64)
    return values, time.perf_counter() - started


def _transportation(
    matrix: sparse.csr_array[np.float64],
    lower: Floats,
    upper: Floats,
    variable_upper: Floats,
    parts: list[Objective],
    devices: int,
    time_limit: float | None,
) -> tuple[Int64s, float] | None:
    """The optimum of a model without VM groups as one linear program over all its blocks, or
    None (the blocks' own solves then settle it).

    Without groups the rows are a commodity's VMs, a bucket's capacity and a host's limit over
    its buckets: a bipartite network with one laminar side, whose matrix is totally unimodular,
    so the simplex method's answer is integral (:func:`_integral_lp` checks). With one device
    per VM, VMs and devices are the same count: two weights make the order strict (a VM
    outweighs every total rank), and the coefficients stay small enough for one LP over
    every block, where the blocks' three weights are solved block by block."""
    from scipy import optimize

    by_name = {name: c for name, c, _ in parts}
    rank = by_name["rank"]
    vm_weight = float(rank.max(initial=0)) * devices + 1  # more than any total rank
    if vm_weight * (devices + 1) >= EXACT_WEIGHTED:
        return None
    bounds = optimize.Bounds(np.zeros(matrix.shape[1]), variable_upper)
    return _integral_lp(vm_weight * by_name["vms"] - rank, bounds, [optimize.LinearConstraint(matrix, lower, upper)], time_limit)


def _integral_lp(
    coefficients: Floats, bounds: optimize.Bounds, constraints: list[optimize.LinearConstraint], time_limit: float | None
) -> tuple[Int64s, float] | None:
    """The maximum of ``coefficients`` over the LP relaxation when the solver's answer is
    integral (then no integer answer can be better: it is the integer program's optimum), with
    the seconds it took; None when it is fractional or the time ran out. The drain's models
    are networks but for the VM groups' columns, and their LP optima are integral as a rule:
    one LP instead of a branch-and-bound run that would first solve the same LP."""
    from scipy import optimize

    options: _OptionsMILP = {"disp": False, "presolve": True}
    if time_limit is not None:
        options["time_limit"] = time_limit
    started = time.perf_counter()
    n = len(coefficients)
    res = optimize.milp(-coefficients, integrality=np.zeros(n, dtype=np.int64), bounds=bounds, constraints=constraints, options=options)
    if res.status != 0 or res.x is None:
        return None
    values = np.rint(res.x)
    if np.abs(res.x - values).max(initial=0.0) > INTEGRAL:
        return None
    return values.astype(np.int64), time.perf_counter() - started


def _devices_per_row(model: Model) -> Int64s:
    """Per row of the model, the devices its commodity row stands for (0 for other rows): a
    block's devices are the sum over its rows."""
    com = model.commodities
    devices = com.singles.astype(np.int64).copy()
    for members, count in zip(com.group_members, com.group_count.tolist()):
        for k, m in members:
            devices[k] += m * count
    out = np.zeros(model.rows, dtype=np.int64)
    out[: len(com)] = devices
    return out


def _solve_block(
    matrix: sparse.csr_array[np.float64],
    lower: Floats,
    upper: Floats,
    variable_upper: Floats,
    parts: list[Objective],
    devices: int,
    groups: bool,
    time_limit: float | None,
) -> tuple[Int64s | None, str, list[StageCall]]:
    """One block: ``(values or None, status, stages)``."""
    from scipy import optimize

    n = matrix.shape[1]
    bounds = optimize.Bounds(np.zeros(n), variable_upper)
    constraints = [optimize.LinearConstraint(matrix, lower, upper)]
    by_name = {name: (c, sense) for name, c, sense in parts}
    worst_rank = float(by_name["rank"][0].max(initial=0))
    rank_weight = 1.0
    device_weight = worst_rank * devices + 1  # more than any total rank
    vm_weight = (devices + 1) * device_weight  # more than any number of devices, weighted
    if vm_weight * (devices + 1) < EXACT_WEIGHTED:
        vms, devices_c, rank = by_name["vms"][0], by_name["devices"][0], by_name["rank"][0]
        weighted = [("weighted", vm_weight * vms + device_weight * devices_c - rank_weight * rank, 1)]
        return _stages(weighted, bounds, constraints, n, time_limit)
    # Without VM groups every VM is one device: the devices stage would repeat the VMs stage.
    staged = [part for part in parts if part[0] != "devices" or groups]
    return _stages(staged, bounds, constraints, n, time_limit)


def _stages(
    stages: list[Objective],
    bounds: optimize.Bounds,
    constraints: list[optimize.LinearConstraint],
    n: int,
    time_limit: float | None,
) -> tuple[Int64s | None, str, list[StageCall]]:
    from scipy import optimize

    started = time.perf_counter()
    best: Int64s | None = None
    status = "optimal"
    report: list[StageCall] = []
    for name, coefficients, sense in stages:
        options: _OptionsMILP = {"disp": False, "mip_rel_gap": 0.0, "presolve": True}
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - started)
            if left <= 0:
                status = "time-limit"
                break
            options["time_limit"] = left
        stage_start = time.perf_counter()
        relaxed = _integral_lp(sense * coefficients, bounds, constraints, None if time_limit is None else left)
        if relaxed is not None:
            best = relaxed[0]
            report.append({"stage": f"{name} (LP, integral)", "status": 0, "seconds": time.perf_counter() - stage_start})
        else:
            if time_limit is not None:
                options["time_limit"] = time_limit - (time.perf_counter() - started)
                if options["time_limit"] <= 0:
                    status = "time-limit"
                    break
            res = optimize.milp(-sense * coefficients, integrality=np.ones(n, dtype=np.int64), bounds=bounds, constraints=constraints, options=options)
            report.append({"stage": name, "status": int(res.status), "seconds": time.perf_counter() - stage_start})
            if res.x is None:
                if res.status == 1:  # the limit came before any plan of this stage: keep the last stage's
                    status = "time-limit"
                    break
                raise FastmatchError(f"the solver failed at the {name} stage: {res.message}")
            best = np.rint(res.x).astype(np.int64)
            if res.status != 0:
                status = "time-limit"
                break
        value = float(np.rint(coefficients @ best))
        fixed = (value, np.inf) if sense > 0 else (-np.inf, value)
        constraints = [*constraints, optimize.LinearConstraint(coefficients.reshape(1, -1), *fixed)]
    return best, status, report


def _summarised(stages: list[BlockStageCall]) -> list[StageSummary]:
    """The solver calls, summed per stage name (a fleet may have hundreds of blocks)."""
    out: dict[str, StageSummary] = {}
    for stage in stages:
        entry = out.setdefault(stage["stage"], {"stage": stage["stage"], "calls": 0, "seconds": 0.0, "largest_block": 0, "not_optimal": 0})
        entry["calls"] += 1
        entry["seconds"] += stage["seconds"]
        entry["largest_block"] = max(entry["largest_block"], stage["variables"])
        entry["not_optimal"] += stage["status"] != 0
    return list(out.values())
