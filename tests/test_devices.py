"""SPEC sections 2 and 9: device records, DeviceSet, and load() of the three JSON formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastmatch as fm


def records_error(records, policy=None):
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records(records, policy)
    return str(info.value)


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(path, policy=None):
    with pytest.raises(fm.InputError) as info:
        fm.load(path, policy)
    return str(info.value)


# -- device records: fields and defaults ----------------------------------------------------
def test_minimal_record_gets_the_defaults():
    ds = fm.DeviceSet.from_records([{"id": "d", "self": {}}])
    assert len(ds) == 1
    assert ds.ids == ["d"]
    assert ds.hosts == [""]
    assert ds.vms == [""]
    assert ds.capacities.tolist() == [1]
    d = ds.descriptor(0)
    assert d.records == ()
    assert d.migratable is True
    assert d.migration_version is None
    assert ds.to_records() == [{"id": "d", "self": {}}]


def test_all_fields_are_read():
    record = {
        "id": "gpu-1",
        "host": "h1",
        "vm": "vm-7",
        "self": {"mdev_type": "nvidia-35", "aggregator": 2},
        "compatible": [{"mdev_type": ["nvidia-35", "nvidia-36"]}],
        "capacity": 0,
        "migration_version": "opaque-1",
        "migratable": False,
    }
    ds = fm.DeviceSet.from_records([record])
    assert ds.hosts == ["h1"] and ds.vms == ["vm-7"]
    assert ds.capacities.tolist() == [0]
    d = ds.descriptor(0)
    assert d.values == {"mdev_type": "nvidia-35", "aggregator": 2}
    assert len(d.records) == 1
    assert d.migratable is False
    assert d.migration_version == "opaque-1"
    assert ds.to_records() == [record]


def test_ids_keep_input_order():
    ds = fm.DeviceSet.from_records([{"id": i, "self": {}} for i in ("c", "a", "b")])
    assert ds.ids == ["c", "a", "b"]
    assert len(ds) == 3


def test_empty_input():
    ds = fm.DeviceSet.from_records([])
    assert len(ds) == 0
    assert ds.ids == []
    assert ds.to_records() == []
    assert ds.capacities.shape == (0,)


def test_null_compatible_is_no_records():
    ds = fm.DeviceSet.from_records([{"id": "d", "self": {}, "compatible": None}])
    assert ds.descriptor(0).records == ()


@pytest.mark.parametrize(
    "record, expected",
    [
        ({"self": {}}, "record #0: field 'id': a device needs a non-empty string id"),
        ({"id": "", "self": {}}, "record #0: field 'id': a device needs a non-empty string id"),
        ({"id": 5, "self": {}}, "record #0: field 'id': a device needs a non-empty string id"),
        ({"id": "d"}, "record #0 'd': field 'self': a device needs a 'self' object"),
        ({"id": "d", "self": ["a"]}, "record #0 'd': field 'self': expected an object of attributes, got list"),
        ({"id": "d", "self": {}, "capacity": -1}, "record #0 'd': field 'capacity': expected an integer >= 0, got -1"),
        ({"id": "d", "self": {}, "capacity": "2"}, "record #0 'd': field 'capacity': expected an integer >= 0, got '2'"),
        ({"id": "d", "self": {}, "capacity": True}, "record #0 'd': field 'capacity': expected an integer >= 0, got True"),
        ({"id": "d", "self": {}, "capacity": 1.5}, "record #0 'd': field 'capacity': expected an integer >= 0, got 1.5"),
        ({"id": "d", "self": {}, "host": 3}, "record #0 'd': field 'host': expected a string, got 3"),
        ({"id": "d", "self": {}, "vm": ["x"]}, "record #0 'd': field 'vm': expected a string, got ['x']"),
        ({"id": "d", "self": {}, "migratable": "false"}, "record #0 'd': field 'migratable': expected true or false, got 'false'"),
        ({"id": "d", "self": {}, "migration_version": 7}, "record #0 'd': field 'migration_version': expected a string, got 7"),
        ({"id": "d", "self": {}, "compatible": {"a": "b"}}, "record #0 'd': field 'compatible': expected a list of records"),
        (
            {"id": "d", "self": {}, "compatible": [{}, "x"]},
            "record #0 'd': field 'compatible[1]': a COMPATIBLE record is an object, got str",
        ),
    ],
)
def test_invalid_fields(record, expected):
    assert records_error([record]) == expected


def test_any_other_top_level_key_is_an_error():
    message = records_error([{"id": "d", "self": {}, "type": "x"}])
    assert message.startswith("record #0 'd': field 'type': unknown key 'type'")


def test_record_that_is_not_an_object():
    assert records_error([{"id": "a", "self": {}}, ["b"]]) == "record #1: a device record is a JSON object, got list"


def test_duplicate_id_is_an_error():
    message = records_error([{"id": "a", "self": {}}, {"id": "b", "self": {}}, {"id": "a", "self": {"mdev_type": "x"}}])
    assert message == "record #2 'a': field 'id': duplicate id 'a' (first seen in record #0)"


def test_errors_name_the_record_index_and_id():
    message = records_error([{"id": "a", "self": {}}, {"id": "b", "self": {"software_version": "1..2"}}])
    assert message.startswith("record #1 'b': field 'self.software_version': invalid version '1..2'")


def test_devices_sharing_a_descriptor_keep_their_own_placement():
    ds = fm.DeviceSet.from_records(
        [
            {"id": "a", "host": "h1", "self": {"mdev_type": "x"}, "capacity": 3},
            {"id": "b", "host": "h2", "vm": "v", "self": {"mdev_type": "x"}},
        ]
    )
    assert ds.hosts == ["h1", "h2"] and ds.vms == ["", "v"]
    assert ds.capacities.tolist() == [3, 1]
    assert ds.descriptor(0).values == ds.descriptor(1).values == {"mdev_type": "x"}


def test_a_self_value_is_parsed_once_for_every_descriptor_that_holds_it_and_only_as_its_type_says():
    ds = fm.DeviceSet.from_records(
        [
            {"id": "a", "self": {"software_version": "1.2.3", "aggregator": 2, "mdev_type": "x"}},
            {"id": "b", "self": {"software_version": "1.2.3", "aggregator": "2", "mdev_type": "y"}},
        ]
    )
    first, second = ds.descriptor(0).values, ds.descriptor(1).values
    assert first["software_version"] is second["software_version"]  # the same Version
    assert first["aggregator"] == second["aggregator"] == 2
    # A value seen before under another type, or a bad one after good ones, is parsed (and refused) anew.
    message = records_error(
        [
            {"id": "a", "self": {"aggregator": 1, "mdev_type": "x"}},
            {"id": "b", "self": {"aggregator": True, "mdev_type": "x"}},
        ]
    )
    assert "record #1" in message and "self.aggregator" in message and "expected an integer, got True" in message
    message = records_error([{"id": "a", "self": {"mdev_type": "x"}}, {"id": "b", "self": {"mdev_type": "x{y}"}}])
    assert "self.mdev_type" in message and "templates appear only in COMPATIBLE records" in message


def test_absent_self_values_are_not_values():
    ds = fm.DeviceSet.from_records([{"id": "d", "self": {"mdev_type": "", "aggregator": None, "pv_mode": [], "device_id": "x"}}])
    assert ds.descriptor(0).values == {"device_id": "x"}


# -- to_records round trip ------------------------------------------------------------------
FLEET = [
    {"id": "a", "host": "h1", "self": {"type": "i915-GVTg_V5_4", "aggregator": "2", "gvt-version": "v1.2", "pv-mode": "none, ppgtt"}},
    {
        "id": "b",
        "host": "h2",
        "vm": "vm1",
        "self": {"mdev_type": "i915-GVTg_V5_2", "device_type": "pci"},
        "compatible": [
            {"mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}", "aggregator": "{val1}/2", "pv_mode": ["none", "ppgtt"]},
            {"driver": "*", "interface_version": ""},
        ],
        "capacity": 4,
        "migration_version": "v1",
    },
    {"id": "c", "self": {"mdev_type": "x"}, "migratable": False, "capacity": 0},
]


def test_to_records_uses_canonical_names_and_keeps_values_as_written():
    out = fm.DeviceSet.from_records(FLEET).to_records()
    assert out[0] == {
        "id": "a",
        "host": "h1",
        "self": {"mdev_type": "i915-GVTg_V5_4", "aggregator": "2", "software_version": "v1.2", "pv_mode": "none, ppgtt"},
    }
    assert out[1]["compatible"][1] == {"vendor_driver": "*", "software_version": ""}
    assert out[1]["compatible"][0] == FLEET[1]["compatible"][0]
    assert out[1]["capacity"] == 4 and out[1]["migration_version"] == "v1" and out[1]["vm"] == "vm1"
    assert out[2] == {"id": "c", "self": {"mdev_type": "x"}, "capacity": 0, "migratable": False}


def test_to_records_round_trip():
    first = fm.DeviceSet.from_records(FLEET)
    again = fm.DeviceSet.from_records(first.to_records())
    assert again.to_records() == first.to_records()
    assert again.ids == first.ids and again.hosts == first.hosts and again.vms == first.vms
    assert np.array_equal(again.capacities, first.capacities)
    for i in range(len(first)):
        assert again.descriptor(i).values == first.descriptor(i).values
        assert again.descriptor(i).records == first.descriptor(i).records
    # The records are JSON: they survive a trip through a file.
    assert json.loads(json.dumps(first.to_records())) == first.to_records()


def test_to_records_round_trip_gives_the_same_verdicts(implementation):
    first = fm.DeviceSet.from_records(FLEET)
    again = fm.DeviceSet.from_records(first.to_records())
    a, b = fm.match(first, first, workers=1), fm.match(again, again, workers=1)
    assert np.array_equal(a.reasons, b.reasons)
    assert np.array_equal(a.scores, b.scores)


# -- load(): JSON Lines ---------------------------------------------------------------------
def test_load_json_lines(tmp_path):
    path = write(
        tmp_path,
        "fleet.jsonl",
        '{"id": "a", "self": {"mdev_type": "x"}}\n\n{"id": "b", "host": "h", "self": {"pciid": "8086591d"}}\n',
    )
    ds = fm.load(path)
    assert ds.ids == ["a", "b"]
    assert ds.hosts == ["", "h"]
    assert ds.descriptor(1).values == {"device_id": "8086591d"}


def test_load_json_lines_error_names_file_line_record_and_field(tmp_path):
    path = write(
        tmp_path,
        "fleet.jsonl",
        '{"id": "a", "self": {}}\n'
        "\n"
        '{"id": "b", "self": {}}\n'
        '{"id": "gpu-1", "self": {"software_version": "abc"}}\n',
    )
    message = load_error(path)
    assert message.startswith(f"{path}:4: record 'gpu-1': field 'self.software_version': invalid version 'abc' (")


def test_load_json_lines_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "fleet.jsonl", '{"id": "a", "self": {}}\n{"id": "b", "self": {}},\n{"id": "c", "self": {}}\n')
    assert load_error(path).startswith(f"{path}:2: invalid JSON")


def test_load_json_lines_duplicate_id_names_the_second_line(tmp_path):
    path = write(tmp_path, "fleet.jsonl", '{"id": "a", "self": {}}\n{"id": "b", "self": {}}\n\n{"id": "a", "self": {}}\n')
    assert load_error(path) == f"{path}:4: record 'a': field 'id': duplicate id 'a' (first seen in record #0)"


def test_load_json_lines_record_without_id_names_the_line(tmp_path):
    path = write(tmp_path, "fleet.jsonl", '{"id": "a", "self": {}}\n{"self": {}}\n')
    assert load_error(path) == f"{path}:2: record #1: field 'id': a device needs a non-empty string id"


def test_load_json_lines_with_crlf_line_endings(tmp_path):
    path = write(tmp_path, "fleet.jsonl", b'{"id": "a", "self": {}}\r\n{"id": "b", "self": {"aggregator": "x"}}\r\n', "wb")
    assert load_error(path).startswith(f"{path}:2: record 'b': field 'self.aggregator': invalid integer 'x'")


def test_load_json_lines_with_unicode_line_separators_inside_strings(tmp_path):
    # JSON allows U+2028, U+2029 and U+0085 unescaped in strings; JSON Lines records end at "\n" only.
    text = json.dumps({"id": "a\u2028b", "self": {"vendor_driver": "x\u2029y\x85z"}}, ensure_ascii=False) + "\n"
    text += '{"id": "c", "self": {"aggregator": "bad"}}\n'
    path = write(tmp_path, "fleet.jsonl", text)
    assert load_error(path).startswith(f"{path}:2: record 'c': field 'self.aggregator'")
    path = write(tmp_path, "ok.jsonl", text.split("\n")[0] + "\n")
    ds = fm.load(path)
    assert ds.ids == ["a\u2028b"]
    assert ds.descriptor(0).values == {"vendor_driver": "x\u2029y\x85z"}


def test_load_single_line_file(tmp_path):
    path = write(tmp_path, "one.jsonl", '{"id": "a", "self": {"mdev_type": "x"}}')
    assert fm.load(path).ids == ["a"]


def test_load_uses_the_policy(tmp_path):
    policy = fm.Policy.from_dict({"attributes": {"memory": {"type": "int", "aliases": ["mem"]}}})
    path = write(tmp_path, "fleet.jsonl", '{"id": "a", "self": {"mem": "0x10"}}\n')
    assert fm.load(path, policy).descriptor(0).values == {"memory": 16}
    # Under the default policy "mem" is an unknown attribute, a typed string.
    assert fm.load(path).descriptor(0).values == {"mem": "0x10"}


# -- load(): a JSON array of records --------------------------------------------------------
def test_load_json_array(tmp_path):
    path = write(tmp_path, "fleet.json", json.dumps(FLEET, indent=2))
    ds = fm.load(path)
    assert ds.ids == ["a", "b", "c"]
    assert ds.to_records() == fm.DeviceSet.from_records(FLEET).to_records()


def test_load_json_array_error_names_the_line_the_record_starts_on(tmp_path):
    text = (
        "[\n"  # 1
        '  {"id": "a", "self": {}},\n'  # 2
        "  {\n"  # 3
        '    "id": "b",\n'  # 4
        '    "self": {}\n'  # 5
        "  },\n"  # 6
        '  {"id": "c",\n'  # 7
        '   "self": {"pv_mode": "none++ppgtt"}}\n'  # 8
        "]\n"
    )
    path = write(tmp_path, "fleet.json", text)
    assert load_error(path) == f"{path}:7: record 'c': field 'self.pv_mode': set 'none++ppgtt' has an empty item"


def test_load_json_array_syntax_errors_name_the_line(tmp_path):
    path = write(tmp_path, "trailing.json", '[\n  {"id": "a", "self": {}},\n  {"id": "b", "self": {}},\n]\n')
    assert load_error(path).startswith(f"{path}:4: invalid JSON")
    path = write(tmp_path, "comma.json", '[\n  {"id": "a", "self": {}}\n  {"id": "b", "self": {}}\n]\n')
    assert load_error(path).startswith(f"{path}:3: invalid JSON")
    path = write(tmp_path, "open.json", '[\n  {"id": "a", "self": {}}\n')
    assert load_error(path).startswith(f"{path}:")
    path = write(tmp_path, "extra.json", '[{"id": "a", "self": {}}]\n\n{"id": "b"}\n')
    assert load_error(path).startswith(f"{path}:3: invalid JSON")


def test_load_json_array_element_that_is_not_an_object(tmp_path):
    path = write(tmp_path, "fleet.json", '[\n  {"id": "a", "self": {}},\n  "b"\n]\n')
    assert load_error(path) == f"{path}:3: record #1: a device record is a JSON object, got str"


# -- load(): seed JSON ----------------------------------------------------------------------
def test_load_seed_document_id_is_the_file_stem(tmp_path):
    doc = {"self": [{"mdev_type": "i915-GVTg_V5_2"}], "compatible": [{"mdev_type": "i915-GVTg_V5_2"}]}
    path = write(tmp_path, "gvt-host1.json", json.dumps(doc, indent=1))
    ds = fm.load(path)
    assert ds.ids == ["gvt-host1"]
    assert ds.to_records() == [{"id": "gvt-host1", "self": {"mdev_type": "i915-GVTg_V5_2"}, "compatible": [{"mdev_type": "i915-GVTg_V5_2"}]}]


def test_load_seed_document_with_several_descriptors(tmp_path):
    doc = {"self": [{"mdev_type": "a"}, {"mdev_type": "b"}], "compatible": [{"mdev_type": ["a", "b"]}]}
    path = write(tmp_path, "dev.json", json.dumps(doc, indent=1))
    ds = fm.load(path)
    assert ds.ids == ["dev#0", "dev#1"]
    assert [r["self"] for r in ds.to_records()] == [{"mdev_type": "a"}, {"mdev_type": "b"}]
    assert all(r["compatible"] == [{"mdev_type": ["a", "b"]}] for r in ds.to_records())


def test_load_seed_document_without_compatible(tmp_path):
    path = write(tmp_path, "dev.json", '{"self": [{"mdev_type": "a"}]}')
    assert fm.load(path).to_records() == [{"id": "dev", "self": {"mdev_type": "a"}}]


def test_load_seed_document_errors(tmp_path):
    path = write(tmp_path, "empty.json", '{"self": [], "compatible": []}')
    assert load_error(path) == f"{path}: field 'self': 'self' holds no descriptor"
    path = write(tmp_path, "extra.json", '{"self": [{}], "compatible": [], "migratable": false}')
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "'migratable'" in message
    path = write(tmp_path, "bad.json", '{"self": [{"aggregator": "two"}]}')
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "'bad'" in message and "field 'self.aggregator'" in message and "'two'" in message
    path = write(tmp_path, "badrec.json", '{"self": [{}], "compatible": [{"aggregator": "{x}"}]}')
    message = load_error(path)
    assert "field 'compatible[0].aggregator'" in message and "variable 'x' is not declared" in message


# -- load(): empty and unreadable inputs ----------------------------------------------------
@pytest.mark.parametrize("text", ["", "\n", "  \n\n\t\n", "[]", " [ ] \n", "[\n]\n"])
def test_load_empty_inputs(tmp_path, text):
    ds = fm.load(write(tmp_path, "empty.jsonl", text))
    assert len(ds) == 0
    assert ds.ids == []


def test_load_missing_file_names_it(tmp_path):
    path = tmp_path / "missing.jsonl"
    assert load_error(path).startswith(f"{path}: cannot read")


def test_load_non_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path, "latin1.jsonl", b'{"id": "a", "self": {}}\n{"id": "b\xe9", "self": {}}\n', "wb")
    assert load_error(path).startswith(f"{path}:2: not UTF-8")


def test_load_json_value_that_is_not_a_record(tmp_path):
    path = write(tmp_path, "num.jsonl", "5\n")
    assert load_error(path) == f"{path}:1: record #0: a device record is a JSON object, got int"


def test_load_json_lines_with_a_broken_first_line(tmp_path):
    path = write(tmp_path, "fleet.jsonl", '{"id": "a", "self": {}},\n{"id": "b", "self": {}}\n')
    assert load_error(path).startswith(f"{path}:1: invalid JSON")


def test_load_multi_line_object_that_is_not_a_seed_document(tmp_path):
    path = write(tmp_path, "record.json", json.dumps({"id": "a", "self": {}}, indent=2))
    message = load_error(path)
    assert message.startswith(f"{path}:1: a JSON value over several lines that is not a seed document")


def test_load_seed_document_whose_self_is_not_a_list(tmp_path):
    path = write(tmp_path, "seed.json", json.dumps({"self": {"mdev_type": "a"}, "compatible": []}, indent=2))
    assert load_error(path) == f"{path}: field 'self': a seed document's 'self' is a list of descriptors, got dict"
