"""The pandas peer (``pandas_peer.py``) gives what fastmatch gives, on targets without records.

Small generated fleets (a few seconds in all), in the bench's two shapes (the
generator's and the selective one), with many alike descriptors (ties broken by
target order) and with none; devices made to exercise the exclusions: a source
that is also a target (same id), devices without a host, a non-migratable one,
targets with capacity 0 (the generator's). Compared: the ranking (targets, in
order, per source) for several k, the compatible pairs, the compatible
available targets per source. Never the raw scores: their representation is
fastmatch's own and may change.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas_peer
import pytest

import fastmatch as fm
from fastmatch.generate import generate_records


def _fleet(n, m, distinct, seed, shape, from_default=False):
    sources = list(generate_records("sources", n, distinct, seed))
    if from_default:  # the default fleet's targets, those without records
        targets = [r for r in generate_records("targets", m, distinct, seed) if not r.get("compatible")]
    else:
        targets = list(generate_records("targets", m, distinct, seed, record_fraction=0.0))
    if shape == "selective":
        sources = [pandas_peer.selective(r, groups=4) for r in sources]
        targets = [pandas_peer.selective(r, groups=4) for r in targets]
    # A source that is also a target (its own best candidate but for the id), devices without
    # a host, a device that is not migratable.
    twin = copy.deepcopy(sources[7])
    twin.pop("vm", None)
    twin.pop("host", None)  # not excluded by the host: by the id alone
    twin["capacity"] = 3
    targets.insert(5, twin)
    for k in range(0, len(sources), 11):
        sources[k].pop("host", None)
    for k in range(3, len(targets), 13):
        targets[k].pop("host", None)
    sources[2]["migratable"] = False
    targets[9]["migratable"] = False
    return sources, targets


def _both(sources, targets):
    result = fm.match(fm.DeviceSet.from_records(sources), fm.DeviceSet.from_records(targets), workers=2)
    return result, pandas_peer.prepare(sources, targets)


CASES = [
    pytest.param(300, 400, 40, 1, "default", False, id="default-alike"),
    pytest.param(300, 400, 800, 2, "default", False, id="default-distinct"),
    pytest.param(300, 400, 40, 3, "selective", False, id="selective-alike"),
    pytest.param(300, 400, 800, 4, "selective", False, id="selective-distinct"),
    pytest.param(300, 600, 60, 5, "default", True, id="default-fleet-targets-without-records"),
]


@pytest.mark.parametrize("n, m, distinct, seed, shape, from_default", CASES)
def test_peer_equals_match(n, m, distinct, seed, shape, from_default):
    sources, targets = _fleet(n, m, distinct, seed, shape, from_default)
    result, frames = _both(sources, targets)

    # Compatibility: the same pairs (capacity aside) and the same available counts.
    sparse = result.to_sparse().tocoo()
    expected = sorted(zip(sparse.row.tolist(), sparse.col.tolist()))
    pairs = pandas_peer.compatible_pairs(frames)
    assert list(zip(pairs["s_row"].tolist(), pairs["t_row"].tolist())) == expected
    available = pandas_peer.compatible_pairs(frames, capacity=True)
    np.testing.assert_array_equal(np.bincount(available["s_row"], minlength=len(sources)), result.counts())

    # Rankings, with the packed sort key and with the plain multi-column sort.
    for k in (1, 5, 12):
        indices, _ = result.top_k(k)
        for packed in (True, False):
            got = pandas_peer.as_array(pandas_peer.top_k(frames, k, packed=packed), len(sources), k)
            np.testing.assert_array_equal(got, indices, err_msg=f"k={k}, packed={packed}")

    assert len(expected) > 0 and (result.top_k(5)[0] >= 0).any()
    assert result.counts()[2] == 0  # the non-migratable source


def test_peer_ties_and_twin():
    """Alike target descriptors tie: the earlier target wins; a source is never its own candidate."""
    sources, targets = _fleet(60, 80, 6, 7, "default")
    result, frames = _both(sources, targets)
    indices, _ = result.top_k(5)
    np.testing.assert_array_equal(pandas_peer.as_array(pandas_peer.top_k(frames, 5), len(sources), 5), indices)
    assert 5 not in indices[7]  # target 5 is source 7 itself
    assert result.reason_names(7, 5) == ["SAME_DEVICE"]


def test_peer_refuses_what_it_does_not_implement():
    sources, targets = _fleet(20, 20, 20, 8, "default")
    with_records = list(generate_records("targets", 40, 40, 8))
    assert any(r.get("compatible") for r in with_records)
    with pytest.raises(ValueError, match="COMPATIBLE"):
        pandas_peer.prepare(sources, with_records)
    odd = copy.deepcopy(targets)
    odd[0]["self"]["software_version"] = "1.2.3-rc1"
    with pytest.raises(ValueError, match="version"):
        pandas_peer.prepare(sources, odd)
    odd = copy.deepcopy(targets)
    odd[0]["self"]["color"] = "red"
    with pytest.raises(ValueError, match="color"):
        pandas_peer.prepare(sources, odd)


# -- value syntax: the two readings agree on what the generator never writes --------------------------
POOLS = {  # the first value of each pool is drawn most (so that pairs match), then any
    "device_api": ["vfio-pci", "vfio-ccw", "", None],
    "mdev_type": ["a", "b", None],
    "vendor_driver": ["x", None],
    "device_id": ["10de", None, ""],
    "aggregator": [1, "1", "0x1", 2, "2", None, ""],
    "software_version": ["1.2.3", "1.2", "1.2.0", "v1.2.0", "1.3.5", "1.3.05", "1.3.7", "2.0", "1", None, "", "01.2",
                         "1.10.1", "1.9.100"],
    "pv_mode": [None, "none", "none+ppgtt", ["ppgtt", "none"], "none, ppgtt", "", [], "ppgtt+context"],
}


def _random_record(rng, i, side):
    attributes = {}
    for name, pool in POOLS.items():
        value = pool[0] if rng.random() < 0.6 else pool[rng.integers(len(pool))]
        if value is not None:
            attributes[name] = value
    record = {"id": f"{side}{i}" if rng.random() > 0.05 else f"shared{i % 5}", "self": attributes}
    for key, pool in (("host", ["h1", "h2", "h3", "", None]), ("migration_version", ["m1", "m2", None, None, ""])):
        value = pool[rng.integers(len(pool))]
        if value is not None:
            record[key] = value
    if rng.random() < 0.05:
        record["migratable"] = False
    if side == "t":
        record["capacity"] = int(rng.integers(0, 3))
    return record


def _unique_ids(records):
    seen = set()
    for record in records:
        while record["id"] in seen:
            record["id"] += "x"
        seen.add(record["id"])
    return records


@pytest.mark.parametrize("seed", range(40))
def test_peer_equals_match_on_value_syntax(seed):
    """Random fleets over the syntaxes of SPEC section 3 (``1.2`` = ``1.2.0`` = ``v1.2.0``, ``0x1`` =
    ``1``, sets as lists or ``+``/``,`` strings, ``""`` absent), shared ids, hosts, opaque versions."""
    rng = np.random.default_rng(seed)
    sources = _unique_ids([_random_record(rng, i, "s") for i in range(60)])
    targets = _unique_ids([_random_record(rng, i, "t") for i in range(80)])
    result, frames = _both(sources, targets)
    sparse = result.to_sparse().tocoo()
    pairs = pandas_peer.compatible_pairs(frames)
    assert list(zip(pairs["s_row"].tolist(), pairs["t_row"].tolist())) == sorted(
        zip(sparse.row.tolist(), sparse.col.tolist())
    )
    indices, _ = result.top_k(20)
    np.testing.assert_array_equal(pandas_peer.as_array(pandas_peer.top_k(frames, 20), len(sources), 20), indices)


def test_peer_equals_match_on_date_stamped_patches():
    """SPEC section 7: a date-stamped patch ranks by its true value (2.1.20240116 before 2.1.20240115)."""
    def device(name, version):
        return {"id": name, "self": {"device_api": "vfio-pci", "mdev_type": "t", "software_version": version}}

    sources = [device("s", "2.1.20240101")]
    targets = [device("t0", "2.1.20240115"), device("t1", "2.1.20240116"), device("t2", "2.1.3")]
    result, frames = _both(sources, targets)
    assert pandas_peer.as_array(pandas_peer.top_k(frames, 3), 1, 3).tolist() == [[1, 0, 2]]
    assert result.top_k(3)[0].tolist() == [[1, 0, 2]]
