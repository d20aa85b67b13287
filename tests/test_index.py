"""TargetIndex answers exactly what match().top_k answers, for sources whose values
the prepared targets have never seen as well as for known ones."""

import random

import numpy as np
import pytest

import fastmatch

TYPES = ["i915-GVTg_V5_1", "i915-GVTg_V5_2", "i915-GVTg_V5_4", "nvidia-63", "nvidia-64"]
VERSIONS = ["1.0", "1.1.3", "1.2", "2.0.1", "2.1", "550.127.08", "1.1.0-rc1", ""]
MODES = ["none", "none+ppgtt", "none+ppgtt+context", "ppgtt", ""]


def _device(rng: random.Random, name: str, *, unseen: bool) -> dict:
    versions = VERSIONS + (["1.1.9", "0.9", "3.0", "1.15"] if unseen else [])
    modes = MODES + (["none+turbo", "exotic"] if unseen else [])
    record = {
        "id": name,
        "host": rng.choice(["", "h1", "h2", "h3"] + (["h9"] if unseen else [])),
        "self": {
            "mdev_type": rng.choice(TYPES + (["unknown-type"] if unseen else [])),
            "software_version": rng.choice(versions),
            "pv_mode": rng.choice(modes),
            "aggregator": rng.choice([1, 2, 4, None, 3] if unseen else [1, 2, 4, None]),
        },
        "capacity": rng.choice([0, 1, 2]),
    }
    if unseen and rng.random() < 0.1:
        record["self"]["vendor_extra"] = "x"
    if rng.random() < 0.15:
        record["migration_version"] = rng.choice(["m1", "m2"] + (["m3"] if unseen else []))
    if rng.random() < 0.05:
        record["migratable"] = False
    return record


def _target(rng: random.Random, name: str) -> dict:
    record = _device(rng, name, unseen=False)
    if rng.random() < 0.4:
        record["compatible"] = [
            {
                "mdev_type": "i915-GVTg_V5_{v:int:1,2,4,8}",
                "aggregator": "{v}/2",
                "software_version": ["1.1.9", "1.1.3", "0.9"],  # literals no target has
            },
            {"mdev_type": ["unknown-type", "nvidia-63"], "pv_mode": "none+turbo"},
        ]
    return record


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "options",
    [{}, {"prefer": "newest"}, {"records": "and"}, {"opaque": "required"}, {"exclude_same_host": False},
     {"direction": "both"}, {"unknown": "ignore"}, {"attributes": {"aggregator": {"type": "int", "rule": "ge"}}}],
)
def test_index_top_k_equals_match_top_k(seed, options):
    rng = random.Random(seed)
    targets = [_target(rng, f"t{k}") for k in range(80)]
    sources = [_device(rng, f"t{k}" if k < 4 else f"s{k}", unseen=True) for k in range(40)]
    policy = fastmatch.Policy.from_dict(options)
    index = fastmatch.TargetIndex(targets, policy)
    for k in (1, 4):
        expected = fastmatch.match(sources, targets, policy).top_k(k)
        got = index.top_k(sources, k)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    one = index.top_k(sources[5], 3)
    assert np.array_equal(one[0], fastmatch.match([sources[5]], targets, policy).top_k(3)[0])


def test_index_of_an_empty_fleet():
    index = fastmatch.TargetIndex([])
    indices, scores = index.top_k({"self": {"mdev_type": "a"}}, 2)
    assert indices.tolist() == [[-1, -1]] and scores.tolist() == [[-1, -1]]


def test_unseen_values_that_share_a_code_stay_apart():
    """1.0.4 and 1.2 both sort after the targets' 1.0.3: they share a version code, but
    not the minor that the version rule reads (1.0.4 -> 1.0.3 passes, 1.2 -> 1.0.3 does not)."""
    targets = [{"id": "t", "self": {"software_version": "1.0.3"}}]
    sources = [
        {"id": "a", "self": {"software_version": "1.0.4"}},
        {"id": "b", "self": {"software_version": "1.2"}},
    ]
    index = fastmatch.TargetIndex(targets)
    for order in (sources, sources[::-1]):
        expected = fastmatch.match(order, targets).top_k(1)
        got = index.top_k(order, 1)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        assert sorted(got[0][:, 0].tolist()) == [-1, 0]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize(
    "options",
    [{}, {"prefer": "newest"}, {"records": "and"}, {"opaque": "required"}, {"exclude_same_host": False},
     {"direction": "both"}, {"direction": "source-offers"}, {"unknown": "ignore"}, {"score_version": ""}],
)
def test_one_descriptor_requests_equal_match(seed, options):
    """A request of one descriptor (a scheduler's: one record, or devices that are alike)
    takes the index's one-class path; each answers what match() does, values the targets
    lack included."""
    rng = random.Random(100 + seed)
    targets = [_target(rng, f"t{k}") for k in range(60)]
    sources = [_device(rng, f"t{k}" if k < 4 else f"s{k}", unseen=True) for k in range(20)]
    for source in sources[::5]:  # records that count only where the policy reads the sources'
        source["compatible"] = [{"mdev_type": ["nvidia-63", "i915-GVTg_V5_4"]}]
    policy = fastmatch.Policy.from_dict(options)
    index = fastmatch.TargetIndex(targets, policy)
    for source in sources:
        alike = [source, {**source, "id": source["id"] + "-twin", "host": "h1"}]  # two devices, one descriptor
        for request in ([source], alike):
            expected = fastmatch.match(request, targets, policy).top_k(4)
            got = index.top_k(request, 4)
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), (source, options)
        record = {key: value for key, value in source.items() if key != "id"}
        got = index.top_k(record, 2)
        expected = fastmatch.match([{"id": "request", **record}], targets, policy).top_k(2)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), (source, options)


def test_one_descriptor_side_is_what_the_general_side_makes():
    """The one-class source side holds the same arrays as the general interning of that descriptor."""
    rng = random.Random(7)
    targets = [_target(rng, f"t{k}") for k in range(60)]
    for options in ({}, {"direction": "both"}, {"prefer": "newest"}):
        index = fastmatch.TargetIndex(targets, fastmatch.Policy.from_dict(options))
        prepared = index._prepared
        for k in range(30):
            record = _device(rng, f"s{k}", unseen=True)
            if k % 3 == 0 and options.get("direction") != "both":  # records the policy does not read
                record["compatible"] = [{"mdev_type": "nvidia-63"}]
            devices = fastmatch.DeviceSet.from_records([record], index.policy)
            fast = prepared._one_class_side(devices)
            general = prepared.context.side(devices, "source", frozen=True)
            for field in fast.__dataclass_fields__:
                if field != "records":
                    a, b = getattr(fast, field), getattr(general, field)
                    assert a.dtype == b.dtype and np.array_equal(a, b), (field, options)
