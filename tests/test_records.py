"""SPEC section 5: COMPATIBLE records, patterns, templates, expressions and grounding."""

from __future__ import annotations

import builtins

import pytest

import fastmatch as fm

DEVICE_API, MDEV_TYPE, VENDOR_DRIVER, DEVICE_ID, SOFTWARE_VERSION, PV_MODE, AGGREGATOR = (1 << i for i in range(7))
NO_RECORD = 1 << 59


def masks(sources_self, records, t_self=None, policy=None):
    """Reason masks of each source SELF against one target holding ``records``."""
    sources = [{"id": f"s{i}", "self": s} for i, s in enumerate(sources_self)]
    target = {"id": "t", "self": t_self or {}, "compatible": records}
    result = fm.match(sources, [target], policy, workers=1)
    return [int(m) for m in result.reasons[:, 0]]


def accepted(sources_self, records, t_self=None, policy=None):
    return [m == 0 for m in masks(sources_self, records, t_self, policy)]


def record_error(records, self_=None):
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "t", "self": self_ or {}, "compatible": records}])
    return info.value


# -- literals --------------------------------------------------------------------------------
def test_string_literal_must_equal(implementation):
    assert accepted([{"mdev_type": "a"}, {"mdev_type": "b"}, {}], [{"mdev_type": "a"}]) == [True, False, False]


def test_typed_literals(implementation):
    records = [{"software_version": "1.0", "aggregator": "0x2"}]
    sources = [
        {"software_version": "1.0.0", "aggregator": 2},
        {"software_version": "v1", "aggregator": "2"},
        {"software_version": "1.0.0+build", "aggregator": "0x2"},
        {"software_version": "1.0.1", "aggregator": 2},
        {"software_version": "1.0", "aggregator": 3},
    ]
    t_self = {"software_version": "1.0"}
    assert accepted(sources, records, t_self) == [True, True, True, False, False]


def test_set_literal_accepts_subsets(implementation):
    sources = [{"pv_mode": "none"}, {"pv_mode": "none+ppgtt"}, {"pv_mode": "ppgtt"}, {}, {"pv_mode": "none+context"}]
    t_self = {"pv_mode": "none+ppgtt+context"}
    assert accepted(sources, [{"pv_mode": "none+ppgtt"}], t_self) == [True, True, True, True, False]


def test_array_is_any_one_of_the_literals(implementation):
    sources = [{"mdev_type": "a"}, {"mdev_type": "b"}, {"mdev_type": "c"}, {}]
    assert accepted(sources, [{"mdev_type": ["a", "b"]}]) == [True, True, False, False]


def test_array_of_typed_literals(implementation):
    sources = [{"software_version": "2.0.0"}, {"software_version": "1"}, {"software_version": "1.5"}]
    t_self = {"software_version": "1.0"}
    assert accepted(sources, [{"software_version": ["1.0", "2.0"]}], t_self) == [True, True, False]
    assert accepted([{"aggregator": 16}, {"aggregator": 4}, {"aggregator": 2}], [{"aggregator": [1, "0x10", "4"]}]) == [
        True,
        True,
        False,
    ]


def test_array_for_a_set_is_one_literal_in_set_syntax(implementation):
    # Read as "any one of none / ppgtt", none+ppgtt would be rejected; as one set literal it is accepted.
    sources = [{"pv_mode": "none+ppgtt"}, {"pv_mode": "none"}, {"pv_mode": "context"}]
    t_self = {"pv_mode": "none+ppgtt+context"}
    assert accepted(sources, [{"pv_mode": ["none", "ppgtt"]}], t_self) == [True, True, False]


def test_empty_string_requires_the_source_to_lack_the_attribute(implementation):
    sources = [{}, {"vendor_driver": ""}, {"vendor_driver": None}, {"vendor_driver": "i915"}]
    assert accepted(sources, [{"vendor_driver": ""}]) == [True, True, True, False]
    sources = [{}, {"aggregator": ""}, {"aggregator": 1}]
    assert accepted(sources, [{"aggregator": ""}]) == [True, True, False]


def test_empty_string_for_a_set_requires_the_empty_set(implementation):
    sources = [{}, {"pv_mode": ""}, {"pv_mode": []}, {"pv_mode": "none"}]
    assert accepted(sources, [{"pv_mode": ""}], {"pv_mode": "none"}) == [True, True, True, False]


def test_star_accepts_anything_absent_included(implementation):
    sources = [{"mdev_type": "a"}, {"mdev_type": "zzz"}, {}]
    assert accepted(sources, [{"mdev_type": "*"}], {"mdev_type": "a"}) == [True, True, True]


def test_star_constrains_the_attribute(implementation):
    # With "*" the record decides mdev_type (records = "override"), so the exact rule is not applied.
    assert masks([{"mdev_type": "b"}], [{"mdev_type": "*"}], {"mdev_type": "a"}) == [0]
    # Without it the attribute is unconstrained: its rule decides, and fails.
    assert masks([{"mdev_type": "b"}], [{"aggregator": "*"}], {"mdev_type": "a"}) == [MDEV_TYPE | NO_RECORD]


def test_attributes_a_record_does_not_mention_are_not_constrained_by_it(implementation):
    t_self = {"mdev_type": "a", "aggregator": 1}
    sources = [{"mdev_type": "a", "aggregator": 1}, {"mdev_type": "a", "aggregator": 2}]
    assert masks(sources, [{"mdev_type": "a"}], t_self) == [0, AGGREGATOR | NO_RECORD]


def test_record_overrides_the_rule_of_attributes_it_constrains(implementation):
    # The version rule would reject 1.0 -> 3.0; the record accepts it.
    t_self = {"software_version": "3.0"}
    assert masks([{"software_version": "1.0"}, {"software_version": "2.0"}], [{"software_version": ["1.0", "3.0"]}], t_self) == [
        0,
        NO_RECORD,
    ]


def test_fields_are_anded(implementation):
    records = [{"mdev_type": "a", "aggregator": 1}]
    sources = [{"mdev_type": "a", "aggregator": 1}, {"mdev_type": "a", "aggregator": 2}, {"mdev_type": "b", "aggregator": 1}]
    assert accepted(sources, records, {"mdev_type": "a", "aggregator": 1}) == [True, False, False]


def test_records_are_ored(implementation):
    records = [{"mdev_type": "a", "aggregator": 1}, {"mdev_type": "b", "aggregator": 2}]
    sources = [
        {"mdev_type": "a", "aggregator": 1},
        {"mdev_type": "b", "aggregator": 2},
        {"mdev_type": "a", "aggregator": 2},
        {"mdev_type": "b", "aggregator": 1},
    ]
    assert accepted(sources, records) == [True, True, False, False]


def test_empty_record_matches_every_source(implementation):
    # It constrains nothing: every rule decides.
    assert masks([{"mdev_type": "a"}, {"mdev_type": "b"}], [{}], {"mdev_type": "a"}) == [0, MDEV_TYPE | NO_RECORD]


# -- templates ------------------------------------------------------------------------------
GVT = [{"mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}", "aggregator": "{val1}/2"}]


def test_template_mixes_text_and_placeholders_and_shares_variables(implementation):
    sources = [
        {"mdev_type": "i915-GVTg_V5_2", "aggregator": 1},
        {"mdev_type": "i915-GVTg_V5_4", "aggregator": 2},
        {"mdev_type": "i915-GVTg_V5_8", "aggregator": 4},
        {"mdev_type": "i915-GVTg_V5_4", "aggregator": 4},  # val1=4 gives aggregator 2, not 4
        {"mdev_type": "i915-GVTg_V5_8", "aggregator": 2},
        {"mdev_type": "i915-GVTg_V5_16", "aggregator": 8},
        {"mdev_type": "i915-GVTg_V5_4"},
    ]
    assert accepted(sources, GVT) == [True, True, True, False, False, False, False]


def test_division_with_a_remainder_drops_the_combination(implementation):
    # val1 = 1 gives 1/2: that combination does not exist, so V5_1 matches nothing.
    sources = [{"mdev_type": "i915-GVTg_V5_1", "aggregator": a} for a in (0, 1)] + [{"mdev_type": "i915-GVTg_V5_1"}]
    assert accepted(sources, GVT) == [False, False, False]


def test_division_by_zero_drops_the_combination(implementation):
    records = [{"aggregator": "12/{d:int:0,3,4}"}]
    sources = [{"aggregator": a} for a in (4, 3, 0, 12)] + [{}]
    assert accepted(sources, records) == [True, True, False, False, False]


def test_expression_operators_and_precedence(implementation):
    # a in {1,2}, b in {3,6}: (a+1)*2 - b/3 gives 3, 2, 5, 4.
    records = [{"aggregator": "({a:int:1,2}+1)*2-{b:int:3,6}/3"}]
    sources = [{"aggregator": v} for v in range(0, 8)]
    assert accepted(sources, records) == [v in (2, 3, 4, 5) for v in range(0, 8)]


def test_expression_unary_minus_and_negative_results(implementation):
    records = [{"aggregator": "-{a:int:1,2}*3"}]
    sources = [{"aggregator": v} for v in (-3, -6, 3, 6)]
    assert accepted(sources, records) == [True, True, False, False]


def test_expression_with_hex_variable_values(implementation):
    records = [{"aggregator": "{a:int:0x10,2}+1"}]
    assert accepted([{"aggregator": 17}, {"aggregator": 3}, {"aggregator": 2}], records) == [True, True, False]


def test_version_text_template(implementation):
    records = [{"software_version": "{major:int:1,2}.{minor:int:0,5}"}]
    sources = [{"software_version": v} for v in ("1.0", "1.5", "2.0.0", "2.5", "2.4", "3.0")]
    t_self = {"software_version": "2.9"}
    assert accepted(sources, records, t_self) == [True, True, True, True, False, False]


def test_version_expression(implementation):
    # An int or version attribute may hold an integer expression: here majors 2 and 3.
    records = [{"software_version": "{a:int:1,2}+1"}]
    sources = [{"software_version": v} for v in ("2", "3.0", "2.0.0", "1", "2.1", "4")]
    assert accepted(sources, records, {"software_version": "3"}) == [True, True, True, False, False, False]


def test_variable_may_be_declared_in_a_later_field(implementation):
    records = [{"mdev_type": "type-{n}", "aggregator": "{n:int:1,2}"}]
    sources = [{"mdev_type": "type-1", "aggregator": 1}, {"mdev_type": "type-2", "aggregator": 2}, {"mdev_type": "type-1", "aggregator": 2}]
    assert accepted(sources, records) == [True, True, False]


def test_string_variable_with_quoted_values(implementation):
    records = [{"vendor_driver": '{d:string:"a,b",c,"x+y"}'}]
    sources = [{"vendor_driver": v} for v in ("a,b", "c", "x+y", "a", "b", '"c"')]
    assert accepted(sources, records) == [True, True, True, False, False, False]


def test_string_variable_for_a_set_attribute(implementation):
    records = [{"pv_mode": '{m:string:"none+ppgtt","context"}'}]
    sources = [{"pv_mode": "none+ppgtt"}, {"pv_mode": "ppgtt"}, {"pv_mode": "context"}, {"pv_mode": "none+context"}]
    t_self = {"pv_mode": "none+ppgtt+context"}
    assert accepted(sources, records, t_self) == [True, True, True, False]


def test_a_record_matches_when_some_combination_accepts_every_field(implementation):
    records = [{"mdev_type": "t{a:int:1,2}", "aggregator": "{b:int:10,20}", "device_id": "{a}{b}"}]
    sources = [
        {"mdev_type": "t1", "aggregator": 10, "device_id": "110"},
        {"mdev_type": "t2", "aggregator": 20, "device_id": "220"},
        {"mdev_type": "t1", "aggregator": 20, "device_id": "120"},
        {"mdev_type": "t1", "aggregator": 10, "device_id": "210"},
    ]
    assert accepted(sources, records) == [True, True, True, False]


def test_expressions_are_never_evaluated_as_code(implementation, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("expressions must be parsed, not evaluated as code")

    sources = [{"aggregator": v} for v in (3, 4)]
    with monkeypatch.context() as patched:
        patched.setattr(builtins, "eval", forbidden)
        patched.setattr(builtins, "exec", forbidden)
        verdict = accepted(sources, [{"aggregator": "({a:int:4,8}-2)/2"}])
    assert verdict == [True, False]


@pytest.mark.parametrize(
    "expression",
    [
        "{a:int:1}**2",
        "{a:int:1}//2",
        "{a:int:1}+",
        "({a:int:1}+1",
        "{a:int:1}+1)",
        "{a:int:1}%2",
        "__import__('os').system('true')+{a:int:1}",
    ],
)
def test_malformed_expressions_are_template_errors(expression):
    error = record_error([{"aggregator": expression}])
    assert "field 'compatible[0].aggregator'" in str(error)


# -- template errors ------------------------------------------------------------------------
def test_template_error_is_an_input_error():
    assert issubclass(fm.TemplateError, fm.InputError)
    assert issubclass(fm.InputError, fm.FastmatchError)


def test_undeclared_variable_is_an_error():
    error = record_error([{"mdev_type": "a"}, {"aggregator": "{val1}/2"}])
    assert isinstance(error, fm.TemplateError)
    assert str(error) == "record #0 't': field 'compatible[1].aggregator': variable 'val1' is not declared"


def test_variables_are_declared_per_record():
    error = record_error([{"aggregator": "{n:int:1,2}"}, {"mdev_type": "t{n}"}])
    assert str(error) == "record #0 't': field 'compatible[1].mdev_type': variable 'n' is not declared"


def test_second_declaration_is_an_error():
    error = record_error([{"mdev_type": "t{n:int:1}", "aggregator": "{n:int:1}"}])
    assert isinstance(error, fm.TemplateError)
    assert "variable 'n' is declared twice" in str(error)
    assert "field 'compatible[0].aggregator'" in str(error)


def test_second_declaration_in_one_field_is_an_error():
    error = record_error([{"mdev_type": "{n:int:1}-{n:int:2}"}])
    assert "variable 'n' is declared twice" in str(error)


@pytest.mark.parametrize("placeholder", ["{a:float:1}", "{a:int}", "{a:int:}", "{a:int:1,,2}", "{a:int:x}", "{1a:int:1}", "{}", "{a", "a}"])
def test_malformed_placeholders_are_errors(placeholder):
    error = record_error([{"aggregator": placeholder}])
    assert isinstance(error, fm.TemplateError)
    assert "field 'compatible[0].aggregator'" in str(error)


def test_more_than_4096_combinations_is_an_error_naming_record_and_count():
    values = ",".join(str(i) for i in range(65))
    error = record_error([{"mdev_type": "x"}, {"aggregator": "{a:int:" + values + "}", "device_id": "{b:int:" + values + "}"}])
    assert isinstance(error, fm.TemplateError)
    message = str(error)
    assert message.startswith("record #0 't': field 'compatible[1]'")
    assert "4225" in message


def test_exactly_4096_combinations_is_allowed(implementation):
    values = ",".join(str(i) for i in range(64))
    records = [{"aggregator": "{a:int:" + values + "}*64+{b:int:" + values + "}"}]
    assert accepted([{"aggregator": 4095}, {"aggregator": 4096}, {"aggregator": 0}], records) == [True, False, True]


def test_literal_invalid_for_its_type_is_an_error():
    error = record_error([{"software_version": "abc"}])
    assert str(error).startswith("record #0 't': field 'compatible[0].software_version': invalid version 'abc'")


def test_grounded_literal_invalid_for_its_type_is_an_error():
    error = record_error([{"software_version": "{v:string:1.0,abc}"}])
    message = str(error)
    assert message.startswith("record #0 't': field 'compatible[0].software_version': invalid version 'abc'")
    assert "v='abc'" in message


def test_grounded_int_invalid_is_an_error():
    error = record_error([{"aggregator": "{v:string:two}"}])
    assert "field 'compatible[0].aggregator'" in str(error)
    assert "'two'" in str(error)


@pytest.mark.parametrize("raw", [True, 1.5, {"a": 1}])
def test_pattern_of_the_wrong_json_type_is_an_error(raw):
    error = record_error([{"aggregator": raw}])
    assert "field 'compatible[0].aggregator'" in str(error)


def test_number_pattern_for_a_string_attribute_is_an_error():
    error = record_error([{"mdev_type": 5}])
    assert "field 'compatible[0].mdev_type'" in str(error)
    assert "expected a string" in str(error)


def test_templates_never_appear_in_self():
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "d", "self": {"mdev_type": "i915-GVTg_V5_{val1:int:1,2}"}}])
    assert "field 'self.mdev_type'" in str(info.value)
    assert "templates appear only in COMPATIBLE records" in str(info.value)
