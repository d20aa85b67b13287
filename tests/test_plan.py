"""Drain plans on hand-worked fleets whose optimal plans are known (issue 11).

Every plan is checked by the independent validator (fastmatch.drain.validate) and, the fleets
being tiny, its objective against the brute-force enumerator (plan_brute.py).
"""

from __future__ import annotations

import sys

import pytest

import fastmatch as fm
from fastmatch import DeviceSet, FastmatchError
from fastmatch.drain.validate import check_plan
from plan_brute import Oracle


def dev(i, host, mdev_type="A", version="1.0", *, vm=None, capacity=None, pv=None, migratable=None):
    record = {"id": i, "host": host, "self": {"device_api": "vfio-pci", "mdev_type": mdev_type, "software_version": version}}
    if pv is not None:
        record["self"]["pv_mode"] = pv
    if vm is not None:
        record["vm"] = vm
    if capacity is not None:
        record["capacity"] = capacity
    if migratable is not None:
        record["migratable"] = migratable
    return record


def planned(sources, targets, drain, **options):
    """The plan of both strategies, each validated; returns (joint, greedy, oracle)."""
    sources, targets = DeviceSet.from_records(sources), DeviceSet.from_records(targets)
    plans = {}
    for strategy in ("joint", "greedy"):
        plan = fm.plan(sources, targets, drain, strategy=strategy, **options)
        document = plan.json()
        limits = {k: options[k] for k in ("host_limits", "max_parallel", "max_per_host") if k in options}
        assert check_plan(document, sources, targets, drain, **limits) == []
        plans[strategy] = plan
    oracle = Oracle(sources, targets, drain, options.get("host_limits"))
    assert oracle.objective_of(plans["joint"].json()) == oracle.best()
    assert plans["joint"].status == "optimal"
    return plans["joint"], plans["greedy"], oracle


def moves(plan):
    return {m["source"]: m["target"] for m in plan.to_records()}


def test_greedy_in_input_order_strands_a_vm_the_joint_plan_places():
    # s1 would take t1 (its exact match); s2 can only go to t1 (t2 lacks its pv_mode ppgtt).
    sources = [dev("s1", "a", version="1.1", pv="none"), dev("s2", "a", version="1.1", pv="none+ppgtt")]
    targets = [dev("t1", "b", version="1.1", pv="none+ppgtt"), dev("t2", "c", version="1.3", pv="none")]
    joint, greedy, oracle = planned(sources, targets, ["a"])
    assert moves(joint) == {"s1": "t2", "s2": "t1"}
    assert moves(greedy) == {"s1": "t1"}
    assert greedy.unplaced[0]["vm"] == "s2"
    assert "taken by other moves: VMs 's1'" in greedy.unplaced[0]["reasons"][0]
    assert oracle.objective_of(greedy.json()) < oracle.best()


def test_vm_group_that_fits_on_only_one_host():
    # The group {g1: A, g2: B} fits whole only on host d; s4 (first in input order) would take
    # d's A, its exact match, and leave the group nowhere to go.
    sources = [
        dev("s4", "a", "A", "1.2"),
        dev("g1", "a", "A", "1.1", vm="vm-g"),
        dev("g2", "a", "B", "1.1", vm="vm-g"),
    ]
    targets = [
        dev("b-A", "b", "A", "1.3"),
        dev("c-B", "c", "B", "1.1"),
        dev("d-A", "d", "A", "1.2"),
        dev("d-B", "d", "B", "1.1"),
    ]
    joint, greedy, oracle = planned(sources, targets, ["a"])
    assert moves(joint) == {"s4": "b-A", "g1": "d-A", "g2": "d-B"}
    assert joint.summary["vms"] == {"total": 2, "placed": 2, "unplaced": 0}
    assert moves(greedy) == {"s4": "d-A"}
    assert greedy.unplaced == [
        {
            "vm": "vm-g",
            "sources": ["g1", "g2"],
            "reasons": [
                "VM group of 2 devices fits whole on host 'd' before the drain, but other moves took that capacity: VMs 's4'"
            ],
        }
    ]


def test_vm_group_that_fits_on_no_host_is_unplaced_with_that_reason():
    sources = [dev("g1", "a", "A", vm="vm-g"), dev("g2", "a", "B", vm="vm-g")]
    targets = [dev("b-A", "b", "A"), dev("c-B", "c", "B")]
    joint, _, _ = planned(sources, targets, ["a"])
    assert moves(joint) == {}
    assert joint.unplaced[0]["reasons"] == ["VM group of 2 devices: no single host has compatible capacity for all of them"]


def test_host_limits_bind():
    sources = [dev(f"s{k}", "a") for k in range(3)]
    targets = [dev("b1", "b", capacity=3), dev("c1", "c")]
    joint, greedy, _ = planned(sources, targets, ["a"], host_limits={"b": 1})
    assert sorted(moves(joint).values()) == ["b1", "c1"]
    assert joint.summary["capacity_used"] == {"b": 1, "c": 1}
    assert joint.unplaced[0]["reasons"] == ["s2: its compatible targets with capacity left are on hosts at their host limit: 'b'"]
    assert sorted(moves(greedy).values()) == ["b1", "c1"]


def test_no_feasible_move():
    sources = [dev("s1", "a", "A"), dev("s2", "a", "A", migratable=False)]
    targets = [dev("t1", "b", "B"), dev("t2", "c", "B")]
    joint, _, _ = planned(sources, targets, ["a"])
    assert joint.to_records() == []
    assert joint.summary["vms"] == {"total": 2, "placed": 0, "unplaced": 2}
    reasons = {u["vm"]: u["reasons"] for u in joint.unplaced}
    assert reasons["s1"] == ["s1: no compatible target among 2: mdev_type (2)"]
    assert reasons["s2"] == ["s2: no compatible target among 2: mdev_type (2), NOT_MIGRATABLE (2)"]


def test_compatible_only_on_drained_hosts_or_without_capacity():
    sources = [dev("s1", "a")]
    targets = [dev("t-a", "a"), dev("t-b", "b", capacity=0)]
    joint, _, _ = planned(sources, targets, ["a"])
    assert joint.unplaced[0]["reasons"] == ["s1: its 2 compatible targets off limits: 1 on drained hosts, 1 without capacity"]


def test_best_total_score_after_counts():
    # Both can go to both; s1 (1.1) is exact on t11, s2 (1.2) exact on t12: the joint plan gives each its best.
    sources = [dev("s1", "a", version="1.1"), dev("s2", "a", version="1.2")]
    targets = [dev("t12", "b", version="1.2"), dev("t11", "c", version="1.1"), dev("t13", "c", version="1.3")]
    joint, _, _ = planned(sources, targets, ["a"])
    assert moves(joint) == {"s1": "t11", "s2": "t12"}
    assert [m["rank"] for m in joint.to_records()] == [1, 1]
    assert joint.to_records()[0]["score"] == {
        "exact": True, "same_type": True, "version": "1.1.0", "major_distance": 0, "minor_distance": 0
    }


def test_capacity_shared_by_devices_and_ties_deterministic():
    sources = [dev(f"s{k}", "a") for k in range(4)]
    targets = [dev("t1", "b", capacity=2), dev("t2", "c", capacity=2)]
    joint, _, _ = planned(sources, targets, ["a"])
    assert moves(joint) == {"s0": "t1", "s1": "t1", "s2": "t2", "s3": "t2"}
    again = fm.plan(sources, targets, ["a"])
    assert again.json()["moves"] == joint.json()["moves"]


def test_waves_respect_limits():
    sources = [dev(f"s{k}", "a") for k in range(5)] + [dev(f"x{k}", "x") for k in range(3)]
    targets = [dev("t1", "b", capacity=4), dev("t2", "c", capacity=4)]
    joint, greedy, _ = planned(sources, targets, ["a", "x"], max_parallel=3, max_per_host=2)
    waves = [m["wave"] for m in joint.to_records()]
    assert max(waves) == joint.summary["waves"] >= joint.summary["fewest_waves_possible"] == 3


def test_vm_moves_in_one_wave_and_counts_once():
    sources = [dev("g1", "a", vm="vm"), dev("g2", "a", vm="vm"), dev("s", "a")]
    targets = [dev("t1", "b", capacity=3)]
    joint, _, _ = planned(sources, targets, ["a"], max_parallel=1)
    waves = {m["source"]: m["wave"] for m in joint.to_records()}
    assert waves == {"g1": 1, "g2": 1, "s": 2}


def test_a_device_never_moves_to_the_target_with_its_own_id():
    sources = [dev("same", "a"), dev("s2", "a")]
    targets = [dev("same", "b"), dev("t2", "c")]
    joint, greedy, _ = planned(sources, targets, ["a"])
    assert moves(joint) == {"same": "t2", "s2": "same"}


def test_targets_without_a_host_are_hosts_of_their_own():
    sources = [dev("g1", "a", vm="vm"), dev("g2", "a", vm="vm")]
    targets = [dev("t1", ""), dev("t2", "")]
    joint, _, _ = planned(sources, targets, ["a"])
    assert moves(joint) == {}


@pytest.mark.parametrize(
    "drain, limits, vms, message",
    [
        (["nowhere"], None, False, "drained host 'nowhere': no source or target device is on it"),
        (["a"], {"nowhere": 1}, False, "unknown host 'nowhere': no target device is on it"),
        (["a"], {"b": -1}, False, "field 'b': expected an integer >= 0"),
        (["a"], None, True, "field 'vm': VM 'vm' has devices on hosts 'a' and 'c'"),
    ],
)
def test_bad_input_is_one_error(drain, limits, vms, message):
    sources = [dev("s1", "a", vm="vm" if vms else None), dev("s2", "c", vm="vm" if vms else None)]
    targets = [dev("t1", "b")]
    with pytest.raises(FastmatchError, match=message):
        fm.plan(sources, targets, drain, host_limits=limits)


def test_what_if_upgrade_first():
    sources = [dev("s1", "a", version="2.0")]
    targets = [dev("t1", "kbl-01", version="1.9"), dev("t2", "kbl-07", version="1.9")]
    before = fm.plan(sources, targets, ["a"])
    assert before.summary["vms"]["placed"] == 0
    patch = [{"side": "targets", "hosts": ["kbl-0[1-4]"], "self": {"software_version": "2.1"}}]
    after = fm.plan(sources, targets, ["a"], assume=patch)
    assert moves(after) == {"s1": "t1"}
    with pytest.raises(FastmatchError, match=r"patch\[0\]\.hosts': matches no target device"):
        fm.plan(sources, targets, ["a"], assume=[{**patch[0], "hosts": ["zzz*"]}])


def test_validator_finds_what_is_wrong():
    sources = DeviceSet.from_records([dev("g1", "a", vm="vm"), dev("g2", "a", vm="vm"), dev("s", "a", "B")])
    targets = DeviceSet.from_records([dev("t1", "b"), dev("t2", "c")])
    good = fm.plan(sources, targets, ["a"]).json()
    assert check_plan(good, sources, targets, ["a"]) == []
    bad = fm.plan(sources, targets, ["a"]).json()
    bad["moves"] = [
        {"wave": 1, "vm": "vm", "source": "g1", "from_host": "a", "target": "t1", "to_host": "b"},
        {"wave": 2, "vm": "vm", "source": "g2", "from_host": "a", "target": "t2", "to_host": "c"},
        {"wave": 1, "vm": "s", "source": "s", "from_host": "a", "target": "t1", "to_host": "b"},
    ]
    bad["unplaced"] = []
    problems = "\n".join(check_plan(bad, sources, targets, ["a"], max_parallel=1))
    for expected in ("is split over hosts", "moves in waves", "is not compatible", "takes 2 devices, its capacity is 1",
                     "more than max_parallel", "summary's devices"):
        assert expected in problems


def test_without_scipy_the_joint_strategy_names_the_extra(monkeypatch):
    """VM groups need HiGHS (SciPy: the plan extra); a fleet without them is one min-cost flow
    (OR-Tools, which the test extra installs) and needs no SciPy, nor does the greedy plan."""
    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy now raises ImportError
    sources = [dev("s1", "a"), dev("s2", "a", vm="pair"), dev("s3", "a", vm="pair")]
    targets = [dev("t1", "b", capacity=3)]
    with pytest.raises(FastmatchError, match=r"pip install 'fastmatch\[plan\]'"):
        fm.plan(sources, targets, ["a"])
    assert moves(fm.plan(sources, targets, ["a"], strategy="greedy")) == {"s1": "t1", "s2": "t1", "s3": "t1"}
    assert moves(fm.plan(sources[:1], targets, ["a"])) == {"s1": "t1"}


def test_time_limit_returns_a_valid_plan_not_proven():
    # A VM group makes it an integer program (HiGHS, which the limit stops); without groups the
    # min-cost flow has no limit to keep (next test).
    records = [dev(f"s{k}", "a", version=f"1.{k % 3}") for k in range(4)] + [dev(f"g{k}", "a", vm="pair") for k in range(2)]
    sources = DeviceSet.from_records(records)
    targets = DeviceSet.from_records([dev(f"t{k}", "b", version=f"1.{k % 3}") for k in range(4)])
    plan = fm.plan(sources, targets, ["a"], time_limit=1e-9)
    assert plan.status == "time-limit"
    assert check_plan(plan.json(), sources, targets, ["a"]) == []
    assert plan.summary["vms"]["placed"] == 4  # the greedy plan (the four single-device VMs), where no block was solved in time


def test_single_device_vms_are_one_min_cost_flow_or_one_lp_with_the_same_optimum(monkeypatch):
    """Without VM groups the model is a network: OR-Tools' min-cost flow solves it (the ortools
    extra, which the test extra installs) and, without OR-Tools, one HiGHS LP whose answer is
    integral; both reach the enumerator's optimum."""
    import fastmatch.drain.model as model_module

    sources = [dev(f"s{k}", "a", version=f"1.{k % 3}", pv="on" if k % 4 == 0 else None) for k in range(7)]
    targets = [dev(f"t{k}", f"h{k % 3}", version=f"1.{k % 2}", capacity=1 + k % 2) for k in range(5)]
    joint, _, oracle = planned(sources, targets, ["a"], host_limits={"h1": 1})
    assert joint.summary["solver"]["stages"][0]["stage"] == "min-cost flow (OR-Tools)"
    assert joint.summary["solver"]["name"] == "OR-Tools (min-cost flow)"
    monkeypatch.setattr(model_module, "_min_cost_flow", lambda model: None)
    without, _, _ = planned(sources, targets, ["a"], host_limits={"h1": 1})
    assert without.summary["solver"]["stages"][0]["stage"] == "transportation (LP)"
    assert without.summary["solver"]["name"] == "HiGHS (scipy.optimize.milp)"
    assert oracle.objective_of(without.json()) == oracle.objective_of(joint.json()) == oracle.best()


def test_a_fractional_lp_goes_on_to_the_integer_program():
    """Three VMs of two devices, two hosts of three slots each: the LP relaxation puts one and
    a half VMs on each host (all three placed), which no plan can; the integer program places
    two, the enumerator's optimum."""
    sources = [dev(f"v{v}-{d}", "a", vm=f"v{v}") for v in range(3) for d in range(2)]
    targets = [dev("t1", "h1", capacity=3), dev("t2", "h2", capacity=3)]
    joint, _, _ = planned(sources, targets, ["a"])
    assert joint.summary["vms"]["placed"] == 2
    stages = [stage["stage"] for stage in joint.summary["solver"]["stages"]]
    assert stages and not any("LP" in stage for stage in stages), stages
