"""The exact drain model with VM groups, per host, measured (issue 11: "proven, not guessed").

Not part of the package: the figures in BENCHMARKS.md ("An exact model of the VM groups")
come from this script, which shows why the plan with thousands of VM groups is not made
provably optimal within the 10 s target.

The model holds, per VM group type, its cheapest candidate hosts (``--hosts K``, ties kept
together; cost: the total of its devices' best ranks on the host before anything is used,
a lower bound of any later cost), and one relaxed column per type, *elsewhere*: the group on
a host not held, its devices taking compatible capacity anywhere (class level) at the cost of
the cheapest host left out. Every real plan maps into it at the same or a better objective,
so its optimum is a bound, and a real plan when no group is *elsewhere* (then proven optimal;
otherwise more hosts and another round). Variables:

``x[k, B]``  single-device VMs of commodity k to bucket B (the singles' buckets)
``o[k, B]``  devices of groups placed *elsewhere* to bucket B (no rank: the column has it)
``f[k, c]``  devices of groups on host h to child bucket c (a bucket's targets on host h)
``y[g, h]``  groups of type g on host h; ``e[g]`` groups of type g *elsewhere*

Usage (a fleet from ``fastmatch generate ... --vm-devices 1-4`` and a drain file)::

    python benches/plan_exact_model.py SOURCES TARGETS DRAIN --hosts 1 --solver lp|highs|cpsat --seconds 60
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import fastmatch
from fastmatch.drain.classes import ClassView
from fastmatch.drain.fleet import drain_fleet
from fastmatch.drain.greedy import HostChooser
from fastmatch.drain.model import Buckets, Commodities, Objective, compatible_pairs
from fastmatch.result import Int64s

Floats = npt.NDArray[np.float64]


def first_costs(chooser: HostChooser, positions: list[int]) -> tuple[Int64s, Int64s]:
    """The candidate hosts of a group's devices and on each the total of their best ranks
    there before anything is used."""
    candidates, at_of_kind = chooser._candidates(positions)
    total = np.zeros(len(candidates), dtype=np.int64)
    for position in positions:
        kind = chooser._kind(position)
        total += chooser.shared.first_scores[kind][at_of_kind[kind]]
    return candidates, total


@dataclass
class GroupHosts:
    """Per group type, its candidate hosts cheapest first and their costs (the total of its
    devices' best ranks there before anything is used: a lower bound of any later cost)."""

    hosts: list[Int64s]
    costs: list[Int64s]

    @classmethod
    def build(cls, view: ClassView, commodities: Commodities, chooser: HostChooser) -> GroupHosts:
        first_vm: dict[int, int] = {}
        for v, g in enumerate(commodities.group_type_of_vm.tolist()):
            if g >= 0:
                first_vm.setdefault(g, v)
        hosts, costs = [], []
        for g in range(len(commodities.group_count)):
            candidates, cost = first_costs(chooser, view.fleet.vm_devices(first_vm[g]).tolist())
            order = np.lexsort((candidates, cost))
            hosts.append(candidates[order])
            costs.append(cost[order])
        return cls(hosts, costs)

    def cut(self, g: int, wanted: int) -> int:
        """How many of type g's hosts to hold to have at least ``wanted``, ties kept together
        (so that what is left out costs strictly more than what is in)."""
        costs = self.costs[g]
        if wanted >= len(costs):
            return len(costs)
        return int(np.searchsorted(costs, costs[wanted - 1], side="right"))


@dataclass
class HostModel:
    """The model over the hosts held per group type (``held[g]`` of ``GroupHosts.hosts[g]``)."""

    parents: Buckets
    x_k: Int64s
    x_b: Int64s
    x_rank: Int64s
    o_k: Int64s
    o_b: Int64s
    f_k: Int64s
    f_c: Int64s
    f_rank: Int64s
    child_parent: Int64s
    child_host: Int64s
    child_capacity: Int64s
    child_order: Int64s  # eligible targets grouped by child bucket, in input order
    child_start: Int64s
    y_g: Int64s
    y_host: Int64s
    e_g: Int64s
    e_cost: Int64s
    rows: int = 0

    @property
    def n_variables(self) -> int:
        return len(self.x_k) + len(self.o_k) + len(self.f_k) + len(self.y_g) + len(self.e_g)


def _commodity_ranks(view: ClassView, commodities: Commodities) -> Int64s:
    """(commodities, target classes): each commodity's rank per target class, -1 where none."""
    out = view.class_ranks[commodities.key_class].copy()
    for k in np.flatnonzero(commodities.key_twin >= 0).tolist():
        out[k] = view.ranks(int(commodities.key_class[k]), int(commodities.key_twin[k]))
    return out


def build_host_model(
    view: ClassView,
    commodities: Commodities,
    parents: Buckets,
    parent_pairs: tuple[Int64s, Int64s, Int64s],
    commodity_ranks: Int64s,
    group_hosts: GroupHosts,
    held: Int64s,
) -> HostModel:
    fleet = view.fleet
    n_types = len(commodities.group_count)
    pair_k, pair_b, pair_rank = parent_pairs
    singles = commodities.singles[pair_k] > 0
    x_k, x_b, x_rank = pair_k[singles], pair_b[singles], pair_rank[singles]

    held_hosts = [group_hosts.hosts[g][: held[g]] for g in range(n_types)]
    elsewhere = np.array([held[g] < len(group_hosts.hosts[g]) for g in range(n_types)], dtype=bool)
    e_g = np.flatnonzero(elsewhere).astype(np.int64)
    e_cost = np.array([group_hosts.costs[g][held[g]] for g in e_g.tolist()], dtype=np.int64)
    in_elsewhere = np.zeros(len(commodities), dtype=bool)
    for g in e_g.tolist():
        in_elsewhere[[k for k, _ in commodities.group_members[g]]] = True
    outside = in_elsewhere[pair_k]
    o_k, o_b = pair_k[outside], pair_b[outside]

    y_g = np.repeat(np.arange(n_types, dtype=np.int64), held)
    y_host = np.concatenate(held_hosts).astype(np.int64) if n_types else np.zeros(0, np.int64)

    # Child buckets: the targets of a parent bucket on one held host.
    parent_of_target = np.full(len(fleet.targets), -1, dtype=np.int64)
    parent_of_target[parents.order] = np.repeat(np.arange(len(parents)), np.diff(parents.start))
    is_held = np.zeros(len(fleet.host_names), dtype=bool)
    is_held[y_host] = True
    on_held = parents.order[is_held[fleet.target_host[parents.order]]]
    on_held = np.sort(on_held)
    keys = np.stack([fleet.target_host[on_held], parent_of_target[on_held]], axis=1)
    if len(on_held):
        unique, child_of = np.unique(keys, axis=0, return_inverse=True)
    else:
        unique, child_of = np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    child_of = child_of.reshape(-1)
    child_host, child_parent = unique[:, 0].astype(np.int64), unique[:, 1].astype(np.int64)
    by_child = np.argsort(child_of, kind="stable")
    child_order = on_held[by_child].astype(np.int64)
    child_start = np.searchsorted(child_of[by_child], np.arange(len(unique) + 1)).astype(np.int64)
    host_child_start = np.searchsorted(child_host, np.arange(len(fleet.host_names) + 1))

    # f pairs: per (commodity, held host) of the groups, the compatible children on that host.
    kh = np.array(
        sorted({(k, int(h)) for g in range(n_types) for k, _ in commodities.group_members[g] for h in held_hosts[g].tolist()}),
        dtype=np.int64,
    ).reshape(-1, 2)
    lengths = host_child_start[kh[:, 1] + 1] - host_child_start[kh[:, 1]]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, np.int64)
    children = np.repeat(host_child_start[kh[:, 1]] - offsets, lengths) + np.arange(int(lengths.sum()))
    f_k = np.repeat(kh[:, 0], lengths)
    f_rank = commodity_ranks[f_k, parents.target_class[child_parent[children]]]
    usable = (f_rank >= 0) & (parents.twin[child_parent[children]] != np.where(commodities.key_twin[f_k] >= 0, commodities.key_twin[f_k], -2))
    return HostModel(
        parents, x_k, x_b, x_rank, o_k, o_b, f_k[usable], children[usable].astype(np.int64), f_rank[usable],
        child_parent, child_host, np.bincount(child_of, weights=view.capacity[on_held], minlength=len(unique)).astype(np.int64), child_order, child_start, y_g, y_host, e_g, e_cost,
    )


def _rows(model: HostModel, commodities: Commodities, fleet_limit: Int64s) -> tuple[object, Floats, Floats, Int64s]:
    """(A as CSR over x, o, f, y, e; lower; upper; devices per row for the weights)."""
    from scipy import sparse

    n_x, n_o, n_f, n_y, n_e = len(model.x_k), len(model.o_k), len(model.f_k), len(model.y_g), len(model.e_g)
    x0, o0, f0, y0, e0 = 0, n_x, n_x + n_o, n_x + n_o + n_f, n_x + n_o + n_f + n_y
    rows: list[Int64s] = []
    cols: list[Int64s] = []
    vals: list[Floats] = []
    lower: list[Floats] = []
    upper: list[Floats] = []
    devices: list[Int64s] = []
    n_rows = 0

    def add(r: npt.ArrayLike, c: npt.ArrayLike, v: npt.ArrayLike) -> None:
        r, c = np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64)
        rows.append(r)
        cols.append(c)
        vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), r.shape))

    def block(count: int, lo: npt.ArrayLike, hi: npt.ArrayLike, dev: npt.ArrayLike = 0) -> None:
        nonlocal n_rows
        lower.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (count,)))
        upper.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (count,)))
        devices.append(np.broadcast_to(np.asarray(dev, dtype=np.int64), (count,)))
        n_rows += count

    members = [(g, k, m) for g in range(len(commodities.group_count)) for k, m in commodities.group_members[g]]
    member_g = np.array([g for g, _, _ in members], dtype=np.int64)
    member_k = np.array([k for _, k, _ in members], dtype=np.int64)
    member_m = np.array([m for _, _, m in members], dtype=np.float64)
    sizes = np.bincount(member_g, weights=member_m, minlength=len(commodities.group_count)).astype(np.int64)

    # 1. singles per commodity
    add(n_rows + model.x_k, x0 + np.arange(n_x), 1.0)
    block(len(commodities), -np.inf, commodities.singles, commodities.singles)

    # 2. per commodity, the devices of groups placed elsewhere find buckets
    add(n_rows + model.o_k, o0 + np.arange(n_o), 1.0)
    e_index = np.full(len(commodities.group_count), -1, dtype=np.int64)
    e_index[model.e_g] = np.arange(n_e)
    has_e = e_index[member_g] >= 0
    add(n_rows + member_k[has_e], e0 + e_index[member_g[has_e]], -member_m[has_e])
    block(len(commodities), 0.0, 0.0)

    # 3. per (commodity, held host), the devices of groups there find children there
    f_host = model.child_host[model.f_c]
    y_of_type_start = np.searchsorted(model.y_g, np.arange(len(commodities.group_count) + 1))
    y_member_var = []
    y_member_k = []
    y_member_m = []
    for g, k, m in members:
        for var in range(int(y_of_type_start[g]), int(y_of_type_start[g + 1])):
            y_member_var.append(var)
            y_member_k.append(k)
            y_member_m.append(m)
    ym_var = np.asarray(y_member_var, dtype=np.int64)
    ym_k = np.asarray(y_member_k, dtype=np.int64)
    ym_host = model.y_host[ym_var]
    width = len(fleet_limit)
    row_keys, ym_row = np.unique(ym_k * width + ym_host, return_inverse=True)
    ym_row = ym_row.reshape(-1)
    add(n_rows + ym_row, y0 + ym_var, -np.asarray(y_member_m, dtype=np.float64))
    f_row = np.searchsorted(row_keys, model.f_k * width + f_host)
    add(n_rows + f_row, f0 + np.arange(n_f), 1.0)
    block(len(row_keys), 0.0, 0.0)

    # 4. capacity per bucket: singles, elsewhere, and the children's
    parents = model.parents
    add(n_rows + model.x_b, x0 + np.arange(n_x), 1.0)
    add(n_rows + model.o_b, o0 + np.arange(n_o), 1.0)
    add(n_rows + model.child_parent[model.f_c], f0 + np.arange(n_f), 1.0)
    block(len(parents), -np.inf, parents.capacity)

    # 5. capacity per child bucket
    add(n_rows + model.f_c, f0 + np.arange(n_f), 1.0)
    block(len(model.child_parent), -np.inf, model.child_capacity)

    # 6. per limited host
    limited = np.flatnonzero(fleet_limit >= 0)
    if len(limited):
        row_of_host = np.full(len(fleet_limit), -1, dtype=np.int64)
        row_of_host[limited] = np.arange(len(limited))
        place = parents.place
        for start, ks_b, count in ((x0, model.x_b, n_x), (o0, model.o_b, n_o), (f0, model.child_parent[model.f_c], n_f)):
            p = place[ks_b]
            on = np.flatnonzero((p >= 0) & (row_of_host[np.maximum(p, 0)] >= 0))
            add(n_rows + row_of_host[p[on]], start + on, 1.0)
        block(len(limited), -np.inf, fleet_limit[limited])

    # 7. groups per type
    add(n_rows + model.y_g, y0 + np.arange(n_y), 1.0)
    add(n_rows + model.e_g, e0 + np.arange(n_e), 1.0)
    block(len(commodities.group_count), -np.inf, commodities.group_count, commodities.group_count * sizes)

    matrix = sparse.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, model.n_variables)
    )
    model.rows = n_rows
    return matrix, np.concatenate(lower), np.concatenate(upper), np.concatenate(devices)


def _objectives(model: HostModel, commodities: Commodities) -> list[Objective]:
    """VMs, devices and total rank over x, o, f, y, e (sense +1 maximise, -1 minimise)."""
    sizes = np.array([sum(m for _, m in members) for members in commodities.group_members], dtype=np.float64)
    n_x, n_o, n_f = len(model.x_k), len(model.o_k), len(model.f_k)
    zeros_o, zeros_f = np.zeros(n_o), np.zeros(n_f)
    vms = np.concatenate([np.ones(n_x), zeros_o, zeros_f, np.ones(len(model.y_g)), np.ones(len(model.e_g))])
    devices = np.concatenate([np.ones(n_x), zeros_o, zeros_f, sizes[model.y_g], sizes[model.e_g]])
    rank = np.concatenate(
        [model.x_rank.astype(np.float64), zeros_o, model.f_rank.astype(np.float64), np.zeros(len(model.y_g)), model.e_cost.astype(np.float64)]
    )
    return [("vms", vms, 1), ("devices", devices, 1), ("rank", rank, -1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources")
    parser.add_argument("targets")
    parser.add_argument("drain")
    parser.add_argument("--hosts", type=int, default=1, help="cheapest candidate hosts held per group type")
    parser.add_argument("--solver", choices=["lp", "highs", "cpsat"], default="lp")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    from scipy import optimize, sparse
    from scipy.sparse.csgraph import connected_components

    started = time.perf_counter()
    policy = fastmatch.Policy.default()
    sources, targets = fastmatch.load(args.sources, policy), fastmatch.load(args.targets, policy)
    with open(args.drain, encoding="utf-8") as lines:
        drain = lines.read().split()
    view = ClassView.build(drain_fleet(sources, targets, drain), 2)
    commodities = Commodities.build(view)
    fleet = view.fleet
    limited = np.flatnonzero(fleet.host_limit >= 0)
    group_hosts = GroupHosts.build(view, commodities, HostChooser(view, view.capacity.copy()))
    parents = Buckets.build(view, limited)
    held = np.array([group_hosts.cut(g, args.hosts) for g in range(len(commodities.group_count))], dtype=np.int64)
    model = build_host_model(
        view, commodities, parents, compatible_pairs(view, commodities, parents), _commodity_ranks(view, commodities), group_hosts, held
    )
    matrix, lower, upper, devices = _rows(model, commodities, fleet.host_limit)
    n = model.n_variables
    print(f"read and built in {time.perf_counter() - started:.1f} s: {len(commodities.group_count):,} group types, "
          f"{int(held.sum()):,} (type, host) pairs held; variables x {len(model.x_k):,}, o {len(model.o_k):,}, "
          f"f {len(model.f_k):,}, y {len(model.y_g):,}, e {len(model.e_g):,}: {n:,}; rows {matrix.shape[0]:,}; nonzeros {matrix.nnz:,}")
    variable_upper = np.concatenate(
        [parents.capacity[model.x_b], parents.capacity[model.o_b], model.child_capacity[model.f_c],
         commodities.group_count[model.y_g], commodities.group_count[model.e_g]]
    ).astype(np.float64)
    parts = {name: c for name, c, _ in _objectives(model, commodities)}
    graph = sparse.block_array([[None, matrix], [matrix.T, None]], format="csr")
    _, label = connected_components(graph, directed=False)
    row_label, column_label = label[: matrix.shape[0]], label[matrix.shape[0]:]
    print(f"blocks {len(np.unique(column_label))}, largest {np.bincount(column_label).max():,} variables")
    started = time.perf_counter()
    if args.solver == "lp":
        # The weighted objective block by block, as the package solves its models.
        values = np.zeros(n)
        for block in np.unique(column_label).tolist():
            columns, rows = np.flatnonzero(column_label == block), np.flatnonzero(row_label == block)
            block_devices = int(devices[rows].sum())
            c = {name: v[columns] for name, v in parts.items()}
            device_weight = c["rank"].max(initial=0) * block_devices + 1
            vm_weight = (block_devices + 1) * device_weight
            res = optimize.milp(
                -(vm_weight * c["vms"] + device_weight * c["devices"] - c["rank"]), integrality=np.zeros(len(columns)),
                bounds=optimize.Bounds(0, variable_upper[columns]),
                constraints=[optimize.LinearConstraint(matrix[rows][:, columns], lower[rows], upper[rows])],
                options={"time_limit": args.seconds},
            )
            print(f"  block of {len(columns):,} variables: {res.message}")
            if res.x is not None:
                values[columns] = res.x
        e = values[n - len(model.e_g):]
        print(f"LP in {time.perf_counter() - started:.1f} s: largest distance from an integer "
              f"{np.abs(values - np.rint(values)).max():.2f}; group types elsewhere {int((e > 1e-6).sum()):,}; "
              + ", ".join(f"{name} {float(v @ values):,.1f}" for name, v in parts.items()))
    elif args.solver == "highs":
        # The first stage only (most VMs), as a MIP.
        res = optimize.milp(
            -parts["vms"], integrality=np.ones(n), bounds=optimize.Bounds(0, variable_upper),
            constraints=[optimize.LinearConstraint(matrix, lower, upper)], options={"time_limit": args.seconds, "mip_rel_gap": 0},
        )
        print(f"HiGHS MIP (most VMs) in {time.perf_counter() - started:.1f} s: {res.message}; "
              f"best {None if res.x is None else float(parts['vms'] @ res.x)}, dual bound {getattr(res, 'mip_dual_bound', None)}")
    else:
        from ortools.sat.python import cp_model

        sat = cp_model.CpModel()
        variables = [sat.new_int_var(0, int(u), "") for u in variable_upper.tolist()]
        matrix = matrix.tocsr()
        for r in range(matrix.shape[0]):
            s, t = matrix.indptr[r], matrix.indptr[r + 1]
            expression = sum(int(a) * variables[j] for j, a in zip(matrix.indices[s:t].tolist(), matrix.data[s:t].tolist()))
            if np.isfinite(lower[r]):
                sat.add(expression >= int(lower[r]))
            if np.isfinite(upper[r]):
                sat.add(expression <= int(upper[r]))
        sat.maximize(sum(variables[j] for j in np.flatnonzero(parts["vms"]).tolist()))
        print(f"CP-SAT model built in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = args.seconds
        solver.parameters.num_workers = 2
        status = solver.solve(sat)
        print(f"CP-SAT (most VMs) in {time.perf_counter() - started:.1f} s: {solver.status_name(status)}, "
              f"best {solver.objective_value}, bound {solver.best_objective_bound}")


if __name__ == "__main__":
    main()
