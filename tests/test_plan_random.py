"""Drain plans on small random fleets (hypothesis): both strategies pass the validator, the
joint plan reaches the brute-force optimum, and never places fewer VMs (or devices, or a worse
total rank at equal counts) than the greedy baseline."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch import DeviceSet
import fastmatch.drain.joint as joint_module
from fastmatch.drain.validate import check_plan
from plan_brute import Oracle

HOSTS = ("a", "b", "c", "d")
TYPES = ("A", "B")
VERSIONS = ("1.0", "1.1", "1.2", "2.0")


def device(draw, i, role, host):
    record = {
        "id": f"{role}{i}",
        "host": host,
        "self": {"device_api": "vfio-pci", "mdev_type": draw(st.sampled_from(TYPES)), "software_version": draw(st.sampled_from(VERSIONS))},
    }
    if role == "t":
        record["capacity"] = draw(st.integers(0, 2))
    return record


@st.composite
def fleets(draw):
    n_sources = draw(st.integers(1, 5))
    sources = []
    for i in range(n_sources):
        record = device(draw, i, "s", "a" if i == 0 else draw(st.sampled_from(HOSTS[:2])))  # a: always drained
        vm = draw(st.sampled_from([None, "v1", "v2"]))
        if vm is not None:
            record["vm"] = f"{vm}@{record['host']}"  # a VM's devices are on one host
        sources.append(record)
    targets = [device(draw, j, "t", draw(st.sampled_from(HOSTS))) for j in range(draw(st.integers(1, 5)))]
    on_b = any(r["host"] == "b" for r in sources + targets)
    drain = draw(st.sampled_from([["a"], ["a", "b"]])) if on_b else ["a"]
    limits = draw(st.sampled_from([None, {"c": 1}, {"c": 0, "d": 2}]))
    if limits and not all(any(t["host"] == h for t in targets) for h in limits):
        limits = None
    parallel = draw(st.sampled_from([None, 1, 2]))
    per_host = draw(st.sampled_from([None, 1]))
    return sources, targets, drain, limits, parallel, per_host


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_joint_is_optimal_and_never_worse_than_greedy(fleet):
    sources, targets, drain, limits, parallel, per_host = fleet
    sources, targets = DeviceSet.from_records(sources), DeviceSet.from_records(targets)
    options = {"host_limits": limits, "max_parallel": parallel, "max_per_host": per_host}
    oracle = Oracle(sources, targets, drain, limits)
    objectives = {}
    for strategy in ("joint", "greedy"):
        document = fm.plan(sources, targets, drain, strategy=strategy, **options).json()
        assert check_plan(document, sources, targets, drain, **options) == [], strategy
        objectives[strategy] = oracle.objective_of(document)
    assert objectives["joint"] == oracle.best()
    assert objectives["joint"] >= objectives["greedy"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fleets())
def test_groups_then_singles_is_valid_bounded_and_never_worse_than_greedy(monkeypatch, fleet):
    """The path for fleets with many VM groups (forced here on tiny ones): valid, never better
    than the optimum (its bound is an upper bound), proven only when it is the optimum."""
    monkeypatch.setattr(joint_module, "FULL_MODEL_GROUPS", 0)
    sources, targets, drain, limits, parallel, per_host = fleet
    sources, targets = DeviceSet.from_records(sources), DeviceSet.from_records(targets)
    oracle = Oracle(sources, targets, drain, limits)
    plan = fm.plan(sources, targets, drain, host_limits=limits)
    document = plan.json()
    assert check_plan(document, sources, targets, drain, host_limits=limits) == []
    greedy = oracle.objective_of(fm.plan(sources, targets, drain, strategy="greedy", host_limits=limits).json())
    reached, best = oracle.objective_of(document), oracle.best()
    assert greedy <= reached <= best
    bound = plan.summary["solver"]["bound"]
    if bound is not None:
        assert (bound["vms"], bound["devices"], -bound["total_rank_above_best"]) >= best
    if plan.status == "optimal":
        assert reached == best
