"""The Kubernetes filter and prioritize answers, in one process, held to a plain per-node
definition read from the library's own per-pair answers (``MatchResult.row_scores`` and
``reason_names``), on generated fleets with the cases that bite: capacity 0, targets on the
source's own host (``SAME_HOST``), a target that is the source itself (``SAME_DEVICE``), targets
with no host, names of nodes with no target, a node asked twice, pods with two devices, and
a policy without ``exclude_same_host``."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("msgspec")  # the serve extra, which the test extra pulls in

import fastmatch
from fastmatch.generate import write_fleet
from fastmatch.serve import k8s
from fastmatch.serve.config import ServeConfig
from fastmatch.serve.fleet import FleetHolder

NOT_A_NODE = "not-a-node"


def expected_answers(result, targets, node_names):
    """``(NodeNames, FailedNodes, FailedAndUnresolvableNodes, priorities)`` by the definition:
    a node passes when, for each source, one of its targets with capacity > 0 has a score
    (``row_scores``: the device rules included); a failing node's reason is its closest
    target's for the first source it fails (the fewest reasons, the first in input order),
    capacity 0 when that target is compatible; the priority spreads the best score's level
    among the passing nodes over 10..1, the lowest of the sources'."""
    on_node: dict[str, list[int]] = {}
    for j, host in enumerate(targets.hosts):
        if host:
            on_node.setdefault(host, []).append(j)
    available = targets.capacities > 0
    n_sources = result.shape[0]
    rows = [result.row_scores(i) for i in range(n_sources)]
    passing, failed, unresolvable = [], {}, {}
    best = np.full((n_sources, len(node_names)), -1, dtype=np.int64)
    for position, name in enumerate(node_names):
        devices = on_node.get(name, [])
        if not devices:
            unresolvable[name] = k8s.NO_TARGETS
            continue
        reason = None
        for i in range(n_sources):
            scores = [int(rows[i][j]) for j in devices if available[j] and rows[i][j] >= 0]
            best[i, position] = max(scores, default=-1)
            if not scores and reason is None:
                names = min((result.reason_names(i, j) for j in devices), key=len)  # min keeps the first of equals
                if not names:
                    failed[name] = k8s.NO_CAPACITY
                    reason = ""
                else:
                    words = "incompatible: " + ", ".join(names)
                    reason = words if n_sources == 1 else f"source {result.sources.ids[i]!r}: {words}"
                    unresolvable[name] = reason
        if reason is None:
            passing.append(name)
    priorities = np.full(len(node_names), 10, dtype=np.int64)
    for i in range(n_sources):
        levels = sorted(set(best[i][best[i] >= 0].tolist()), reverse=True)
        for position, score in enumerate(best[i].tolist()):
            if score < 0:
                spread = 0
            elif len(levels) == 1:
                spread = 10
            else:
                spread = 10 - levels.index(score) * 9 // (len(levels) - 1)
            priorities[position] = min(priorities[position], spread)
    passes = np.array([name in set(passing) for name in node_names])
    priorities[~passes] = 0
    return passing, failed, unresolvable, priorities.tolist()


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    """A generated fleet with some targets made hostless, and sources that sit on the targets'
    hosts (and some that *are* targets: their records sent as a pod's source)."""
    directory = tmp_path_factory.mktemp("filterfleet")
    write_fleet(directory, 200, 1500, 150, 11)
    lines = (directory / "targets.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records[::97]:
        record["host"] = ""
    (directory / "targets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return directory


def _holder(directory, policy):
    return FleetHolder(ServeConfig(targets=str(directory / "targets.jsonl"), policy=policy))


def _pods(directory, targets):
    """Pods of one source each, of two, and targets' own records sent as sources; one source
    has an attribute no target has (its rule fails everywhere)."""
    sources = fastmatch.load(directory / "sources.jsonl").to_records()
    as_sources = [{k: v for k, v in record.items() if k != "capacity"} for record in targets.to_records()[5:1500:150]]
    unknown_attribute = {**sources[0], "self": {**sources[0]["self"], "ecc": "on"}}  # the index's full path
    singles = [[record] for record in sources[:40:2] + as_sources + [unknown_attribute]]
    pairs = [[sources[n], sources[n + 1]] for n in range(40, 60, 4)] + [[as_sources[0], sources[1]]]
    return singles + pairs


@pytest.mark.parametrize("exclude_same_host", [True, False])
def test_filter_and_prioritize_equal_the_per_node_definition(fleet_dir, exclude_same_host):
    policy = fastmatch.Policy.default()
    if not exclude_same_host:
        policy = fastmatch.Policy.from_dict({"exclude_same_host": False})
    fleet = _holder(fleet_dir, policy).fleet
    targets = fleet.targets
    hosts = sorted(set(targets.hosts) - {""})
    asked_lists = [hosts + [NOT_A_NODE], hosts[::-3] + [hosts[0], NOT_A_NODE, hosts[0]]]
    config = ServeConfig(targets="", policy=policy).k8s
    seen = {"passing": 0, "capacity": 0, "SAME_HOST": 0, "SAME_DEVICE": 0, "two sources": 0}
    for records in _pods(fleet_dir, targets):
        result = fastmatch.match(records, targets, policy)
        pod = {"metadata": {"name": "p", "annotations": {"fastmatch.io/source": json.dumps(records)}}}
        for names in asked_lists:
            body = json.dumps({"Pod": pod, "NodeNames": names}).encode()
            answer = k8s.filter_nodes(fleet, config, k8s.decode_args(body, fleet.nodes.recent_names))
            priorities = k8s.prioritize_nodes(fleet, config, k8s.decode_args(body, fleet.nodes.recent_names))
            passing, failed, unresolvable, expected_priorities = expected_answers(result, targets, names)
            assert answer == {"NodeNames": passing, "FailedNodes": failed, "FailedAndUnresolvableNodes": unresolvable, "Error": ""}
            assert priorities == [{"Host": name, "Score": score} for name, score in zip(names, expected_priorities)]
            seen["passing"] += len(passing)
            seen["capacity"] += len(failed)
            reasons = " ".join(unresolvable.values())
            seen["SAME_HOST"] += reasons.count("SAME_HOST")
            seen["SAME_DEVICE"] += reasons.count("SAME_DEVICE")
            seen["two sources"] += reasons.count("source '")
    # every case above was met, not only defined
    assert all(seen[key] for key in ("passing", "capacity", "two sources", "SAME_DEVICE")), seen
    assert bool(seen["SAME_HOST"]) == exclude_same_host, seen
