"""Readable scores (SPEC section 7, fastmatch/scores.py): the parts that decide a ranking,
checked against the records themselves and against the ranking the kernel makes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import fastmatch as fm
from fastmatch.scores import JSON_SAFE_INTEGER
from strategies import Scenario, scenarios, validate


def _version(devices, i, policy):
    return devices.descriptor(i).values.get(policy.score_version) if policy.score_version else None


def _order_key(parts, n, prefer):
    """SPEC section 7's order, from the parts alone (higher is better)."""
    version = parts.version[n]
    if version is None:
        return (parts.exact[n], parts.same_type[n], False)
    if prefer == "closest":
        return (parts.exact[n], parts.same_type[n], True, -int(parts.major_distance[n]), -int(parts.minor_distance[n]), version.patch)
    return (parts.exact[n], parts.same_type[n], True, version.key)


@settings(max_examples=60, deadline=None)
@given(scenario=scenarios(min_sources=1, min_targets=1))
def test_parts_are_the_records_and_order_the_ranking(scenario: Scenario) -> None:
    sources, targets = validate(scenario)
    policy = scenario.policy
    result = fm.match(sources, targets, policy, confirm=scenario.confirm, workers=1)
    n, m = result.shape
    indices, scores = result.top_k(m)
    parts = result.score_parts(np.arange(n)[:, None], indices, scores)
    assert parts.shape == (n, m)
    for i in range(n):
        s_version = _version(sources, i, policy)
        keys = []
        for r in range(m):
            j = int(indices[i, r])
            if j < 0:
                assert not parts.compatible[i, r] and parts.json((i, r)) is None
                continue
            t_version = _version(targets, j, policy)
            both = s_version is not None and t_version is not None
            assert parts.version[i, r] == (t_version if both else None)
            if both and policy.prefer == "closest":
                assert int(parts.major_distance[i, r]) == abs(t_version.major - s_version.major)
                assert int(parts.minor_distance[i, r]) == abs(t_version.minor - s_version.minor)
            if policy.score_type:
                same = sources.descriptor(i).values.get(policy.score_type) == targets.descriptor(j).values.get(policy.score_type)
                assert bool(parts.same_type[i, r]) == same
            keys.append((_order_key(parts, (i, r), policy.prefer), -j))
        # The kernel's ranking is the parts' order, ties in target order.
        assert keys == sorted(keys, reverse=True)


@settings(max_examples=30, deadline=None)
@given(scenario=scenarios(min_sources=1, min_targets=1))
def test_explain_ranks_as_top_k_does(scenario: Scenario) -> None:
    sources, targets = validate(scenario)
    result = fm.match(sources, targets, scenario.policy, confirm=scenario.confirm, workers=1)
    n, m = result.shape
    indices, scores = result.top_k(m)
    for i in range(n):
        ranked = [int(j) for j in indices[i] if j >= 0]
        for j in range(m):
            explained = result.explanation(i, j)
            assert explained["rank"] == (ranked.index(j) + 1 if j in ranked else None)
            assert explained["candidates"] == len(ranked)
            if explained["rank"] is not None:
                above = explained["above"]
                assert (above and above["target"]) == (targets.ids[ranked[explained["rank"] - 2]] if explained["rank"] > 1 else None)


def test_parts_in_words_and_why_one_ranks_above_another() -> None:
    gvt = {"mdev_type": "A", "software_version": "2.1.0"}
    targets = [
        {"id": "minor", "self": {**gvt, "software_version": "2.3.0"}},
        {"id": "older-patch", "self": {**gvt, "software_version": "2.1.20231004"}},
        {"id": "patch", "self": {**gvt, "software_version": "2.1.20240115"}},
        {"id": "other-type", "self": {**gvt, "mdev_type": "B"}},
        {"id": "same", "self": dict(gvt)},
    ]
    # mdev_type ignored: "other-type" is identical where it counts, but not of the same type.
    policy = fm.Policy.from_dict({"attributes": {"mdev_type": {"type": "string", "rule": "ignore"}}})
    result = fm.match([{"id": "s", "self": dict(gvt)}], targets, policy, workers=1)
    indices, scores = result.top_k(len(targets))
    assert [targets[j]["id"] for j in indices[0]] == ["same", "other-type", "patch", "older-patch", "minor"]
    parts = result.score_parts(0, indices[0], scores[0])
    assert [parts.words(r) for r in range(len(targets))] == [
        "identical descriptors, version 2.1.0 (same major and minor)",
        "identical descriptors, version 2.1.0 (same major and minor)",
        "same type, version 2.1.20240115 (same major and minor)",
        "same type, version 2.1.20231004 (same major and minor)",
        "same type, version 2.3.0 (same major, 2 minors away)",
    ]
    assert [parts.why_above(r, r + 1) for r in range(len(targets) - 1)] == [
        "it has the source's type",
        "its descriptor is identical to the source's",
        "its patch is higher (2.1.20240115 against 2.1.20231004)",
        "its minor version is closer (0 against 2 away)",
    ]
    text = result.explain(0, int(indices[0, 2])).splitlines()
    assert "  rank 3 of the source's 5 available candidates" in text
    assert "  other-type ranks above it: its descriptor is identical to the source's" in text
    assert "  it ranks above older-patch: its patch is higher (2.1.20240115 against 2.1.20231004)" in text


@pytest.mark.parametrize("prefer", ["closest", "newest"])
def test_json_parts_never_exceed_2_53(prefer: str) -> None:
    big = 2**63 - 1
    policy = fm.Policy.from_dict({"prefer": prefer, "attributes": {"software_version": {"type": "version", "rule": "ignore"}}})
    # (rule ignore: a source at 0.0.0 may go to any version, and the distances are the largest there are)
    result = fm.match(
        [{"id": "s", "self": {"mdev_type": "A", "software_version": "0.0.0"}}],
        [{"id": "t", "self": {"mdev_type": "A", "software_version": f"{big}.{big}.{big}"}}],
        policy,
        workers=1,
    )
    indices, scores = result.top_k(1)
    parts = result.score_parts(0, indices[0], scores[0]).json(0)
    assert parts["version"] == f"{big}.{big}.{big}"
    if prefer == "closest":
        assert parts["major_distance"] == parts["minor_distance"] == str(big)
    else:
        assert parts["major_distance"] is None
    assert all(not isinstance(v, int) or isinstance(v, bool) or v <= JSON_SAFE_INTEGER for v in parts.values())


def test_parts_of_padding_against_no_targets() -> None:
    """top_k's padding (-1) has parts that say "incompatible", even where a side is empty."""
    source = {"id": "s", "self": {"mdev_type": "A", "software_version": "1.0"}}
    result = fm.match([source], [], workers=1)
    parts = result.score_parts(0, np.array([-1, -1]), np.array([-1, -1]))
    assert parts.json(0) is None and parts.json(1) is None
    assert not parts.compatible.any() and parts.major_distance.tolist() == [0, 0]


def test_parts_of_one_pair_given_as_plain_integers() -> None:
    """Scalars broadcast like arrays: one pair's parts are 0-d (its version too)."""
    source = {"id": "s", "self": {"mdev_type": "A", "software_version": "1.0.3"}}
    target = {"id": "t", "self": {"mdev_type": "A", "software_version": "1.2.0"}}
    result = fm.match([source], [target], workers=1)
    parts = result.score_parts(0, 0, int(result.scores[0, 0]))
    assert parts.shape == () and parts.version.shape == ()
    assert parts.json(()) == {"exact": False, "same_type": True, "version": "1.2.0", "major_distance": 0, "minor_distance": 2}
