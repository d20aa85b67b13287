"""SPEC section 8: the 64-bit reason mask."""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch as fm

DECLARED = ["device_api", "mdev_type", "vendor_driver", "device_id", "software_version", "pv_mode", "aggregator"]
BIT = {name: 1 << i for i, name in enumerate(DECLARED)}
SAME_DEVICE, SAME_HOST, NOT_MIGRATABLE, OPAQUE, NO_RECORD = (1 << b for b in (63, 62, 61, 60, 59))
FIXED = {"SAME_DEVICE": SAME_DEVICE, "SAME_HOST": SAME_HOST, "NOT_MIGRATABLE": NOT_MIGRATABLE, "OPAQUE": OPAQUE, "NO_RECORD": NO_RECORD}


def run(sources, targets, policy=None):
    return fm.match(sources, targets, policy, workers=1)


def one(source, target, policy=None):
    result = run([{"id": "s", **source}], [{"id": "t", **target}], policy)
    return int(result.reasons[0, 0]), result


def test_reasons_are_uint64(implementation):
    result = run([{"id": "s", "self": {}}], [{"id": "t", "self": {}}])
    assert result.reasons.dtype == np.uint64
    assert result.reasons.shape == (1, 1)


# -- fixed bits ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source, target, name",
    [
        ({"id": "x", "self": {}}, {"id": "x", "self": {}}, "SAME_DEVICE"),
        ({"host": "h", "self": {}}, {"host": "h", "self": {}}, "SAME_HOST"),
        ({"self": {}, "migratable": False}, {"self": {}}, "NOT_MIGRATABLE"),
        ({"self": {}}, {"self": {}, "migratable": False}, "NOT_MIGRATABLE"),
        ({"self": {}, "migration_version": "a"}, {"self": {}, "migration_version": "b"}, "OPAQUE"),
        ({"self": {}}, {"self": {}, "compatible": [{"mdev_type": "a"}]}, "NO_RECORD"),
    ],
)
def test_each_fixed_bit(implementation, source, target, name):
    mask, result = one(source, target)
    assert mask == FIXED[name]
    assert result.reason_names(0, 0) == [name]


def test_fixed_bit_values():
    assert (SAME_DEVICE, SAME_HOST, NOT_MIGRATABLE, OPAQUE, NO_RECORD) == (
        0x8000000000000000,
        0x4000000000000000,
        0x2000000000000000,
        0x1000000000000000,
        0x0800000000000000,
    )


def test_all_fixed_bits_together(implementation):
    source = {"id": "x", "host": "h", "self": {}, "migratable": False, "migration_version": "a"}
    target = {"id": "x", "host": "h", "self": {}, "compatible": [{"mdev_type": "a"}]}
    mask, result = one(source, target)
    assert mask == SAME_DEVICE | SAME_HOST | NOT_MIGRATABLE | OPAQUE | NO_RECORD == 0xF800000000000000
    assert sorted(result.reason_names(0, 0)) == sorted(FIXED)


# -- attribute bits in the policy's declared order -------------------------------------------
@pytest.mark.parametrize(
    "name, s, t",
    [
        ("device_api", "vfio-pci", "vfio-ccw"),
        ("mdev_type", "i915-GVTg_V5_4", "i915-GVTg_V5_8"),
        ("vendor_driver", "i915", "nvidia"),
        ("device_id", "8086591d", "80863e92"),
        ("software_version", "1.2", "1.1"),
        ("pv_mode", "none+ppgtt", "none"),
        ("aggregator", 2, 1),
    ],
)
def test_declared_attribute_bits(implementation, name, s, t):
    mask, result = one({"self": {name: s}}, {"self": {name: t}})
    assert mask == BIT[name] == 1 << DECLARED.index(name)
    assert result.reason_names(0, 0) == [name]


def test_several_attribute_bits(implementation):
    s = {"device_api": "vfio-pci", "mdev_type": "a", "device_id": "1", "aggregator": 1}
    t = {"device_api": "vfio-ccw", "mdev_type": "a", "device_id": "2", "aggregator": 2}
    mask, result = one({"self": s}, {"self": t})
    assert mask == 0b1001001
    assert result.reason_names(0, 0) == ["device_api", "device_id", "aggregator"]


def test_custom_policy_order(implementation):
    p = fm.Policy.from_dict(
        {"attributes": {"zeta": {"type": "int"}, "alpha": {"type": "string"}, "mdev_type": {"rule": "ignore"}}}
    )
    # Replacing mdev_type keeps its place; new attributes follow the defaults in the order given.
    assert one({"self": {"zeta": 1}}, {"self": {"zeta": 2}}, p)[0] == 1 << 7
    assert one({"self": {"alpha": "a"}}, {"self": {"alpha": "b"}}, p)[0] == 1 << 8
    assert one({"self": {"aggregator": 1}}, {"self": {"aggregator": 2}}, p)[0] == 1 << 6
    assert one({"self": {"mdev_type": "a"}}, {"self": {"mdev_type": "b"}}, p)[0] == 0


def test_unknown_attributes_follow_in_order_of_first_appearance(implementation):
    sources = [
        {"id": "s0", "self": {"u3": "1"}, "compatible": [{"u1": "*", "u3": "*"}]},
        {"id": "s1", "self": {"u2": "1", "u3": "1"}},
    ]
    targets = [
        {"id": "t0", "self": {"u4": "1"}, "compatible": [{"u5": "*", "u2": "*", "u4": "*"}]},
        {"id": "t1", "self": {}},
        {"id": "t2", "self": {"u4": "1"}},
        {"id": "t3", "self": {"u5": "z"}},
        {"id": "t4", "self": {"u1": "z", "u3": "1"}},
    ]
    # Sources before targets, each device's self before its records:
    # u3 -> bit 7, u1 -> 8, u2 -> 9, u4 -> 10, u5 -> 11.
    result = run(sources, targets)
    u1, u2, u3, u4, u5 = 1 << 8, 1 << 9, 1 << 7, 1 << 10, 1 << 11
    assert result.attributes == DECLARED + ["u3", "u1", "u2", "u4", "u5"]
    assert result.reasons[:, 1:].tolist() == [
        [u3, u3 | u4, u3 | u5, u1],
        [u2 | u3, u2 | u3 | u4, u2 | u3 | u5, u1 | u2],
    ]
    # t0's record accepts both sources but leaves u3 to its rule, which fails: the bit, and NO_RECORD.
    assert result.reasons[:, 0].tolist() == [u3 | NO_RECORD, u3 | NO_RECORD]
    assert result.reason_names(1, 2) == ["u3", "u2", "u4"]


def test_attribute_order_reads_aliases_as_their_names(implementation):
    result = run([{"id": "s", "self": {"zz": "1", "pciid": "1"}}], [{"id": "t", "self": {"pci_id": "2", "zz": "2"}}])
    assert result.attributes == DECLARED + ["zz"]
    assert int(result.reasons[0, 0]) == BIT["device_id"] | 1 << 7


def _many(n, **changes):
    values = {f"x{i:02d}": "a" for i in range(n)}
    values.update(changes)
    return values


@pytest.mark.parametrize("unknown", [53, 60])
@pytest.mark.parametrize(
    "changed, expected",
    [
        ({"x00": "b"}, 1 << 7),
        ({"x50": "b"}, 1 << 57),
        ({"x51": "b"}, 1 << 58),
        ({"x52": "b"}, 1 << 58),
        ({"x51": "b", "x52": "b"}, 1 << 58),
        ({"x50": "b", "x52": "b", "x00": "b"}, 1 << 57 | 1 << 58 | 1 << 7),
    ],
)
def test_attributes_past_bit_58_share_bit_58(implementation, unknown, changed, expected):
    # 7 declared + 53 (or 60) unknown attributes: x00 is attribute 7, x51 attribute 58, x52 attribute 59.
    mask, result = one({"self": _many(unknown)}, {"self": _many(unknown, **changed)})
    assert mask == expected
    assert mask & (NO_RECORD | OPAQUE | NOT_MIGRATABLE | SAME_HOST | SAME_DEVICE) == 0
    names = result.reason_names(0, 0)
    if expected & 1 << 58:
        assert names[-1] == "attributes 58+ (" + ", ".join(f"x{i:02d}" for i in range(51, unknown)) + ")"


@pytest.mark.parametrize("changed", [{"x59": "b"}, {"x51": "b", "x59": "b"}, {"x55": "b"}])
def test_the_last_of_67_attributes_shares_bit_58(implementation, changed):
    assert one({"self": _many(60)}, {"self": _many(60, **changed)})[0] == 1 << 58


def test_exactly_59_attributes_name_bit_58_after_its_attribute(implementation):
    mask, result = one({"self": _many(52)}, {"self": _many(52, x51="b")})
    assert mask == 1 << 58
    assert result.reason_names(0, 0) == ["x51"]


# -- bits for targets with records ----------------------------------------------------------
def test_bits_only_for_attributes_no_record_of_the_target_constrains(implementation):
    target = {
        "self": {"mdev_type": "a", "aggregator": 1, "pv_mode": "none", "vendor_driver": "i915"},
        "compatible": [{"mdev_type": "a"}, {"aggregator": 1}],
    }
    source = {"self": {"mdev_type": "b", "aggregator": 2, "pv_mode": "context", "vendor_driver": "nvidia"}}
    mask, result = one(source, target)
    assert mask == BIT["pv_mode"] | BIT["vendor_driver"] | NO_RECORD
    assert sorted(result.reason_names(0, 0)) == sorted(["vendor_driver", "pv_mode", "NO_RECORD"])


def test_matched_record_with_a_failing_unconstrained_rule_sets_no_record(implementation):
    target = {"self": {"mdev_type": "a", "aggregator": 1}, "compatible": [{"mdev_type": ["a", "b"]}]}
    assert one({"self": {"mdev_type": "b", "aggregator": 2}}, target)[0] == BIT["aggregator"] | NO_RECORD


def test_target_without_records_never_sets_no_record(implementation):
    mask, _ = one({"self": {"mdev_type": "b", "aggregator": 2}}, {"self": {"mdev_type": "a", "aggregator": 1}})
    assert mask == BIT["mdev_type"] | BIT["aggregator"]


def test_rules_fail_silently_inside_an_accepting_record(implementation):
    # The record accepts S and decides mdev_type and software_version: no bits, no NO_RECORD.
    target = {"self": {"mdev_type": "a", "software_version": "3.0"}, "compatible": [{"mdev_type": "b", "software_version": "1"}]}
    assert one({"self": {"mdev_type": "b", "software_version": "1.0"}}, target)[0] == 0


# -- mask 0 exactly when compatible ---------------------------------------------------------
def test_mask_is_zero_exactly_when_compatible(implementation):
    sources = [
        {"id": "s0", "host": "h1", "self": {"mdev_type": "A", "software_version": "1.1"}},
        {"id": "s1", "self": {"mdev_type": "B", "software_version": "1.3", "pv_mode": "none"}, "migration_version": "m"},
        {"id": "s2", "self": {"mdev_type": "A"}, "migratable": False},
        {"id": "t0", "self": {"mdev_type": "A", "software_version": "1.2"}},
    ]
    targets = [
        {"id": "t0", "self": {"mdev_type": "A", "software_version": "1.2"}},
        {"id": "t1", "host": "h1", "self": {"mdev_type": "A", "software_version": "1.2"}},
        {"id": "t2", "self": {"mdev_type": "C", "software_version": "1.4", "pv_mode": "none+ppgtt"}, "compatible": [{"mdev_type": ["A", "B"]}], "migration_version": "m"},
        {"id": "t3", "self": {"mdev_type": "A"}, "capacity": 0},
        {"id": "t4", "self": {"mdev_type": "B", "software_version": "1.3", "pv_mode": "none"}, "migration_version": "m"},
    ]
    result = run(sources, targets)
    assert np.array_equal(result.compatible, result.reasons == 0)
    assert np.array_equal(result.scores >= 0, result.reasons == 0)
    assert np.all(result.scores[result.reasons != 0] == -1)
    assert result.compatible.tolist() == [
        [True, False, False, False, False],
        [False, False, True, False, True],
        [False, False, False, False, False],
        [False, True, False, False, False],
    ]
    assert result.reasons[3].tolist() == [SAME_DEVICE, 0, OPAQUE, BIT["software_version"], BIT["mdev_type"] | OPAQUE]
