"""The kernel's mdev layout in sysfs, built in temporary directories with real symbolic links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fastmatch
from fastmatch.formats import read_path
from sysfs_tree import GVT_UUID, SysfsTree, gvt_host, link

V5_4 = "class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4"
GVT_SELF = {"mdev_type": "i915-GVTg_V5_4", "device_id": "8086591d", "vendor_driver": "i915", "device_api": "vfio-pci"}


def error_of(root: Path, **options) -> str:
    with pytest.raises(fastmatch.FastmatchError) as caught:
        fastmatch.load(root, **options)
    return str(caught.value)


def test_types_are_targets_and_mdevs_are_sources(tmp_path):
    gvt_host(tmp_path, migration=False)
    records, places = read_path(tmp_path)
    assert records == [
        {"id": GVT_UUID, "self": GVT_SELF},
        {"id": "0000:00:02.0/i915-GVTg_V5_4", "self": GVT_SELF, "capacity": 2},
        {"id": "0000:00:02.0/i915-GVTg_V5_8", "self": {**GVT_SELF, "mdev_type": "i915-GVTg_V5_8"}, "capacity": 0},
    ]
    assert places == [f"bus/mdev/devices/{GVT_UUID}", V5_4, V5_4.replace("V5_4", "V5_8")]


def test_migration_attributes(tmp_path):
    gvt_host(tmp_path)
    source, target, _ = read_path(tmp_path)[0]
    assert source == {
        "id": GVT_UUID, "self": {**GVT_SELF, "pv_mode": "none", "software_version": "1.2.0"},
        "migration_version": "8086591d-i915-1.2",
    }
    assert target == {
        "id": "0000:00:02.0/i915-GVTg_V5_4", "capacity": 2,
        "self": {**GVT_SELF, "pv_mode": "none+ppgtt", "software_version": "1.2.0"},
        "compatible": [{"mdev_type": "i915-GVTg_V5_{n:int:4,8}", "software_version": "1.2.0"}],
        "migration_version": "8086591d-i915-1.2",
    }


def test_migration_file_that_repeats_a_derived_attribute_must_agree(tmp_path):
    tree = SysfsTree(tmp_path)
    tree.mdev_type(tree.parent(), migration={"device_id": "8086591d\n", "mdev_type": "i915-GVTg_V5_4"})
    assert read_path(tmp_path)[0][0]["self"] == GVT_SELF


def test_css_and_ap_parents_have_no_device_id(tmp_path):
    tree = SysfsTree(tmp_path)
    tree.mdev_type(tree.parent("0.0.0052", bus="css0", vendor=None, device=None, driver="vfio_ccw"), "vfio_ccw-io", "vfio-ccw", "1")
    tree.mdev_type(tree.parent("matrix", bus="vfio_ap", vendor=None, device=None, driver=None), "vfio_ap-passthrough", "vfio-ap", "65536")
    assert read_path(tmp_path)[0] == [
        {"id": "0.0.0052/vfio_ccw-io", "self": {"mdev_type": "vfio_ccw-io", "vendor_driver": "vfio_ccw", "device_api": "vfio-ccw"}, "capacity": 1},
        {"id": "matrix/vfio_ap-passthrough", "self": {"mdev_type": "vfio_ap-passthrough", "device_api": "vfio-ap"}, "capacity": 65536},
    ]


def test_host_and_roles(tmp_path):
    gvt_host(tmp_path)
    sources = read_path(tmp_path, role="source", host="kbl-02")[0]
    targets = read_path(tmp_path, role="target", host="kbl-02")[0]
    assert [r["id"] for r in sources] == [GVT_UUID]
    assert [r["id"] for r in targets] == ["kbl-02/0000:00:02.0/i915-GVTg_V5_4", "kbl-02/0000:00:02.0/i915-GVTg_V5_8"]
    assert {r["host"] for r in sources + targets} == {"kbl-02"}


def test_a_sysfs_tree_is_told_apart_from_a_directory_of_files(tmp_path):
    gvt_host(tmp_path / "sys")
    (tmp_path / "files").mkdir()
    assert fastmatch.load(tmp_path / "files").ids == []  # a directory of (no) files, not a tree
    devices = fastmatch.load(tmp_path / "sys")
    assert devices.ids == [GVT_UUID, "0000:00:02.0/i915-GVTg_V5_4", "0000:00:02.0/i915-GVTg_V5_8"]
    assert error_of(tmp_path / "files", input_format="sysfs") == (
        f"{tmp_path / 'files'}: not a sysfs tree: neither class/mdev_bus, bus/mdev/devices nor bus, class and devices are under it"
    )


def test_a_host_without_mediated_devices_has_none(tmp_path):
    for top in ("bus", "class", "devices"):
        (tmp_path / top).mkdir()
    (tmp_path / "notes.txt").write_text("not a device\n")  # read if this were a directory of files
    assert read_path(tmp_path) == ([], [])


def test_an_mdev_whose_parent_is_not_registered_still_reads(tmp_path):
    tree = gvt_host(tmp_path, migration=False)
    os.unlink(tree.root / "class" / "mdev_bus" / "0000:00:02.0")
    (record,) = read_path(tmp_path)[0]
    assert record == {"id": GVT_UUID, "self": GVT_SELF}


def test_validation_errors_name_the_file_that_holds_the_value(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / V5_4 / "migration" / "software_version").write_text("1.x\n")
    assert error_of(tmp_path) == (
        f"{tmp_path / V5_4 / 'migration' / 'software_version'}: record '0000:00:02.0/i915-GVTg_V5_4': "
        "field 'self.software_version': invalid version '1.x' (expected [v]N(.N)*[-prerelease][+build])"
    )


def test_a_source_value_is_located_at_its_own_migration_file(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / "bus/mdev/devices" / GVT_UUID / "migration" / "pv_mode").write_text("none++ppgtt\n")
    assert error_of(tmp_path).startswith(
        f"{tmp_path / 'bus/mdev/devices' / GVT_UUID / 'migration' / 'pv_mode'}: record '{GVT_UUID}': field 'self.pv_mode': "
    )


def test_an_alias_file_is_located_under_its_own_name(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / V5_4 / "migration" / "software_version").unlink()
    (tree.root / V5_4 / "migration" / "interface_version").write_text("1.x\n")
    assert error_of(tmp_path).startswith(
        f"{tmp_path / V5_4 / 'migration' / 'interface_version'}: record '0000:00:02.0/i915-GVTg_V5_4': "
        "field 'self.software_version': invalid version '1.x'"
    )


def test_a_compatible_value_is_located_at_its_line(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / V5_4 / "migration" / "compatible").write_text(
        "COMPATIBLE:\n  mdev_type=i915-GVTg_V5_4\n\nCOMPATIBLE:\n  mdev_type=i915-GVTg_V5_8\n  software_version=1.y\n"
    )
    assert error_of(tmp_path) == (
        f"{tmp_path / V5_4 / 'migration' / 'compatible'}:6: record '0000:00:02.0/i915-GVTg_V5_4': "
        "field 'compatible[1].software_version': invalid version '1.y' (expected [v]N(.N)*[-prerelease][+build])"
    )


def test_a_compatible_template_error_is_located_at_its_line(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / V5_4 / "migration" / "compatible").write_text("COMPATIBLE:\n  mdev_type=x\n  aggregator={n}\n")
    assert error_of(tmp_path) == (
        f"{tmp_path / V5_4 / 'migration' / 'compatible'}:3: record '0000:00:02.0/i915-GVTg_V5_4': "
        "field 'compatible[0].aggregator': variable 'n' is not declared"
    )


def test_derived_values_are_located_at_the_files_they_come_from(tmp_path):
    """Under a policy that types the derived attributes, a value that does not fit names the
    file it was read from (an mdev's device_api through its mdev_type link), or for device_id,
    made of the parent's vendor and device files, the parent."""
    gvt_host(tmp_path, migration=False)
    policy = fastmatch.Policy.from_dict({"attributes": {"device_api": {"type": "int", "rule": "exact"}}})
    assert error_of(tmp_path, policy=policy) == (
        f"{tmp_path / 'bus/mdev/devices' / GVT_UUID / 'mdev_type' / 'device_api'}: record '{GVT_UUID}': "
        "field 'self.device_api': invalid integer 'vfio-pci'"
    )
    policy = fastmatch.Policy.from_dict({"attributes": {"device_id": {"type": "int", "rule": "exact"}}})
    assert error_of(tmp_path, policy=policy) == (
        f"{tmp_path / 'class/mdev_bus/0000:00:02.0'}: record '{GVT_UUID}': field 'self.device_id': invalid integer '8086591d'"
    )


def test_compatible_file_errors_name_its_line(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / V5_4 / "migration" / "compatible").write_text("COMPATIBLE:\n a=1\n b\n")
    assert error_of(tmp_path).startswith(
        f"{tmp_path / V5_4 / 'migration' / 'compatible'}:3: record '0000:00:02.0/i915-GVTg_V5_4': expected key=value"
    )


def test_skip_mode_goes_on_past_a_bad_type(tmp_path):
    tree = gvt_host(tmp_path)
    (tree.root / V5_4 / "available_instances").write_text("lots\n")
    rejected = []
    records, places = read_path(tmp_path, on_error=lambda raw, exc: rejected.append((raw, str(exc))))
    assert [r["id"] for r in records] == [GVT_UUID, "0000:00:02.0/i915-GVTg_V5_8"]
    assert rejected == [(V5_4, f"{tmp_path / V5_4 / 'available_instances'}: record '0000:00:02.0/i915-GVTg_V5_4': "
                         "field 'capacity': expected an integer >= 0, got 'lots'")]


def test_links_stay_inside_the_tree(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "device_api").write_text("vfio-pci\n")
    tree = gvt_host(tmp_path / "sys", migration=False)
    type_dir = tree.root / V5_4
    os.unlink(type_dir / "device_api")
    os.symlink(outside / "device_api", type_dir / "device_api")  # absolute, out of the tree
    # The mdev reads its type's device_api through its own mdev_type link: it is refused first.
    assert error_of(tree.root).startswith(
        f"{tree.root / 'bus/mdev/devices' / GVT_UUID / 'mdev_type/device_api'}: record '{GVT_UUID}': "
        f"a link that leaves the sysfs tree (to {outside / 'device_api'})"
    )
    with pytest.raises(fastmatch.FastmatchError, match="a link that leaves the sysfs tree") as caught:
        read_path(tree.root, role="target")
    assert str(caught.value).startswith(f"{type_dir / 'device_api'}: record '0000:00:02.0/i915-GVTg_V5_4': ")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    tree = gvt_host(tmp_path, migration=False)
    fifo = tree.root / V5_4 / "available_instances"
    os.unlink(fifo)
    os.mkfifo(fifo)
    assert error_of(tmp_path).endswith(f"{fifo}: record '0000:00:02.0/i915-GVTg_V5_4': not a regular file")


def test_a_symlink_loop_is_an_error(tmp_path):
    tree = gvt_host(tmp_path, migration=False)
    device = tree.root / "devices" / "pci0000:00" / "0000:00:02.0" / GVT_UUID
    os.unlink(device / "mdev_type")
    link(device / "mdev_type", device / "loop")
    link(device / "loop", device / "mdev_type")
    assert error_of(tmp_path) == (
        f"{tmp_path / 'bus/mdev/devices' / GVT_UUID / 'mdev_type'}: record '{GVT_UUID}': "
        "cannot read: Too many levels of symbolic links"
    )
