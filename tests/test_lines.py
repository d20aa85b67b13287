"""The native fleet line reader (fastmatch._lines) against plain-Python twins: reading a
file with its line check, the one-value-per-line shape, the columns and descriptor codes of
decoded lines (with hash tags narrowed so that keys share them), Arrow string columns, and
columns of str coded or looked up in another."""

import os
import sys

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmatch._lines import LineCoder, arrow_strings, code_strings, lines_of_one_value, positions_in, read_file
from fastmatch.devices import DeviceSet
from fastmatch.files import read_input
from fastmatch.formats.columnar import _string_buffers
from fastmatch.formats.fleet_lines import _DECODER, _Line
from fastmatch.result import TargetDevices


# -- read_file --------------------------------------------------------------------------------
def _read(path, size, max_line):
    seen = []
    with open(path, "rb") as handle:
        data, long_line = read_file(handle.fileno(), 0, size, max_line, seen.append)
    return data, long_line, seen


@given(st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=8), st.integers(0, 12))
@settings(max_examples=60, deadline=None)
def test_read_file_finds_the_first_long_line_as_python_does(tmp_path_factory, lines, max_line):
    path = tmp_path_factory.mktemp("read") / "f"
    content = b"\n".join(lines)
    path.write_bytes(content)
    data, long_line, seen = _read(path, len(content), max_line)
    too_long = [number for number, line in enumerate(content.split(b"\n"), 1) if len(line) > max_line]
    if too_long:
        assert (data, long_line) == (b"", too_long[0])
    else:
        assert (data, long_line, sum(seen)) == (content, 0, len(content))
    assert _read(path, len(content), -1)[:2] == (content, 0)  # no line check


def test_read_file_reads_no_more_than_asked_and_stops_at_the_end(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert _read(path, 4, -1)[:2] == (b"0123", 0)
    assert _read(path, 20, -1)[:2] == (b"0123456789", 0)
    with open(path, "rb") as handle:
        assert read_file(handle.fileno(), 3, 4, -1, lambda n: None) == (b"3456", 0)


def test_standard_input_from_a_file_read_in_part_is_read_from_where_it_stands(tmp_path, monkeypatch):
    header = b"# a header the caller read\n"
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(header + b'{"id": "a", "self": {}}\n' * 3)
    with open(path, "rb", buffering=0) as handle:
        handle.read(len(header))
        monkeypatch.setattr(sys, "stdin", handle)
        assert read_input("-") == b'{"id": "a", "self": {}}\n' * 3


def test_read_input_reads_a_file_that_says_it_is_empty_as_a_stream():
    """Files in /proc report a size of 0 and still hold bytes: the one-buffer read steps aside."""
    with open("/proc/self/mountinfo", "rb") as handle:  # the same for this process from read to read
        expected = handle.read()
    assert os.stat("/proc/self/mountinfo").st_size == 0 and expected
    assert read_input("/proc/self/mountinfo") == expected


# -- lines_of_one_value -------------------------------------------------------------------------
def _lines_of_one_value(data: bytes) -> int:
    body = data[:-1] if data.endswith(b"\n") else data
    if len(body) < 2 or not body.startswith(b"{") or not body.endswith(b"}"):
        return -1
    lines = body.split(b"\n")
    if any(not line.startswith(b"{") or not line.endswith(b"}") for line in lines):
        return -1
    return len(lines)


@given(st.lists(st.sampled_from([b"{", b"}", b"\n", b"\r", b" ", b"a", b"{}", b"}\n{"]), max_size=12))
@settings(max_examples=300, deadline=None)
def test_lines_of_one_value_as_python_splits_them(pieces):
    data = b"".join(pieces)
    assert lines_of_one_value(data) == _lines_of_one_value(data)


# -- LineCoder ----------------------------------------------------------------------------------
def _line(record: dict) -> bytes:
    return msgspec.json.encode(record)


def _expected(records: list[dict]):
    """The columns by plain Python: ``None`` where the coder steps aside."""
    ids = [r["id"] for r in records]
    if "" in ids or len(set(ids)) != len(ids) or any(r.get("capacity", 1) < 0 for r in records):
        return None
    keys = [
        (_line(r["self"]), _line(r["compatible"]) if "compatible" in r else b"", r.get("migration_version"), r.get("migratable", True))
        for r in records
    ]
    number: dict = {}
    groups = [number.setdefault(key, len(number)) for key in keys]
    first = [groups.index(g) for g in range(len(number))]
    return ids, [r.get("host") or "" for r in records], [r.get("vm") or "" for r in records], [r.get("capacity", 1) for r in records], groups, first


records_strategy = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["", "a", "b", "c", "é", "d\u4e00", "e" * 20])},
        optional={
            "self": st.dictionaries(st.sampled_from(["mdev_type", "x", "y"]), st.sampled_from(["1", "2", "long" * 10]), max_size=3),
            "host": st.sampled_from([None, "h1", "h2"]),
            "vm": st.sampled_from([None, "v1"]),
            "compatible": st.lists(st.dictionaries(st.sampled_from(["mdev_type"]), st.sampled_from(["1", "2"]), max_size=1), max_size=2),
            "capacity": st.integers(-1, 3),
            "migration_version": st.sampled_from([None, "1", "2", "ü"]),
            "migratable": st.booleans(),
        },
    ).map(lambda r: {"self": {}, **r}),
    max_size=12,
)


@given(records_strategy, st.sampled_from([32, 2, 0]), st.integers(1, 5))
@settings(max_examples=300, deadline=None)
def test_line_coder_codes_lines_as_python_groups_them(records, tag_bits, slice_lines):
    # Ids made unique where the draw repeats them, half the time: both outcomes are checked.
    if len(records) % 2:
        records = [{**r, "id": f"{r['id']}{i}"} for i, r in enumerate(records)]
    lines = [_DECODER.decode(_line(r)) for r in records]
    coder = LineCoder(_Line, len(lines), "", tag_bits)
    added = all(coder.add(lines[start : start + slice_lines]) for start in range(0, len(lines), slice_lines))
    columns = coder.columns() if added else None
    expected = _expected(records)
    if expected is None:
        assert columns is None
        return
    ids, hosts, vms, capacities, groups, first = expected
    got_ids, got_hosts, got_vms, got_capacities, got_groups, first_lines = columns
    assert (got_ids, got_hosts, got_vms, got_capacities.tolist(), got_groups.tolist()) == (ids, hosts, vms, capacities, groups)
    assert [line.id for line in first_lines] == [ids[row] for row in first]


def test_line_coder_refuses_a_capacity_beyond_int64_and_more_lines_than_room():
    big = _DECODER.decode(b'{"id": "a", "self": {}, "capacity": 9223372036854775808}')
    assert LineCoder(_Line, 1, "").add([big]) is False
    two = [_DECODER.decode(b'{"id": "a", "self": {}}'), _DECODER.decode(b'{"id": "b", "self": {}}')]
    assert LineCoder(_Line, 1, "").add(two) is False
    short = LineCoder(_Line, 3, "")
    assert short.add(two) is True and short.columns() is None  # a line short of the room


def test_line_coder_groups_thousands_of_descriptors_past_its_first_tables():
    """Its descriptor table starts at 64 entries and grows: codes survive every growth."""
    records = [{"id": f"d{i}", "self": {"mdev_type": f"t{i % 3000}"}} for i in range(9000)]
    lines = [_DECODER.decode(_line(r)) for r in records]
    for tag_bits in (32, 0):
        coder = LineCoder(_Line, len(lines), "", tag_bits)
        assert coder.add(lines)
        columns = coder.columns()
        assert columns[4].tolist() == [i % 3000 for i in range(9000)]
        assert [line.id for line in columns[5]] == [f"d{i}" for i in range(3000)]


def test_line_coder_refuses_lines_of_another_type():
    with pytest.raises(TypeError, match="not a _Line"):
        LineCoder(_Line, 1, "").add([{"id": "a"}])


# -- arrow_strings ------------------------------------------------------------------------------
@given(st.lists(st.sampled_from(["", "a", "b", "é", "\u4e00x", "long" * 9]), max_size=10), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_arrow_strings_read_a_column_as_python_does(strings, skip):
    for kind in (pa.string(), pa.large_string()):
        array = pa.array(strings, type=kind).slice(min(skip, len(strings)))  # a slice: offsets not from 0
        expected = array.to_pylist()
        assert arrow_strings(*_string_buffers(array, pa), False) == expected
        unique = arrow_strings(*_string_buffers(array, pa), True)
        assert unique == (None if "" in expected or len(set(expected)) != len(expected) else expected)


def test_arrow_strings_refuse_bytes_that_are_not_utf8():
    array = pa.array([b"ok", b"\xff"], type=pa.binary()).cast(pa.string(), safe=False)
    offsets, data = _string_buffers(array, pa)
    with pytest.raises(UnicodeDecodeError):
        arrow_strings(offsets, data, True)
    assert np.array_equal(offsets, [0, 2, 3])


# -- code_strings and positions_in --------------------------------------------------------------
# Few distinct strings (so that they repeat), of every width CPython stores: ASCII, Latin-1,
# two-byte and four-byte characters, lone surrogates (not UTF-8, still a str), and the empty one.
few_strings = st.sampled_from(["", "a", "b", "ab", "é", "\u4e00", "\U0001f600x", "\ud800", "h" * 40, "h" * 39 + "é"])
any_strings = st.one_of(few_strings, st.text(max_size=12))


def _code_strings(strings: list[str]):
    names = list(dict.fromkeys(["", *strings]))
    position = {name: code for code, name in enumerate(names)}
    return names, [position[s] for s in strings]


def _positions_in(strings: list[str], among: list[str]) -> list[int]:
    position = {s: i for i, s in enumerate(among)}  # a repeated str: its last position
    return [position.get(s, -1) for s in strings]


@given(st.lists(any_strings, max_size=40), st.sampled_from([32, 2, 0]))
@settings(max_examples=300, deadline=None)
def test_code_strings_codes_as_python_numbers_first_appearances(strings, tag_bits):
    names, codes = code_strings(strings, tag_bits)
    assert codes.dtype == np.int64
    assert (names, codes.tolist()) == _code_strings(strings)


@given(st.lists(any_strings, max_size=30), st.lists(any_strings, max_size=30), st.sampled_from([32, 2, 0]))
@settings(max_examples=300, deadline=None)
def test_positions_in_finds_each_string_as_a_python_dict_does(strings, among, tag_bits):
    positions = positions_in(strings, among, tag_bits)
    assert positions.dtype == np.int64
    assert positions.tolist() == _positions_in(strings, among)


def test_code_strings_and_positions_in_past_the_caches_and_with_equal_tags():
    """Thousands of strings: tables far past their first size, probes that run long when every
    tag is equal, and equal strings that are distinct objects (built apart, not shared)."""
    hosts = [f"host-{i % 3000}-\u00e9" for i in range(9000)]
    ids = [f"dev-{i}" for i in range(9000)]
    looked = ["".join(["dev-", str(i)]) for i in range(-50, 9050, 7)]
    for tag_bits in (32, 0):
        names, codes = code_strings(hosts, tag_bits)
        assert (names, codes.tolist()) == _code_strings(hosts)
        assert positions_in(looked, ids, tag_bits).tolist() == _positions_in(looked, ids)


def test_code_strings_and_positions_in_take_any_iterable_and_name_what_is_not_a_str():
    names, codes = code_strings(iter(("b", "b", "")))
    assert (names, codes.tolist()) == (["", "b"], [1, 1, 0])
    assert positions_in(("a", "z"), iter(["z"])).tolist() == [-1, 0]
    with pytest.raises(TypeError, match=r"strings\[1\] is a int, not a str"):
        code_strings(["a", 1])
    with pytest.raises(TypeError, match=r"among\[0\] is a NoneType, not a str"):
        positions_in(["a"], [None])


device_records = st.lists(
    st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "é", "\u4e00", "d" * 30]), "host": st.sampled_from([None, "", "h", "hé", "h2"])}),
    max_size=8,
    unique_by=lambda r: r["id"],
)


@given(device_records, device_records)
@settings(max_examples=100, deadline=None)
def test_device_sets_code_hosts_and_find_twins_as_python_does(source_records, target_records):
    """What ``match`` reads through them: hosts coded per fleet, the sources' hosts in the
    targets' codes (-1: no target there), and each source's twin (the target with its id)."""
    sources = DeviceSet.from_records([{**r, "self": {}} for r in source_records])
    targets = DeviceSet.from_records([{**r, "self": {}} for r in target_records])
    names, codes = sources.host_codes
    assert (names, codes.tolist()) == _code_strings(sources.hosts)
    rules = TargetDevices(targets, np.zeros(len(targets), dtype=np.int64), 1)
    target_names, target_codes = targets.host_codes
    assert rules.host_codes(sources).tolist() == [target_names.index(h) if h in target_names else -1 for h in sources.hosts]
    assert rules.twins(sources).tolist() == [targets.ids.index(i) if i in targets.ids else -1 for i in sources.ids]
