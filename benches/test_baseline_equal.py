"""The NumPy baseline gives exactly what fastmatch.match gives (class-level scores and reasons).

Fast (a few seconds): small generated fleets under several policies. Half the
source descriptors carry COMPATIBLE records too, for ``direction =
"source-offers"`` and ``"both"``.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch as fm
from fastmatch.generate import generate_records
from numpy_baseline import numpy_match

# 53 ignored attributes push `extra` to index 60: its failure bit cannot be its reason bit, and
# the baseline's byte-table path (and the kernel's) is taken.
PADDED = {f"pad{k:02d}": {"type": "string", "rule": "ignore"} for k in range(53)}
POLICIES = {
    "default": {},
    "records-and": {"records": "and"},
    "both": {"direction": "both"},
    "source-offers": {"direction": "source-offers"},
    "newest": {"prefer": "newest", "exclude_same_host": False},
    "opaque-required": {"opaque": "required"},
    "ge-le": {
        "attributes": {
            "aggregator": {"type": "int", "rule": "ge"},
            "software_version": {"type": "version", "rule": "le"},
        }
    },
    "packed-bits": {"attributes": {**PADDED, "extra": {"type": "string", "rule": "exact"}}},
}


def _with_extra(records, every):
    """Give every ``every``-th record an ``extra`` SELF attribute (an unknown one, unless declared)."""
    for k, record in enumerate(records):
        if k % every == 0:
            record["self"]["extra"] = "ab"[k // every % 2]
        yield record


def _fleet(n, m, distinct, seed, policy):
    source_records = generate_records("sources", n, distinct, seed, record_fraction=0.5)
    sources = fm.DeviceSet.from_records(_with_extra(source_records, 3), policy)
    targets = fm.DeviceSet.from_records(_with_extra(generate_records("targets", m, distinct, seed), 4), policy)
    return sources, targets


def _device_level(scores, reasons, source_class, target_class):
    """Class-pair arrays spread over device pairs, so that the two class numberings need not agree."""
    index = np.ix_(source_class, target_class)
    return scores[index], reasons[index]


def _assert_equal(sources, targets, policy, confirm=None, block=None):
    result = fm.match(sources, targets, policy, workers=1, confirm=confirm)
    expected = _device_level(result.class_scores, result.class_reasons, result.source_class, result.target_class)
    got = _device_level(*numpy_match(sources, targets, policy, confirm=confirm, block=block))
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])
    return expected


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("distinct, seed", [(40, 1), (400, 2)])
def test_baseline_equals_match(name, distinct, seed):
    policy = fm.Policy.from_dict(POLICIES[name])
    sources, targets = _fleet(300, 400, distinct, seed, policy)
    scores, reasons = _assert_equal(sources, targets, policy, block=7)
    assert (reasons != 0).any()
    assert name == "opaque-required" or (reasons == 0).any()  # few devices carry a migration_version


def test_baseline_with_a_confirmer():
    policy = fm.Policy.default()
    sources, targets = _fleet(200, 300, 300, 5, policy)

    def confirm(s, t):
        return s.split("/")[1] == t.split("/")[1]  # the same mdev type, whatever the driver branch

    _assert_equal(sources, targets, policy, confirm=confirm)


def test_baseline_on_a_dense_fleet():
    """No two descriptors alike, as in the dense kernel benchmark, one block at a time and several."""
    policy = fm.Policy.default()
    sources, targets = _fleet(500, 500, 500, 9, policy)
    for block in (None, 64):
        _assert_equal(sources, targets, policy, block=block)
