"""The public API: empty inputs, explain, reason_names, check."""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch as fm

MDEV_TYPE, SOFTWARE_VERSION, PV_MODE, AGGREGATOR = 1 << 1, 1 << 4, 1 << 5, 1 << 6
SAME_DEVICE, SAME_HOST, NOT_MIGRATABLE, OPAQUE, NO_RECORD = (1 << b for b in (63, 62, 61, 60, 59))
EXACT, SAME_TYPE, HAS_VERSION = 1 << 62, 1 << 61, 1 << 60


def devices(n, prefix):
    return [{"id": f"{prefix}{i}", "self": {"mdev_type": "A"}} for i in range(n)]


def test_public_names():
    for name in ("Policy", "DeviceSet", "MatchResult", "load", "match", "check", "FastmatchError", "PolicyError", "InputError", "TemplateError"):
        assert hasattr(fm, name)
    assert issubclass(fm.PolicyError, fm.FastmatchError)
    assert issubclass(fm.InputError, fm.FastmatchError)
    assert issubclass(fm.TemplateError, fm.InputError)


# -- empty inputs ----------------------------------------------------------------------------
@pytest.mark.parametrize("n, m", [(0, 3), (3, 0), (0, 0)])
def test_empty_inputs_give_correctly_shaped_arrays(implementation, n, m):
    result = fm.match(devices(n, "s"), devices(m, "t"), workers=1)
    assert result.compatible.shape == result.scores.shape == result.reasons.shape == (n, m)
    assert result.compatible.dtype == np.bool_
    assert result.scores.dtype == np.int64
    assert result.reasons.dtype == np.uint64
    for k in (0, 1, 4):
        indices, scores = result.top_k(k)
        assert indices.shape == scores.shape == (n, k)
        assert indices.dtype == scores.dtype == np.int64
        assert (indices == -1).all() and (scores == -1).all()


def test_empty_device_sets(implementation, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    none = fm.load(empty)
    some = fm.DeviceSet.from_records(devices(2, "t"))
    result = fm.match(none, some, workers=1)
    assert result.scores.shape == (0, 2)
    result = fm.match(some, none, workers=1)
    assert result.scores.shape == (2, 0)
    assert result.top_k(3)[0].tolist() == [[-1, -1, -1], [-1, -1, -1]]


def test_match_accepts_device_sets_and_record_lists(implementation):
    records = [{"id": "s", "self": {"mdev_type": "A"}}]
    targets = [{"id": "t", "self": {"mdev_type": "A"}}]
    a = fm.match(records, targets, workers=1)
    b = fm.match(fm.DeviceSet.from_records(records), fm.DeviceSet.from_records(targets), workers=1)
    assert a.scores.tolist() == b.scores.tolist() == [[EXACT | SAME_TYPE]]


def test_match_uses_the_sources_policy_by_default(implementation):
    p = fm.Policy.from_dict({"attributes": {"mdev_type": {"rule": "ignore"}}})
    sources = fm.DeviceSet.from_records([{"id": "s", "self": {"mdev_type": "A"}}], p)
    targets = [{"id": "t", "self": {"mdev_type": "B"}}]
    assert fm.match(sources, targets, workers=1).compatible.tolist() == [[True]]
    assert fm.match(sources, targets, fm.Policy.default(), workers=1).compatible.tolist() == [[False]]


def test_results_do_not_depend_on_workers_or_block(implementation):
    sources = [{"id": f"s{i}", "self": {"mdev_type": "AB"[i % 2], "software_version": f"1.{i % 3}"}} for i in range(7)]
    targets = [{"id": f"t{j}", "self": {"mdev_type": "AB"[j % 2], "software_version": f"1.{j % 4}.{j}"}} for j in range(9)]
    base = fm.match(sources, targets, workers=1)
    for kwargs in ({"workers": 2}, {"workers": 1, "block": 1}, {"workers": 2, "block": 3}):
        other = fm.match(sources, targets, **kwargs)
        assert np.array_equal(base.scores, other.scores)
        assert np.array_equal(base.reasons, other.reasons)
        assert np.array_equal(base.top_k(4)[0], other.top_k(4)[0])


# -- reason_names and explain ---------------------------------------------------------------
def test_reason_names(implementation):
    sources = [{"id": "s", "host": "h", "self": {"mdev_type": "A", "aggregator": 1}, "migration_version": "x"}]
    targets = [
        {"id": "t0", "self": {"mdev_type": "A", "aggregator": 1}, "migration_version": "x"},
        {"id": "t1", "host": "h", "self": {"mdev_type": "B", "aggregator": 2}, "migratable": False},
    ]
    result = fm.match(sources, targets, workers=1)
    assert result.reason_names(0, 0) == []
    names = result.reason_names(0, 1)
    assert names[:2] == ["mdev_type", "aggregator"]
    assert sorted(names[2:]) == sorted(["SAME_HOST", "NOT_MIGRATABLE", "OPAQUE"])


def test_explain_compatible_pair(implementation):
    result = fm.match([{"id": "gpu-1", "self": {"mdev_type": "A"}}], [{"id": "gpu-2", "self": {"mdev_type": "A"}}], workers=1)
    text = result.explain(0, 0)
    assert text.splitlines()[0] == "gpu-1 -> gpu-2: compatible"
    assert "  score: identical descriptors, no version to compare" in text.splitlines()
    assert "  rank 1 of the source's 1 available candidate" in text.splitlines()


def test_explain_names_failing_rules_with_both_values(implementation):
    s = {"id": "s", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "2.1.1", "pv_mode": "none+ppgtt"}}
    t = {"id": "t", "self": {"mdev_type": "i915-GVTg_V5_8", "software_version": "2.0.1", "pv_mode": "none"}}
    text = fm.match([s], [t], workers=1).explain(0, 0)
    lines = text.splitlines()
    assert lines[0] == "s -> t: NOT compatible"
    mdev = next(line for line in lines if "mdev_type" in line)
    assert "i915-GVTg_V5_4" in mdev and "i915-GVTg_V5_8" in mdev
    version = next(line for line in lines if "software_version" in line)
    assert "2.1.1" in version and "2.0.1" in version
    pv = next(line for line in lines if "pv_mode" in line)
    assert "none+ppgtt" in pv and "none" in pv


def test_explain_names_the_closest_record_and_its_failing_field(implementation):
    t = {
        "id": "t",
        "self": {"mdev_type": "i915-GVTg_V5_2"},
        "compatible": [
            {"mdev_type": "i915-GVTg_V5_8", "aggregator": 4},
            {"mdev_type": "i915-GVTg_V5_{v:int:2,4}", "aggregator": "{v}/2"},
        ],
    }
    s = {"id": "s", "self": {"mdev_type": "i915-GVTg_V5_4", "aggregator": 3}}
    result = fm.match([s], [t], workers=1)
    assert int(result.reasons[0, 0]) == NO_RECORD
    text = result.explain(0, 0)
    assert "record #1" in text
    assert "came closest" in text
    field = next(line for line in text.splitlines() if "aggregator" in line)
    assert "2" in field and "3" in field
    assert not any("mdev_type" in line for line in text.splitlines()[1:])


def test_explain_fixed_reasons(implementation):
    s = {"id": "x", "host": "h", "self": {}, "migration_version": "gvt-1", "migratable": False}
    t = {"id": "x", "host": "h", "self": {}, "migration_version": "gvt-2"}
    text = fm.match([s], [t], workers=1).explain(0, 0)
    assert "same device" in text
    assert "same host" in text
    assert "migratable" in text
    opaque = next(line for line in text.splitlines() if "opaque" in line)
    assert "gvt-1" in opaque and "gvt-2" in opaque


def test_explain_reports_dynamic_attributes(implementation):
    p = fm.Policy.from_dict({"attributes": {"aggregator": {"rule": "dynamic"}}})
    result = fm.match([{"id": "s", "self": {"aggregator": 4}}], [{"id": "t", "self": {"aggregator": 1}}], p, workers=1)
    assert result.compatible.tolist() == [[True]]
    line = next(line for line in result.explain(0, 0).splitlines() if "aggregator" in line)
    assert "4" in line and "dynamic" in line


def test_explain_out_of_range(implementation):
    result = fm.match(devices(1, "s"), devices(1, "t"), workers=1)
    with pytest.raises(IndexError):
        result.explain(1, 0)
    with pytest.raises(IndexError):
        result.reason_names(0, 5)


# -- check ----------------------------------------------------------------------------------
def test_check_compatible_pair(implementation):
    r = fm.check({"self": {"mdev_type": "A", "software_version": "1.0"}}, {"self": {"mdev_type": "A", "software_version": "1.2.3"}})
    assert r.compatible is True and bool(r)
    assert int(r.reasons) == 0 and list(r.reasons) == [] and r.reasons == 0
    # The one target is the closest of its fleet: the version part ranks nothing below it.
    assert r.score == SAME_TYPE | HAS_VERSION
    assert r.explanation.splitlines()[0].endswith("compatible")


def test_check_incompatible_pair(implementation):
    r = fm.check(
        {"self": {"mdev_type": "A", "software_version": "1.2", "pv_mode": "none+ppgtt"}},
        {"self": {"mdev_type": "A", "software_version": "1.1", "pv_mode": "none"}},
    )
    assert r.compatible is False and not r
    assert r.reasons == SOFTWARE_VERSION | PV_MODE
    assert isinstance(r.reasons, int)
    assert "pv_mode" in r.reasons and "software_version" in r.reasons and "mdev_type" not in r.reasons
    assert list(r.reasons) == ["software_version", "pv_mode"]
    assert r.score == -1
    assert "NOT compatible" in r.explanation


def test_check_matches_match(implementation):
    s = {"id": "a", "self": {"mdev_type": "A", "aggregator": 1}, "migration_version": "m"}
    t = {"id": "b", "self": {"mdev_type": "A", "aggregator": 2}, "compatible": [{"aggregator": [1, 2]}], "migration_version": "m"}
    r = fm.check(s, t)
    result = fm.match([s], [t], workers=1)
    assert int(r.reasons) == int(result.reasons[0, 0]) == 0
    assert r.score == int(result.scores[0, 0]) == SAME_TYPE
    assert r.explanation == result.explain(0, 0)


def test_check_fixed_reason_names(implementation):
    r = fm.check({"self": {}, "migratable": False}, {"self": {}, "compatible": [{"mdev_type": "A"}]})
    assert r.reasons == NOT_MIGRATABLE | NO_RECORD
    assert sorted(r.reasons) == ["NOT_MIGRATABLE", "NO_RECORD"]
    assert "NO_RECORD" in r.reasons


def test_check_with_a_policy(implementation):
    p = fm.Policy.from_dict({"opaque": "required"})
    assert fm.check({"self": {}}, {"self": {}}, p).reasons == OPAQUE
    assert fm.check({"self": {}}, {"self": {}}).reasons == 0


def test_check_invalid_record_is_an_input_error(implementation):
    with pytest.raises(fm.InputError) as info:
        fm.check({"self": {"aggregator": "two"}}, {"self": {}})
    assert "field 'self.aggregator'" in str(info.value)
    assert "'two'" in str(info.value)
