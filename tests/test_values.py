"""SPEC section 3: the four attribute types, their syntax, absence and ordering."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.values import parse_int, parse_set, parse_value, parse_version

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# Bits of the default policy's declared attributes (SPEC section 4 order).
MDEV_TYPE, VENDOR_DRIVER, SOFTWARE_VERSION, PV_MODE, AGGREGATOR = 1 << 1, 1 << 2, 1 << 4, 1 << 5, 1 << 6


def V(text):
    return parse_version(text)


def pair_mask(s_self, t_self, policy=None):
    result = fm.match([{"id": "s", "self": s_self}], [{"id": "t", "self": t_self}], policy, workers=1)
    return int(result.reasons[0, 0])


def self_error(value, name):
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "d", "self": {name: value}}])
    return str(info.value)


# -- string ---------------------------------------------------------------------------------
def test_string_parses_json_strings_and_empty_is_absent():
    assert parse_value("string", "i915") == "i915"
    assert parse_value("string", "") is None
    assert parse_value("string", None) is None


@pytest.mark.parametrize("raw", [5, 0, 1.5, True, False, ["a"], {"a": "b"}])
def test_string_rejects_numbers_bools_and_containers(raw):
    with pytest.raises(fm.InputError, match="expected a string"):
        parse_value("string", raw)


def test_number_for_a_string_attribute_is_an_error_naming_record_and_field():
    message = self_error(5, "mdev_type")
    assert "record #0 'd'" in message
    assert "field 'self.mdev_type'" in message
    assert "expected a string, got 5" in message


def test_bool_for_a_string_attribute_is_an_error():
    assert "expected a string, got True" in self_error(True, "vendor_driver")


def test_unknown_attributes_are_typed_string():
    # unknown = "exact": attributes the policy does not declare are typed string.
    message = self_error(3, "device_type")
    assert "field 'self.device_type'" in message
    assert "expected a string, got 3" in message


# -- int ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, value",
    [
        (0, 0),
        (5, 5),
        (-7, -7),
        ("5", 5),
        ("0012", 12),
        ("0x1f", 31),
        ("0x10", 16),
        (INT64_MAX, INT64_MAX),
        (INT64_MIN, INT64_MIN),
        ("9223372036854775807", INT64_MAX),
        ("0x7fffffffffffffff", INT64_MAX),
    ],
)
def test_int_accepts_json_integers_decimal_and_hex_strings(raw, value):
    assert parse_int(raw) == value


@pytest.mark.parametrize("raw", ["", None])
def test_int_absent(raw):
    assert parse_int(raw) is None


@pytest.mark.parametrize("raw", [INT64_MAX + 1, INT64_MIN - 1, "9223372036854775808", "0x8000000000000000"])
def test_int_beyond_signed_64_bits_is_an_error(raw):
    with pytest.raises(fm.InputError, match="does not fit in 64 bits"):
        parse_int(raw)


@pytest.mark.parametrize("raw", ["abc", "1.5", "0x", "0xg1", "1e3", " 5", "5 ", "1_000", "--1"])
def test_int_rejects_other_strings_naming_the_value(raw):
    with pytest.raises(fm.InputError) as info:
        parse_int(raw)
    assert f"invalid integer {raw!r}" in str(info.value)


@pytest.mark.parametrize("raw", [1.5, 2.0, True, False, [1], {"a": 1}])
def test_int_rejects_non_integer_json(raw):
    with pytest.raises(fm.InputError, match="expected an integer"):
        parse_int(raw)


def test_bad_int_in_self_names_record_and_field():
    message = self_error("two", "aggregator")
    assert message == "record #0 'd': field 'self.aggregator': invalid integer 'two'"


# -- version --------------------------------------------------------------------------------
def test_version_components_major_minor_patch():
    v = V("2.7.3")
    assert (v.major, v.minor, v.patch) == (2, 7, 3)
    v = V("5")
    assert (v.major, v.minor, v.patch) == (5, 0, 0)
    v = V("v1.4")
    assert (v.major, v.minor, v.patch) == (1, 4, 0)


def test_version_leading_zeros_are_allowed_nvidia_style():
    v = V("550.127.08")
    assert (v.major, v.minor, v.patch) == (550, 127, 8)
    assert v == V("550.127.8")


def test_version_four_or_more_components():
    v = V("6.19.14.31400000")
    assert (v.major, v.minor, v.patch) == (6, 19, 14)
    assert V("6.19.14.31400000") > V("6.19.14.31399999")
    assert V("6.19.14.31400000") < V("6.19.15")
    assert V("1.2.3.4.5.6") > V("1.2.3.4.5")


def test_version_missing_components_count_as_zero():
    assert V("1") == V("1.0") == V("1.0.0") == V("v1") == V("1.0.0.0")
    assert V("1.0.0.1") > V("1")
    assert V("2") < V("2.0.0.1")


def test_version_numeric_components_compare_as_numbers():
    assert V("1.10") > V("1.9")
    assert V("1.2.10") > V("1.2.9")
    assert V("10") > V("9.99.99")


def test_version_semver_prerelease_precedence():
    # The example chain of SemVer 2.0, section 11.
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    parsed = [V(t) for t in chain]
    for lower, higher in zip(parsed, parsed[1:]):
        assert lower < higher, (lower, higher)
        assert not higher < lower
    assert V("1.0.0-rc.1") > V("0.9.9")
    assert V("1.0.0-rc.1") < V("1.0.1-alpha")


def test_version_prerelease_sorts_before_the_release():
    assert V("2.1-rc1") < V("2.1")
    assert V("2.1-rc1") != V("2.1")
    assert V("2.1.0-rc1") == V("2.1-rc1")


def test_version_build_metadata_is_ignored():
    assert V("1.0.0+build.1") == V("1.0.0+build.2") == V("1.0.0")
    assert V("1.0.0-rc.1+exp.sha.5114f85") == V("1.0.0-rc.1")
    assert not V("1.0.0+zzz") > V("1.0.0+aaa")


@pytest.mark.parametrize("raw", ["v2+", ">=1.0", "1..2", "abc", "1.", ".1", "1.0-", "1.0+", "1.0-a..b", "v", "1 .0", "1.0 "])
def test_version_errors_name_the_value(raw):
    with pytest.raises(fm.InputError) as info:
        parse_version(raw)
    assert f"invalid version {raw!r}" in str(info.value)


@pytest.mark.parametrize("raw", ["", None])
def test_version_absent(raw):
    assert parse_version(raw) is None


def test_bad_version_in_self_names_record_field_and_value():
    message = self_error("v2+", "software_version")
    assert message.startswith("record #0 'd': field 'self.software_version': invalid version 'v2+'")


def test_bad_version_through_an_alias_names_the_attribute():
    message = self_error(">=1.0", "gvt-version")
    assert "field 'self.software_version'" in message
    assert "invalid version '>=1.0'" in message


# -- set ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, items",
    [
        ("none", {"none"}),
        ("none+ppgtt", {"none", "ppgtt"}),
        ("none, ppgtt, context", {"none", "ppgtt", "context"}),
        ("none,ppgtt+context", {"none", "ppgtt", "context"}),
        (" none + ppgtt ", {"none", "ppgtt"}),
        (["none", "ppgtt"], {"none", "ppgtt"}),
        ([" none ", "context"], {"none", "context"}),
        (["ppgtt", "ppgtt"], {"ppgtt"}),
        ("", set()),
        ([], set()),
        (None, set()),
    ],
)
def test_set_syntax(raw, items):
    assert parse_set(raw) == frozenset(items)


@pytest.mark.parametrize("raw", ["a++b", "a,,b", "a, ,b", "+a", "a+", [""], ["a", " "]])
def test_set_items_must_be_non_empty(raw):
    with pytest.raises(fm.InputError, match="empty item"):
        parse_set(raw)


@pytest.mark.parametrize("raw", [5, True, {"none": True}, ["a", 1], [["a"]]])
def test_set_rejects_other_json(raw):
    with pytest.raises(fm.InputError, match="expected a set"):
        parse_set(raw)


def test_bad_set_in_self_names_record_and_field():
    message = self_error("none++ppgtt", "pv-mode")
    assert message == "record #0 'd': field 'self.pv_mode': set 'none++ppgtt' has an empty item"


# -- absence and typed equality, through the verdict ----------------------------------------
ABSENT_FORMS = [{}, {"X": None}, {"X": ""}]


@pytest.mark.parametrize("attribute", ["mdev_type", "aggregator", "software_version"])
@pytest.mark.parametrize("s_form", range(3))
@pytest.mark.parametrize("t_form", range(3))
def test_missing_null_and_empty_string_are_all_absent(implementation, attribute, s_form, t_form):
    def form(k):
        return {attribute if key == "X" else key: v for key, v in ABSENT_FORMS[k].items()}

    # Rules exact and version pass when both are absent, whatever the form.
    assert pair_mask(form(s_form), form(t_form)) == 0


@pytest.mark.parametrize(
    "attribute, value, bit",
    [("mdev_type", "a", MDEV_TYPE), ("aggregator", 1, AGGREGATOR), ("software_version", "1.0", SOFTWARE_VERSION)],
)
def test_absent_on_one_side_only_fails_exact_and_version(implementation, attribute, value, bit):
    for absent in ({}, {attribute: None}, {attribute: ""}):
        assert pair_mask({attribute: value}, absent) == bit
        assert pair_mask(absent, {attribute: value}) == bit


def test_absent_set_is_the_empty_set(implementation):
    exact_sets = fm.Policy.from_dict({"attributes": {"pv_mode": {"rule": "exact"}}})
    for s in ({}, {"pv_mode": None}, {"pv_mode": ""}, {"pv_mode": []}):
        for t in ({}, {"pv_mode": None}, {"pv_mode": ""}, {"pv_mode": []}):
            assert pair_mask(s, t, exact_sets) == 0
        assert pair_mask(s, {"pv_mode": "none"}, exact_sets) == PV_MODE
        # superset (the default rule): the empty set is contained in every set.
        assert pair_mask(s, {"pv_mode": "none"}) == 0
        assert pair_mask({"pv_mode": "none"}, s) == PV_MODE


def test_exact_compares_typed_values(implementation):
    exact_versions = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "exact"}, "pv_mode": {"rule": "exact"}}})
    assert pair_mask({"software_version": "1.0"}, {"software_version": "1.0.0"}, exact_versions) == 0
    assert pair_mask({"software_version": "v2"}, {"software_version": "2.0.0+build7"}, exact_versions) == 0
    assert pair_mask({"software_version": "1.0"}, {"software_version": "1.0.1"}, exact_versions) == SOFTWARE_VERSION
    assert pair_mask({"software_version": "1.0-rc1"}, {"software_version": "1.0"}, exact_versions) == SOFTWARE_VERSION
    assert pair_mask({"aggregator": "0x10"}, {"aggregator": 16}) == 0
    assert pair_mask({"aggregator": "010"}, {"aggregator": 10}) == 0
    assert pair_mask({"aggregator": "0x10"}, {"aggregator": 10}) == AGGREGATOR
    assert pair_mask({"pv_mode": "none+ppgtt"}, {"pv_mode": ["ppgtt", "none"]}, exact_versions) == 0
    assert pair_mask({"pv_mode": "none, ppgtt"}, {"pv_mode": "ppgtt+none"}, exact_versions) == 0
    assert pair_mask({"pv_mode": "none"}, {"pv_mode": "none+ppgtt"}, exact_versions) == PV_MODE


def test_strings_compare_exactly(implementation):
    assert pair_mask({"vendor_driver": "i915"}, {"vendor_driver": "I915"}) == VENDOR_DRIVER
    assert pair_mask({"vendor_driver": "i915"}, {"vendor_driver": "i915 "}) == VENDOR_DRIVER
    assert pair_mask({"vendor_driver": "1"}, {"vendor_driver": "01"}) == VENDOR_DRIVER


# -- version ordering against an independent reference ---------------------------------------
def _reference_compare(a, b):
    """SPEC 3 ordering written out from SemVer 2.0 section 11, on (components, prerelease) pairs."""
    (a_parts, a_pre), (b_parts, b_pre) = a, b
    width = max(len(a_parts), len(b_parts))
    a_nums = list(a_parts) + [0] * (width - len(a_parts))
    b_nums = list(b_parts) + [0] * (width - len(b_parts))
    if a_nums != b_nums:
        return -1 if a_nums < b_nums else 1
    if not a_pre and not b_pre:
        return 0
    if not a_pre:
        return 1
    if not b_pre:
        return -1
    for x, y in zip(a_pre, b_pre):
        if x == y:
            continue
        x_num, y_num = x.isdigit(), y.isdigit()
        if x_num and y_num:
            if int(x) != int(y):
                return -1 if int(x) < int(y) else 1
            continue
        if x_num != y_num:
            return -1 if x_num else 1
        return -1 if x < y else 1
    if len(a_pre) != len(b_pre):
        return -1 if len(a_pre) < len(b_pre) else 1
    return 0


_component = st.integers(min_value=0, max_value=30)
_identifier = st.one_of(
    st.integers(min_value=0, max_value=20).map(str),
    st.text(alphabet="abcrABC-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
_version = st.tuples(
    st.lists(_component, min_size=1, max_size=5),
    st.lists(_identifier, min_size=0, max_size=3),
    st.booleans(),  # leading "v"
    st.lists(st.integers(0, 2), min_size=5, max_size=5),  # leading zeros per component
    st.one_of(st.none(), st.text(alphabet="abc019.", min_size=1, max_size=5).filter(
        lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
    )),
)


def _render(spec):
    parts, pre, v, zeros, build = spec
    text = ("v" if v else "") + ".".join("0" * z + str(p) for p, z in zip(parts, zeros))
    if pre:
        text += "-" + ".".join(pre)
    if build:
        text += "+" + build
    return text


@settings(max_examples=300, deadline=None)
@given(_version, _version)
def test_version_ordering_matches_the_reference(a, b):
    expected = _reference_compare((a[0], a[1]), (b[0], b[1]))
    va, vb = V(_render(a)), V(_render(b))
    assert (va < vb, va == vb, va > vb) == (expected < 0, expected == 0, expected > 0)
    assert (va <= vb) == (expected <= 0) and (va >= vb) == (expected >= 0)
    assert va.major == a[0][0]
    assert va.minor == (a[0][1] if len(a[0]) > 1 else 0)
    assert va.patch == (a[0][2] if len(a[0]) > 2 else 0)


@settings(max_examples=50, deadline=None)
@given(st.lists(_version, min_size=2, max_size=8))
def test_sorting_versions_matches_the_reference(specs):
    by_reference = sorted(specs, key=functools.cmp_to_key(lambda x, y: _reference_compare(x[:2], y[:2])))
    by_fastmatch = sorted(specs, key=lambda s: V(_render(s)))
    # Both sorts are stable, so equal versions keep their order: the lists must be identical.
    assert [_render(s) for s in by_fastmatch] == [_render(s) for s in by_reference]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="abcxyz_-0123", min_size=1, max_size=5), min_size=1, max_size=5), st.sampled_from(["+", ",", ", ", " + "]))
def test_set_string_syntax_round_trips(items, separator):
    assert parse_set(separator.join(items)) == frozenset(items)
    assert parse_set(items) == frozenset(items)
