"""The synthetic fleet generator behind ``fastmatch generate`` (fastmatch.generate)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastmatch as fm
from fastmatch.generate import SOURCES_FILE, TARGETS_FILE, generate_lines, generate_records, write_fleet

DESCRIPTOR_KEYS = ("self", "compatible", "migratable", "migration_version")


def descriptor_key(record: dict) -> str:
    return json.dumps({k: record.get(k) for k in DESCRIPTOR_KEYS}, sort_keys=True)


def read_records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_seed_same_bytes(tmp_path):
    a = write_fleet(tmp_path / "a", 700, 900, 60, seed=11)
    b = write_fleet(tmp_path / "b", 700, 900, 60, seed=11)
    c = write_fleet(tmp_path / "c", 700, 900, 60, seed=12)
    for x, y, z in zip(a, b, c):
        assert x.read_bytes() == y.read_bytes()
        assert x.read_bytes() != z.read_bytes()


def test_paths_and_sizes(tmp_path):
    sources, targets = write_fleet(tmp_path / "new" / "dir", 1234, 567, 50, seed=1)
    assert (sources, targets) == (tmp_path / "new" / "dir" / SOURCES_FILE, tmp_path / "new" / "dir" / TARGETS_FILE)
    assert sources.read_bytes().count(b"\n") == 1234
    assert targets.read_bytes().count(b"\n") == 567
    assert not list((tmp_path / "new" / "dir").glob("*.partial"))


def test_a_side_does_not_depend_on_the_other_sides_size(tmp_path):
    small = write_fleet(tmp_path / "small", 300, 10, 40, seed=3)
    large = write_fleet(tmp_path / "large", 300, 2000, 40, seed=3)
    assert small[0].read_bytes() == large[0].read_bytes()


@pytest.mark.parametrize("n, distinct", [(2000, 1), (2000, 7), (2000, 150), (500, 499)])
def test_the_distinct_bound_holds(n, distinct):
    for side in ("sources", "targets"):
        records = list(generate_records(side, n, distinct, seed=5))
        assert len(records) == n
        used = {descriptor_key(r) for r in records}
        assert len(used) <= distinct
        if distinct >= 150:
            assert len(used) >= distinct // 2  # the pool is used, not just its head


def test_distinct_at_least_the_count_means_no_two_alike():
    for side in ("sources", "targets"):
        records = list(generate_records(side, 800, 800, seed=2))
        assert len({descriptor_key(r) for r in records}) == 800
        records = list(generate_records(side, 300, 10_000, seed=2))
        assert len({descriptor_key(r) for r in records}) == 300


def test_files_load_and_descriptors_are_classes(tmp_path):
    s, t = write_fleet(tmp_path, 1500, 1500, 1500, seed=4)
    sources, targets = fm.load(s), fm.load(t)
    assert len(sources) == len(targets) == 1500
    assert len(sources.descriptors) == len(targets.descriptors) == 1500
    ids = set(sources.ids) | set(targets.ids)
    assert len(ids) == 3000  # unique within each side, and no source is also a target
    # No two descriptors collapse once parsed either: the dense benchmark relies on it.
    from fastmatch.intern import intern

    interned = intern(sources, targets, fm.Policy.default())
    assert interned.sources.n_classes == interned.targets.n_classes == 1500
    with_records = interned.targets.record_set > 0
    assert 0.25 < with_records.mean() < 0.42  # about a third of the targets carry COMPATIBLE records


def test_a_realistic_fleet(tmp_path):
    s, t = write_fleet(tmp_path, 1500, 3000, 200, seed=8)
    sources, targets = fm.load(s), fm.load(t)
    records = read_records(t)
    kinds = {r["self"]["device_api"] for r in records}
    assert kinds == {"vfio-pci", "vfio-ccw", "vfio-ap"}
    assert any("{v:int:1,2,4,8}" in json.dumps(r.get("compatible")) for r in records)
    assert any(r.get("migration_version") for r in records)
    assert any(r["capacity"] == 0 for r in records) and max(r["capacity"] for r in records) > 1
    hosts = np.unique(targets.hosts, return_counts=True)[1]
    assert hosts.max() <= 16 and np.median(hosts) >= 4
    result = fm.match(sources, targets, workers=1)
    compatible = result.compatible
    assert 0.005 < compatible.mean() < 0.5  # a healthy mix of compatible and incompatible pairs
    stranded = ~(compatible & (targets.capacities > 0)).any(axis=1)
    assert 0 < stranded.mean() < 0.3  # some sources have nowhere to go, but a minority


def test_record_fractions():
    def share(side, **kwargs):
        records = list(generate_records(side, 600, 600, seed=9, **kwargs))
        return sum(bool(r.get("compatible")) for r in records) / len(records)

    assert share("sources") == 0 and 0.25 < share("targets") < 0.42
    assert 0.4 < share("sources", record_fraction=0.5) < 0.6
    assert share("targets", record_fraction=0.0) == 0 and share("targets", record_fraction=1.0) == 1


@pytest.mark.parametrize("n", [0, 1, 5, 17, 1000])
def test_hosts_hold_4_to_16_devices_in_slots_from_0(n):
    records = list(generate_records("targets", n, 50, seed=n))
    by_host: dict[str, list[str]] = {}
    for r in records:
        by_host.setdefault(r["host"], []).append(r["id"].split("/")[1])
    sizes = [len(parents) for parents in by_host.values()]
    assert sum(sizes) == n and all(1 <= size <= 16 for size in sizes)
    assert all(4 <= size for size in sizes[:-1])  # only the last host may be cut short
    for parents in by_host.values():
        assert len(set(parents)) == len(parents)
        assert parents[0] in ("0000:17:00.0", "0.0.0100", "00.0047")  # slot 0


def test_lines_come_in_chunks_and_match_the_records():
    text = "".join(generate_lines("targets", 250, 30, seed=6, chunk=64))
    assert [json.loads(line) for line in text.splitlines()] == list(generate_records("targets", 250, 30, seed=6))
    assert list(generate_lines("sources", 0, 5)) == []


@pytest.mark.parametrize(
    "args",
    [("hosts", 10, 5, 0), ("sources", -1, 5, 0), ("sources", 10, 0, 0), ("sources", 10, 5, -2), ("targets", 1.5, 5, 0)],
)
def test_bad_arguments_are_errors(args):
    with pytest.raises(fm.FastmatchError):
        list(generate_lines(*args))
    with pytest.raises(fm.FastmatchError):
        list(generate_lines("targets", 10, 5, record_fraction=1.5))
