"""Drain plans (issue 11): one joint, capacity-aware evacuation plan for a set of hosts.

The pipeline, one module a stage: ``fleet`` (the drain checked: movers, VMs, eligible targets,
host limits) -> ``classes`` (the match, at class level, as ranks) -> ``joint`` (``model``: the
integer program HiGHS solves; ``assign``: its counts made into device moves) or ``greedy``
(the one-VM-at-a-time baseline) -> ``result`` (``Plan``: waves, unplaced reasons, summary).
``inputs`` and ``assume`` read the side files; ``validate`` checks any plan independently.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

from ..devices import DeviceSet
from ..engine import _policy_argument, as_device_set
from ..policy import Policy
from .assume import apply_assumptions, check_patches
from .classes import ClassView
from .fleet import drain_fleet
from .greedy import greedy
from .joint import joint_plan
from .result import Plan, solver_name

STRATEGIES = ("joint", "greedy")

__all__ = ["Plan", "plan", "STRATEGIES"]


def plan(
    sources: DeviceSet | Iterable[Mapping[str, Any]],
    targets: DeviceSet | Iterable[Mapping[str, Any]],
    drain: Iterable[str],
    policy: Policy | None = None,
    *,
    strategy: str = "joint",
    host_limits: Mapping[str, int] | None = None,
    assume: Any = None,
    max_parallel: int | None = None,
    max_per_host: int | None = None,
    time_limit: float | None = None,
    workers: int = -1,
    names: Mapping[str, Any] | None = None,
) -> Plan:
    """Plan the evacuation of the ``drain`` hosts: every source device on them moves to a
    compatible target off them, within capacity, each VM whole onto one host, or is listed as
    unplaced with why.

    ``strategy``: ``"joint"`` (the optimum of most VMs, then most devices, then best total rank,
    from HiGHS) or ``"greedy"`` (VMs in input order, each to its best available target).
    ``host_limits``: host -> most new devices on it. ``assume``: what-if patches applied to the
    fleets first (a list as :mod:`fastmatch.drain.assume` describes). ``max_parallel`` and
    ``max_per_host`` bound the migrations of a wave. ``time_limit`` (seconds) returns the best
    plan found by then, with status ``time-limit``. ``names`` (``sources``, ``drain``,
    ``host_limits``, ``assume``: file names) let errors name the files they come from.
    """
    started = time.perf_counter()
    names = dict(names or {})
    if policy is None:
        policy = sources.policy if isinstance(sources, DeviceSet) else Policy.default()
    policy = _policy_argument(policy)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    for name, value in (("max_parallel", max_parallel), ("max_per_host", max_per_host)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0):
        raise ValueError(f"time_limit must be a number of seconds > 0 or None, got {time_limit!r}")
    sources = as_device_set(sources, policy, "sources")
    targets = as_device_set(targets, policy, "targets")
    if assume is not None:
        patches = check_patches(assume, names.get("assume"))
        sources, targets = apply_assumptions(sources, targets, patches, names.get("assume"))
    fleet = drain_fleet(
        sources,
        targets,
        drain,
        host_limits,
        sources_name=names.get("sources"),
        drain_name=names.get("drain"),
        drain_lines=names.get("drain_lines"),
        limits_name=names.get("host_limits"),
    )
    view = ClassView.build(fleet, workers)
    if strategy == "greedy":
        solve_started = time.perf_counter()
        target = greedy(view)
        solver = {"name": "greedy", "status": "greedy", "seconds": round(time.perf_counter() - solve_started, 3)}
    else:
        outcome = joint_plan(view, time_limit)
        target = outcome.target
        solver = {
            "name": solver_name([stage["stage"] for stage in outcome.stages]),
            "status": outcome.status,
            "seconds": round(outcome.seconds, 3),
            "model": outcome.model,
            "variables": outcome.variables,
            "constraints": outcome.constraints,
            "objective": _objective(outcome.objective),
            "bound": _objective(outcome.bound) if outcome.bound is not None else None,
            "time_limit": time_limit,
            "stages": [{**s, "seconds": round(s["seconds"], 3)} for s in outcome.stages],
        }
    return Plan(view, target, strategy, solver, max_parallel, max_per_host, time.perf_counter() - started)


def _objective(values: tuple[int, ...]) -> dict[str, int] | None:
    if not values:
        return None
    return dict(zip(("vms", "devices", "total_rank_above_best"), values))
