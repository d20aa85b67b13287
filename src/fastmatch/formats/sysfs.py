"""The kernel's mdev layout in sysfs, under a root directory (``/sys`` on a live host).

::

    class/mdev_bus/<parent>            a link to the parent device's directory, which holds
        vendor, device                 PCI parents: 0x8086, 0x591d -> device_id 8086591d
        driver                         a link to the driver: its name is vendor_driver
        mdev_supported_types/<type>/   one target per type, id <parent>/<type>
            device_api                 vfio-pci, vfio-ccw, vfio-ap
            available_instances        the target's capacity
            name, description          for people; not attributes
            migration/                 optional (see below)
    bus/mdev/devices/<uuid>            a link to an existing mdev: a source, id <uuid>
        mdev_type                      a link to its parent's mdev_supported_types/<type>
        migration/                     optional (see below)

``migration/``, where a vendor driver offers it, holds one file per SELF
attribute (``software_version``, ``pv_mode``, ...; a file that names an
attribute derived above must agree with it), ``migration_version`` (the opaque
string) and ``compatible`` (COMPATIBLE blocks in the SELF/COMPATIBLE text
format). Links are followed only while they stay inside the root; a file is
read only when it is a regular file of at most 1 MiB.
"""

from __future__ import annotations

import os
import stat
from functools import partial
from pathlib import Path
from typing import Any, Callable

from ..errors import FastmatchError, FieldPlace, InputError, with_fields
from ..values import describe
from .guards import OnError, build_each, decode_utf8, id_from_name, keep_role, parse_count, parse_pci_id
from .text import read_compatible

MAX_FILE_BYTES = 1 << 20
PARENTS = Path("class", "mdev_bus")
DEVICES = Path("bus", "mdev", "devices")

Record = dict[str, Any]


def is_sysfs_root(path: Path) -> bool:
    """The mdev layout, or the kernel's top directories: a host without mediated devices has no devices."""
    return (path / PARENTS).is_dir() or (path / DEVICES).is_dir() or all((path / d).is_dir() for d in ("bus", "class", "devices"))


def read_sysfs(
    root: Path,
    *,
    host: str = "",
    role: str | None = None,
    on_error: OnError | None = None,
    others: list[tuple[Record, str]] | None = None,
) -> tuple[list[Record], list[str]]:
    """Sources (existing mdevs) then targets (mdev types), and each one's place under ``root``.

    The whole tree is read whatever the role; the records of the other role go
    into ``others`` when given (see :func:`~fastmatch.formats.guards.keep_role`).
    ``on_error(place, error)``, when given, takes each device or type that cannot
    be read, and reading goes on.
    """
    if not is_sysfs_root(root):
        raise InputError(f"not a sysfs tree: neither {PARENTS}, {DEVICES} nor bus, class and devices are under it", file=str(root))
    tree = _Tree(root, host)
    made: dict[str, list[tuple[str, Callable[[], tuple[Record, int | str | None]]]]] = {
        "source": [(str(DEVICES / uuid), partial(tree.source, uuid)) for uuid in tree.listdir(DEVICES)],
        "target": [],
    }
    for parent in tree.listdir(PARENTS):
        types = PARENTS / parent / "mdev_supported_types"
        made["target"] += [(str(types / name), partial(tree.target, parent, name)) for name in tree.listdir(types)]

    def build(kind: str) -> tuple[list[Record], list[int | str | None]]:
        # A record that cannot be read is handed over as its place: the directory to look at.
        built, _ = build_each([(make, partial(str, place), None) for place, make in made[kind]], on_error)
        return [record for record, _ in built], [place for _, place in built]

    return keep_role(build, role, others)


class _Tree:
    """Reads a sysfs tree without leaving it: every path is resolved and checked first."""

    def __init__(self, root: Path, host: str) -> None:
        self.root = root
        self.host = host
        self.real_root = Path(os.path.realpath(root))
        self._parent_names: dict[Path, str] | None = None

    # -- records -------------------------------------------------------------------------
    # Each record comes with its place, its directory, which also says which file each of its
    # values was read from (a value found invalid later, as the policy types it, is reported
    # at its file, and a COMPATIBLE record's at its line of the compatible file).
    def target(self, parent: str, type_id: str) -> tuple[Record, int | str | None]:
        type_dir = PARENTS / parent / "mdev_supported_types" / type_id
        device_id = f"{self.host}/{parent}/{type_id}" if self.host else f"{parent}/{type_id}"
        label = f"'{device_id}'"
        fields: dict[str, FieldPlace] = {}
        try:
            attributes = {"mdev_type": type_id, **self._parent_attributes(PARENTS / parent, fields)}
            device_api = self.read(type_dir / "device_api")
            if device_api:
                attributes["device_api"] = device_api
                fields["self.device_api"] = FieldPlace(str(type_dir / "device_api"))
            available = self.read(type_dir / "available_instances")
            capacity = parse_count(available)
            if capacity is None:
                raise InputError(
                    f"expected an integer >= 0, got {describe(available)}",
                    file=self.display_path(type_dir / "available_instances"), field="capacity",
                )
            record: Record = {"id": device_id, "self": attributes, "capacity": capacity}
            self._migration(type_dir, record, fields)
        except FastmatchError as exc:
            raise exc.located(record=label) from None
        if self.host:
            record["host"] = self.host
        return record, with_fields(str(type_dir), fields)

    def source(self, uuid: str) -> tuple[Record, int | str | None]:
        device = DEVICES / uuid
        fields: dict[str, FieldPlace] = {"self.mdev_type": FieldPlace(str(device / "mdev_type"))}
        try:
            type_dir = self.resolve(device / "mdev_type")
            parent = type_dir.parent.parent  # <parent>/mdev_supported_types/<type>
            if type_dir.parent.name != "mdev_supported_types" or not parent.is_relative_to(self.real_root):
                raise InputError(
                    f"does not link to a parent's mdev_supported_types/<type> (it links to {type_dir})",
                    file=self.display_path(device / "mdev_type"), field="self.mdev_type",
                )
            name = self._registered_parents().get(parent)
            parent_dir = PARENTS / name if name is not None else parent.relative_to(self.real_root)
            attributes = {"mdev_type": type_dir.name, **self._parent_attributes(parent_dir, fields)}
            device_api = self.read(device / "mdev_type" / "device_api")
            if device_api:
                attributes["device_api"] = device_api
                fields["self.device_api"] = FieldPlace(str(device / "mdev_type" / "device_api"))
            record: Record = {"id": uuid, "self": attributes}
            self._migration(device, record, fields)
        except FastmatchError as exc:
            raise exc.located(record=f"'{uuid}'") from None
        if self.host:
            record["host"] = self.host
        return record, with_fields(str(device), fields)

    def _registered_parents(self) -> dict[Path, str]:
        """Each registered parent's real directory and its name under class/mdev_bus."""
        if self._parent_names is None:
            self._parent_names = {self.resolve(PARENTS / name): name for name in self.listdir(PARENTS)}
        return self._parent_names

    def _parent_attributes(self, parent: Path, fields: dict[str, FieldPlace]) -> dict[str, str]:
        attributes = {}
        if self.exists(parent / "vendor") and self.exists(parent / "device"):
            attributes["device_id"] = self._hex_id(parent / "vendor") + self._hex_id(parent / "device")
            fields["self.device_id"] = FieldPlace(str(parent))  # made of its vendor and device files
        if self.exists(parent / "driver"):
            attributes["vendor_driver"] = self.resolve(parent / "driver").name
            fields["self.vendor_driver"] = FieldPlace(str(parent / "driver"))
        return attributes

    def _hex_id(self, relative: Path) -> str:
        value = self.read(relative)
        pci_id = parse_pci_id(value)
        if pci_id is None:
            raise InputError(f"expected a 16-bit hex id such as 0x8086, got {describe(value)}", file=self.display_path(relative), field="self.device_id")
        return pci_id

    def _migration(self, directory: Path, record: Record, fields: dict[str, FieldPlace]) -> None:
        """Add what ``directory/migration/`` says, if the driver offers it, and where each value is."""
        migration = directory / "migration"
        if not self.exists(migration):
            return
        attributes = record["self"]
        for name in self.listdir(migration):
            relative = migration / name
            value = self.read(relative)
            if name == "compatible":
                record["compatible"], lines = read_compatible(value, self.display_path(relative))
                fields["compatible"] = FieldPlace(str(relative))
                fields.update((key, FieldPlace(f"{relative}:{where.line}")) for key, where in lines.items())
            elif name == "migration_version":
                record["migration_version"] = value
                fields[name] = FieldPlace(str(relative))
            elif name in attributes and attributes[name] != value:
                raise InputError(
                    f"says {describe(value)}, but the device's own files say {describe(attributes[name])}",
                    file=self.display_path(relative), field=f"self.{name}",
                )
            else:
                attributes[name] = value
                fields[f"self.{name}"] = FieldPlace(str(relative))

    # -- the file system -----------------------------------------------------------------
    def display_path(self, relative: Path) -> str:
        return str(self.root / relative)

    def resolve(self, relative: Path) -> Path:
        """The real path of ``relative``, which must exist and stay inside the root."""
        try:
            real = Path(os.path.realpath(self.root / relative, strict=True))
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=self.display_path(relative)) from None
        if not real.is_relative_to(self.real_root):
            raise InputError(f"a link that leaves the sysfs tree (to {real})", file=self.display_path(relative))
        return real

    def exists(self, relative: Path) -> bool:
        return os.path.lexists(self.root / relative)

    def listdir(self, relative: Path) -> list[str]:
        """The entries of a directory, sorted; a missing directory has none."""
        if not self.exists(relative):
            return []
        real = self.resolve(relative)
        try:
            names = sorted(os.listdir(real))
        except OSError as exc:
            raise InputError(f"cannot list: {exc.strerror}", file=self.display_path(relative)) from None
        return [id_from_name(name, self.display_path(relative)) for name in names]  # names become ids and attributes

    def read(self, relative: Path) -> str:
        """A regular file's text, stripped; a FIFO or device node is refused before it can block."""
        real = self.resolve(relative)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=self.display_path(relative)) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError("not a regular file", file=self.display_path(relative))
            data = b""
            while len(data) <= MAX_FILE_BYTES:
                chunk = os.read(fd, MAX_FILE_BYTES + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=self.display_path(relative)) from None
        finally:
            os.close(fd)
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"larger than {MAX_FILE_BYTES} bytes; a sysfs attribute is far smaller", file=self.display_path(relative))
        return decode_utf8(data, self.display_path(relative)).strip()

