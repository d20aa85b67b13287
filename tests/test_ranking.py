"""SPEC section 7: scores and ranking, and MatchResult.top_k.

Scores follow the layout documented in fastmatch/reasons.py:
bit 62 exact, bit 61 same_type, bit 60 both have the version, then for
prefer="closest" three 20-bit fields (CAP - |dMajor|, CAP - |dMinor|, T.patch),
each capped, and for prefer="newest" the rank of T's version among the targets' versions.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch as fm

EXACT, SAME_TYPE, HAS_VERSION = 1 << 62, 1 << 61, 1 << 60
CAP = (1 << 20) - 1


def closest(d_major, d_minor, patch):
    return HAS_VERSION | (CAP - min(d_major, CAP)) << 40 | (CAP - min(d_minor, CAP)) << 20 | min(patch, CAP)


def newest(rank):
    return HAS_VERSION | rank


def run(sources, targets, policy=None):
    sources = [{"id": f"s{i}", **s} if "id" not in s else s for i, s in enumerate(sources)]
    targets = [{"id": f"t{j}", **t} if "id" not in t else t for j, t in enumerate(targets)]
    return fm.match(sources, targets, policy, workers=1)


def dev(**self_):
    return {"self": self_}


def versions(*texts, mdev_type="A"):
    return [dev(mdev_type=mdev_type, software_version=v) for v in texts]


# -- the score ------------------------------------------------------------------------------
def test_identical_descriptors_score_exact(implementation):
    d = dict(mdev_type="A", software_version="2.1.3", pv_mode="none", aggregator=1, device_type="pci")
    result = run([dev(**d)], [dev(**d)])
    assert int(result.scores[0, 0]) == EXACT | SAME_TYPE | closest(0, 0, 3)


def test_exact_ignores_attributes_whose_rule_is_ignore(implementation):
    p = fm.Policy.from_dict({"unknown": "ignore", "attributes": {"vendor_driver": {"rule": "ignore"}}})
    s = dev(mdev_type="A", software_version="1.0", vendor_driver="x", device_type="pci")
    t = dev(mdev_type="A", software_version="1.0", vendor_driver="y", device_type="ccw")
    assert int(run([s], [t], p).scores[0, 0]) == EXACT | SAME_TYPE | closest(0, 0, 0)


def test_dynamic_attributes_count_for_exact(implementation):
    p = fm.Policy.from_dict({"attributes": {"aggregator": {"rule": "dynamic"}}})
    s = dev(mdev_type="A", aggregator=1)
    assert int(run([s], [dev(mdev_type="A", aggregator=2)], p).scores[0, 0]) == SAME_TYPE
    assert int(run([s], [dev(mdev_type="A", aggregator=1)], p).scores[0, 0]) == EXACT | SAME_TYPE


def test_compatible_but_different_descriptors_are_not_exact(implementation):
    s = dev(mdev_type="A", software_version="2.1.3", pv_mode="none")
    t = dev(mdev_type="A", software_version="2.1.3", pv_mode="none+ppgtt")
    assert int(run([s], [t]).scores[0, 0]) == SAME_TYPE | closest(0, 0, 3)
    # Typed equality: 2.1 and 2.1.0 are the same version.
    s, t = dev(mdev_type="A", software_version="2.1"), dev(mdev_type="A", software_version="2.1.0")
    assert int(run([s], [t]).scores[0, 0]) == EXACT | SAME_TYPE | closest(0, 0, 0)


def test_same_type_needs_equal_score_type_values(implementation):
    s = dev(mdev_type="A", software_version="1.0")
    t = {"self": {"mdev_type": "B", "software_version": "1.0"}, "compatible": [{"mdev_type": ["A", "B"]}]}
    assert int(run([s], [t]).scores[0, 0]) == closest(0, 0, 0)
    p = fm.Policy.from_dict({"score_type": "vendor_driver"})
    s = dev(mdev_type="A", vendor_driver="i915", software_version="1.0")
    t = {"self": {"mdev_type": "B", "vendor_driver": "i915", "software_version": "1.0"}, "compatible": [{"mdev_type": "*"}]}
    assert int(run([s], [t], p).scores[0, 0]) == SAME_TYPE | closest(0, 0, 0)


def test_closest_prefers_the_smaller_minor_distance_then_the_higher_patch(implementation):
    result = run([dev(mdev_type="A", software_version="2.1.0")], versions("2.3.9", "2.1.5", "2.2.0", "2.1.5", "2.1.7"))
    assert result.scores[0].tolist() == [
        SAME_TYPE | closest(0, 2, 9),
        SAME_TYPE | closest(0, 0, 5),
        SAME_TYPE | closest(0, 1, 0),
        SAME_TYPE | closest(0, 0, 5),
        SAME_TYPE | closest(0, 0, 7),
    ]
    indices, scores = result.top_k(5)
    assert indices.tolist() == [[4, 1, 3, 2, 0]]
    assert scores.tolist() == [[result.scores[0, j] for j in (4, 1, 3, 2, 0)]]


def test_closest_prefers_the_smaller_major_distance_first(implementation):
    # With a rule that allows other majors, the major distance comes before the minor one.
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ge"}}})
    result = run([dev(mdev_type="A", software_version="1.5")], versions("3.0", "2.0", "1.6", "1.5.2", "2.4", "2.9.9"), p)
    assert result.scores[0].tolist() == [
        SAME_TYPE | closest(2, 5, 0),
        SAME_TYPE | closest(1, 5, 0),
        SAME_TYPE | closest(0, 1, 0),
        SAME_TYPE | closest(0, 0, 2),
        SAME_TYPE | closest(1, 1, 0),
        SAME_TYPE | closest(1, 4, 9),
    ]
    assert result.top_k(6)[0].tolist() == [[3, 2, 4, 5, 1, 0]]


def test_closest_distances_are_absolute(implementation):
    # dynamic: any version is compatible, and (unlike ignore) it still counts for exact.
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "dynamic"}}})
    result = run([dev(mdev_type="A", software_version="5.5")], versions("4.4", "6.6", "5.3", "5.7"), p)
    assert result.scores[0].tolist() == [
        SAME_TYPE | closest(1, 1, 0),
        SAME_TYPE | closest(1, 1, 0),
        SAME_TYPE | closest(0, 2, 0),
        SAME_TYPE | closest(0, 2, 0),
    ]
    assert result.top_k(4)[0].tolist() == [[2, 3, 0, 1]]


def test_closest_fields_are_capped(implementation):
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ge"}}})
    result = run(
        [dev(mdev_type="A", software_version="0.0")],
        versions("1.2.5000000", "0.0.1048575", "0.0.1048574", "5000000.0", "0.3000000"),
        p,
    )
    assert result.scores[0].tolist() == [
        SAME_TYPE | closest(1, 2, CAP),
        SAME_TYPE | closest(0, 0, CAP),
        SAME_TYPE | closest(0, 0, CAP - 1),
        SAME_TYPE | closest(CAP, 0, 0),
        SAME_TYPE | closest(0, CAP, 0),
    ]
    assert int(result.scores[0, 3]) == SAME_TYPE | HAS_VERSION | (CAP << 20)


def test_closest_ignores_components_past_the_patch(implementation):
    result = run([dev(mdev_type="A", software_version="6.19")], versions("6.19.14.31400000", "6.19.14.1", "6.19.14"))
    assert result.scores[0].tolist() == [SAME_TYPE | closest(0, 0, 14)] * 3
    assert result.top_k(3)[0].tolist() == [[0, 1, 2]]


def test_closest_with_nvidia_style_versions(implementation):
    result = run([dev(mdev_type="A", software_version="550.127.05")], versions("550.127.08", "550.144.03", "550.127.8"))
    assert result.scores[0].tolist() == [SAME_TYPE | closest(0, 0, 8), SAME_TYPE | closest(0, 17, 3), SAME_TYPE | closest(0, 0, 8)]
    assert result.top_k(3)[0].tolist() == [[0, 2, 1]]


def test_newest_prefers_the_higher_target_version(implementation):
    p = fm.Policy.from_dict({"prefer": "newest"})
    targets = versions("2.3", "2.5.0", "2.1.9", "2.5.0-rc1", "3.0", "2.5")
    result = run([dev(mdev_type="A", software_version="2.0")], targets, p)
    # The targets' distinct versions, in order: 2.1.9, 2.3, 2.5.0-rc1, 2.5.0 (= 2.5), 3.0.
    assert result.scores[0].tolist() == [
        SAME_TYPE | newest(1),
        SAME_TYPE | newest(3),
        SAME_TYPE | newest(0),
        SAME_TYPE | newest(2),
        -1,
        SAME_TYPE | newest(3),
    ]
    indices, scores = result.top_k(6)
    assert indices.tolist() == [[1, 5, 3, 0, 2, -1]]
    assert scores.tolist() == [[int(result.scores[0, j]) for j in (1, 5, 3, 0, 2)] + [-1]]


def test_newest_ignores_build_metadata(implementation):
    p = fm.Policy.from_dict({"prefer": "newest"})
    result = run([dev(mdev_type="A", software_version="1.0")], versions("1.2+b2", "1.2+b1", "1.1"), p)
    assert result.scores[0].tolist() == [SAME_TYPE | newest(1), SAME_TYPE | newest(1), SAME_TYPE | newest(0)]
    assert result.top_k(3)[0].tolist() == [[0, 1, 2]]


def test_closest_and_newest_rank_differently(implementation):
    sources = [dev(mdev_type="A", software_version="2.1.0")]
    targets = versions("2.1.2", "2.4.0", "2.1.7")
    assert run(sources, targets).top_k(3)[0].tolist() == [[2, 0, 1]]
    assert run(sources, targets, fm.Policy.from_dict({"prefer": "newest"})).top_k(3)[0].tolist() == [[1, 2, 0]]


@pytest.mark.parametrize("prefer", ["closest", "newest"])
def test_missing_versions_sort_last(implementation, prefer):
    p = fm.Policy.from_dict({"prefer": prefer, "attributes": {"software_version": {"rule": "ignore"}}})
    s = dev(mdev_type="A", software_version="1.0", pv_mode="none")
    targets = [
        dev(mdev_type="A", pv_mode="none+x"),
        dev(mdev_type="A", software_version="9.9", pv_mode="none+x"),
        dev(mdev_type="A", software_version="1.0", pv_mode="none+x"),
        dev(mdev_type="A", pv_mode="none+x"),
    ]
    result = run([s, dev(mdev_type="A", pv_mode="none")], targets, p)
    if prefer == "closest":
        with_version = [SAME_TYPE | closest(8, 9, 0), SAME_TYPE | closest(0, 0, 0)]
        assert result.top_k(4)[0].tolist()[0] == [2, 1, 0, 3]
    else:
        with_version = [SAME_TYPE | newest(1), SAME_TYPE | newest(0)]
        assert result.top_k(4)[0].tolist()[0] == [1, 2, 0, 3]
    assert result.scores[0].tolist() == [SAME_TYPE, *with_version, SAME_TYPE]
    # A source without the version: no pair has both, so all tie and keep target order.
    assert result.scores[1].tolist() == [SAME_TYPE] * 4
    assert result.top_k(4)[0].tolist()[1] == [0, 1, 2, 3]


def test_exact_then_same_type_then_version(implementation):
    s = dev(mdev_type="A", software_version="2.1.0")
    targets = [
        {"self": {"mdev_type": "B", "software_version": "2.1.9"}, "compatible": [{"mdev_type": "*"}]},
        dev(mdev_type="A", software_version="2.5.0"),
        dev(mdev_type="A", software_version="2.1.0"),
        dev(mdev_type="A", software_version="2.1.9"),
    ]
    result = run([s], targets)
    assert result.scores[0].tolist() == [
        closest(0, 0, 9),
        SAME_TYPE | closest(0, 4, 0),
        EXACT | SAME_TYPE | closest(0, 0, 0),
        SAME_TYPE | closest(0, 0, 9),
    ]
    assert result.top_k(4)[0].tolist() == [[2, 3, 1, 0]]


def test_exact_without_versions_beats_versions(implementation):
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ignore"}}})
    s = dev(mdev_type="A", pv_mode="none", software_version="1.0")
    targets = [dev(mdev_type="A", pv_mode="none+x", software_version="1.0"), dev(mdev_type="A", pv_mode="none")]
    result = run([s], targets, p)
    assert result.scores[0].tolist() == [SAME_TYPE | closest(0, 0, 0), EXACT | SAME_TYPE]
    assert result.top_k(2)[0].tolist() == [[1, 0]]


# -- ties, top_k ----------------------------------------------------------------------------
def test_ties_keep_target_order(implementation):
    result = run([dev(mdev_type="A", software_version="2.1")], versions("2.1.5", "2.1.3", "2.1.5", "2.1.3", "2.1.5"))
    assert result.top_k(5)[0].tolist() == [[0, 2, 4, 1, 3]]


def test_ties_keep_target_order_for_every_source(implementation):
    sources = [dev(mdev_type="A"), dev(mdev_type="A"), dev(mdev_type="B")]
    targets = [dev(mdev_type="B"), dev(mdev_type="A"), dev(mdev_type="A"), dev(mdev_type="B"), dev(mdev_type="A")]
    indices, scores = run(sources, targets).top_k(3)
    assert indices.tolist() == [[1, 2, 4], [1, 2, 4], [0, 3, -1]]
    assert scores.tolist() == [[EXACT | SAME_TYPE] * 3, [EXACT | SAME_TYPE] * 3, [EXACT | SAME_TYPE] * 2 + [-1]]


def test_top_k_skips_capacity_zero_targets(implementation):
    targets = [
        {"self": {"mdev_type": "A", "software_version": "1.0"}, "capacity": 0},
        {"self": {"mdev_type": "A", "software_version": "1.1"}, "capacity": 3},
        {"self": {"mdev_type": "A", "software_version": "1.0"}, "capacity": 0},
        {"self": {"mdev_type": "A", "software_version": "1.2"}},
    ]
    result = run([dev(mdev_type="A", software_version="1.0")], targets)
    # Capacity 0 targets are compatible ...
    assert result.compatible.tolist() == [[True, True, True, True]]
    assert int(result.scores[0, 0]) == EXACT | SAME_TYPE | closest(0, 0, 0)
    # ... but unavailable.
    indices, scores = result.top_k(4)
    assert indices.tolist() == [[1, 3, -1, -1]]
    assert scores.tolist() == [[SAME_TYPE | closest(0, 1, 0), SAME_TYPE | closest(0, 2, 0), -1, -1]]


def test_top_k_skips_incompatible_targets_and_pads(implementation):
    sources = [dev(mdev_type="A"), dev(mdev_type="C")]
    targets = [dev(mdev_type="B"), dev(mdev_type="A"), dev(mdev_type="B")]
    indices, scores = run(sources, targets).top_k(2)
    assert indices.dtype == np.int64 and scores.dtype == np.int64
    assert indices.tolist() == [[1, -1], [-1, -1]]
    assert scores.tolist() == [[EXACT | SAME_TYPE, -1], [-1, -1]]


def test_top_k_larger_than_the_targets(implementation):
    indices, scores = run([dev(mdev_type="A")], [dev(mdev_type="A"), dev(mdev_type="A")]).top_k(5)
    assert indices.shape == scores.shape == (1, 5)
    assert indices.tolist() == [[0, 1, -1, -1, -1]]
    assert scores.tolist() == [[EXACT | SAME_TYPE] * 2 + [-1] * 3]


def test_top_k_smaller_than_the_candidates(implementation):
    result = run([dev(mdev_type="A", software_version="1.0")], versions("1.1", "1.0", "1.3", "1.2"))
    assert result.top_k(1)[0].tolist() == [[1]]
    assert result.top_k(2)[0].tolist() == [[1, 0]]


def test_top_k_zero(implementation):
    indices, scores = run([dev(), dev()], [dev()]).top_k(0)
    assert indices.shape == scores.shape == (2, 0)
    assert indices.dtype == scores.dtype == np.int64


def test_top_k_skips_same_device_and_same_host(implementation):
    fleet = [
        {"id": "a", "host": "h1", "self": {"mdev_type": "A"}},
        {"id": "b", "host": "h1", "self": {"mdev_type": "A"}},
        {"id": "c", "host": "h2", "self": {"mdev_type": "A"}},
        {"id": "d", "self": {"mdev_type": "A"}},
    ]
    indices, _ = fm.match(fleet, fleet, workers=1).top_k(4)
    assert indices.tolist() == [[2, 3, -1, -1], [2, 3, -1, -1], [0, 1, 3, -1], [0, 1, 2, -1]]
    p = fm.Policy.from_dict({"exclude_same_host": False})
    indices, _ = fm.match(fleet, fleet, p, workers=1).top_k(4)
    assert indices.tolist() == [[1, 2, 3, -1], [0, 2, 3, -1], [0, 1, 3, -1], [0, 1, 2, -1]]


def test_incompatible_pairs_score_minus_one(implementation):
    result = run([dev(mdev_type="A")], [dev(mdev_type="B"), dev(mdev_type="A")])
    assert result.scores.dtype == np.int64
    assert result.scores.tolist() == [[-1, EXACT | SAME_TYPE]]


def test_same_inputs_give_the_same_ranking(implementation):
    sources = [dev(mdev_type="A", software_version=v) for v in ("1.0", "1.2", "2.0")]
    targets = versions("1.3.1", "1.2", "1.0.7", "2.1", "1.3.1", "2.0.0")
    first = run(sources, targets)
    second = run(sources, targets)
    assert np.array_equal(first.scores, second.scores)
    assert np.array_equal(first.reasons, second.reasons)
    assert np.array_equal(first.top_k(6)[0], second.top_k(6)[0])
    assert first.top_k(6)[0].tolist() == [
        [2, 1, 0, 4, -1, -1],
        [1, 0, 4, -1, -1, -1],
        [5, 3, -1, -1, -1, -1],
    ]


def test_score_version_names_the_attribute_ranked_on(implementation):
    p = fm.Policy.from_dict({"score_version": "firmware", "attributes": {"firmware": {"type": "version", "rule": "dynamic"}}})
    s = dev(mdev_type="A", software_version="1.0", firmware="3.2.1")
    targets = [
        dev(mdev_type="A", software_version="1.0.9", firmware="3.2.0"),
        dev(mdev_type="A", software_version="1.0.0", firmware="3.2.4"),
        dev(mdev_type="A", software_version="1.0.5"),
    ]
    result = run([s], targets, p)
    # software_version no longer ranks; firmware does, and a target without it sorts last.
    assert result.scores[0].tolist() == [SAME_TYPE | closest(0, 0, 0), SAME_TYPE | closest(0, 0, 4), SAME_TYPE]
    assert result.top_k(3)[0].tolist() == [[1, 0, 2]]


def test_score_type_names_the_attribute_compared(implementation):
    p = fm.Policy.from_dict({"score_type": "device_id", "attributes": {"mdev_type": {"rule": "ignore"}}})
    s = dev(mdev_type="A", device_id="1")
    result = run([s], [dev(mdev_type="A", device_id="1", pv_mode="x"), dev(mdev_type="B", device_id="1", pv_mode="x")], p)
    assert result.scores[0].tolist() == [SAME_TYPE, SAME_TYPE]
