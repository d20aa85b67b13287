"""The upstream discussion's examples (SPEC section 1 and shared/seed/).

tests/data/seed_gvt.json is the seed's JSON example with its syntax slips
(missing and trailing commas, the trailing "...") corrected; nothing else changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fastmatch as fm
from scores import EXACT, SAME_TYPE, assert_flags, assert_scores, closest

DATA = Path(__file__).parent / "data"
SEED = DATA / "seed_gvt.json"

DEVICE_API, MDEV_TYPE, VENDOR_DRIVER, DEVICE_ID, SOFTWARE_VERSION, PV_MODE, AGGREGATOR = (1 << i for i in range(7))
NO_RECORD = 1 << 59


# -- the seed's JSON example ----------------------------------------------------------------
def test_seed_json_loads_as_one_device_named_after_the_file():
    ds = fm.load(SEED)
    assert len(ds) == 1
    assert ds.ids == ["seed_gvt"]
    record = ds.to_records()[0]
    assert record["self"] == {
        "device_id": "8086591d",
        "vendor_driver": "i915",
        "software_version": "v1",
        "mdev_type": "i915-GVTg_V5_2",
        "aggregator": "1",
        "pv_mode": "none",
    }
    assert [r["mdev_type"] for r in record["compatible"]] == ["i915-GVTg_V5_2", "i915-GVTg_V5_4", "i915-GVTg_V5_4"]
    assert record["compatible"][2]["pv_mode"] == "none, ppgtt, context"
    values = ds.descriptor(0).values
    assert values["aggregator"] == 1
    assert values["pv_mode"] == frozenset({"none"})
    assert str(values["software_version"]) == "v1"


def test_the_uncorrected_seed_json_is_an_error_naming_the_line(tmp_path):
    # As posted: no comma after "aggregator" : "1" (line 17 of this copy), so the parser stops on line 18;
    # and a trailing comma after "pv-mode" : "none".
    broken = SEED.read_text().replace('"aggregator" : "1",\n      "pv-mode" : "none"\n    },', '"aggregator" : "1"\n      "pv-mode" : "none",\n    },')
    assert broken != SEED.read_text()
    path = tmp_path / "seed.json"
    path.write_text(broken)
    with pytest.raises(fm.InputError) as info:
        fm.load(path)
    assert str(info.value).startswith(f"{path}:18: invalid JSON: Expecting ',' delimiter")
    # The trailing comma alone is also named where it is.
    path.write_text(SEED.read_text().replace('"pv-mode" : "none, ppgtt, context"', '"pv-mode" : "none, ppgtt, context",'))
    with pytest.raises(fm.InputError) as info:
        fm.load(path)
    # Line 32 ends with the stray comma; the parser meets the closing brace on line 33.
    assert str(info.value).startswith(f"{path}:33: invalid JSON: Expecting property name")


def seed_sources(*selves):
    return [{"id": f"src{i}", "self": s} for i, s in enumerate(selves)]


def gvt(mdev_type, aggregator, version, pv_mode, **extra):
    return {"pciid": "8086591d", "driver": "i915", "gvt-version": version, "mdev_type": mdev_type, "aggregator": aggregator, "pv-mode": pv_mode, **extra}


def test_seed_device_as_a_target(implementation):
    target = fm.load(SEED)
    sources = seed_sources(
        gvt("i915-GVTg_V5_2", "1", "v1", "none"),  # record 0, and identical
        gvt("i915-GVTg_V5_4", "2", "v1", "none"),  # record 1
        gvt("i915-GVTg_V5_4", "2", "v2", "none+ppgtt"),  # record 2: a subset of none, ppgtt, context
        gvt("i915-GVTg_V5_4", "2", "v2", "none, ppgtt, context"),  # record 2
        gvt("i915-GVTg_V5_4", "2", "v1", "none+ppgtt"),  # v1 records accept only pv-mode none
        gvt("i915-GVTg_V5_4", "4", "v1", "none"),  # no record has aggregator 4
        gvt("i915-GVTg_V5_8", "4", "v1", "none"),
        gvt("i915-GVTg_V5_2", 1, "1.0", "none"),  # typed: 1.0 is v1, 1 is "1"
        gvt("i915-GVTg_V5_2", "1", "1.1", "none"),  # the records name v1 exactly
        gvt("i915-GVTg_V5_4", "2", "v2", "none+ppgtt+context+x"),
        {**gvt("i915-GVTg_V5_2", "1", "v1", "none"), "pciid": "80863e92"},
    )
    result = fm.match(fm.DeviceSet.from_records(sources), target, workers=1)
    assert result.reasons[:, 0].tolist() == [0, 0, 0, 0, NO_RECORD, NO_RECORD, NO_RECORD, 0, NO_RECORD, NO_RECORD, NO_RECORD]
    assert_flags(
        result.scores[:4, 0], [EXACT | SAME_TYPE | closest(0, 0, 0), closest(0, 0, 0), closest(1, 0, 0), closest(1, 0, 0)]
    )
    assert_flags(result.scores[7, :1], [EXACT | SAME_TYPE | closest(0, 0, 0)])


def test_seed_device_as_a_source(implementation):
    source = fm.load(SEED)
    targets = fm.DeviceSet.from_records(
        [
            {"id": "same", "self": gvt("i915-GVTg_V5_2", "1", "v1", "none")},
            {"id": "more-modes", "self": gvt("i915-GVTg_V5_2", "1", "v1.3", "none+ppgtt")},
            {"id": "v2", "self": gvt("i915-GVTg_V5_2", "1", "v2", "none")},
            {"id": "v5_4", "self": gvt("i915-GVTg_V5_4", "2", "v1", "none")},
        ]
    )
    result = fm.match(source, targets, workers=1)
    assert result.reasons[0].tolist() == [0, 0, SOFTWARE_VERSION, MDEV_TYPE | AGGREGATOR]
    assert_scores(result.scores[0], [EXACT | SAME_TYPE | closest(0, 0, 0), SAME_TYPE | closest(0, 3, 0), -1, -1])


# -- the version rule's examples ------------------------------------------------------------
@pytest.mark.parametrize(
    "s, t, mask, score",
    [
        ("2.0.1", "2.1.1", 0, SAME_TYPE | closest(0, 1, 1)),
        ("2.1.1", "2.0.1", SOFTWARE_VERSION, -1),
        ("2.0.0", "3.0.0", SOFTWARE_VERSION, -1),
        ("2.0.1", "2.0.0", 0, SAME_TYPE | closest(0, 0, 0)),  # the bugfix number never decides
        ("1.1", "1.2", 0, SAME_TYPE | closest(0, 1, 0)),
        ("1.2", "1.1", SOFTWARE_VERSION, -1),
    ],
)
def test_version_examples(implementation, s, t, mask, score):
    source = {"id": "s", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": s}}
    target = {"id": "t", "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": t}}
    result = fm.match([source], [target], workers=1)
    assert int(result.reasons[0, 0]) == mask
    assert_flags(result.scores[0, :1], [score])


def test_bugfix_is_the_basis_for_preferring_equally_compatible_candidates(implementation):
    source = {"id": "s", "self": {"mdev_type": "t", "software_version": "2.0.1"}}
    targets = [{"id": f"t{k}", "self": {"mdev_type": "t", "software_version": v}} for k, v in enumerate(["2.0.0", "2.0.5", "2.0.3"])]
    assert fm.match([source], targets, workers=1).top_k(3)[0].tolist() == [[1, 2, 0]]


def test_v2_plus_cannot_be_expressed():
    with pytest.raises(fm.InputError) as info:
        fm.DeviceSet.from_records([{"id": "d", "self": {}, "compatible": [{"gvt-version": "v2+"}]}])
    assert "field 'compatible[0].software_version'" in str(info.value)
    assert "invalid version 'v2+'" in str(info.value)


def test_pv_mode_none_to_none_ppgtt_but_not_back(implementation):
    a = {"id": "a", "self": {"mdev_type": "t", "pv_mode": "none"}}
    b = {"id": "b", "self": {"mdev_type": "t", "pv_mode": "none+ppgtt"}}
    result = fm.match([a, b], [a, b], workers=1)
    assert result.reasons.tolist() == [[1 << 63, 0], [PV_MODE, 1 << 63]]
    assert int(result.scores[0, 1]) == SAME_TYPE


# -- the upstream GVT-g example with templates ----------------------------------------------
GVT_TARGET = {
    "id": "gvt-target",
    "self": {
        "device_type": "pci",
        "device_id": "8086591d",
        "mdev_type": "i915-GVTg_V5_2",
        "aggregator": "1",
        "pv_mode": "none+ppgtt+context",
        "interface_version": "3",
    },
    "compatible": [
        {
            "mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}",
            "aggregator": "{val1}/2",
            "pv_mode": '{val2:string:"none+ppgtt","none+context","none+ppgtt+context"}',
            "interface_version": "{val3:int:2,3}",
        },
        {
            "mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}",
            "aggregator": "{val1}/2",
            "pv_mode": "",
            "interface_version": "1",
        },
    ],
}

V5_4 = {
    "id": "v5_4",
    "self": {
        "device_type": "pci",
        "device_id": "8086591d",
        "mdev_type": "i915-GVTg_V5_4",
        "aggregator": "2",
        "interface_version": "1",
    },
}


def test_gvt_v5_4_can_move_to_the_target(implementation):
    result = fm.match([V5_4], [GVT_TARGET], workers=1)
    assert int(result.reasons[0, 0]) == 0
    # Not identical, not the same mdev_type; versions 1 -> 3 are two majors apart.
    assert_flags(result.scores[0, :1], [closest(2, 0, 0)])
    ok = fm.check(V5_4, GVT_TARGET)
    assert ok.compatible and int(ok.reasons) == 0 and list(ok.reasons) == []
    assert_flags([ok.score], [closest(2, 0, 0)])


def test_gvt_v5_4_cannot_move_back(implementation):
    result = fm.match([GVT_TARGET], [V5_4], workers=1)
    assert int(result.reasons[0, 0]) == MDEV_TYPE | SOFTWARE_VERSION | PV_MODE | AGGREGATOR == 114
    assert int(result.scores[0, 0]) == -1
    back = fm.check(GVT_TARGET, V5_4)
    assert not back.compatible
    assert list(back.reasons) == ["mdev_type", "software_version", "pv_mode", "aggregator"]
    assert "pv_mode" in back.reasons and "device_type" not in back.reasons


def variant(**changes):
    self_ = {**V5_4["self"], **changes}
    return {"id": "variant", "self": {k: v for k, v in self_.items() if v is not None}}


@pytest.mark.parametrize(
    "changes, mask",
    [
        ({}, 0),
        ({"pv_mode": "none+ppgtt"}, NO_RECORD),  # interface_version 1 needs the empty pv_mode
        ({"pv_mode": "none+ppgtt", "interface_version": "2"}, 0),
        ({"pv_mode": "ppgtt+context", "interface_version": "3"}, 0),
        ({"pv_mode": "none", "interface_version": "2.0"}, 0),
        ({"interface_version": "2"}, 0),  # no pv_mode: the empty set is a subset of every listed set
        ({"interface_version": "4"}, NO_RECORD),
        ({"interface_version": "1.1"}, NO_RECORD),
        ({"pv_mode": "none+ppgtt+context+x", "interface_version": "3"}, NO_RECORD),
        ({"mdev_type": "i915-GVTg_V5_8", "aggregator": "4"}, 0),
        ({"mdev_type": "i915-GVTg_V5_2", "aggregator": "1"}, 0),
        ({"mdev_type": "i915-GVTg_V5_8", "aggregator": "2"}, NO_RECORD),
        ({"mdev_type": "i915-GVTg_V5_1", "aggregator": "0"}, NO_RECORD),  # 1/2 leaves a remainder
        ({"mdev_type": "i915-GVTg_V5_1", "aggregator": None}, NO_RECORD),
        ({"mdev_type": "i915-GVTg_V5_16", "aggregator": "8"}, NO_RECORD),
        ({"aggregator": "0x2"}, 0),
        ({"device_type": None}, (1 << 7) | NO_RECORD),  # unconstrained unknown attribute, rule exact
        ({"device_type": "ccw"}, (1 << 7) | NO_RECORD),
        ({"device_id": "80863e92"}, DEVICE_ID | NO_RECORD),
    ],
)
def test_gvt_record_variants(implementation, changes, mask):
    result = fm.match([variant(**changes)], [GVT_TARGET], workers=1)
    assert int(result.reasons[0, 0]) == mask


def test_gvt_example_round_trips_through_a_file(implementation, tmp_path):
    path = tmp_path / "fleet.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (GVT_TARGET, V5_4)) + "\n")
    fleet = fm.load(path)
    result = fm.match(fleet, fleet, workers=1)
    assert result.reasons.tolist() == [[1 << 63, 114], [0, 1 << 63]]
