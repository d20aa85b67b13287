"""SPEC section 7: scores and ranking, and MatchResult.top_k.

Scores follow the layout documented in fastmatch/reasons.py: bit 62 exact, bit 61
same_type, bit 60 both have the version, then a version part whose width depends on the
target fleet. So the tests state what SPEC section 7 says, not numbers: the flags of each
score, and that scores order exactly as the SPEC's keys do (for prefer="closest" the
smaller |dMajor|, then the smaller |dMinor|, then the higher T.patch; for prefer="newest"
the rank of T's version among the targets' versions), equal keys giving equal scores.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch as fm

from scores import EXACT, SAME_TYPE, assert_scores, closest, newest


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
    assert_scores(result.scores[0, 0], [EXACT | SAME_TYPE | closest(0, 0, 3)])


def test_exact_ignores_attributes_whose_rule_is_ignore(implementation):
    p = fm.Policy.from_dict({"unknown": "ignore", "attributes": {"vendor_driver": {"rule": "ignore"}}})
    s = dev(mdev_type="A", software_version="1.0", vendor_driver="x", device_type="pci")
    t = dev(mdev_type="A", software_version="1.0", vendor_driver="y", device_type="ccw")
    assert_scores(run([s], [t], p).scores[0, 0], [EXACT | SAME_TYPE | closest(0, 0, 0)])


def test_dynamic_attributes_count_for_exact(implementation):
    p = fm.Policy.from_dict({"attributes": {"aggregator": {"rule": "dynamic"}}})
    s = dev(mdev_type="A", aggregator=1)
    assert_scores(run([s], [dev(mdev_type="A", aggregator=2)], p).scores[0, 0], [SAME_TYPE])
    assert_scores(run([s], [dev(mdev_type="A", aggregator=1)], p).scores[0, 0], [EXACT | SAME_TYPE])


def test_compatible_but_different_descriptors_are_not_exact(implementation):
    s = dev(mdev_type="A", software_version="2.1.3", pv_mode="none")
    t = dev(mdev_type="A", software_version="2.1.3", pv_mode="none+ppgtt")
    assert_scores(run([s], [t]).scores[0, 0], [SAME_TYPE | closest(0, 0, 3)])
    # Typed equality: 2.1 and 2.1.0 are the same version.
    s, t = dev(mdev_type="A", software_version="2.1"), dev(mdev_type="A", software_version="2.1.0")
    assert_scores(run([s], [t]).scores[0, 0], [EXACT | SAME_TYPE | closest(0, 0, 0)])


def test_same_type_needs_equal_score_type_values(implementation):
    s = dev(mdev_type="A", software_version="1.0")
    t = {"self": {"mdev_type": "B", "software_version": "1.0"}, "compatible": [{"mdev_type": ["A", "B"]}]}
    assert_scores(run([s], [t]).scores[0, 0], [closest(0, 0, 0)])
    p = fm.Policy.from_dict({"score_type": "vendor_driver"})
    s = dev(mdev_type="A", vendor_driver="i915", software_version="1.0")
    t = {"self": {"mdev_type": "B", "vendor_driver": "i915", "software_version": "1.0"}, "compatible": [{"mdev_type": "*"}]}
    assert_scores(run([s], [t], p).scores[0, 0], [SAME_TYPE | closest(0, 0, 0)])


def test_closest_prefers_the_smaller_minor_distance_then_the_higher_patch(implementation):
    result = run([dev(mdev_type="A", software_version="2.1.0")], versions("2.3.9", "2.1.5", "2.2.0", "2.1.5", "2.1.7"))
    assert_scores(result.scores[0], [
        SAME_TYPE | closest(0, 2, 9),
        SAME_TYPE | closest(0, 0, 5),
        SAME_TYPE | closest(0, 1, 0),
        SAME_TYPE | closest(0, 0, 5),
        SAME_TYPE | closest(0, 0, 7),
    ])
    indices, scores = result.top_k(5)
    assert indices.tolist() == [[4, 1, 3, 2, 0]]
    assert scores.tolist() == [[result.scores[0, j] for j in (4, 1, 3, 2, 0)]]


def test_closest_prefers_the_smaller_major_distance_first(implementation):
    # With a rule that allows other majors, the major distance comes before the minor one.
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ge"}}})
    result = run([dev(mdev_type="A", software_version="1.5")], versions("3.0", "2.0", "1.6", "1.5.2", "2.4", "2.9.9"), p)
    assert_scores(result.scores[0], [
        SAME_TYPE | closest(2, 5, 0),
        SAME_TYPE | closest(1, 5, 0),
        SAME_TYPE | closest(0, 1, 0),
        SAME_TYPE | closest(0, 0, 2),
        SAME_TYPE | closest(1, 1, 0),
        SAME_TYPE | closest(1, 4, 9),
    ])
    assert result.top_k(6)[0].tolist() == [[3, 2, 4, 5, 1, 0]]


def test_closest_distances_are_absolute(implementation):
    # dynamic: any version is compatible, and (unlike ignore) it still counts for exact.
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "dynamic"}}})
    result = run([dev(mdev_type="A", software_version="5.5")], versions("4.4", "6.6", "5.3", "5.7"), p)
    assert_scores(result.scores[0], [
        SAME_TYPE | closest(1, 1, 0),
        SAME_TYPE | closest(1, 1, 0),
        SAME_TYPE | closest(0, 2, 0),
        SAME_TYPE | closest(0, 2, 0),
    ])
    assert result.top_k(4)[0].tolist() == [[2, 3, 0, 1]]


def test_closest_ranks_components_of_any_size(implementation):
    """No field is capped: date-stamped patches, majors and minors in the millions and
    components near 2^63 rank by their true differences (SPEC section 7)."""
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ge"}}})
    big = 2**63 - 1
    result = run(
        [dev(mdev_type="A", software_version="0.0")],
        versions(
            "1.2.5000000", "0.0.1048575", "0.0.1048576", "5000000.0", "0.3000000", "0.3000001",
            f"{big}.0", f"0.{big}", f"0.0.{big}",
        ),
        p,
    )
    assert_scores(result.scores[0], [
        SAME_TYPE | closest(1, 2, 5000000),
        SAME_TYPE | closest(0, 0, 1048575),
        SAME_TYPE | closest(0, 0, 1048576),
        SAME_TYPE | closest(5000000, 0, 0),
        SAME_TYPE | closest(0, 3000000, 0),
        SAME_TYPE | closest(0, 3000001, 0),
        SAME_TYPE | closest(big, 0, 0),
        SAME_TYPE | closest(0, big, 0),
        SAME_TYPE | closest(0, 0, big),
    ])


def test_date_stamped_patches_rank_the_higher_first(implementation):
    result = run([dev(mdev_type="A", software_version="2.1.0")], versions("2.1.20231004", "2.1.20240115"))
    assert result.top_k(2)[0].tolist() == [[1, 0]]
    source = dev(mdev_type="A", software_version=f"{2**40}.{2**41}")
    targets = versions(f"{2**40}.{2**41 + 7}", f"{2**40}.{2**41 + 3}", f"{2**40}.{2**41 - 1}")
    assert run([source], targets).top_k(3)[0].tolist() == [[1, 0, -1]]


def test_closest_ignores_components_past_the_patch(implementation):
    result = run([dev(mdev_type="A", software_version="6.19")], versions("6.19.14.31400000", "6.19.14.1", "6.19.14"))
    assert_scores(result.scores[0], [SAME_TYPE | closest(0, 0, 14)] * 3)
    assert result.top_k(3)[0].tolist() == [[0, 1, 2]]


def test_closest_with_nvidia_style_versions(implementation):
    result = run([dev(mdev_type="A", software_version="550.127.05")], versions("550.127.08", "550.144.03", "550.127.8"))
    assert_scores(result.scores[0], [SAME_TYPE | closest(0, 0, 8), SAME_TYPE | closest(0, 17, 3), SAME_TYPE | closest(0, 0, 8)])
    assert result.top_k(3)[0].tolist() == [[0, 2, 1]]


def test_newest_prefers_the_higher_target_version(implementation):
    p = fm.Policy.from_dict({"prefer": "newest"})
    targets = versions("2.3", "2.5.0", "2.1.9", "2.5.0-rc1", "3.0", "2.5")
    result = run([dev(mdev_type="A", software_version="2.0")], targets, p)
    # The targets' distinct versions, in order: 2.1.9, 2.3, 2.5.0-rc1, 2.5.0 (= 2.5), 3.0.
    assert_scores(result.scores[0], [
        SAME_TYPE | newest(1),
        SAME_TYPE | newest(3),
        SAME_TYPE | newest(0),
        SAME_TYPE | newest(2),
        -1,
        SAME_TYPE | newest(3),
    ])
    indices, scores = result.top_k(6)
    assert indices.tolist() == [[1, 5, 3, 0, 2, -1]]
    assert scores.tolist() == [[int(result.scores[0, j]) for j in (1, 5, 3, 0, 2)] + [-1]]


def test_newest_ignores_build_metadata(implementation):
    p = fm.Policy.from_dict({"prefer": "newest"})
    result = run([dev(mdev_type="A", software_version="1.0")], versions("1.2+b2", "1.2+b1", "1.1"), p)
    assert_scores(result.scores[0], [SAME_TYPE | newest(1), SAME_TYPE | newest(1), SAME_TYPE | newest(0)])
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
    assert_scores(result.scores[0], [SAME_TYPE, *with_version, SAME_TYPE])
    # A source without the version: no pair has both, so all tie and keep target order.
    assert_scores(result.scores[1], [SAME_TYPE] * 4)
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
    assert_scores(result.scores[0], [
        closest(0, 0, 9),
        SAME_TYPE | closest(0, 4, 0),
        EXACT | SAME_TYPE | closest(0, 0, 0),
        SAME_TYPE | closest(0, 0, 9),
    ])
    assert result.top_k(4)[0].tolist() == [[2, 3, 1, 0]]


def test_exact_without_versions_beats_versions(implementation):
    p = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ignore"}}})
    s = dev(mdev_type="A", pv_mode="none", software_version="1.0")
    targets = [dev(mdev_type="A", pv_mode="none+x", software_version="1.0"), dev(mdev_type="A", pv_mode="none")]
    result = run([s], targets, p)
    assert_scores(result.scores[0], [SAME_TYPE | closest(0, 0, 0), EXACT | SAME_TYPE])
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
    assert_scores(result.scores[0, 0], [EXACT | SAME_TYPE | closest(0, 0, 0)])
    # ... but unavailable.
    indices, scores = result.top_k(4)
    assert indices.tolist() == [[1, 3, -1, -1]]
    assert_scores(scores[0], [SAME_TYPE | closest(0, 1, 0), SAME_TYPE | closest(0, 2, 0), -1, -1])


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
    assert_scores(result.scores[0], [SAME_TYPE | closest(0, 0, 0), SAME_TYPE | closest(0, 0, 4), SAME_TYPE])
    assert result.top_k(3)[0].tolist() == [[1, 0, 2]]


def test_score_type_names_the_attribute_compared(implementation):
    p = fm.Policy.from_dict({"score_type": "device_id", "attributes": {"mdev_type": {"rule": "ignore"}}})
    s = dev(mdev_type="A", device_id="1")
    result = run([s], [dev(mdev_type="A", device_id="1", pv_mode="x"), dev(mdev_type="B", device_id="1", pv_mode="x")], p)
    assert_scores(result.scores[0], [SAME_TYPE, SAME_TYPE])
