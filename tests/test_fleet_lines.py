"""The fast JSON Lines path reads exactly what the careful reader reads, or steps aside."""

import json
from pathlib import Path

import numpy as np
import pytest

import fastmatch
from fastmatch.formats.fleet_lines import read_fleet_lines
from fastmatch.policy import Policy

DATA = Path(fastmatch.__file__).parent / "data"


def _careful(path: Path, policy: Policy) -> fastmatch.DeviceSet:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return fastmatch.DeviceSet.from_records(records, policy)


def _same(a: fastmatch.DeviceSet, b: fastmatch.DeviceSet) -> None:
    assert a.ids == b.ids and a.hosts == b.hosts and a.vms == b.vms
    assert np.array_equal(a.capacities, b.capacities)
    assert a.to_records() == b.to_records()
    assert [d.values for d in a.descriptors] == [d.values for d in b.descriptors]
    assert a.attribute_names() == b.attribute_names()


@pytest.mark.parametrize("name", ["demo_sources.jsonl", "demo_targets.jsonl"])
def test_fast_path_reads_the_demo_fleet_like_the_careful_reader(name):
    path = DATA / name
    fast = read_fleet_lines(path.read_bytes(), Policy.default())
    assert fast is not None
    _same(fast, _careful(path, Policy.default()))
    _same(fastmatch.load(path), fast)


@pytest.mark.parametrize(
    "line",
    [
        '{"id": "a", "self": {}, "capacity": true}',
        '{"id": "a", "self": {}, "capacity": -1}',
        '{"id": "a", "self": {}, "extra": 1}',
        '{"id": "", "self": {}}',
        '{"id": 7, "self": {}}',
        '{"id": "a", "self": {"software_version": "v2+"}}',
        '{"id": "a", "self": {"aggregator": 123456789012345678901234567890}}',
        '{"id": "a", "self": {}, "compatible": [{"aggregator": "{x}"}]}',
        '{"id": "a", "self": []}',
        '{"id": "a"}',
    ],
)
def test_fast_path_steps_aside_on_bad_records_and_the_error_names_the_line(tmp_path, line):
    path = tmp_path / "fleet.jsonl"
    path.write_text('{"id": "ok", "self": {"mdev_type": "x"}}\n' + line + "\n")
    assert read_fleet_lines(path.read_bytes(), Policy.default()) is None
    with pytest.raises(fastmatch.FastmatchError) as error:
        fastmatch.load(path)
    assert str(error.value).startswith(f"{path}:2:")


def test_duplicate_ids_are_reported_by_line(tmp_path):
    path = tmp_path / "fleet.jsonl"
    path.write_text('{"id": "a", "self": {}}\n\n{"id": "a", "self": {}}\n')
    with pytest.raises(fastmatch.FastmatchError, match=rf"^{path}:3: .*duplicate id 'a'"):
        fastmatch.load(path)
