"""Every public object pickles and unpickles to one that answers alike (or refuses clearly)."""

import pickle

import numpy as np
import pytest

import fastmatch

SOURCES = [
    {"id": f"s{k}", "host": f"h{k % 3}", "self": {"mdev_type": "ab"[k % 2], "software_version": f"1.{k % 3}"}}
    for k in range(12)
]
TARGETS = [
    {"id": f"t{k}", "host": f"h{k % 4}", "self": {"mdev_type": "ab"[k % 2], "software_version": f"1.{k % 4}.{k}"}}
    for k in range(15)
]


def test_a_match_result_pickles_to_equal_answers(implementation):
    result = fastmatch.match(SOURCES, TARGETS, workers=2)
    again = pickle.loads(pickle.dumps(result))
    for a, b in zip(result.top_k(4), again.top_k(4)):
        assert np.array_equal(a, b)
    assert np.array_equal(result.reasons, again.reasons)
    assert np.array_equal(result.counts(), again.counts())
    assert result.explain(0, 1) == again.explain(0, 1)


def test_device_sets_policies_and_indexes_pickle():
    sources = fastmatch.DeviceSet.from_records(SOURCES)
    policy = fastmatch.Policy.from_dict({"exclude_same_host": False})
    index = fastmatch.TargetIndex(TARGETS, policy)
    assert pickle.loads(pickle.dumps(sources)).ids == sources.ids
    assert pickle.loads(pickle.dumps(policy)).exclude_same_host is False
    again = pickle.loads(pickle.dumps(index))
    for a, b in zip(index.top_k(sources, 3), again.top_k(sources, 3)):
        assert np.array_equal(a, b)


def test_a_result_with_an_unpicklable_confirmer_refuses_clearly():
    result = fastmatch.match(SOURCES, TARGETS, confirm=lambda s, t: s == t)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(result)


def test_top_k_past_the_memory_limit_is_refused_not_allocated():
    result = fastmatch.match(SOURCES, TARGETS, memory_limit=1 << 20)
    with pytest.raises(fastmatch.ResultTooLargeError, match=r"top_k\(1000000000\)"):
        result.top_k(1_000_000_000)
    indices, _ = result.top_k(20)  # more than the targets: padded
    assert indices.shape == (12, 20) and (indices[:, 15:] == -1).all()
