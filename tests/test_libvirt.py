"""libvirt node-device XML: mdevs as sources, parents' mdev types as targets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import fastmatch
from fastmatch.cli import main
from fastmatch.formats import read_path

DATA = Path(__file__).parent / "data" / "libvirt"
GVT_PARENT = DATA / "pci_0000_00_02_0.xml"
GVT_MDEV = DATA / "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01.xml"
UUID = "4b20d080-1b54-4048-85b3-a6a62d165c01"

GVT_TARGET_SELF = {"mdev_type": "i915-GVTg_V5_4", "device_id": "8086591d", "vendor_driver": "i915", "device_api": "vfio-pci"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def concatenated(tmp_path: Path, *paths: Path, name: str = "host.xml") -> Path:
    return write(tmp_path, name, "".join(p.read_text() for p in paths))


def error_of(path: Path, **options) -> str:
    with pytest.raises(fastmatch.FastmatchError) as caught:
        fastmatch.load(path, **options)
    return str(caught.value)


# -- targets ---------------------------------------------------------------------------------
def test_pci_parent_mdev_types_are_targets():
    records, lines = read_path(GVT_PARENT)
    assert records == [
        {"id": "0000:00:02.0/i915-GVTg_V5_4", "self": GVT_TARGET_SELF, "capacity": 2},
        {"id": "0000:00:02.0/i915-GVTg_V5_8", "self": {**GVT_TARGET_SELF, "mdev_type": "i915-GVTg_V5_8"}, "capacity": 0},
    ]
    assert lines == [17, 22]  # the <type> elements


def test_css_and_ap_matrix_parents_are_targets():
    assert read_path(DATA / "css_0_0_0052.xml")[0] == [{
        "id": "0.0.0052/vfio_ccw-io", "capacity": 1,
        "self": {"mdev_type": "vfio_ccw-io", "vendor_driver": "vfio_ccw", "device_api": "vfio-ccw"},
    }]
    assert read_path(DATA / "ap_matrix.xml")[0] == [{
        "id": "matrix/vfio_ap-passthrough", "capacity": 65536,
        "self": {"mdev_type": "vfio_ap-passthrough", "device_api": "vfio-ap"},
    }]


def test_device_id_is_eight_lowercase_hex_digits(tmp_path):
    text = GVT_PARENT.read_text().replace("0x8086", "0x10DE").replace("0x591d", "0x1Eb8")
    (record, _) = read_path(write(tmp_path, "nvidia.xml", text))[0]
    assert record["self"]["device_id"] == "10de1eb8"
    text = GVT_PARENT.read_text().replace("0x8086", "0x8").replace("0x591d", "0x1d")
    (record, _) = read_path(write(tmp_path, "short.xml", text))[0]
    assert record["self"]["device_id"] == "0008001d"


def test_host_names_the_targets_and_is_set():
    records, _ = read_path(GVT_PARENT, host="kbl-02")
    assert [r["id"] for r in records] == ["kbl-02/0000:00:02.0/i915-GVTg_V5_4", "kbl-02/0000:00:02.0/i915-GVTg_V5_8"]
    assert {r["host"] for r in records} == {"kbl-02"}


# -- sources ---------------------------------------------------------------------------------
def test_mdev_alone_is_a_source_with_its_type_and_attrs():
    records, lines = read_path(GVT_MDEV)
    assert records == [{"id": UUID, "self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "1.2.0", "pv_mode": "none+ppgtt"}}]
    assert lines == [1]


def test_mdev_with_its_parent_gets_device_api_device_id_and_driver(tmp_path):
    for path in (concatenated(tmp_path, GVT_MDEV, GVT_PARENT), concatenated(tmp_path, GVT_PARENT, GVT_MDEV, name="b.xml")):
        records, _ = read_path(path, role="source")
        assert records == [{"id": UUID, "self": {**GVT_TARGET_SELF, "software_version": "1.2.0", "pv_mode": "none+ppgtt"}}]


def test_uuid_from_the_name_when_there_is_no_uuid_element(tmp_path):
    text = GVT_MDEV.read_text().replace(f"<uuid>{UUID}</uuid>", "").replace("_0000_00_02_0</name>", "</name>")
    assert read_path(write(tmp_path, "old.xml", text))[0][0]["id"] == UUID
    text = GVT_MDEV.read_text().replace(f"<uuid>{UUID}</uuid>", "")  # newer names: mdev_<uuid>_<parent>
    assert read_path(write(tmp_path, "new.xml", text))[0][0]["id"] == UUID
    upper = GVT_MDEV.read_text().replace(UUID, UUID.upper())
    assert read_path(write(tmp_path, "upper.xml", upper))[0][0]["id"] == UUID


# -- documents, roles and places -------------------------------------------------------------
def test_several_devices_one_after_another(tmp_path):
    path = concatenated(tmp_path, GVT_MDEV, GVT_PARENT, DATA / "css_0_0_0052.xml")
    records, lines = read_path(path)
    assert [r["id"] for r in records] == [
        UUID, "0000:00:02.0/i915-GVTg_V5_4", "0000:00:02.0/i915-GVTg_V5_8", "0.0.0052/vfio_ccw-io",
    ]
    mdev_lines, parent_lines = (len(p.read_text().splitlines()) for p in (GVT_MDEV, GVT_PARENT))
    assert lines == [1, mdev_lines + 17, mdev_lines + 22, mdev_lines + parent_lines + 13]


def test_several_devices_under_any_root_element(tmp_path):
    body = GVT_PARENT.read_text() + GVT_MDEV.read_text()
    path = write(tmp_path, "all.xml", f'<?xml version="1.0"?>\n<nodedevs><host name="kbl">\n{body}</host></nodedevs>\n')
    records, lines = read_path(path)
    assert [r["id"] for r in records] == [UUID, "0000:00:02.0/i915-GVTg_V5_4", "0000:00:02.0/i915-GVTg_V5_8"]
    assert records[0]["self"]["device_id"] == "8086591d"
    assert lines[1] == 3 + 16


def test_xml_declaration_before_concatenated_devices(tmp_path):
    path = write(tmp_path, "d.xml", '<?xml version="1.0" encoding="UTF-8"?>' + GVT_PARENT.read_text() + GVT_MDEV.read_text())
    assert len(read_path(path)[0]) == 3


def test_other_devices_are_passed_over(tmp_path):
    path = write(tmp_path, "usb.xml", "<device><name>usb_1_1</name><capability type='usb_device'><bus>1</bus></capability></device>")
    assert read_path(path) == ([], [])


def test_roles_keep_sources_or_targets(tmp_path):
    path = concatenated(tmp_path, GVT_PARENT, GVT_MDEV)
    assert [r["id"] for r in read_path(path, role="source")[0]] == [UUID]
    assert [r["id"] for r in read_path(path, role="target")[0]] == [
        "0000:00:02.0/i915-GVTg_V5_4", "0000:00:02.0/i915-GVTg_V5_8",
    ]


def test_a_directory_is_one_input(tmp_path):
    shutil.copytree(DATA, tmp_path / "dumps")
    (tmp_path / "dumps" / ".hidden.xml").write_text("not read")
    records, places = read_path(tmp_path / "dumps")
    assert records[0]["id"] == UUID and records[0]["self"]["device_id"] == "8086591d"  # parent from another file
    assert places == [
        "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01.xml:1", "ap_matrix.xml:7", "css_0_0_0052.xml:13",
        "pci_0000_00_02_0.xml:17", "pci_0000_00_02_0.xml:22",
    ]
    devices = fastmatch.load(tmp_path / "dumps")
    assert len(devices) == 5


def test_validation_errors_name_file_line_record_and_field(tmp_path):
    text = GVT_MDEV.read_text().replace("'1.2.0'", "'v2+'")
    path = write(tmp_path, "mdev.xml", text)
    # The line and element of the <attr> that holds the value, not the <device>'s.
    attr = " (at /device/capability[@type='mdev']/attr[1])"
    assert error_of(path) == (
        f"{path}:12: record '{UUID}': field 'self.software_version': invalid version 'v2+' "
        f"(expected [v]N(.N)*[-prerelease][+build]){attr}"
    )
    (tmp_path / "dir").mkdir()
    shutil.copy(path, tmp_path / "dir" / "mdev.xml")
    assert error_of(tmp_path / "dir").startswith(f"{tmp_path / 'dir' / 'mdev.xml'}:12: record '{UUID}'")
    assert error_of(tmp_path / "dir").endswith(attr)


def test_reader_errors_name_the_element_path(tmp_path):
    text = GVT_PARENT.read_text().replace("<availableInstances>2<", "<availableInstances>many<")
    path = write(tmp_path, "parent.xml", text)
    assert error_of(path) == (
        f"{path}:20: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity': expected an integer >= 0, got 'many' "
        "(at /device/capability[@type='pci']/capability[@type='mdev_types']/type[@id='i915-GVTg_V5_4']/availableInstances)"
    )


def test_skip_mode_goes_on_past_a_bad_type(tmp_path):
    text = GVT_PARENT.read_text().replace("<availableInstances>2<", "<availableInstances>-1<")
    rejected = []
    records, lines = read_path(write(tmp_path, "p.xml", text), on_error=lambda raw, exc: rejected.append((raw, exc)))
    assert [r["id"] for r in records] == ["0000:00:02.0/i915-GVTg_V5_8"] and lines == [22]
    (raw, error), = rejected
    assert raw.startswith("<type id=\"i915-GVTg_V5_4\">") and "field 'capacity'" in str(error)


# -- end to end ------------------------------------------------------------------------------
def test_match_reads_sources_from_one_dump_and_targets_from_another(tmp_path, capsys):
    source_host = concatenated(tmp_path, GVT_PARENT, GVT_MDEV, name="kbl-01.xml")
    mdev = GVT_MDEV.read_text().replace("<attr name='software_version' value='1.2.0'/>", "").replace(
        "<attr name='pv_mode' value='none+ppgtt'/>", ""
    )
    write(tmp_path, "mdev-plain.xml", GVT_PARENT.read_text() + mdev)
    target_host = write(tmp_path, "kbl-02.xml", GVT_PARENT.read_text())
    assert main(["match", str(tmp_path / "mdev-plain.xml"), str(target_host), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    # The sources' dump gives its mdev (not its parent's types), the targets' dump its two
    # types; V5_8 is another type, and has no capacity either.
    assert [row.split(",")[:3] for row in rows[1:]] == [[UUID, "1", "0000:00:02.0/i915-GVTg_V5_4"]]
    # With its attrs the mdev has a software_version the type lacks: the version rule fails.
    assert main(["explain", str(source_host), str(target_host), UUID, "0000:00:02.0/i915-GVTg_V5_4"]) == 0
    assert "software_version" in capsys.readouterr().out


def test_check_reads_one_mdev_and_one_type(tmp_path, capsys):
    ap = tmp_path / "ap.xml"
    ap.write_text((DATA / "ap_matrix.xml").read_text())
    mdev = write(tmp_path, "ap-mdev.xml", (
        "<device><name>mdev_96c03c6a_a109_44fe_816a_ba371542164b</name><parent>ap_matrix</parent>"
        "<capability type='mdev'><type id='vfio_ap-passthrough'/></capability></device>"
    ))
    assert main(["check", str(mdev), str(ap)]) == 1  # without its parent the mdev has no device_api
    both = concatenated(tmp_path, mdev, ap, name="both.xml")
    assert main(["check", str(both), str(ap)]) == 0
    assert "compatible" in capsys.readouterr().out
