"""The native fleet line reader (fastmatch._lines) against plain-Python twins: reading a
file with its line check, counting its lines, the columns and descriptor codes of its lines
against msgspec decoding them (with hash tags narrowed so that keys share them, and lines of
every shape, valid and not), Arrow string columns, and columns of str coded or looked up in
another."""

import json
import os
import sys

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmatch._lines import (
    LineCoder,
    arrow_strings,
    code_strings,
    code_texts,
    count_lines,
    positions_in,
    positions_in_texts,
    read_file,
    check_texts,
)
from fastmatch.devices import DeviceSet
from fastmatch.files import read_input
from fastmatch.formats.columnar import _string_buffers
from fastmatch.formats.fleet_lines import _DECODER, read_fleet_lines
from fastmatch.policy import Policy
from fastmatch.packed import arrow_offsets
from fastmatch.result import TargetDevices, id_positions


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


# -- count_lines --------------------------------------------------------------------------------
@given(st.lists(st.sampled_from([b"{", b"}", b"\n", b"\r", b" ", b"\t", b"\x0b", b"\x0c", b"a", b"{}", b"}\n{"]), max_size=12))
@settings(max_examples=300, deadline=None)
def test_count_lines_counts_what_python_splits_and_keeps(pieces):
    data = b"".join(pieces)
    assert count_lines(data) == len([line for line in data.split(b"\n") if line and not line.isspace()])


# -- LineCoder ----------------------------------------------------------------------------------
def _coded(data: bytes, tag_bits: int = 32, slice_lines: int | None = None):
    """LineCoder's columns of a file, given a few lines at a time; None where it steps aside
    (or where a line does not decode, which is the same to the fast path)."""
    coder = LineCoder(data, count_lines(data), "", _DECODER.decode, tag_bits)
    ends = [i + 1 for i, byte in enumerate(data) if byte == 10][slice_lines - 1 :: slice_lines] if slice_lines else []
    start = 0
    try:
        for end in [*ends, len(data)]:
            if end > start and coder.add(start, end) < 0:
                return None
            start = max(start, end)
    except ValueError:
        return None
    return coder.columns()


def _by_msgspec(data: bytes):
    """The columns by msgspec decoding every line into a struct (how the fast path read lines
    before it scanned them), grouped by plain Python: None where a line does not decode or the
    columns refuse a line."""
    try:
        lines = [_DECODER.decode(line) for line in data.split(b"\n") if line and not line.isspace()]
    except ValueError:
        return None
    ids = [line.id for line in lines]
    if "" in ids or len(set(ids)) != len(ids) or any(not 0 <= line.capacity < 2**63 for line in lines):
        return None
    keys = [(bytes(line.self_), bytes(line.compatible), line.migration_version, line.migratable) for line in lines]
    number: dict = {}
    groups = [number.setdefault(key, len(number)) for key in keys]
    descriptors = [(s, c, None if v is None else v.encode(), m) for s, c, v, m in number]
    return ids, [line.host or "" for line in lines], [line.vm or "" for line in lines], [line.capacity for line in lines], groups, descriptors


def _same_columns(data: bytes, columns) -> None:
    expected = _by_msgspec(data)
    if columns is None or expected is None:
        assert columns is None and expected is None
        return
    ids, hosts, vms, capacities, groups, descriptors = columns
    assert (ids, hosts, vms, capacities.tolist(), groups.tolist(), descriptors) == expected


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
# How a line is written: compact (scanned where it lies), with spaces, or with every non-ASCII
# character escaped (such lines are decoded by msgspec).
writers = st.sampled_from(
    [msgspec.json.encode, lambda r: json.dumps(r, ensure_ascii=False).encode(), lambda r: json.dumps(r).encode()]
)


@given(records_strategy, st.lists(writers, min_size=1), st.sampled_from([32, 2, 0]), st.integers(1, 5))
@settings(max_examples=300, deadline=None)
def test_line_coder_codes_lines_as_msgspec_decodes_them(records, write, tag_bits, slice_lines):
    # Ids made unique where the draw repeats them, half the time: both outcomes are checked.
    if len(records) % 2:
        records = [{**r, "id": f"{r['id']}{i}"} for i, r in enumerate(records)]
    data = b"\n".join(write[i % len(write)](r) for i, r in enumerate(records))
    _same_columns(data, _coded(data, tag_bits, slice_lines))


# Pieces of fleet lines: each key's valid values (plain, and escaped: msgspec then decodes the
# line), and, now and then, a pair that may be anything: keys escaped or unknown, strings with
# control characters or bytes that are not UTF-8, what msgspec refuses as integers, literals,
# invalid JSON inside an object or a list.
valid_values = {
    b'"host"': [b'"h"', b'"h2"', b'"\xc3\xa9"', b'""', b"null", b'"\\u00e9"'],
    b'"vm"': [b'"v"', b'""', b"null", b'"a\\"b"'],
    b'"self"': [b'{"mdev_type":"x"}', b'{ "mdev_type" : "x" }', b'{"mdev_type":"x\\"}"}', b'{"software_version":"1.0"}', b"{}"],
    b'"compatible"': [b'[{"mdev_type":"x"}]', b'[{"mdev_type":["x","y"]}]', b"[]", b"null"],
    b'"capacity"': [b"0", b"1", b"-0", b"123456789012345678"],
    b'"migration_version"': [b'"1"', b'"\xc3\xbc"', b'"\\u00fc"', b'""', b"null"],
    b'"migratable"': [b"true", b"false"],
}
# What may be anything, key by key: strings with control characters, bytes that are not UTF-8
# or escapes; what msgspec refuses as an integer or takes beyond int64; invalid JSON inside an
# object or a list; nothing at all; and keys escaped or unknown.
strings = [b'"\x01"', b'"\x7f"', b'"\xff"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"\\u0064"', b"1", b"tru", b""]
hostile_values = {
    b'"id"': [*strings, b"null", b'""'],
    b'"host"': strings,
    b'"vm"': strings,
    b'"migration_version"': strings,
    b'"capacity"': [b"-1", b"01", b"1.0", b"1e2", b"-", b"1234567890123456789", b"9223372036854775808", b'"1"', b"null", b"true", b""],
    b'"migratable"': [b"tru", b"1", b"null", b"True", b""],
    b'"self"': [b'{"a":01}', b'{"a":[1,]}', b'{"a":{"b":[{}]}}', b'{"a":"\xff"}', b'{"a":"\\ud800"}', b"{", b"[", b"]", b"1x", b"null", b""],
    b'"compatible"': [b'[{"a":01}]', b"[", b'[{"a":"b"}', b"[]]", b"x", b""],
    b'"i\\u0064"': [b'"z"'],
    b'"x"': [b"1"],
}
spaces = st.sampled_from([b"", b"", b" ", b"\t", b"\r"])


@st.composite
def fleet_lines(draw) -> bytes:
    """A few valid lines, written in every way; then, mostly, one of them changed into what may
    be anything (the others valid, so that the file stands or falls by that line)."""
    lines = []
    for number in range(draw(st.integers(1, 5))):
        keys = draw(st.lists(st.sampled_from(list(valid_values)), unique=True, max_size=4))
        pairs = [(b'"id"', b'"d%d"' % number), (b'"self"', b'{"mdev_type":"t"}')]
        pairs += [(key, draw(st.sampled_from(valid_values[key]))) for key in keys if key != b'"self"']
        lines.append(draw(st.permutations(pairs)))
    changed = draw(st.integers(0, len(lines) - 1))
    change = draw(st.integers(0, 2))
    if change == 1:  # a key (perhaps one the line holds already) with a value that may be anything
        key = draw(st.sampled_from(list(hostile_values)))
        value = draw(st.sampled_from(hostile_values[key]))
        held = [at for at, (k, _) in enumerate(lines[changed]) if k == key]
        if held and draw(st.booleans()):
            lines[changed][held[0]] = (key, value)
        else:
            lines[changed].insert(draw(st.integers(0, len(lines[changed]))), (key, value))
    written = []
    for number, pairs in enumerate(lines):
        space = draw(spaces)
        body = b",".join(key + space + b":" + space + value for key, value in pairs)
        ending = draw(st.sampled_from([b"}", b"} ", b"}\r", b"", b"}}", b"},", b"} x"])) if number == changed and change == 2 else b"}"
        written.append(draw(spaces) + b"{" + space + body + ending)
    return b"\n".join(written) + draw(st.sampled_from([b"", b"\n", b"\n \n"]))


def _as_msgspec_or_aside(data: bytes, tag_bits: int = 32) -> None:
    """Lines the scanner takes give what msgspec gives; the others go to msgspec itself. Where
    msgspec refuses a line for what is inside its ``self`` or ``compatible`` (invalid JSON) or
    its migration version (not UTF-8), the coder may take it: every distinct descriptor is then
    decoded (read_fleet_lines), which refuses it, so the fast path steps aside all the same."""
    columns = _coded(data, tag_bits, 1)
    expected = _by_msgspec(data)
    if expected is None and columns is not None:
        assert not all(map(_decodes, columns[5]))
        assert read_fleet_lines(data, Policy.default()) is None
        return
    _same_columns(data, columns)


@given(fleet_lines(), st.sampled_from([32, 0]))
@settings(max_examples=500, deadline=None)
def test_line_coder_reads_any_line_as_msgspec_does_or_steps_aside(data, tag_bits):
    _as_msgspec_or_aside(data, tag_bits)


@pytest.mark.parametrize("key, value", [(key, value) for key, values in hostile_values.items() for value in values])
@pytest.mark.parametrize("place", ["in place", "again", "first"])
def test_line_coder_reads_every_hostile_value_as_msgspec_does_or_steps_aside(key, value, place):
    """Each value that may be anything, in a line that is otherwise valid (in place of the
    key's value, or the key a second time, after or before the first)."""
    pairs = {b'"id"': b'"a"', b'"host"': b'"h"', b'"vm"': b'"v"', b'"self"': b'{"mdev_type":"t"}', b'"compatible"': b"[]",
             b'"capacity"': b"2", b'"migration_version"': b'"1"', b'"migratable"': b"false"}
    items = [(k, value if k == key and place == "in place" else v) for k, v in pairs.items()]
    if place != "in place" or key not in pairs:
        items.insert(0 if place == "first" else len(items), (key, value))
    line = b"{" + b",".join(k + b":" + v for k, v in items) + b"}"
    _as_msgspec_or_aside(b'{"id":"z","self":{}}\n' + line + b"\n")


def _decodes(descriptor) -> bool:
    raw_self, raw_compatible, version, _ = descriptor
    try:
        msgspec.json.decode(raw_self)
        msgspec.json.decode(raw_compatible or b"[]")
        (version or b"").decode()
    except ValueError:
        return False
    return True


def test_line_coder_refuses_a_capacity_beyond_int64_and_more_lines_than_room():
    for capacity in ("9223372036854775808", "99999999999999999999"):  # decoded by msgspec: past the digits scanned
        data = b'{"id": "a", "self": {}, "capacity": %s}' % capacity.encode()
        assert LineCoder(data, 1, "", _DECODER.decode).add(0, len(data)) == -1
    two = b'{"id": "a", "self": {}}\n{"id": "b", "self": {}}'
    assert LineCoder(two, 1, "", _DECODER.decode).add(0, len(two)) == -1
    short = LineCoder(two, 3, "", _DECODER.decode)
    assert short.add(0, len(two)) == 2 and short.columns() is None  # a line short of the room
    with pytest.raises(ValueError, match="not a range"):
        short.add(0, len(two) + 1)


def test_line_coder_groups_thousands_of_descriptors_past_its_first_tables():
    """Its descriptor table starts at 64 entries and grows: codes survive every growth."""
    data = b"\n".join(b'{"id":"d%d","self":{"mdev_type":"t%d"}}' % (i, i % 3000) for i in range(9000))
    for tag_bits in (32, 0):
        columns = _coded(data, tag_bits)
        assert columns[4].tolist() == [i % 3000 for i in range(9000)]
        assert [parts[0] for parts in columns[5]] == [b'{"mdev_type":"t%d"}' % i for i in range(3000)]


def test_line_coder_shares_the_str_of_a_host_or_vm_repeated_from_the_line_before():
    data = b'{"id":"a","host":"h","vm":"v","self":{}}\n{"id":"b","host":"h","vm":"v","self":{}}\n{"id":"c","host":"h2","self":{}}'
    _, hosts, vms, *_ = _coded(data)
    assert (hosts, vms) == (["h", "h", "h2"], ["v", "v", ""])
    assert hosts[0] is hosts[1] and vms[0] is vms[1]


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


@given(st.lists(st.sampled_from(["", "a", "b", "é", "\u4e00x", "long" * 9, "long" * 9 + "é"]), max_size=10), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_check_texts_tells_what_arrow_strings_finds_without_a_str(strings, skip):
    for kind in (pa.string(), pa.large_string()):
        array = pa.array(strings, type=kind).slice(min(skip, len(strings)))
        assert check_texts(*_string_buffers(array, pa), True) == (arrow_strings(*_string_buffers(array, pa), True) is not None)
        assert check_texts(*_string_buffers(array, pa), False)


def test_check_texts_refuse_bytes_that_are_not_utf8_even_where_the_whole_column_is():
    for texts in ([b"ok", b"\xff"], [b"\xc3", b"\xa9"]):  # the second: "é" cut in two
        offsets, data = _string_buffers(pa.array(texts, type=pa.binary()).cast(pa.string(), safe=False), pa)
        for unique in (True, False):
            with pytest.raises(UnicodeDecodeError):
                check_texts(offsets, data, unique)


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


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6) | few_strings.filter(lambda s: s != "\ud800"), max_size=40))
@settings(max_examples=300, deadline=None)
def test_code_texts_codes_packed_texts_as_code_strings_codes_str(strings):
    names, codes = code_texts(*arrow_offsets(strings))
    assert codes.dtype == np.int64
    assert (names, codes.tolist()) == _code_strings(strings)


def test_code_texts_past_its_first_table():
    hosts = [f"host-{i % 3000}-\u00e9" if i % 7 else "" for i in range(9000)]
    names, codes = code_texts(*arrow_offsets(hosts))
    assert (names, codes.tolist()) == _code_strings(hosts)


@given(st.lists(any_strings, max_size=30), st.lists(any_strings, max_size=30))
@settings(max_examples=300, deadline=None)
def test_positions_in_texts_finds_each_packed_text_as_a_python_dict_does(strings, among):
    """Packed on both sides (lone surrogates, which no Arrow column holds, packed as their own
    bytes), and through id_positions with either side a list of str."""
    expected = _positions_in(strings, among)
    assert positions_in_texts(*arrow_offsets(strings), *arrow_offsets(among)).tolist() == expected
    from fastmatch.packed import Texts

    def texts(listed):
        return Texts(*arrow_offsets(listed))

    valid = all(not any("\ud800" <= c <= "\udfff" for c in s) for s in strings + among)
    if valid:
        for ids, others in [(texts(strings), among), (strings, texts(among)), (texts(strings), texts(among))]:
            assert id_positions(ids, others).tolist() == expected


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
    assert positions_in_texts(*arrow_offsets(looked), *arrow_offsets(ids)).tolist() == _positions_in(looked, ids)


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
