"""Builds sysfs trees in a temporary directory, with relative symbolic links as the kernel makes them.

::

    devices/pci0000:00/0000:00:02.0/                 the parent's own directory
        vendor, device, driver -> ../../../bus/pci/drivers/i915
        mdev_supported_types/<type>/{name,device_api,available_instances,description,migration/}
        <uuid>/mdev_type -> ../mdev_supported_types/<type>     an existing mdev
    class/mdev_bus/0000:00:02.0 -> ../../devices/pci0000:00/0000:00:02.0
    bus/mdev/devices/<uuid> -> ../../../devices/pci0000:00/0000:00:02.0/<uuid>
"""

from __future__ import annotations

import os
from pathlib import Path

GVT_UUID = "4b20d080-1b54-4048-85b3-a6a62d165c01"


class SysfsTree:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "class" / "mdev_bus").mkdir(parents=True, exist_ok=True)
        (root / "bus" / "mdev" / "devices").mkdir(parents=True, exist_ok=True)

    def parent(
        self,
        name: str = "0000:00:02.0",
        bus: str = "pci0000:00",
        vendor: str | None = "0x8086",
        device: str | None = "0x591d",
        driver: str | None = "i915",
    ) -> Path:
        """A parent device registered on the mdev bus; ``None`` leaves a file out."""
        directory = self.root / "devices" / bus / name
        directory.mkdir(parents=True)
        for file, value in (("vendor", vendor), ("device", device)):
            if value is not None:
                (directory / file).write_text(value + "\n")
        if driver is not None:
            drivers = self.root / "bus" / "pci" / "drivers" / driver
            drivers.mkdir(parents=True, exist_ok=True)
            link(directory / "driver", drivers)
        link(self.root / "class" / "mdev_bus" / name, directory)
        return directory

    def mdev_type(
        self,
        parent: Path,
        type_id: str = "i915-GVTg_V5_4",
        device_api: str | None = "vfio-pci",
        available: str | None = "2",
        migration: dict[str, str] | None = None,
    ) -> Path:
        directory = parent / "mdev_supported_types" / type_id
        (directory / "devices").mkdir(parents=True)
        (directory / "name").write_text(type_id.split("-")[-1] + "\n")
        (directory / "description").write_text("low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\n")
        if device_api is not None:
            (directory / "device_api").write_text(device_api + "\n")
        if available is not None:
            (directory / "available_instances").write_text(available + "\n")
        if migration is not None:
            write_migration(directory, migration)
        return directory

    def mdev(self, parent: Path, type_id: str = "i915-GVTg_V5_4", uuid: str = GVT_UUID, migration: dict[str, str] | None = None) -> Path:
        directory = parent / uuid
        directory.mkdir()
        link(directory / "mdev_type", parent / "mdev_supported_types" / type_id)
        link(parent / "mdev_supported_types" / type_id / "devices" / uuid, directory)
        link(self.root / "bus" / "mdev" / "devices" / uuid, directory)
        if migration is not None:
            write_migration(directory, migration)
        return directory


def link(at: Path, to: Path) -> None:
    """A relative symbolic link, as sysfs has them."""
    os.symlink(os.path.relpath(to, at.parent), at)


def write_migration(directory: Path, files: dict[str, str]) -> None:
    (directory / "migration").mkdir()
    for name, value in files.items():
        (directory / "migration" / name).write_text(value)


def gvt_host(root: Path, migration: bool = True) -> SysfsTree:
    """An Intel GVT-g host: one parent, two types, one existing V5_4 mdev; with migration attributes."""
    tree = SysfsTree(root)
    parent = tree.parent()
    type_migration = {
        "software_version": "1.2.0\n",
        "pv_mode": "none+ppgtt\n",
        "migration_version": "8086591d-i915-1.2\n",
        "compatible": "COMPATIBLE:\n  mdev_type=i915-GVTg_V5_{n:int:4,8}\n  software_version=1.2.0\n",
    } if migration else None
    tree.mdev_type(parent, "i915-GVTg_V5_4", migration=type_migration)
    tree.mdev_type(parent, "i915-GVTg_V5_8", available="0")
    tree.mdev(parent, "i915-GVTg_V5_4", migration={
        "software_version": "1.2.0\n", "pv_mode": "none\n", "migration_version": "8086591d-i915-1.2\n",
    } if migration else None)
    return tree
