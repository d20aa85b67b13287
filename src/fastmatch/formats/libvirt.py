"""libvirt node-device XML (``virsh nodedev-dumpxml``), read through defusedxml.

A file holds one ``<device>``, several written one after another (a loop over
``virsh nodedev-dumpxml``), or several under any root element. Several files
read together are one input: an mdev finds its parent in any of them.

- A ``<device>`` with ``<capability type='mdev'>`` is a **source**: its id is
  its UUID, ``mdev_type`` its ``<type id=...>``, each ``<attr name= value=>``
  one more attribute; ``device_api``, ``device_id`` and ``vendor_driver`` come
  from its parent when the parent is in the same input.
- Each ``<type>`` under ``<capability type='mdev_types'>`` of a PCI, CSS or
  AP-matrix parent is a **target**: id ``<parent>/<type id>`` (with
  ``<host>/`` in front when a host is given), ``mdev_type``, ``device_api``
  (``deviceAPI``), ``device_id``, ``vendor_driver``, and ``availableInstances``
  as its capacity.

The parent in a target's id is the device's kernel name, as sysfs names it, so
that ``collect --sysfs`` and ``collect --libvirt-xml`` give one device one id:
a PCI parent's address (``0000:00:02.0``, from the capability's domain, bus,
slot and function; libvirt's own name is ``pci_0000_00_02_0``), else the last
part of its ``<path>`` (``0.0.0052`` for a subchannel, ``matrix`` for the AP
matrix), else its libvirt ``<name>``.

``device_id`` is the parent's PCI vendor and product ids as 8 lowercase hex
digits (``8086591d``), as in the upstream proposal. Other devices (USB, net,
the ``computer`` root, ...) are not mediated devices and are passed over.
Errors name the file, the line and the element path.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Sequence
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, tostring
from xml.parsers import expat

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from ..errors import FieldPlace, InputError, join_place, with_fields
from ..values import describe
from .guards import OnError, build_each, decode_utf8, keep_role, parse_count, parse_pci_id

# libvirt's node-device XML is five levels deep; deeper documents are refused
# while they are parsed, before they can cost anything.
MAX_XML_DEPTH = 32
PARENT_CAPABILITIES = ("pci", "css", "ap_matrix")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_MDEV_NAME = re.compile(r"mdev_([0-9a-fA-F]{8}_[0-9a-fA-F]{4}_[0-9a-fA-F]{4}_[0-9a-fA-F]{4}_[0-9a-fA-F]{12})(?:_|\Z)")
_XML_DECLARATION = re.compile(r"<\?xml\b[^>]*\?>")
_WRAPPER = "<fastmatch-devices>"

Record = dict[str, Any]

# A PCI address's parts, as the pci capability holds them, with their largest values.
_PCI_ADDRESS = {"domain": 0xFFFFFFFF, "bus": 0xFF, "slot": 0x1F, "function": 0x7}
_ADDRESS_NUMBER = re.compile(r"[0-9]{1,10}\Z|0[xX][0-9a-fA-F]{1,8}\Z")


def _address_number(text: str, largest: int) -> int | None:
    """A part of a PCI address as libvirt writes it (decimal; 0x hex accepted), or ``None``."""
    if not _ADDRESS_NUMBER.match(text):
        return None
    number = int(text, 16) if text[1:2] in ("x", "X") else int(text)
    return number if number <= largest else None


@dataclass(frozen=True, slots=True)
class Document:
    """One XML file of an input; ``place`` names it in the input's places (``None``: it is the input)."""

    data: bytes
    path: Path
    place: str | None = None


def read_libvirt(
    documents: Sequence[Document],
    *,
    host: str = "",
    role: str | None = None,
    on_error: OnError | None = None,
    others: list[tuple[Record, Any]] | None = None,
) -> tuple[list[Record], list[int | str | None]]:
    """Sources then targets (``role``: only one of them), and the line (or file and line) each starts on.

    The whole input is read whatever the role: the records of the other role
    are checked too, and put into ``others`` (with their places) when given, for
    the caller to validate. ``on_error(element_xml, error)``, when given, takes
    each device or type that cannot be read, and reading goes on.
    """
    reader = _Reader(host)
    devices = [device for document in documents for device in _parse(document)]
    parents: dict[str, _Node] = {}
    for device in devices:
        names = device.children("name")
        if len(names) == 1:
            parents.setdefault(names[0].text(), device)

    made: dict[str, list[tuple[Callable[[], tuple[Record, int | str | None]], _Node]]] = {
        "source": [(partial(reader.source, d, parents), d) for d in devices if d.children("capability", type="mdev")],
        "target": [(partial(reader.target, d, t), t) for d in devices for t in reader.mdev_types(d)],
    }

    def build(kind: str) -> tuple[list[Record], list[int | str | None]]:
        jobs = [(make, partial(tostring, node.element, encoding="unicode"), None) for make, node in made[kind]]
        built, _ = build_each(jobs, on_error)
        # Each record's place is its element's line, which also says where its values are.
        return [record for record, _ in built], [place for _, place in built]

    return keep_role(build, role, others)


@dataclass(frozen=True, slots=True)
class _Document:
    """A parsed document: its name and place, and the line each of its elements starts on."""

    name: str
    place: str | None
    lines: dict[Element, int]


@dataclass(frozen=True, slots=True)
class _Node:
    """An element and its path from the document root, for error messages."""

    element: Element
    path: str
    document: _Document

    @property
    def line(self) -> int | None:
        return self.document.lines.get(self.element)

    @property
    def place(self) -> int | str | None:
        """Where the element is in the input: its line, or its file and line."""
        return self.line if self.document.place is None else join_place(self.document.place, self.line)

    def children(self, tag: str, **attributes: str) -> list["_Node"]:
        found = [
            child for child in self.element
            if child.tag == tag and all(child.get(k) == v for k, v in attributes.items())
        ]
        if attributes:
            predicate = "".join(f"[@{k}='{v}']" for k, v in attributes.items())
            return [_Node(child, f"{self.path}/{tag}{predicate}", self.document) for child in found]
        if len(found) == 1:
            return [_Node(found[0], f"{self.path}/{tag}", self.document)]
        return [_Node(child, f"{self.path}/{tag}[{k}]", self.document) for k, child in enumerate(found, start=1)]

    def child(self, tag: str, **attributes: str) -> "_Node | None":
        """The one child with this tag (and attributes), or ``None``; several are an error."""
        found = self.children(tag, **attributes)
        if len(found) > 1:
            raise _Duplicate(found[1])
        return found[0] if found else None

    def text(self) -> str:
        return (self.element.text or "").strip()


class _Duplicate(Exception):
    """A second element where libvirt writes one; the reader turns it into an InputError."""

    def __init__(self, node: _Node) -> None:
        self.node = node


class _TooDeep(Exception):
    pass


class _LocatingBuilder(TreeBuilder):
    """Builds the tree, remembers the line each element starts on, and refuses deep nesting."""

    def __init__(self) -> None:
        super().__init__()
        self.expat: Any = None  # the parser's expat object, set once the parser exists
        self.lines: dict[Element, int] = {}
        self.depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        if self.depth > MAX_XML_DEPTH:
            raise _TooDeep()
        element = super().start(tag, attrs)
        self.lines[element] = self.expat.CurrentLineNumber
        return element

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return super().end(tag)


class _Reader:
    """Builds the records of an input's devices; ``host`` goes into each one."""

    def __init__(self, host: str) -> None:
        self.host = host
        # Each parent's types, found once: every mdev looks up its parent's (4,000 mdevs
        # of one parent with 4,000 types would otherwise cost 16 million steps).
        self._types: dict[Element, dict[str | None, _Node]] = {}

    # -- errors and lookups --------------------------------------------------------------
    def fail(self, message: str, node: _Node, record: str | None = None, field: str | None = None) -> NoReturn:
        raise InputError(f"{message} (at {node.path})", file=node.document.name, line=node.line, record=record, field=field)

    def one(self, node: _Node, tag: str, record: str | None, **attributes: str) -> _Node | None:
        try:
            return node.child(tag, **attributes)
        except _Duplicate as exc:
            self.fail(f"a second <{tag}> where one is expected", exc.node, record)

    # -- devices -------------------------------------------------------------------------
    def device_name(self, device: _Node) -> str | None:
        name = self.one(device, "name", None)
        return name.text() if name is not None else None

    def source(self, device: _Node, parents: dict[str, _Node]) -> tuple[Record, int | str | None]:
        name = self.device_name(device) or ""
        by_name = f"'{name}'" if name else None  # until the UUID is known, errors name the device so
        capability = self.one(device, "capability", by_name, type="mdev")
        assert capability is not None, "the sources are the devices with an mdev capability"
        uuid = self._uuid(name, capability, device, by_name)
        label = f"'{uuid}'"
        type_node = self.one(capability, "type", label)
        if type_node is None or not type_node.element.get("id"):
            self.fail("an mdev needs <type id=...>", type_node or capability, label, "self.mdev_type")
        mdev_type = type_node.element.get("id", "")
        attributes: dict[str, str] = {"mdev_type": mdev_type}
        fields = {"self.mdev_type": FieldPlace(type_node.place, type_node.path)}
        parent_node = self.one(device, "parent", label)
        parent = parents.get(parent_node.text()) if parent_node is not None else None
        if parent is not None:
            attributes.update(self._parent_attributes(parent, label))
            type_entry = self._types_by_id(parent).get(mdev_type)
            if type_entry is not None:
                device_api = self._device_api(type_entry, label)
                if device_api:
                    attributes["device_api"] = device_api
        for attr in capability.children("attr"):
            key, value = attr.element.get("name"), attr.element.get("value")
            if not key or value is None:
                self.fail("an <attr> needs a name and a value", attr, label, "self")
            if key in attributes:
                self.fail(f"<attr name='{key}'> repeats an attribute the device already has", attr, label, f"self.{key}")
            attributes[key] = value
            fields[f"self.{key}"] = FieldPlace(attr.place, attr.path)
        record: Record = {"id": uuid, "self": attributes}
        if self.host:
            record["host"] = self.host
        return record, with_fields(device.place, fields)

    def _types_by_id(self, parent: _Node) -> dict[str | None, _Node]:
        """A parent's types by id (the first of an id: a second one is its own target's error)."""
        if parent.element not in self._types:
            by_id: dict[str | None, _Node] = {}
            for entry in self.mdev_types(parent):
                by_id.setdefault(entry.element.get("id"), entry)
            self._types[parent.element] = by_id
        return self._types[parent.element]

    def mdev_types(self, device: _Node) -> list[_Node]:
        """The ``<type>`` entries of a parent's ``mdev_types`` capabilities."""
        types = []
        for kind in PARENT_CAPABILITIES:
            for capability in device.children("capability", type=kind):
                for mdev_types in capability.children("capability", type="mdev_types"):
                    for entry in mdev_types.children("type"):
                        # Named by id in error messages, which is how people find a type.
                        type_id = entry.element.get("id")
                        path = f"{mdev_types.path}/type[@id='{type_id}']" if type_id else entry.path
                        types.append(_Node(entry.element, path, entry.document))
        return types

    def target(self, device: _Node, type_entry: _Node) -> tuple[Record, int | str | None]:
        parent_name = self.device_name(device)
        type_id = type_entry.element.get("id")
        if not parent_name:
            self.fail("a <device> with mdev types needs a <name>", device)
        if not type_id:
            self.fail("an mdev <type> needs an id", type_entry, f"'{parent_name}'", "self.mdev_type")
        parent = self._kernel_name(device, parent_name)
        device_id = f"{self.host}/{parent}/{type_id}" if self.host else f"{parent}/{type_id}"
        label = f"'{device_id}'"
        attributes = {"mdev_type": type_id, **self._parent_attributes(device, label)}
        device_api = self._device_api(type_entry, label)
        if device_api:
            attributes["device_api"] = device_api
        available = self.one(type_entry, "availableInstances", label)
        if available is None:
            self.fail("an mdev <type> needs <availableInstances>", type_entry, label, "capacity")
        capacity = parse_count(available.text())
        if capacity is None:
            self.fail(f"expected an integer >= 0, got {describe(available.text())}", available, label, "capacity")
        record: Record = {"id": device_id, "self": attributes, "capacity": capacity}
        if self.host:
            record["host"] = self.host
        return record, with_fields(type_entry.place, {"self.mdev_type": FieldPlace(type_entry.place, type_entry.path)})

    def _kernel_name(self, device: _Node, name: str) -> str:
        """The parent's name as sysfs has it (see the module's docstring)."""
        label = f"'{name}'"
        pci = self.one(device, "capability", label, type="pci")
        if pci is not None:
            fields = [node for part in _PCI_ADDRESS if (node := self.one(pci, part, label)) is not None]
            if len(fields) == len(_PCI_ADDRESS):
                numbers = []
                for node, (part, largest) in zip(fields, _PCI_ADDRESS.items()):
                    number = _address_number(node.text(), largest)
                    if number is None:
                        self.fail(f"expected a PCI {part} number from 0 to {largest:#x}, got {describe(node.text())}", node, label)
                    numbers.append(number)
                domain, bus, slot, function = numbers
                return f"{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"
        path = self.one(device, "path", label)
        kernel_name = path.text().rstrip("/").rpartition("/")[2] if path is not None else ""
        return kernel_name or name

    def _uuid(self, name: str, capability: _Node, device: _Node, label: str | None) -> str:
        uuid_node = self.one(capability, "uuid", label)
        if uuid_node is not None:
            if not _UUID.match(uuid_node.text()):
                self.fail(f"invalid UUID {describe(uuid_node.text())}", uuid_node, label, "id")
            return uuid_node.text().lower()
        # Older libvirt writes the UUID only in the name: mdev_<uuid with underscores>[_<parent>].
        match = _MDEV_NAME.match(name)
        if match is None:
            self.fail(f"an mdev needs a <uuid> or a name mdev_<uuid>, got name {describe(name)}", device, label, "id")
        return match.group(1).replace("_", "-").lower()

    def _device_api(self, type_entry: _Node, label: str) -> str:
        node = self.one(type_entry, "deviceAPI", label)
        return node.text() if node is not None else ""

    def _parent_attributes(self, parent: _Node, label: str) -> dict[str, str]:
        """``device_id`` (PCI parents) and ``vendor_driver`` of a parent device."""
        attributes = {}
        pci = self.one(parent, "capability", label, type="pci")
        if pci is not None:
            vendor, product = self.one(pci, "vendor", label), self.one(pci, "product", label)
            if vendor is not None and product is not None:
                attributes["device_id"] = self._hex_id(vendor, label) + self._hex_id(product, label)
        driver = self.one(parent, "driver", label)
        driver_name = self.one(driver, "name", label) if driver is not None else None
        if driver_name is not None and driver_name.text():
            attributes["vendor_driver"] = driver_name.text()
        return attributes

    def _hex_id(self, node: _Node, label: str) -> str:
        value = node.element.get("id", "")
        pci_id = parse_pci_id(value)
        if pci_id is None:
            self.fail(f"expected a 16-bit hex id such as 0x8086, got {describe(value)}", node, label, "self.device_id")
        return pci_id


def _parse(document: Document) -> list[_Node]:
    """The ``<device>`` elements of a document, in document order."""
    name = str(document.path)
    text = decode_utf8(document.data, name)
    try:
        root, lines = _build(text, name)
        wrapped = False
    except ParseError as exc:
        if exc.code != expat.errors.codes[expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]:
            raise _syntax_error(exc, name, None) from None
        # Several documents one after another: read them again under one synthetic root,
        # opened on the first line (after an XML declaration) so line numbers stay true.
        declaration = _XML_DECLARATION.match(text)
        at = declaration.end() if declaration else 0
        try:
            root, lines = _build(f"{text[:at]}{_WRAPPER}{text[at:]}</{_WRAPPER[1:]}", name)
        except ParseError as again:
            raise _syntax_error(again, name, at) from None
        _refuse_text_between(root, lines, text, name)
        wrapped = True
    parsed = _Document(name, document.place, lines)
    if not wrapped and root.tag == "device":
        return [_Node(root, "/device", parsed)]
    return list(_devices_under(_Node(root, "" if wrapped else f"/{root.tag}", parsed)))


def _build(text: str, name: str) -> tuple[Element, dict[Element, int]]:
    """The document's root element and the line each element starts on."""
    builder = _LocatingBuilder()
    parser = defusedxml.ElementTree.XMLParser(target=builder, forbid_dtd=True)
    builder.expat = parser.parser
    try:
        parser.feed(text)
        root = parser.close()
    except DefusedXmlException:
        raise InputError(
            "a DTD (<!DOCTYPE ...>) is not allowed: libvirt never writes one, and its entities "
            "could expand without bound or read other files",
            file=name, line=parser.parser.CurrentLineNumber,
        ) from None
    except _TooDeep:
        raise InputError(f"XML nested more than {MAX_XML_DEPTH} elements deep", file=name, line=parser.parser.CurrentLineNumber) from None
    return root, builder.lines


def _refuse_text_between(root: Element, lines: dict[Element, int], text: str, name: str) -> None:
    """Text between documents written one after another (a message caught in a dump) is not libvirt's XML."""
    children = list(root)
    for k, between in enumerate([root.text, *(child.tail for child in children)]):
        if between and between.strip():
            # The text ends where the next document starts (or where the file ends), less the blank lines after it.
            end_line = lines[children[k]] if k < len(children) else text.count("\n") + 1
            line = end_line - between[len(between.rstrip()) :].count("\n")
            raise InputError("text between two documents, outside any element", file=name, line=line)


def _syntax_error(exc: ParseError, name: str, wrapper_at: int | None) -> InputError:
    line, column = exc.position
    if wrapper_at is not None and line == 1 and column >= wrapper_at:
        column -= len(_WRAPPER)  # the synthetic root's tag is not in the file
    return InputError(f"invalid XML: {expat.ErrorString(exc.code)} (column {column + 1})", file=name, line=line)


def _devices_under(node: _Node) -> Iterator[_Node]:
    """The ``<device>`` elements below ``node``, in document order."""
    counts = Counter(child.tag for child in node.element)
    seen: Counter[str] = Counter()
    for child in node.element:
        seen[child.tag] += 1
        path = f"{node.path}/{child.tag}" + (f"[{seen[child.tag]}]" if counts[child.tag] > 1 else "")
        if child.tag == "device":
            yield _Node(child, path, node.document)
        else:
            yield from _devices_under(_Node(child, path, node.document))

