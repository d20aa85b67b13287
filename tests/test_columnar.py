"""Columnar fleets (Parquet, Arrow IPC, Feather): read as JSON Lines records are, in every
accepted shape, with the same validation and located errors; written by ``convert`` and by
``match --format parquet``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastmatch
from fastmatch.cli import main
from fastmatch.formats.columnar import _integers, read_columnar, read_columnar_devices
from fastmatch.generate import write_fleet

DATA = Path(fastmatch.__file__).parent / "data"
POLICY = fastmatch.Policy.default()

RECORDS = [
    {"id": "a", "host": "h1", "self": {"device_api": "vfio-pci", "mdev_type": "i915-GVTg_V5_4", "software_version": "1.2.3",
                                       "pv_mode": ["none", "ppgtt"], "aggregator": 1}},
    {"id": "b", "host": "h2", "capacity": 3,
     "self": {"device_api": "vfio-pci", "mdev_type": "i915-GVTg_V5_2", "software_version": "1.2.7", "pv_mode": ["none"],
              "aggregator": 2},
     "compatible": [{"device_api": "vfio-pci", "mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}", "aggregator": "{val1}/2"}]},
    {"id": "c", "vm": "vm9", "migration_version": "x1", "migratable": False,
     "self": {"device_api": "vfio-pci", "mdev_type": "i915-GVTg_V5_4", "software_version": "1.2.3", "pv_mode": ["none", "ppgtt"],
              "aggregator": 1}},
    {"id": "d", "capacity": 0, "self": {"device_api": "vfio-ccw", "mdev_type": "vfio_ccw-io", "zone": "z1"},
     "compatible": [{"mdev_type": "vfio_ccw-io", "vendor_driver": ["vfio_ccw", ""], "zone": "*"}]},
]


def _same(a: fastmatch.DeviceSet, b: fastmatch.DeviceSet) -> None:
    assert a.ids == b.ids and a.hosts == b.hosts and a.vms == b.vms
    assert np.array_equal(a.capacities, b.capacities)
    assert a.to_records() == b.to_records()
    assert [d.values for d in a.descriptors] == [d.values for d in b.descriptors]
    assert [d.records for d in a.descriptors] == [d.records for d in b.descriptors]
    assert a.attribute_names() == b.attribute_names()


def _json_reading(records) -> fastmatch.DeviceSet:
    return fastmatch.DeviceSet.from_records(records, POLICY)


def _columns(records, self_shape: str, compatible_shape: str) -> pa.Table:
    """``records`` as a table, ``self`` and ``compatible`` in the shapes the format accepts."""
    keys = ["id", "host", "vm", "capacity", "migration_version", "migratable"]
    columns = {key: pa.array([r.get(key) for r in records]) for key in keys}
    selves = [r["self"] for r in records]
    if self_shape == "json":
        columns["self"] = pa.array([json.dumps(s) for s in selves])
    elif self_shape == "struct":
        columns["self"] = pa.array(selves)
    else:  # a map: one value type, so every value as JSON-shaped strings or lists is not possible; strings only
        columns["self"] = pa.array([[(k, str(v)) for k, v in s.items()] for s in selves], type=pa.map_(pa.string(), pa.string()))
    compatible = [r.get("compatible") for r in records]
    if compatible_shape == "json":
        columns["compatible"] = pa.array([json.dumps(c) if c is not None else None for c in compatible], type=pa.string())
    elif compatible_shape == "structs":
        columns["compatible"] = pa.array(compatible)  # a list of structs: a field a record lacks is null
    return pa.table(columns)


def _parquet(tmp_path: Path, table: pa.Table, name: str = "fleet.parquet", **options) -> Path:
    path = tmp_path / name
    pq.write_table(table, path, **options)
    return path


def test_convert_then_load_gives_the_devices_of_every_demo_and_generated_fleet(tmp_path):
    write_fleet(tmp_path, 3000, 3000, 300, seed=5)
    inputs = [DATA / "demo_sources.jsonl", DATA / "demo_targets.jsonl", tmp_path / "sources.jsonl", tmp_path / "targets.jsonl"]
    for path in inputs:
        out = tmp_path / f"{path.stem}.parquet"
        assert main(["convert", str(path), "-o", str(out)]) == 0
        expected = fastmatch.load(path)
        _same(fastmatch.load(out), expected)
        rows, places = read_columnar(out.read_bytes(), str(out), "parquet")
        assert places == list(range(1, len(expected) + 1))
        _same(fastmatch.DeviceSet.from_records(rows, POLICY), expected)
        again = tmp_path / f"{path.stem}.again.parquet"  # from a Parquet fleet, whose ids stay packed
        assert main(["convert", str(out), "-o", str(again)]) == 0
        assert pq.read_table(again).equals(pq.read_table(out))
    assert pq.read_schema(tmp_path / "demo_sources.parquet").field("self").type.num_fields > 0  # a struct, as tools query it


def test_match_from_parquet_fleets_equals_the_json_lines_match(tmp_path):
    write_fleet(tmp_path, 2000, 2000, 200, seed=3)
    # Every third target named as a source is: the same-device rule is at stake.
    sources = [json.loads(line) for line in (tmp_path / "sources.jsonl").read_text().splitlines()]
    targets = [json.loads(line) for line in (tmp_path / "targets.jsonl").read_text().splitlines()]
    for target, source in list(zip(targets, sources))[::3]:
        target["id"] = source["id"]
    (tmp_path / "targets.jsonl").write_text("".join(json.dumps(target) + "\n" for target in targets))
    for side in ("sources", "targets"):
        assert main(["convert", str(tmp_path / f"{side}.jsonl"), "-o", str(tmp_path / f"{side}.parquet")]) == 0
    json_sets = [fastmatch.load(tmp_path / f"{side}.jsonl") for side in ("sources", "targets")]
    parquet_sets = [fastmatch.load(tmp_path / f"{side}.parquet") for side in ("sources", "targets")]
    twins = np.isin(json_sets[0].ids, json_sets[1].ids)
    assert 0 < twins.sum() < len(twins)  # the same-device rule is at stake
    from_json = fastmatch.match(*json_sets)
    # Ids of a Parquet fleet stay packed (fastmatch.packed.Texts): alone, or beside a JSON fleet's str.
    for sources, targets in [parquet_sets, (parquet_sets[0], json_sets[1]), (json_sets[0], parquet_sets[1])]:
        from_parquet = fastmatch.match(sources, targets)
        for a, b in zip(from_json.top_k(5), from_parquet.top_k(5)):
            assert np.array_equal(a, b)
        assert np.array_equal(from_json.counts(), from_parquet.counts())


@pytest.mark.parametrize("self_shape", ["json", "struct", "map"])
@pytest.mark.parametrize("compatible_shape", ["json", "structs"])
def test_every_accepted_shape_reads_as_the_json_records(tmp_path, self_shape, compatible_shape):
    records = RECORDS
    if self_shape == "map":  # a map holds one value type: the same devices with every value a string
        records = [{**r, "self": {k: "+".join(v) if isinstance(v, list) else str(v) for k, v in r["self"].items()}} for r in RECORDS]
    path = _parquet(tmp_path, _columns(records, self_shape, compatible_shape))
    expected = _json_reading(records)
    _same(fastmatch.load(path), expected)
    rows, _ = read_columnar(path.read_bytes(), str(path), "parquet")
    _same(fastmatch.DeviceSet.from_records(rows, POLICY), expected)


def test_the_column_wise_path_takes_the_common_shapes_and_steps_aside_for_the_others(tmp_path):
    taken = _parquet(tmp_path, _columns(RECORDS, "struct", "json"), "taken.parquet")
    assert read_columnar_devices(taken.read_bytes(), "taken", "parquet", POLICY) is not None
    for name, table in {
        "map": _columns([{**r, "self": {k: str(v) for k, v in r["self"].items() if k != "pv_mode"}} for r in RECORDS], "map", "json"),
        "structs": _columns(RECORDS, "json", "structs"),
        "duplicate": _columns(RECORDS + RECORDS[:1], "struct", "json"),
    }.items():
        path = _parquet(tmp_path, table, f"{name}.parquet")
        assert read_columnar_devices(path.read_bytes(), name, "parquet", POLICY) is None, name


def test_grouping_tells_apart_sets_that_a_joined_key_would_confuse(tmp_path):
    """The column-wise path codes a list by its items joined with NUL: items holding NUL make it
    step aside, and the row-wise reader keeps ["a\\u0000b"] and ["a", "b"] apart."""
    records = [
        {"id": "x", "self": {"pv_mode": ["a\x00b"]}},
        {"id": "y", "self": {"pv_mode": ["a", "b"]}},
        {"id": "z", "self": {"pv_mode": []}},
        {"id": "w", "self": {}},
    ]
    path = _parquet(tmp_path, pa.table({"id": ["x", "y", "z", "w"], "self": pa.array([r["self"] for r in records])}))
    devices = fastmatch.load(path)
    _same(devices, _json_reading(records))
    assert devices.descriptor(0).values != devices.descriptor(1).values
    assert read_columnar_devices(path.read_bytes(), "nul", "parquet", POLICY) is None


def test_row_groups_arrow_ipc_file_stream_and_feather_read_alike(tmp_path):
    table = _columns(RECORDS, "struct", "json")
    expected = _json_reading(RECORDS)
    paths = [_parquet(tmp_path, table, "groups.parquet", row_group_size=1)]
    with pa.OSFile(str(tmp_path / "fleet.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    with pa.OSFile(str(tmp_path / "fleet.arrows"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=3)
    feather.write_feather(table, tmp_path / "fleet.feather")
    paths += [tmp_path / "fleet.arrow", tmp_path / "fleet.arrows", tmp_path / "fleet.feather"]
    for path in paths:
        _same(fastmatch.load(path), expected)
    # Told apart by content, not by name.
    renamed = tmp_path / "looks-like.jsonl"
    renamed.write_bytes(paths[0].read_bytes())
    _same(fastmatch.load(renamed), expected)


def _error(tmp_path, capsys, table: pa.Table, *extra: str) -> tuple[int, str]:
    path = _parquet(tmp_path, table)
    status = main(["convert", str(path), "-o", str(tmp_path / "out.parquet"), *extra])
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda r: r[2]["self"].update(software_version="v2+"), "fleet.parquet:3: record 'c': field 'self.software_version': invalid version 'v2+'"),
        (lambda r: r[1].update(capacity=-1), "fleet.parquet:2: record 'b': field 'capacity': expected an integer >= 0, got -1"),
        (lambda r: r[3].update(id="a"), "fleet.parquet:4: record 'a': field 'id': duplicate id 'a'"),
        (lambda r: r[1]["compatible"][0].update(aggregator="{nope}/2"), "fleet.parquet:2: record 'b': field 'compatible[0].aggregator'"),
    ],
)
def test_an_invalid_row_is_one_line_naming_file_row_record_and_field(tmp_path, capsys, change, expected):
    records = json.loads(json.dumps(RECORDS))
    change(records)
    status, err = _error(tmp_path, capsys, _columns(records, "struct", "json"))
    assert status == 2
    assert err.startswith(f"fastmatch: error: {tmp_path / expected}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.parquet").exists()


def test_columns_of_the_wrong_kind_are_located_errors(tmp_path, capsys):
    table = _columns(RECORDS, "json", "json")
    bad_json = table.set_column(table.schema.get_field_index("self"), "self", pa.array(['{"mdev_type": 1', *(["{}"] * 3)]))
    status, err = _error(tmp_path, capsys, bad_json)
    assert status == 2 and err.startswith(f"fastmatch: error: {tmp_path}/fleet.parquet:1: record 'a': field 'self': invalid JSON"), err
    status, err = _error(tmp_path, capsys, table.append_column("colour", pa.array(["red"] * 4)))
    assert status == 2 and "fleet.parquet:1: record 'a': field 'colour': unknown key 'colour'" in err, err
    no_id = table.set_column(0, "id", pa.array([None, "b", "c", "d"], type=pa.string()))
    status, err = _error(tmp_path, capsys, no_id)
    assert status == 2 and "fleet.parquet:1: record #0: field 'id': a device needs a non-empty string id" in err, err


def test_skip_invalid_leaves_out_the_bad_rows_and_says_which(tmp_path, capsys):
    records = json.loads(json.dumps(RECORDS))
    records[1]["self"]["software_version"] = "abc"
    path = _parquet(tmp_path, _columns(records, "struct", "json"))
    rejects = tmp_path / "rejects.jsonl"
    out = tmp_path / "out.parquet"
    assert main(["convert", str(path), "-o", str(out), "--skip-invalid", "--rejects", str(rejects)]) == 0
    assert fastmatch.load(out).ids == ["a", "c", "d"]
    [reject] = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert reject["reason"].startswith(f"{path}:2: record 'b': field 'self.software_version'")
    assert "1 invalid record skipped" in capsys.readouterr().err


def test_a_file_pyarrow_cannot_read_is_one_error_naming_it(tmp_path, capsys):
    good = _parquet(tmp_path, _columns(RECORDS, "struct", "json"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert main(["convert", str(broken), "-o", str(tmp_path / "out.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastmatch: error: {broken}: not a Parquet file that pyarrow can read") and err.count("\n") == 1
    assert main(["convert", str(DATA / "demo_sources.jsonl"), "--input-format", "parquet", "-o", str(tmp_path / "o")]) == 2
    assert "not a Parquet file" in capsys.readouterr().err


def test_match_format_parquet_holds_the_csv_rows(tmp_path, capsys):
    write_fleet(tmp_path, 1500, 1500, 150, seed=9)
    s, t = str(tmp_path / "sources.jsonl"), str(tmp_path / "targets.jsonl")
    assert main(["match", s, t, "--top", "4", "--format", "csv", "--csv-formulas", "-o", str(tmp_path / "c.csv")]) == 0
    assert main(["match", s, t, "--top", "4", "--format", "parquet", "-o", str(tmp_path / "c.parquet")]) == 0
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.column_names == ["source", "rank", "target", "exact", "same_type", "version", "major_distance", "minor_distance"]
    with open(tmp_path / "c.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def cell(value) -> str:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    assert len(rows) == table.num_rows > 0
    assert [{k: cell(v) for k, v in row.items()} for row in table.to_pylist()] == rows


@pytest.mark.parametrize("n", [0, 1, 10, 5000])
@pytest.mark.parametrize("cardinalities", [(), (50, 3, 2), (2**40, 2**30)])
@pytest.mark.parametrize("tag_bits", [32, 2, 0])
@pytest.mark.parametrize("narrow", [False, True])
def test_group_rows_numbers_distinct_rows_by_first_appearance(n, cardinalities, tag_bits, narrow):
    """The columnar reader's grouping (a C table over the rows of codes, grown as groups come;
    hash tags narrowed so that rows share them), against a dict; ``narrow``: the columns whose
    codes fit are int32, as Arrow's dictionary indices are (read as they are, beside int64 ones)."""
    from fastmatch._lines import group_rows

    rng = np.random.default_rng(n)
    columns = [rng.integers(0, min(c, max(n // 4, 1)) if c < 2**20 else c, n) for c in cardinalities]
    if narrow:
        columns = [c.astype(np.int32) if c.size == 0 or c.max() < 2**31 else c for c in columns]
        assert n == 0 or not cardinalities or any(c.dtype == np.int32 for c in columns)
    groups, first = group_rows(columns, n, tag_bits)
    rows = list(zip(*[c.tolist() for c in columns])) if columns else [()] * n
    numbered: dict = {}
    assert groups.tolist() == [numbered.setdefault(row, len(numbered)) for row in rows]
    assert first.tolist() == [rows.index(row) for row in numbered]


@given(
    values=st.lists(st.one_of(st.none(), st.integers(-(2**15), 2**15 - 1)), max_size=40),
    kind=st.sampled_from(["int16", "int32", "int64"]),
    start=st.integers(0, 5),
    null=st.integers(-1, 300),
)
def test_integer_columns_are_read_from_their_buffers_as_arrow_reads_them(values, kind, start, null):
    """``_integers`` (a column's buffers as NumPy, nulls as given) against Arrow's own values,
    on slices too (a row group's column may start inside its buffers)."""
    array = pa.array(values, type=getattr(pa, kind)()).slice(min(start, len(values)))
    expected = [null if value is None else value for value in array.to_pylist()]
    assert _integers(array, pa, null).tolist() == expected


def test_nulls_in_capacity_and_dictionary_columns_read_as_the_row_wise_reader_reads_them(tmp_path):
    """Null capacities (1), null hosts in a dictionary column (""): the column-wise path reads
    the buffers itself, and answers as the row-wise reader does."""
    table = _columns(RECORDS, "struct", "json")
    n = table.num_rows
    capacities = pa.array([None if i % 3 == 0 else 2 for i in range(n)], type=pa.int32())
    hosts = pa.array([None if i % 2 else f"h{i % 5}" for i in range(n)], type=pa.string()).dictionary_encode()
    table = table.set_column(table.column_names.index("capacity"), "capacity", capacities)
    table = table.set_column(table.column_names.index("host"), "host", hosts)
    path = _parquet(tmp_path, table)
    columnwise = read_columnar_devices(path.read_bytes(), str(path), "parquet", POLICY)
    assert columnwise is not None
    rows, _ = read_columnar(path.read_bytes(), str(path), "parquet")
    _same(columnwise, fastmatch.DeviceSet.from_records(rows, POLICY))
    assert columnwise.capacities.tolist() == [1 if i % 3 == 0 else 2 for i in range(n)]
