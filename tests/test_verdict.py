"""SPEC section 6: the verdict for a pair S -> T, clause by clause, under every option."""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch as fm

DEVICE_API, MDEV_TYPE, VENDOR_DRIVER, DEVICE_ID, SOFTWARE_VERSION, PV_MODE, AGGREGATOR = (1 << i for i in range(7))
SAME_DEVICE, SAME_HOST, NOT_MIGRATABLE, OPAQUE, NO_RECORD = (1 << b for b in (63, 62, 61, 60, 59))


def policy(**options):
    return fm.Policy.from_dict(options)


def mask(source, target, pol=None, **kwargs):
    """The reason mask of one pair; records get ids "s" and "t" unless they bring their own."""
    source = {"id": "s", **source}
    target = {"id": "t", **target}
    result = fm.match([source], [target], pol, workers=1, **kwargs)
    m = int(result.reasons[0, 0])
    assert bool(result.compatible[0, 0]) == (m == 0)
    assert (int(result.scores[0, 0]) >= 0) == (m == 0)
    return m


def dev(**self_):
    return {"self": self_}


# -- 1. different devices, different hosts ---------------------------------------------------
def test_a_device_is_not_compatible_with_itself(implementation):
    assert mask({"id": "x", "self": {}}, {"id": "x", "self": {}}) == SAME_DEVICE


def test_same_id_in_both_inputs_is_the_same_device_whatever_the_records_say(implementation):
    # "Two records with the same id are the same device."
    assert mask({"id": "x", "self": {"mdev_type": "a"}}, {"id": "x", "self": {"mdev_type": "a"}, "capacity": 5}) == SAME_DEVICE


def test_same_device_on_a_host_is_also_the_same_host(implementation):
    assert mask({"id": "x", "host": "h", "self": {}}, {"id": "x", "host": "h", "self": {}}) == SAME_DEVICE | SAME_HOST
    assert mask({"id": "x", "host": "h", "self": {}}, {"id": "x", "host": "h", "self": {}}, policy(exclude_same_host=False)) == SAME_DEVICE


def test_same_non_empty_host_is_excluded(implementation):
    assert mask({"host": "h1", "self": {}}, {"host": "h1", "self": {}}) == SAME_HOST
    assert mask({"host": "h1", "self": {}}, {"host": "h2", "self": {}}) == 0
    assert mask({"host": "h1", "self": {}}, {"self": {}}) == 0
    assert mask({"self": {}}, {"host": "h1", "self": {}}) == 0


def test_empty_hosts_are_not_the_same_host(implementation):
    assert mask({"self": {}}, {"self": {}}) == 0
    assert mask({"host": "", "self": {}}, {"host": "", "self": {}}) == 0


def test_exclude_same_host_false(implementation):
    assert mask({"host": "h1", "self": {}}, {"host": "h1", "self": {}}, policy(exclude_same_host=False)) == 0


def test_same_host_in_a_fleet(implementation):
    fleet = [{"id": f"d{i}", "host": h, "self": {"mdev_type": "a"}} for i, h in enumerate(["h1", "h1", "h2", ""])]
    result = fm.match(fleet, fleet, workers=1)
    expected = np.array(
        [
            [SAME_DEVICE | SAME_HOST, SAME_HOST, 0, 0],
            [SAME_HOST, SAME_DEVICE | SAME_HOST, 0, 0],
            [0, 0, SAME_DEVICE | SAME_HOST, 0],
            [0, 0, 0, SAME_DEVICE],
        ],
        dtype=np.uint64,
    )
    assert np.array_equal(result.reasons, expected)
    off = fm.match(fleet, fleet, policy(exclude_same_host=False), workers=1)
    assert np.array_equal(off.reasons, np.diag(np.full(4, SAME_DEVICE, dtype=np.uint64)))


# -- 2. both migratable ----------------------------------------------------------------------
@pytest.mark.parametrize("s_ok, t_ok", [(False, True), (True, False), (False, False)])
def test_both_must_be_migratable(implementation, s_ok, t_ok):
    assert mask({"self": {}, "migratable": s_ok}, {"self": {}, "migratable": t_ok}) == NOT_MIGRATABLE


def test_migratable_true_is_the_default(implementation):
    assert mask({"self": {}, "migratable": True}, {"self": {}}) == 0


def test_every_failing_clause_is_reported(implementation):
    source = {"id": "x", "host": "h", "self": {"mdev_type": "a"}, "migration_version": "1", "migratable": False}
    target = {"id": "x", "host": "h", "self": {"mdev_type": "b"}, "compatible": [{"aggregator": 9}]}
    assert mask(source, target) == SAME_DEVICE | SAME_HOST | NOT_MIGRATABLE | OPAQUE | NO_RECORD | MDEV_TYPE


# -- 3. records and rules, target-accepts ----------------------------------------------------
def test_target_without_records_needs_every_rule(implementation):
    s = dev(mdev_type="a", software_version="1.1", pv_mode="none", aggregator=1)
    assert mask(s, dev(mdev_type="a", software_version="1.2", pv_mode="none+ppgtt", aggregator=1)) == 0
    assert mask(s, dev(mdev_type="b", software_version="1.0", pv_mode="ppgtt", aggregator=2)) == (
        MDEV_TYPE | SOFTWARE_VERSION | PV_MODE | AGGREGATOR
    )


def test_target_with_records_needs_a_matching_record(implementation):
    t = {"self": {"mdev_type": "a"}, "compatible": [{"mdev_type": ["a", "b"]}]}
    assert mask(dev(mdev_type="b"), t) == 0
    assert mask(dev(mdev_type="c"), t) == NO_RECORD


def test_override_unconstrained_attributes_pass_their_rules(implementation):
    t = {"self": {"mdev_type": "a", "aggregator": 1}, "compatible": [{"mdev_type": ["a", "b"]}]}
    assert mask(dev(mdev_type="b", aggregator=1), t) == 0
    assert mask(dev(mdev_type="b", aggregator=2), t) == AGGREGATOR | NO_RECORD


def test_override_the_record_decides_the_attributes_it_constrains(implementation):
    t = {"self": {"mdev_type": "a", "software_version": "3.0"}, "compatible": [{"mdev_type": "b", "software_version": "1.0"}]}
    assert mask(dev(mdev_type="b", software_version="1.0"), t) == 0


def test_records_and_needs_every_rule_as_well_as_the_record(implementation):
    t = {"self": {"mdev_type": "a", "software_version": "3.0"}, "compatible": [{"mdev_type": "b", "software_version": "1.0"}]}
    p = policy(records="and")
    # The record matches, but the rules of mdev_type and software_version fail: no bits, as the records constrain both.
    assert mask(dev(mdev_type="b", software_version="1.0"), t, p) == NO_RECORD
    t2 = {"self": {"mdev_type": "a", "software_version": "1.5"}, "compatible": [{"mdev_type": ["a", "b"]}]}
    assert mask(dev(mdev_type="a", software_version="1.0"), t2, p) == 0
    assert mask(dev(mdev_type="b", software_version="1.0"), t2, p) == NO_RECORD
    assert mask(dev(mdev_type="a", software_version="2.0"), t2, p) == SOFTWARE_VERSION | NO_RECORD
    assert mask(dev(mdev_type="c", software_version="1.0"), t2, p) == NO_RECORD


def test_override_needs_one_record_that_does_both(implementation):
    # Record 0 accepts mdev_type b but leaves pv_mode to its rule (fails);
    # record 1 accepts any pv_mode but leaves mdev_type to its rule (fails).
    t = {
        "self": {"mdev_type": "a", "pv_mode": "none"},
        "compatible": [{"mdev_type": "b"}, {"pv_mode": "*"}],
    }
    assert mask(dev(mdev_type="b", pv_mode="context"), t) == NO_RECORD
    assert mask(dev(mdev_type="b", pv_mode="none"), t) == 0
    assert mask(dev(mdev_type="a", pv_mode="context"), t) == 0
    assert mask(dev(mdev_type="b", pv_mode="context"), t, policy(records="and")) == NO_RECORD


def test_target_accepts_ignores_the_sources_records(implementation):
    s = {"self": {"mdev_type": "a"}, "compatible": [{"mdev_type": "zzz"}]}
    assert mask(s, dev(mdev_type="a")) == 0


# -- 3. source-offers and both ---------------------------------------------------------------
def test_source_offers_matches_the_targets_self_against_the_sources_records(implementation):
    p = policy(direction="source-offers")
    s = {"self": {"mdev_type": "a", "software_version": "1.1"}, "compatible": [{"mdev_type": ["a", "b"]}]}
    # Under the default target-accepts, the source's records play no part.
    assert mask(s, dev(mdev_type="b", software_version="1.1")) == MDEV_TYPE
    assert mask(s, dev(mdev_type="b", software_version="1.1"), p) == 0
    assert mask(s, dev(mdev_type="c", software_version="1.1"), p) == NO_RECORD
    # Rules still read S -> T: the target's version must not be older.
    assert mask(s, dev(mdev_type="b", software_version="1.2"), p) == 0
    assert mask(s, dev(mdev_type="b", software_version="1.0"), p) == SOFTWARE_VERSION | NO_RECORD


def test_source_offers_without_source_records_needs_every_rule(implementation):
    p = policy(direction="source-offers")
    assert mask(dev(mdev_type="a"), dev(mdev_type="a"), p) == 0
    assert mask(dev(mdev_type="a"), dev(mdev_type="b"), p) == MDEV_TYPE


def test_source_offers_ignores_the_targets_records(implementation):
    p = policy(direction="source-offers")
    t = {"self": {"mdev_type": "a"}, "compatible": [{"mdev_type": "zzz"}]}
    assert mask(dev(mdev_type="a"), t, p) == 0
    assert mask(dev(mdev_type="a"), t) == NO_RECORD


def test_source_offers_with_records_and(implementation):
    p = policy(direction="source-offers", records="and")
    s = {"self": {"mdev_type": "a"}, "compatible": [{"mdev_type": ["a", "b"]}]}
    assert mask(s, dev(mdev_type="a"), p) == 0
    assert mask(s, dev(mdev_type="b"), p) == NO_RECORD


def test_both_needs_both_conditions(implementation):
    p = policy(direction="both")
    s = {"self": {"mdev_type": "a"}, "compatible": [{"mdev_type": ["a", "b"]}]}
    t_accepts = {"self": {"mdev_type": "b"}, "compatible": [{"mdev_type": ["a", "c"]}]}
    t_rejects = {"self": {"mdev_type": "b"}, "compatible": [{"mdev_type": "c"}]}
    t_not_offered = {"self": {"mdev_type": "c"}, "compatible": [{"mdev_type": "a"}]}
    assert mask(s, t_accepts, p) == 0
    assert mask(s, t_rejects, p) == NO_RECORD
    assert mask(s, t_not_offered, p) == NO_RECORD
    assert mask(s, t_accepts) == 0
    assert mask(s, t_not_offered) == 0
    assert mask(s, t_rejects, policy(direction="source-offers")) == 0


def test_both_without_records_is_the_rules(implementation):
    p = policy(direction="both")
    assert mask(dev(mdev_type="a", aggregator=1), dev(mdev_type="a", aggregator=1), p) == 0
    assert mask(dev(mdev_type="a", aggregator=1), dev(mdev_type="a", aggregator=2), p) == AGGREGATOR


def test_both_reports_bits_for_attributes_either_side_leaves_unconstrained(implementation):
    p = policy(direction="both")
    s = {"self": {"mdev_type": "a", "aggregator": 1}, "compatible": [{"mdev_type": ["a", "b"]}]}
    t = {"self": {"mdev_type": "b", "aggregator": 2}, "compatible": [{"mdev_type": ["a", "b"]}]}
    assert mask(s, t, p) == AGGREGATOR | NO_RECORD


# -- 4. the opaque check ---------------------------------------------------------------------
def mv(version):
    return {"self": {}} if version is None else {"self": {}, "migration_version": version}


@pytest.mark.parametrize(
    "opaque, s, t, ok",
    [
        ("if-present", "v1", "v1", True),
        ("if-present", "v1", "v2", False),
        ("if-present", "v1", None, False),
        ("if-present", None, "v1", False),
        ("if-present", None, None, True),
        ("required", "v1", "v1", True),
        ("required", "v1", "v2", False),
        ("required", "v1", None, False),
        ("required", None, "v1", False),
        ("required", None, None, False),
        ("ignore", "v1", "v2", True),
        ("ignore", "v1", None, True),
        ("ignore", None, "v1", True),
        ("ignore", None, None, True),
    ],
)
def test_opaque_check(implementation, opaque, s, t, ok):
    assert mask(mv(s), mv(t), policy(opaque=opaque)) == (0 if ok else OPAQUE)


def test_opaque_if_present_is_the_default(implementation):
    assert mask(mv("a"), mv("b")) == OPAQUE
    assert mask(mv("a"), mv(None)) == OPAQUE
    assert mask(mv(None), mv(None)) == 0


def test_opaque_strings_compare_exactly(implementation):
    assert mask(mv("i915-v1"), mv("i915-v1 ")) == OPAQUE
    assert mask(mv("I915-v1"), mv("i915-v1")) == OPAQUE


@pytest.mark.parametrize("opaque", ["if-present", "required"])
def test_opaque_with_a_caller_supplied_confirmer(implementation, opaque):
    calls = []

    def confirm(source_version, target_version):
        calls.append((source_version, target_version))
        return source_version.split(":")[0] == target_version.split(":")[0]

    sources = [{"id": "s", "self": {}, "migration_version": "gvt2:abc"}]
    targets = [
        {"id": "t0", "self": {}, "migration_version": "gvt2:xyz"},
        {"id": "t1", "self": {}, "migration_version": "gvt3:abc"},
        {"id": "t2", "self": {}},
    ]
    result = fm.match(sources, targets, policy(opaque=opaque), workers=1, confirm=confirm)
    assert result.reasons[0].tolist() == [0, OPAQUE, OPAQUE]
    assert ("gvt2:abc", "gvt2:xyz") in calls and ("gvt2:abc", "gvt3:abc") in calls


# -- capacity --------------------------------------------------------------------------------
def test_capacity_is_not_part_of_compatibility(implementation):
    for capacity in (0, 1, 7):
        assert mask(dev(mdev_type="a"), {"self": {"mdev_type": "a"}, "capacity": capacity}) == 0


# -- the whole fleet at once -----------------------------------------------------------------
def test_fleet_verdict_matrix(implementation):
    sources = [
        {"id": "s0", "host": "h1", "self": {"mdev_type": "A", "software_version": "1.1"}},
        {"id": "s1", "host": "h2", "self": {"mdev_type": "B", "software_version": "1.3"}},
        {"id": "s2", "host": "h3", "self": {"mdev_type": "A", "software_version": "2.0"}, "migratable": False},
    ]
    targets = [
        {"id": "t0", "host": "h1", "self": {"mdev_type": "A", "software_version": "1.2"}},
        {"id": "t1", "host": "h4", "self": {"mdev_type": "A", "software_version": "1.2"}},
        {"id": "t2", "host": "h4", "self": {"mdev_type": "A", "software_version": "1.2"}, "compatible": [{"mdev_type": ["A", "B"]}]},
        {"id": "t3", "host": "h5", "self": {"mdev_type": "B", "software_version": "2.0"}},
    ]
    result = fm.match(sources, targets, workers=1)
    expected = [
        [SAME_HOST, 0, 0, MDEV_TYPE | SOFTWARE_VERSION],
        [MDEV_TYPE | SOFTWARE_VERSION, MDEV_TYPE | SOFTWARE_VERSION, SOFTWARE_VERSION | NO_RECORD, SOFTWARE_VERSION],
        [NOT_MIGRATABLE | SOFTWARE_VERSION, NOT_MIGRATABLE | SOFTWARE_VERSION, NOT_MIGRATABLE | SOFTWARE_VERSION | NO_RECORD, NOT_MIGRATABLE | MDEV_TYPE],
    ]
    assert result.reasons.tolist() == expected
    assert result.compatible.tolist() == [[False, True, True, False], [False] * 4, [False] * 4]
