"""Readers: each turns one input format into device records.

A reader returns ``(records, places)``: plain dicts in the fleet record shape
of docs/model.md section 2, and where each one is, so that validation errors can name
it. A place is the line a record starts on, or, for inputs that are not one
line-oriented file, a path inside the input (``host1.xml:14`` in a directory,
``bus/mdev/devices/<uuid>`` in a sysfs tree); see :func:`fastmatch.errors.join_place`.

Formats are told apart by content (:func:`detect_format`); ``input_format``
forces one. Sources and targets: a libvirt or sysfs input describes both (its
mdevs and its mdev types), and ``role`` keeps one of them; a fleet file or a
SELF/COMPATIBLE text is what it is, whatever the role.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, rebase
from ..files import STDIN, input_name, read_input
from ..magic import COLUMNAR_FORMATS, columnar_format
from ..progress import SILENT, Stages
from .columnar import read_columnar
from .guards import OnError
from .json import read_json
from .sysfs import is_sysfs_root, read_sysfs
from .text import read_text

FORMATS = ("json", "text", "libvirt", "sysfs", *COLUMNAR_FORMATS)
ROLES = ("source", "target")

Places = Sequence[int | str | None] | None
Others = list[tuple[Any, Any]]  # records of the role not kept, with their places

_SNIFF_BYTES = 1 << 16
# The first meaningful line of a SELF/COMPATIBLE text: a comment, a header, or key=value.
_TEXT_START = re.compile(rb"\s*(?:#|(?:SELF|COMPATIBLE|DEVICE)\s*:|[^\s=#\"{}\[\]]+\s*=)", re.IGNORECASE)


def read_path(
    path: str | Path,
    input_format: str | None = None,
    *,
    role: str | None = None,
    host: str = "",
    on_error: OnError | None = None,
    others: Others | None = None,
) -> tuple[list[Any], Places]:
    """The records of a file, a directory of files, or a sysfs tree.

    ``host`` sets the host of what a libvirt or sysfs input describes. With
    ``on_error(raw, error)``, a record that cannot be read is handed to it and
    reading goes on (where the format allows: a JSON Lines line, a DEVICE:
    block, a libvirt device or mdev type, a sysfs device or type); a file that
    cannot be read at all is still an error. With ``role``, what the input
    describes for the other role is read too, and put into ``others`` (records
    and places) when given, for the caller to validate.
    """
    check_options(path, input_format, role)
    if str(path) != STDIN and Path(path).is_dir():
        path = Path(path)
        if input_format == "sysfs" or (input_format is None and is_sysfs_root(path)):
            return read_sysfs(path, host=host, role=role, on_error=on_error, others=others)
        return _read_directory(path, input_format, role, host, on_error, others)
    data = read_file(path, input_format)
    return read_data(data, Path(input_name(path)), input_format, role=role, host=host, on_error=on_error, others=others)


def check_options(path: str | Path, input_format: str | None, role: str | None) -> None:
    if input_format is not None and input_format not in FORMATS:
        raise InputError(f"unknown input format {input_format!r} (expected {', '.join(FORMATS)})", file=input_name(path))
    if role is not None and role not in ROLES:
        raise InputError(f"unknown role {role!r} (expected {', '.join(ROLES)})", file=input_name(path))


def read_file(
    path: str | Path, input_format: str | None = None, *, in_directory: bool = False, stages: Stages = SILENT
) -> bytes:
    """The bytes of one input file, read once (see :func:`fastmatch.files.read_input`): XML and
    JSON arrays may be one long line, the other formats may not. A file of a directory must be
    a regular file: a FIFO there would block, a device never end."""
    line_limit = {"libvirt": False, "text": True, "parquet": False, "arrow": False}.get(input_format or "")
    return read_input(path, line_limit=line_limit, regular_only=in_directory, stages=stages)


def read_data(
    data: bytes,
    path: Path,
    input_format: str | None = None,
    *,
    role: str | None = None,
    host: str = "",
    on_error: OnError | None = None,
    others: Others | None = None,
) -> tuple[list[Any], Places]:
    """The records of one file's bytes, read already (``path`` names it in messages)."""
    if input_format == "sysfs":
        raise InputError("a sysfs tree is a directory", file=str(path))
    input_format = input_format or detect_format(data)
    if input_format == "libvirt":
        from .libvirt import Document, read_libvirt  # (see read_libvirt_paths)

        return read_libvirt([Document(data, path)], host=host, role=role, on_error=on_error, others=others)
    if input_format == "text":
        return read_text(data, path, on_error=on_error)
    if input_format in COLUMNAR_FORMATS:
        return read_columnar(data, str(path), input_format, on_error=on_error)
    return read_json(data, path, on_error=on_error)


def read_libvirt_paths(
    paths: list[str], *, role: str | None = None, host: str = "", on_error: OnError | None = None, others: Others | None = None
) -> tuple[list[Any], Places]:
    """libvirt XML files and directories of them, read as one input; places name each file.

    The XML reader is imported where XML is met, here and in the two readers above: with its
    parsers (xml.etree, defusedxml) it took 14 ms of the start of every command."""
    from .libvirt import Document, read_libvirt

    documents = []
    for path in map(Path, paths):
        files = _directory_files(path) if path.is_dir() else [path]
        documents += [Document(read_file(file, "libvirt", in_directory=path.is_dir()), file, str(file)) for file in files]
    return read_libvirt(documents, host=host, role=role, on_error=on_error, others=others)


def detect_format(data: bytes) -> str:
    """``parquet`` or ``arrow`` by their magic numbers, ``libvirt`` for XML, ``text`` for
    SELF/COMPATIBLE text, else ``json`` (whose errors then say what is wrong)."""
    columnar = columnar_format(data)
    if columnar is not None:
        return columnar
    start = data.lstrip()[:1]
    if start == b"<":
        return "libvirt"
    if start in (b"{", b"[", b""):
        return "json"
    return "text" if _TEXT_START.match(data) else "json"


def _read_directory(
    directory: Path, input_format: str | None, role: str | None, host: str, on_error: OnError | None, others: Others | None
) -> tuple[list[Any], Places]:
    """Every file of a directory in name order, each in its own format.

    The XML files are one input, so that an mdev finds its parent in another
    file; their records come together, where the first XML file is.
    """
    entries = _directory_files(directory)
    _check_one_side(directory, entries, role)
    files = [(entry, read_file(entry, input_format, in_directory=True)) for entry in entries]
    formats = [input_format or detect_format(data) for _, data in files]
    from .libvirt import Document, read_libvirt  # (see read_libvirt_paths)

    documents = [Document(data, entry, entry.name) for (entry, data), fmt in zip(files, formats) if fmt == "libvirt"]
    records: list[Any] = []
    places: list[int | str | None] = []
    for (entry, data), fmt in zip(files, formats):
        if fmt == "libvirt":
            if entry == documents[0].path:
                xml_records, xml_places = read_libvirt(documents, host=host, role=role, on_error=on_error, others=others)
                records += xml_records
                places += xml_places
            continue
        found: list[Any]
        where: Places
        if fmt in COLUMNAR_FORMATS:
            found, where = read_columnar(data, str(entry), fmt, on_error=on_error)
        else:
            reader = read_text if fmt == "text" else read_json
            found, where = reader(data, entry, on_error=on_error)
        records += found
        places += [rebase(place, entry.name) for place in where or [None] * len(found)]
    return records, places


# File names (before their first dot) that say which side a file of devices holds: what
# `generate` and `collect -o DIR` write, and what people call such files.
_SIDE_NAMES = {"source": "source", "sources": "source", "target": "target", "targets": "target"}


def _check_one_side(directory: Path, entries: list[Path], role: str | None) -> None:
    """A directory input is one side of a match: one that holds a sources file and a targets
    file (``generate``'s output folder) would be read as one fleet, both files as one side;
    and the sources of a match are not in a file named for targets (nor the other way round)."""
    sides: dict[str, list[str]] = {"source": [], "target": []}
    for entry in entries:
        side = _SIDE_NAMES.get(entry.name.split(".", 1)[0].lower())
        if side is not None:
            sides[side].append(entry.name)
    if sides["source"] and sides["target"]:
        raise InputError(
            f"holds both sources ({', '.join(sides['source'])}) and targets ({', '.join(sides['target'])}): "
            "a directory input is one side of a match; give the files themselves "
            f"(e.g. {directory / sides['source'][0]} {directory / sides['target'][0]})",
            file=str(directory),
        )
    other = {"source": "target", "target": "source"}.get(role or "")
    if other is not None and sides[other]:
        raise InputError(
            f"is read for the {role}s but holds {other}s ({', '.join(sides[other])}); "
            f"give a directory or file of {role}s",
            file=str(directory),
        )


def _directory_files(directory: Path) -> list[Path]:
    """The files of a directory in name order, hidden ones aside; a subdirectory is an error."""
    try:
        entries = sorted(entry for entry in directory.iterdir() if not entry.name.startswith("."))
    except OSError as exc:
        raise InputError(f"cannot list: {exc.strerror}", file=str(directory)) from None
    for entry in entries:
        if entry.is_dir():
            raise InputError(
                f"holds a directory {entry.name!r}: a directory of device files holds files only "
                "(or is a sysfs tree, with class/mdev_bus or bus/mdev/devices)",
                file=str(directory),
            )
    return entries
