"""The table-shaped outputs: to_records, to_pandas, to_sparse, and DeviceSet.index_of."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import fastmatch as fm
from fastmatch.errors import ResultTooLargeError
from fastmatch.result import RECORD_COLUMNS

FIELDS = [
    "source", "source_index", "rank", "target", "target_index",
    "exact", "same_type", "version", "major_distance", "minor_distance",
]


def _fleet() -> tuple[list[dict], list[dict]]:
    sources = [
        {"id": "gvt-a", "host": "h1", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.1.0"}},
        {"id": "gvt-b", "host": "h2", "self": {"mdev_type": "i915-GVTg_V5_4"}},  # no version: parts say None
        {"id": "ccw", "self": {"mdev_type": "vfio_ccw-io", "device_api": "vfio-ccw"}},  # nowhere to go
        {"id": "gvt-c", "self": {"mdev_type": "i915-GVTg_V5_2", "software_version": "2.0"}},
    ]
    targets = [
        {"id": "t-far", "host": "h3", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.9.1"}},
        {"id": "t-near", "host": "h3", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.1.20240115"}},
        {"id": "t-same-host", "host": "h1", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.1.0"}},
        {"id": "t-full", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.1.0"}, "capacity": 0},
        {"id": "t-other", "self": {"mdev_type": "i915-GVTg_V5_8", "software_version": "2.1.1"},
         "compatible": [{"mdev_type": "i915-GVTg_V5_{n:int:2,4}"}]},
        {"id": "t-plain", "self": {"mdev_type": "i915-GVTg_V5_4"}},
    ]
    return sources, targets


def rows_of(table: dict[str, np.ndarray]) -> list[tuple]:
    """A table of columns as rows (tuples in column order)."""
    lengths = {len(column) for column in table.values()}
    assert len(lengths) <= 1, "columns of one length"
    return list(zip(*(column.tolist() for column in table.values())))


def _expected_rows(result: fm.MatchResult, k: int) -> list[tuple]:
    """The table built one candidate at a time from top_k and score_parts."""
    indices, scores = result.top_k(k)
    parts = result.score_parts(np.arange(result.shape[0])[:, None], indices, scores)
    rows = []
    for i in range(result.shape[0]):
        for c in range(indices.shape[1]):
            j = int(indices[i, c])
            if j < 0:
                continue
            version = parts.version[i, c]
            rows.append((
                result.sources.ids[i], i, c + 1, result.targets.ids[j], j,
                bool(parts.exact[i, c]), bool(parts.same_type[i, c]),
                None if version is None else version.canonical,
                int(parts.major_distance[i, c]), int(parts.minor_distance[i, c]),
            ))
    return rows


@pytest.mark.parametrize("prefer", ["closest", "newest"])
@pytest.mark.parametrize("k", [0, 1, 3, 10])
def test_to_records_holds_top_k_and_its_score_parts(implementation, prefer, k):
    sources, targets = _fleet()
    result = fm.match(sources, targets, fm.Policy.from_dict({"prefer": prefer}), workers=1)
    records = result.to_records(k)
    assert list(records) == FIELDS
    assert {name: column.dtype for name, column in records.items()} == RECORD_COLUMNS
    assert all(column.ndim == 1 for column in records.values())
    assert rows_of(records) == _expected_rows(result, k)
    assert len(records["rank"]) == int((result.top_k(k)[0] >= 0).sum())


def test_to_records_reads_as_the_ranking_says():
    sources, targets = _fleet()
    records = fm.match(sources, targets, workers=1).to_records(10)
    by_source: dict[str, list[tuple]] = {}
    for row in rows_of(records):
        by_source.setdefault(row[0], []).append(row[2:])
    # Same major and minor first (the date-stamped patch is the higher one), then one minor away,
    # then another type that the target's record accepts; the target on the source's own host and
    # the one with capacity 0 are not candidates, nor the one without a version (one-sided).
    assert [(rank, target, same_type, version, d_major, d_minor) for rank, target, _, _, same_type, version, d_major, d_minor in by_source["gvt-a"]] == [
        (1, "t-near", True, "2.1.20240115", 0, 0),
        (2, "t-far", True, "2.9.1", 0, 8),
        (3, "t-other", False, "2.1.1", 0, 0),
    ]
    assert by_source["gvt-b"] == [(1, "t-plain", 5, True, True, None, 0, 0)]  # neither has a version
    assert "ccw" not in by_source  # no candidate, no row: stranded() lists it


def test_distances_are_exact_past_2_to_the_53():
    huge = 2**62 + 12345
    sources = [{"id": "s", "self": {"software_version": f"1.{huge}"}}]
    targets = [{"id": "t", "self": {"software_version": f"1.{huge + 7}"}}, {"id": "u", "self": {"software_version": f"{huge}.0"}}]
    policy = fm.Policy.from_dict({"attributes": {"software_version": {"rule": "ignore"}}})
    records = fm.match(sources, targets, policy, workers=1).to_records(2)
    assert records["major_distance"].dtype == np.uint64
    shown = {name: records[name] for name in ("target", "major_distance", "minor_distance")}
    assert rows_of(shown) == [("t", 0, 7), ("u", huge - 1, huge)]


def test_to_pandas_has_the_records_columns_and_missing_distances():
    pandas = pytest.importorskip("pandas")
    sources, targets = _fleet()
    for prefer in ("closest", "newest"):
        result = fm.match(sources, targets, fm.Policy.from_dict({"prefer": prefer}), workers=1)
        records, frame = result.to_records(10), result.to_pandas(10)
        assert isinstance(frame, pandas.DataFrame)
        assert frame.columns.tolist() == FIELDS
        assert len(frame) == len(records["rank"])
        for name in ("source", "target", "source_index", "rank", "target_index", "exact", "same_type"):
            assert frame[name].tolist() == records[name].tolist(), name
        has_version = np.not_equal(records["version"], None)
        assert np.array_equal(frame["version"].isna().to_numpy(), ~has_version)
        assert frame["version"][has_version].tolist() == records["version"][has_version].tolist()
        for name in ("major_distance", "minor_distance"):
            assert str(frame[name].dtype) == "UInt64"
            missing = frame[name].isna().to_numpy()
            if prefer == "closest":
                assert np.array_equal(missing, ~has_version)
                assert frame[name][~missing].tolist() == records[name][~missing].tolist()
            else:
                assert missing.all()


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch):
    result = fm.match(*_fleet(), workers=1)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(fm.FastmatchError, match=r"^to_pandas\(\) needs pandas: pip install 'fastmatch\[pandas\]'$"):
        result.to_pandas(3)


def test_to_records_is_refused_above_the_memory_limit():
    sources = [{"id": f"s{k}", "self": {"mdev_type": "a"}} for k in range(30)]
    result = fm.match(sources, sources, memory_limit=5000, workers=1)  # top_k(5) fits, its table does not
    with pytest.raises(ResultTooLargeError, match=r"to_records\(5\) \(150 candidates\)"):
        result.to_records(5)
    assert len(result.to_records(1)["rank"]) == 30


# -- to_sparse -------------------------------------------------------------------------------
def test_to_sparse_keeps_a_compatible_pair_that_scores_0(implementation):
    pytest.importorskip("scipy")
    sources = [{"id": "s", "self": {"mdev_type": "A"}}]
    targets = [
        {"id": "scores-0", "self": {"mdev_type": "B"}, "compatible": [{"mdev_type": "A"}]},  # another type, no version
        {"id": "incompatible", "self": {"mdev_type": "C"}},
        {"id": "same", "self": {"mdev_type": "A"}},
    ]
    result = fm.match(sources, targets, workers=1)
    assert result.scores[0].tolist()[:2] == [0, -1]
    pairs = result.to_sparse()
    pairs.eliminate_zeros()
    assert pairs.indices.tolist() == [0, 2]
    assert pairs.toarray()[0].tolist() == [1, 0, int(result.scores[0, 2]) + 1]
    assert np.array_equal(pairs.toarray() > 0, result.compatible)


# -- index_of --------------------------------------------------------------------------------
def test_index_of_finds_each_device():
    sources, _ = _fleet()
    devices = fm.DeviceSet.from_records(sources)
    assert [devices.index_of(record["id"]) for record in sources] == list(range(len(sources)))


def test_index_of_an_unknown_id_names_it():
    devices = fm.DeviceSet.from_records(_fleet()[0])
    with pytest.raises(fm.UnknownIdError) as info:
        devices.index_of("gvt-z")
    assert str(info.value) == "no device has id 'gvt-z' (among 4 devices)"
    assert isinstance(info.value, KeyError) and isinstance(info.value, fm.FastmatchError)
    with pytest.raises(TypeError, match="device_id must be a str, got int"):
        devices.index_of(0)  # type: ignore[arg-type]


def test_to_records_is_the_same_from_the_kernel_and_the_reference(monkeypatch):
    """Equal versions spelled apart share a kernel class but not a reference device: the
    table shows each in its one canonical spelling, so both implementations agree."""
    sources, targets = _fleet()
    targets += [
        {"id": "t-short", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.1"}},
        {"id": "t-build", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "v2.1.0+b7"}},
    ]
    tables = {}
    for name in ("native", "python"):
        monkeypatch.setenv("FASTMATCH_IMPLEMENTATION", name)
        tables[name] = rows_of(fm.match(sources, targets, workers=1).to_records(10))
    assert tables["native"] == tables["python"]
    assert {row[3]: row[7] for row in tables["native"]}["t-build"] == "2.1.0"


@pytest.mark.parametrize("n, m", [(0, 2), (2, 0), (0, 0)])
def test_empty_sides_give_empty_tables_with_every_column(implementation, n, m):
    sources = [{"id": f"s{i}", "self": {"mdev_type": "A"}} for i in range(n)]
    targets = [{"id": f"t{j}", "self": {"mdev_type": "A"}} for j in range(m)]
    result = fm.match(sources, targets, workers=1)
    records = result.to_records(3)
    assert list(records) == FIELDS and all(column.shape == (0,) for column in records.values())
    pytest.importorskip("pandas")
    frame = result.to_pandas(3)
    assert frame.shape == (0, len(FIELDS)) and frame.columns.tolist() == FIELDS
