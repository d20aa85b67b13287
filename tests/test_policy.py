"""SPEC section 4: the policy file, its defaults, aliases, and the rules table."""

from __future__ import annotations

import textwrap

import pytest

import fastmatch as fm
from fastmatch.policy import Attribute

DEVICE_API, MDEV_TYPE, VENDOR_DRIVER, DEVICE_ID, SOFTWARE_VERSION, PV_MODE, AGGREGATOR = (1 << i for i in range(7))

# The TOML block of SPEC section 4, verbatim.
SPEC_TOML = """
direction = "target-accepts"   # S.self must match a COMPATIBLE record of T. Also: "source-offers", "both"
records = "override"           # an attribute that a matching record constrains is decided by the record, not by its rule. Also: "and"
unknown = "exact"              # rule for attributes the policy does not declare (typed string). Also: "ignore"
prefer = "closest"             # ranking of compatible targets (section 7). Also: "newest"
exclude_same_host = true
opaque = "if-present"          # section 6. Also: "required", "ignore"
score_type = "mdev_type"
score_version = "software_version"

[attributes]
device_api       = { type = "string",  rule = "exact" }
mdev_type        = { type = "string",  rule = "exact",    aliases = ["type"] }
vendor_driver    = { type = "string",  rule = "exact",    aliases = ["driver"] }
device_id        = { type = "string",  rule = "exact",    aliases = ["pciid", "pci_id"] }
software_version = { type = "version", rule = "version",  aliases = ["interface_version", "gvt-version"] }
pv_mode          = { type = "set",     rule = "superset", aliases = ["pv-mode"] }
aggregator       = { type = "int",     rule = "exact" }
"""


def write(tmp_path, text, name="policy.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def pair_mask(s_self, t_self, policy=None):
    result = fm.match([{"id": "s", "self": s_self}], [{"id": "t", "self": t_self}], policy, workers=1)
    return int(result.reasons[0, 0])


# -- the built-in policy ---------------------------------------------------------------------
def test_default_policy_options():
    p = fm.Policy.default()
    assert p.direction == "target-accepts"
    assert p.records == "override"
    assert p.unknown == "exact"
    assert p.prefer == "closest"
    assert p.exclude_same_host is True
    assert p.opaque == "if-present"
    assert p.score_type == "mdev_type"
    assert p.score_version == "software_version"


def test_default_policy_attributes_in_declared_order():
    assert fm.Policy.default().attributes == (
        Attribute("device_api", "string", "exact", ()),
        Attribute("mdev_type", "string", "exact", ("type",)),
        Attribute("vendor_driver", "string", "exact", ("driver",)),
        Attribute("device_id", "string", "exact", ("pciid", "pci_id")),
        Attribute("software_version", "version", "version", ("interface_version", "gvt-version")),
        Attribute("pv_mode", "set", "superset", ("pv-mode",)),
        Attribute("aggregator", "int", "exact", ()),
    )


def test_spec_toml_is_the_default_policy(tmp_path):
    assert fm.Policy.from_toml(write(tmp_path, SPEC_TOML)) == fm.Policy.default()


def test_empty_toml_and_empty_dict_give_the_default(tmp_path):
    assert fm.Policy.from_toml(write(tmp_path, "")) == fm.Policy.default()
    assert fm.Policy.from_dict({}) == fm.Policy.default()


def test_from_dict_keeps_defaults_for_missing_keys():
    p = fm.Policy.from_dict({"prefer": "newest", "exclude_same_host": False})
    assert p.prefer == "newest" and p.exclude_same_host is False
    assert p.direction == "target-accepts" and p.opaque == "if-present"
    assert p.attributes == fm.Policy.default().attributes


@pytest.mark.parametrize(
    "key, values",
    [
        ("direction", ["target-accepts", "source-offers", "both"]),
        ("records", ["override", "and"]),
        ("unknown", ["exact", "ignore"]),
        ("prefer", ["closest", "newest"]),
        ("opaque", ["if-present", "required", "ignore"]),
    ],
)
def test_every_documented_option_value_is_accepted(key, values):
    for value in values:
        assert getattr(fm.Policy.from_dict({key: value}), key) == value


@pytest.mark.parametrize("key", ["direction", "records", "unknown", "prefer", "opaque"])
def test_other_option_values_are_policy_errors_naming_the_key(key):
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_dict({key: "sideways"})
    assert f"field '{key}'" in str(info.value)
    assert "'sideways'" in str(info.value)


def test_exclude_same_host_must_be_a_bool():
    with pytest.raises(fm.PolicyError, match="field 'exclude_same_host'"):
        fm.Policy.from_dict({"exclude_same_host": "yes"})


def test_unknown_policy_key_is_an_error():
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_dict({"directions": "both"})
    assert "unknown policy key 'directions'" in str(info.value)


def test_unknown_attribute_key_is_an_error():
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_dict({"attributes": {"aggregator": {"type": "int", "rules": "ge"}}})
    assert "field 'attributes.aggregator'" in str(info.value)
    assert "'rules'" in str(info.value)


def test_policy_error_is_a_fastmatch_error():
    assert issubclass(fm.PolicyError, fm.FastmatchError)


def test_from_dict_adds_and_replaces_attributes():
    p = fm.Policy.from_dict(
        {"attributes": {"aggregator": {"rule": "ge"}, "memory": {"type": "int", "rule": "le", "aliases": ["mem"]}}}
    )
    names = [a.name for a in p.attributes]
    assert names == ["device_api", "mdev_type", "vendor_driver", "device_id", "software_version", "pv_mode", "aggregator", "memory"]
    assert p.attribute("aggregator") == Attribute("aggregator", "int", "ge", ())
    assert p.attribute("memory") == Attribute("memory", "int", "le", ("mem",))


def test_toml_policy_attributes(tmp_path):
    p = fm.Policy.from_toml(
        write(
            tmp_path,
            """
            prefer = "newest"
            [attributes]
            memory = { type = "int", rule = "ge", aliases = ["mem"] }
            """,
        )
    )
    assert p.prefer == "newest"
    assert p.attribute("memory") == Attribute("memory", "int", "ge", ("mem",))
    assert p.canonical("mem") == "memory"


# -- rules that do not fit their type -------------------------------------------------------
FITTING = {
    "exact": ["string", "int", "version", "set"],
    "version": ["version"],
    "superset": ["set"],
    "ge": ["int", "version"],
    "le": ["int", "version"],
    "dynamic": ["string", "int", "version", "set"],
    "ignore": ["string", "int", "version", "set"],
}


@pytest.mark.parametrize("rule", sorted(FITTING))
@pytest.mark.parametrize("kind", ["string", "int", "version", "set"])
def test_rule_type_fit(rule, kind):
    data = {"attributes": {"x": {"type": kind, "rule": rule}}}
    if kind in FITTING[rule]:
        assert fm.Policy.from_dict(data).attribute("x") == Attribute("x", kind, rule, ())
    else:
        with pytest.raises(fm.PolicyError) as info:
            fm.Policy.from_dict(data)
        assert str(info.value) == f"field 'attributes.x': rule {rule!r} does not fit type {kind!r}"


def test_superset_on_an_int_in_a_toml_file_names_the_file(tmp_path):
    path = write(tmp_path, '[attributes]\naggregator = { type = "int", rule = "superset" }\n')
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_toml(path)
    assert str(info.value) == f"{path}: field 'attributes.aggregator': rule 'superset' does not fit type 'int'"


def test_changing_a_type_without_a_fitting_rule_is_an_error():
    # pv_mode's default rule is superset, which does not fit an int.
    with pytest.raises(fm.PolicyError, match="does not fit"):
        fm.Policy.from_dict({"attributes": {"pv_mode": {"type": "int", "rule": "superset"}}})


@pytest.mark.parametrize("kind", ["float", "bool", ""])
def test_unknown_type_is_an_error(kind):
    with pytest.raises(fm.PolicyError, match="field 'attributes.x'"):
        fm.Policy.from_dict({"attributes": {"x": {"type": kind}}})


def test_unknown_rule_is_an_error():
    with pytest.raises(fm.PolicyError, match="unknown rule 'gt'"):
        fm.Policy.from_dict({"attributes": {"aggregator": {"rule": "gt"}}})


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, 'direction = "both\n')
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_toml(path)
    assert str(info.value).startswith(f"{path}: invalid TOML")


def test_missing_policy_file_names_the_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_toml(path)
    assert str(info.value).startswith(f"{path}: cannot read policy")


def test_option_error_in_toml_names_file_and_key(tmp_path):
    path = write(tmp_path, 'opaque = "maybe"\n')
    with pytest.raises(fm.PolicyError) as info:
        fm.Policy.from_toml(path)
    assert str(info.value).startswith(f"{path}: field 'opaque': 'maybe' is not one of")


def test_score_version_must_be_a_version_attribute():
    with pytest.raises(fm.PolicyError, match="field 'score_version'"):
        fm.Policy.from_dict({"score_version": "aggregator"})


# -- aliases ---------------------------------------------------------------------------------
def test_aliases_are_renamed_when_a_record_is_read():
    ds = fm.DeviceSet.from_records(
        [
            {
                "id": "d",
                "self": {"type": "t", "driver": "i915", "pciid": "8086591d", "gvt-version": "1.0", "pv-mode": "none"},
                "compatible": [{"pci_id": "8086591d", "interface_version": "1.0", "type": "t"}],
            }
        ]
    )
    record = ds.to_records()[0]
    assert record["self"] == {
        "mdev_type": "t",
        "vendor_driver": "i915",
        "device_id": "8086591d",
        "software_version": "1.0",
        "pv_mode": "none",
    }
    assert record["compatible"] == [{"device_id": "8086591d", "software_version": "1.0", "mdev_type": "t"}]


def test_alias_and_name_together_is_an_error():
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "d", "self": {"device_id": "1", "pciid": "1"}}])
    assert str(info.value) == (
        "record #0 'd': field 'self': self holds both 'device_id' and 'pciid', which name the same attribute 'device_id'"
    )


def test_two_aliases_of_one_name_is_an_error():
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "d", "self": {"pciid": "1", "pci_id": "1"}}])
    assert "holds both 'pciid' and 'pci_id'" in str(info.value)


def test_alias_collision_in_a_compatible_record_is_an_error():
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "d", "self": {}, "compatible": [{}, {"gvt-version": "1", "interface_version": "1"}]}])
    assert "field 'compatible[1]'" in str(info.value)
    assert "'gvt-version' and 'interface_version'" in str(info.value)


def test_aliases_from_a_custom_policy():
    p = fm.Policy.from_dict({"attributes": {"memory": {"type": "int", "aliases": ["mem", "fb"]}}})
    ds = fm.DeviceSet.from_records([{"id": "d", "self": {"fb": "0x100"}}], p)
    assert ds.to_records()[0]["self"] == {"memory": "0x100"}
    with pytest.raises(fm.InputError, match="holds both 'mem' and 'fb'"):
        fm.DeviceSet.from_records([{"id": "d", "self": {"mem": 1, "fb": 1}}], p)


# -- the rules table, through the verdict ----------------------------------------------------
def with_rule(name, rule, kind=None):
    entry = {"rule": rule}
    if kind:
        entry["type"] = kind
    return fm.Policy.from_dict({"attributes": {name: entry}})


@pytest.mark.parametrize(
    "s, t, ok",
    [
        ("a", "a", True),
        ("a", "b", False),
        (None, None, True),
        ("a", None, False),
        (None, "a", False),
    ],
)
def test_rule_exact_string(implementation, s, t, ok):
    s_self = {} if s is None else {"mdev_type": s}
    t_self = {} if t is None else {"mdev_type": t}
    assert pair_mask(s_self, t_self) == (0 if ok else MDEV_TYPE)


@pytest.mark.parametrize(
    "s, t, ok",
    [
        ("2.0.1", "2.1.1", True),
        ("2.1.1", "2.0.1", False),
        ("2.0.0", "3.0.0", False),
        ("3.0.0", "2.9.9", False),
        ("2.0.1", "2.0.0", True),
        ("2.0.0", "2.0.7", True),
        ("2.1", "2.1", True),
        ("2.1-rc1", "2.1", True),
        ("1.9", "1.10", True),
        ("1.10", "1.9", False),
        ("0.5", "1.5", False),
        (None, None, True),
        ("1.0", None, False),
        (None, "1.0", False),
    ],
)
def test_rule_version(implementation, s, t, ok):
    s_self = {} if s is None else {"software_version": s}
    t_self = {} if t is None else {"software_version": t}
    assert pair_mask(s_self, t_self) == (0 if ok else SOFTWARE_VERSION)


@pytest.mark.parametrize(
    "s, t, ok",
    [
        ("none", "none+ppgtt", True),
        ("none+ppgtt", "none", False),
        ("none+ppgtt", "ppgtt, none, context", True),
        ("context", "none+ppgtt", False),
        ("", "none", True),
        ("", "", True),
        ("none", "", False),
        ("none+ppgtt", "none+ppgtt", True),
    ],
)
def test_rule_superset(implementation, s, t, ok):
    assert pair_mask({"pv_mode": s}, {"pv_mode": t}) == (0 if ok else PV_MODE)


@pytest.mark.parametrize("rule", ["ge", "le"])
@pytest.mark.parametrize(
    "s, t",
    [(1, 2), (2, 1), (2, 2), (-3, 5), (None, None), (1, None), (None, 1), ("0x10", 15)],
)
def test_rule_ge_le_int(implementation, rule, s, t):
    s_self = {} if s is None else {"aggregator": s}
    t_self = {} if t is None else {"aggregator": t}
    if s is None or t is None:
        ok = s is None and t is None
    else:
        sv, tv = int(str(s), 0), int(str(t), 0)
        ok = tv >= sv if rule == "ge" else tv <= sv
    assert pair_mask(s_self, t_self, with_rule("aggregator", rule)) == (0 if ok else AGGREGATOR)


@pytest.mark.parametrize(
    "s, t, ge_ok, le_ok",
    [
        ("1.2", "1.10", True, False),
        ("2.0", "1.9", False, True),
        ("1.0", "1.0.0", True, True),
        ("1.0.0", "1.0.0-rc1", False, True),
        ("1.0.0+b1", "1.0.0+b2", True, True),
        ("2.0", "3.0", True, False),
        (None, None, True, True),
        ("1.0", None, False, False),
        (None, "1.0", False, False),
    ],
)
def test_rule_ge_le_version(implementation, s, t, ge_ok, le_ok):
    s_self = {} if s is None else {"software_version": s}
    t_self = {} if t is None else {"software_version": t}
    assert pair_mask(s_self, t_self, with_rule("software_version", "ge")) == (0 if ge_ok else SOFTWARE_VERSION)
    assert pair_mask(s_self, t_self, with_rule("software_version", "le")) == (0 if le_ok else SOFTWARE_VERSION)


@pytest.mark.parametrize("rule", ["dynamic", "ignore"])
@pytest.mark.parametrize(
    "name, s, t",
    [
        ("mdev_type", "a", "b"),
        ("mdev_type", "a", None),
        ("aggregator", 1, 8),
        ("aggregator", None, 8),
        ("software_version", "1.0", "9.0"),
        ("pv_mode", "none+ppgtt", "context"),
    ],
)
def test_rules_dynamic_and_ignore_always_pass(implementation, rule, name, s, t):
    s_self = {} if s is None else {name: s}
    t_self = {} if t is None else {name: t}
    assert pair_mask(s_self, t_self, with_rule(name, rule)) == 0


def test_rule_exact_on_a_set_compares_as_sets(implementation):
    p = with_rule("pv_mode", "exact")
    assert pair_mask({"pv_mode": "none+ppgtt"}, {"pv_mode": "ppgtt,none"}, p) == 0
    assert pair_mask({"pv_mode": "none"}, {"pv_mode": "none+ppgtt"}, p) == PV_MODE


def test_unknown_exact_compares_undeclared_attributes(implementation):
    # device_type is not declared: it gets the first bit after the 7 declared attributes.
    assert pair_mask({"device_type": "pci"}, {"device_type": "pci"}) == 0
    assert pair_mask({"device_type": "pci"}, {"device_type": "ccw"}) == 1 << 7
    assert pair_mask({"device_type": "pci"}, {}) == 1 << 7


def test_unknown_ignore_skips_undeclared_attributes(implementation):
    p = fm.Policy.from_dict({"unknown": "ignore"})
    assert pair_mask({"device_type": "pci"}, {"device_type": "ccw"}, p) == 0
    assert pair_mask({"device_type": "pci"}, {}, p) == 0
    # Declared attributes still follow their rules.
    assert pair_mask({"device_type": "pci", "mdev_type": "a"}, {"mdev_type": "b"}, p) == MDEV_TYPE


def test_custom_declared_attribute_rule(implementation):
    p = fm.Policy.from_dict({"attributes": {"memory": {"type": "int", "rule": "ge"}}})
    assert pair_mask({"memory": "0x100"}, {"memory": 512}, p) == 0
    assert pair_mask({"memory": 512}, {"memory": 256}, p) == 1 << 7
