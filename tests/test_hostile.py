"""Hostile input, for every reader: each case gives one FastmatchError with the exact words below.

Every expected message names the file (``{path}``, or ``{root}`` for a sysfs
tree), the line or element path or sysfs path, the record and the field
where they exist. Each case is run twice: through :func:`fastmatch.load`,
and through the command line, where it must be one line and exit status 2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

import fastmatch
from fastmatch.cli import main
from fastmatch.formats.guards import MAX_LINE_BYTES
from sysfs_tree import GVT_UUID, gvt_host

LIBVIRT = Path(__file__).parent / "data" / "libvirt"
GVT_PARENT = (LIBVIRT / "pci_0000_00_02_0.xml").read_text()
GVT_MDEV = (LIBVIRT / "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01.xml").read_text()
V5_4 = "class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4"
TYPE_PATH = "/device/capability[@type='pci']/capability[@type='mdev_types']/type[@id='i915-GVTg_V5_4']"
VERSION_SYNTAX = "(expected [v]N(.N)*[-prerelease][+build])"


@dataclass(frozen=True)
class Case:
    name: str  # the file's name (its suffix says nothing to the readers), or "sysfs"
    content: bytes | Callable[[Path], None]  # the file's bytes, or what builds a sysfs tree under a root
    expected: str  # the message, or its start when it ends with "..."


def jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def rec(record_id: str = "a", **self_values) -> dict:
    return {"id": record_id, "self": self_values}


def text(source: str) -> bytes:
    return source.encode()


def with_compatible(*records, **self_values) -> dict:
    return {"id": "t", "self": self_values, "compatible": list(records)}


def sysfs(change: Callable[[Path], None]) -> Callable[[Path], None]:
    """A GVT-g host with migration attributes, then ``change(root)``."""
    def build(root: Path) -> None:
        gvt_host(root)
        change(root)
    return build


def write_file(relative: str, content: bytes | str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / relative
        if path.is_symlink() or path.exists():
            os.unlink(path)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return change


def replaced(old: str, new: str, document: str = GVT_PARENT) -> bytes:
    assert old in document
    return document.replace(old, new).encode()


LONG = "x" * (MAX_LINE_BYTES + 10)
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{k} "{("&lol%s;" % (k - 1 if k > 1 else "")) * 10}">\n' for k in range(1, 10))
    + "]>\n<device>&lol9;</device>\n"
)

CASES: dict[str, Case] = {
    # -- fleet JSON Lines, JSON arrays, seed documents ---------------------------------------
    "jsonl-syntax": Case("f.jsonl", jsonl(rec(), '{"id": "b", "self": {]}'), "{path}:2: invalid JSON: Expecting property name enclosed in double quotes (column 22)"),
    "jsonl-trailing-comma": Case("f.jsonl", jsonl(rec(), '{"id": "b", "self": {}},'), "{path}:2: invalid JSON: Extra data (column 24)"),
    "jsonl-not-an-object": Case("f.jsonl", jsonl(rec(), "[1, 2]"), "{path}:2: record #1: a device record is a JSON object, got list"),
    "string-given-a-number": Case("f.jsonl", jsonl(rec(mdev_type=5)), "{path}:1: record 'a': field 'self.mdev_type': expected a string, got 5"),
    "string-given-a-bool": Case("f.jsonl", jsonl(rec(vendor_driver=True)), "{path}:1: record 'a': field 'self.vendor_driver': expected a string, got True"),
    "int-not-a-number": Case("f.jsonl", jsonl(rec(aggregator="two")), "{path}:1: record 'a': field 'self.aggregator': invalid integer 'two'"),
    "int-given-a-float": Case("f.jsonl", jsonl(rec(aggregator=1.5)), "{path}:1: record 'a': field 'self.aggregator': expected an integer, got 1.5"),
    "int-nan": Case("f.jsonl", jsonl('{"id": "a", "self": {"aggregator": NaN}}'), "{path}:1: record 'a': field 'self.aggregator': expected an integer, got nan"),
    "int-of-thousands-of-digits": Case("f.jsonl", jsonl(rec(), '{"id": "b", "self": {}, "capacity": ' + "9" * 5000 + "}"), "{path}:2: invalid JSON: a number of thousands of digits"),
    "int-string-of-thousands-of-digits": Case("f.jsonl", jsonl(rec(aggregator="0" * 5000 + "9" * 5000)), "{path}:1: record 'a': field 'self.aggregator': integer '" + "0" * 76 + "... does not fit in 64 bits"),
    "seed-number-of-thousands-of-digits": Case("dev.json", text('{"self": [{}],\n "compatible": [{"aggregator": ' + "1" * 5000 + '}]}'), "{path}:2: invalid JSON: a number of thousands of digits"),
    "text-version-of-thousands-of-digits": Case("dev.txt", text("SELF:\n software_version=1." + "2" * 5000 + "\n"), "{path}:2: record 'dev': field 'self.software_version': version '1." + "2" * 74 + "... has a component beyond 64 bits"),
    "template-number-of-thousands-of-digits": Case("dev.txt", text("SELF:\nCOMPATIBLE:\n aggregator={v:int:1}+" + "3" * 5000 + "\n"), "{path}:3: record 'dev': field 'compatible[0].aggregator': integer '" + "3" * 76 + "... in '{{v:int:1}}+" + "3" * 66 + "... does not fit in 64 bits"),
    "int-beyond-64-bits": Case("f.jsonl", jsonl(rec(aggregator=2**64)), "{path}:1: record 'a': field 'self.aggregator': integer 18446744073709551616 does not fit in 64 bits"),
    "int-string-beyond-64-bits": Case("f.jsonl", jsonl(rec(aggregator="0x1" + "0" * 16)), "{path}:1: record 'a': field 'self.aggregator': integer '0x10000000000000000' does not fit in 64 bits"),
    "version-plus": Case("f.jsonl", jsonl(rec(software_version="v2+")), f"{{path}}:1: record 'a': field 'self.software_version': invalid version 'v2+' {VERSION_SYNTAX}"),
    "version-range": Case("f.jsonl", jsonl(rec(software_version=">=1.0")), f"{{path}}:1: record 'a': field 'self.software_version': invalid version '>=1.0' {VERSION_SYNTAX}"),
    "version-double-dot": Case("f.jsonl", jsonl(rec(interface_version="1..2")), f"{{path}}:1: record 'a': field 'self.software_version': invalid version '1..2' {VERSION_SYNTAX}"),
    "version-not-a-string": Case("f.jsonl", jsonl(rec(software_version=[1])), "{path}:1: record 'a': field 'self.software_version': expected a version string, got [1]"),
    "set-empty-item": Case("f.jsonl", jsonl(rec(pv_mode="none++ppgtt")), "{path}:1: record 'a': field 'self.pv_mode': set 'none++ppgtt' has an empty item"),
    "set-of-numbers": Case("f.jsonl", jsonl(rec(pv_mode=[1, 2])), "{path}:1: record 'a': field 'self.pv_mode': expected a set of strings, got [1, 2]"),
    "unknown-top-level-key": Case("f.jsonl", jsonl({"id": "a", "self": {}, "colour": "red"}), "{path}:1: record 'a': field 'colour': unknown key 'colour' (expected id, host, vm, self, compatible, capacity, migration_version, migratable)"),
    "duplicate-id": Case("f.jsonl", jsonl(rec(), rec("b"), rec()), "{path}:3: record 'a': field 'id': duplicate id 'a' (first seen in record #0)"),
    "missing-id": Case("f.jsonl", jsonl({"self": {}}), "{path}:1: record #0: field 'id': a device needs a non-empty string id"),
    "missing-self": Case("f.jsonl", jsonl({"id": "a"}), "{path}:1: record 'a': field 'self': a device needs a 'self' object"),
    "self-not-an-object": Case("f.jsonl", jsonl({"id": "a", "self": ["x"]}), "{path}:1: record 'a': field 'self': expected an object of attributes, got list"),
    "alias-beside-its-name": Case("f.jsonl", jsonl(rec(type="x", mdev_type="y")), "{path}:1: record 'a': field 'self': self holds both 'type' and 'mdev_type', which name the same attribute 'mdev_type'"),
    "two-aliases": Case("f.jsonl", jsonl(rec(pciid="8086591d", pci_id="8086591d")), "{path}:1: record 'a': field 'self': self holds both 'pciid' and 'pci_id', which name the same attribute 'device_id'"),
    "aliases-in-a-record": Case("f.jsonl", jsonl(with_compatible({"driver": "a", "vendor_driver": "b"})), "{path}:1: record 't': field 'compatible[0]': compatible[0] holds both 'driver' and 'vendor_driver', which name the same attribute 'vendor_driver'"),
    "capacity-negative": Case("f.jsonl", jsonl({"id": "a", "self": {}, "capacity": -1}), "{path}:1: record 'a': field 'capacity': expected an integer >= 0, got -1"),
    "capacity-string": Case("f.jsonl", jsonl({"id": "a", "self": {}, "capacity": "3"}), "{path}:1: record 'a': field 'capacity': expected an integer >= 0, got '3'"),
    "migratable-string": Case("f.jsonl", jsonl({"id": "a", "self": {}, "migratable": "yes"}), "{path}:1: record 'a': field 'migratable': expected true or false, got 'yes'"),
    "migration-version-number": Case("f.jsonl", jsonl({"id": "a", "self": {}, "migration_version": 5}), "{path}:1: record 'a': field 'migration_version': expected a string, got 5"),
    "compatible-not-a-list": Case("f.jsonl", jsonl({"id": "a", "self": {}, "compatible": {"a": "1"}}), "{path}:1: record 'a': field 'compatible': expected a list of records"),
    "template-in-self": Case("f.jsonl", jsonl(rec(mdev_type="V5_{n:int:1,2}")), "{path}:1: record 'a': field 'self.mdev_type': templates appear only in COMPATIBLE records, never in SELF"),
    "template-unbalanced-open": Case("f.jsonl", jsonl(with_compatible({"mdev_type": "V5_{n:int:1,2"})), "{path}:1: record 't': field 'compatible[0].mdev_type': unbalanced '{{' at column 4 in 'V5_{{n:int:1,2'"),
    "template-unbalanced-close": Case("f.jsonl", jsonl(with_compatible({"mdev_type": "V5_n}"})), "{path}:1: record 't': field 'compatible[0].mdev_type': unbalanced '}}' at column 5 in 'V5_n}}'"),
    "template-undeclared": Case("f.jsonl", jsonl(with_compatible({"aggregator": "{x}/2"})), "{path}:1: record 't': field 'compatible[0].aggregator': variable 'x' is not declared"),
    "template-redeclared": Case("f.jsonl", jsonl(with_compatible({"mdev_type": "V5_{n:int:1,2}", "aggregator": "{n:int:3}"})), "{path}:1: record 't': field 'compatible[0].aggregator': variable 'n' is declared twice"),
    "template-expression": Case("f.jsonl", jsonl(with_compatible({"mdev_type": "V5_{n:int:1,2}", "aggregator": "{n}//2"})), "{path}:1: record 't': field 'compatible[0].aggregator': expression '{{n}}//2' does not parse"),
    "template-deep-parentheses": Case("f.jsonl", jsonl(with_compatible({"aggregator": "{v:int:2}" + "*(1" * 100 + ")" * 100})), "{path}:1: record 't': field 'compatible[0].aggregator': expression '{{v:int:2}}*(1*(1*(1*(1*(1*(1*(1*(1*(1*(1*'... nests more than 32 levels"),
    "template-many-signs": Case("dev.txt", text("SELF:\nCOMPATIBLE:\n  aggregator=" + "-" * 900 + "{v:int:1}\n"), "{path}:3: record 'dev': field 'compatible[0].aggregator': expression '----------------------------------------'... nests more than 32 levels"),
    "template-combinations": Case("f.jsonl", jsonl(with_compatible({"mdev_type": "{a:int:" + ",".join(map(str, range(65))) + "}", "aggregator": "{b:int:" + ",".join(map(str, range(64))) + "}"})), "{path}:1: record 't': field 'compatible[0]': the record has 4160 combinations of its variables, more than 4096"),
    "template-int-beyond-64-bits": Case("f.jsonl", jsonl(with_compatible({"aggregator": "{n:int:99999999999999999999}"})), "{path}:1: record 't': field 'compatible[0].aggregator': variable 'n': integer '99999999999999999999' does not fit in 64 bits"),
    "template-invalid-version": Case("f.jsonl", jsonl(with_compatible({"software_version": "{v:string:1.0,abc}"})), "{path}:1: record 't': field 'compatible[0].software_version': invalid version 'abc' {VERSION_SYNTAX} (with v='abc')".replace("{VERSION_SYNTAX}", VERSION_SYNTAX)),
    "template-combinations-per-device": Case("f.jsonl", jsonl(with_compatible(*[{"mdev_type": "{a:int:" + ",".join(map(str, range(64))) + "}", "aggregator": "{b:int:" + ",".join(map(str, range(64))) + "}"}] * 100)), "{path}:1: record 't': field 'compatible[4]': the record has 4096 combinations of its variables, which would take the device's COMPATIBLE records past the limit of 16384 combinations in all"),
    "text-combinations-per-device": Case("dev.txt", text("SELF:\n" + ("COMPATIBLE:\n mdev_type={a:int:" + ",".join(map(str, range(4096))) + "}\n") * 5), "{path}:10: record 'dev': field 'compatible[4]': the record has 4096 combinations of its variables, which would take the device's COMPATIBLE records past the limit of 16384 combinations in all"),
    "text-bad-value-on-its-own-line": Case("fleet.txt", text("DEVICE: a\nSELF:\n mdev_type=x\nDEVICE: b\nhost=h\nSELF:\n mdev_type=y\n pv_mode=none++ppgtt\n"), "{path}:8: record 'b': field 'self.pv_mode': set 'none++ppgtt' has an empty item"),
    "very-long-line-in-a-huge-line": Case("f.jsonl", jsonl(rec()) + b'{"id": "' + b"x" * (3 * MAX_LINE_BYTES), f"{{path}}:2: line is longer than the limit of {MAX_LINE_BYTES} bytes for one line"),
    "prerelease-of-thousands-of-digits-is-valid-but-not-a-string": Case("f.jsonl", jsonl(rec(software_version="1.0.0-" + "9" * 5000), rec("b", aggregator="x")), "{path}:2: record 'b': field 'self.aggregator': invalid integer 'x'"),
    "record-not-an-object": Case("f.jsonl", jsonl({"id": "t", "self": {}, "compatible": ["x"]}), "{path}:1: record 't': field 'compatible[0]': a COMPATIBLE record is an object, got str"),
    "non-utf8": Case("f.jsonl", jsonl(rec()) + b'{"id": "b\xe9", "self": {}}\n', "{path}:2: not UTF-8 (byte 0xe9 at offset 33)"),
    "unpaired-surrogate": Case("f.jsonl", jsonl(rec(), '{"id": "b\\ud800", "self": {}}'), "{path}:2: a string holds an unpaired surrogate escape (\\ud800), which is not text"),
    "unpaired-surrogate-in-a-key": Case("f.json", text('[{"id": "a", "self": {"\\udfff": "x"}}]'), "{path}:1: a string holds an unpaired surrogate escape (\\udfff), which is not text"),
    "byte-order-mark": Case("f.jsonl", b"\xef\xbb\xbf" + jsonl(rec()), "{path}:1: starts with a byte-order mark (U+FEFF); save the file as UTF-8 without one"),
    "utf16": Case("f.jsonl", "\ufeff".encode("utf-16-le") + json.dumps(rec()).encode("utf-16-le"), "{path}:1: is UTF-16 (it starts with a UTF-16 byte-order mark); fastmatch reads UTF-8"),
    "very-long-line": Case("f.jsonl", jsonl(rec(), '{"id": "' + LONG), f"{{path}}:2: line is longer than the limit of {MAX_LINE_BYTES} bytes for one line"),
    "nested-deeply": Case("f.jsonl", jsonl('{"id": "a", "self": {"x": ' + "[" * 100 + "]" * 100 + "}}"), "{path}:1: JSON nested too deeply (more than 32 levels)"),
    "nested-beyond-recursion": Case("f.jsonl", jsonl('{"id": "a", "self": ' + "[" * 100_000 + "]" * 100_000 + "}"), "{path}:1: JSON nested too deeply (more than 32 levels)"),
    "nested-deeply-on-line-3": Case("f.jsonl", jsonl(rec(), rec("b"), '{"id": "c", "self": ' + "[" * 100_000 + "]" * 100_000 + "}"), "{path}:3: JSON nested too deeply (more than 32 levels)"),
    "array-nested-deeply": Case("f.json", text('[\n{"id": "a", "self": {}},\n{"id": "b", "self": ' + "[" * 40 + "]" * 40 + "}\n]"), "{path}:3: JSON nested too deeply (more than 32 levels)"),
    "array-syntax": Case("f.json", text('[\n {"id": "a", "self": {}},\n {"id": "b" "self": {}}\n]\n'), "{path}:3: invalid JSON: Expecting ',' delimiter (column 13)"),
    "seed-unknown-key": Case("dev.json", text('{"self": [{}],\n "colour": "red"}'), "{path}: unknown key 'colour' in a seed document (expected self, compatible)"),
    "seed-bad-value": Case("dev.json", text('{"self": [{"gvt-version": "v1.x"}],\n "compatible": []}'), f"{{path}}: record #0 'dev': field 'self.software_version': invalid version 'v1.x' {VERSION_SYNTAX}"),
    # -- SELF/COMPATIBLE text ----------------------------------------------------------------
    "text-no-equals": Case("dev.txt", text("SELF:\n  mdev_type=x\n  junk here\n"), "{path}:3: record 'dev': expected key=value, a SELF:, COMPATIBLE: or DEVICE: line, or a # comment; found 'junk here'"),
    "text-key-with-space": Case("dev.txt", text("SELF:\n  pv mode=none\n"), "{path}:2: record 'dev': invalid key 'pv mode' (a key is one word without spaces, '=', '#' or '\"')"),
    "text-unterminated-quote": Case("dev.txt", text('SELF:\n  pv_mode="none\n'), "{path}:2: record 'dev': field 'pv_mode': unterminated quoted value"),
    "text-after-quote": Case("dev.txt", text('SELF:\n  pv_mode="none" ppgtt\n'), "{path}:2: record 'dev': field 'pv_mode': unexpected text after the closing quote: 'ppgtt'"),
    "text-header-with-text": Case("dev.txt", text("SELF: mdev_type=x\n"), "{path}:1: record 'dev': nothing may follow SELF: on its line, found 'mdev_type=x'"),
    "text-duplicate-key": Case("dev.txt", text("SELF:\n  pv_mode=none\n  pv_mode=ppgtt\n"), "{path}:3: record 'dev': field 'self.pv_mode': 'pv_mode' is given twice (first on line 2)"),
    "text-second-self": Case("dev.txt", text("SELF:\n a=1\nSELF:\n a=2\n"), "{path}:3: record 'dev': a second SELF: block (the first is on line 1)"),
    "text-no-self": Case("dev.txt", text("COMPATIBLE:\n a=1\n"), "{path}:1: record 'dev': the device has no SELF: block"),
    "text-empty-compatible": Case("dev.txt", text("SELF:\n a=1\nCOMPATIBLE:\n# nothing\n"), "{path}:3: record 'dev': field 'compatible[0]': an empty COMPATIBLE: block (it would accept any device)"),
    "text-unknown-device-key": Case("dev.txt", text("colour=red\nSELF:\n a=1\n"), "{path}:1: record 'dev': field 'colour': unknown device key 'colour' before the SELF: block (expected host, vm, capacity, migration_version, migratable)"),
    "text-capacity": Case("dev.txt", text("capacity=many\nSELF:\n"), "{path}:1: record 'dev': field 'capacity': expected an integer >= 0, got 'many'"),
    "text-capacity-beyond-64-bits": Case("dev.txt", text("capacity=" + "9" * 5000 + "\nSELF:\n"), "{path}:1: record 'dev': field 'capacity': expected an integer >= 0, got '" + "9" * 76 + "..."),
    "text-migratable": Case("dev.txt", text("migratable=maybe\nSELF:\n"), "{path}:1: record 'dev': field 'migratable': expected true or false, got 'maybe'"),
    "text-before-first-device": Case("fleet.txt", text("SELF:\n a=1\nDEVICE: b\nSELF:\n"), "{path}:1: text before the first DEVICE: line (each device starts with DEVICE: <id>)"),
    "text-device-without-id": Case("fleet.txt", text("DEVICE:\nSELF:\n"), "{path}:1: DEVICE: needs an id (DEVICE: <id>)"),
    "text-duplicate-device": Case("fleet.txt", text("DEVICE: a\nSELF:\nDEVICE: b\nSELF:\nDEVICE: a\nSELF:\n"), "{path}:5: record 'a': field 'id': duplicate id 'a' (first seen in record #0)"),
    "text-invalid-version": Case("dev.txt", text("SELF:\n  device_id=8086591d\n  interface_version=abc\n"), f"{{path}}:3: record 'dev': field 'self.software_version': invalid version 'abc' {VERSION_SYNTAX}"),
    "text-colliding-aliases": Case("dev.txt", text("SELF:\n  type=a\n  mdev_type=a\n"), "{path}:1: record 'dev': field 'self': self holds both 'type' and 'mdev_type', which name the same attribute 'mdev_type'"),
    "text-template-in-self": Case("dev.txt", text("SELF:\n  mdev_type=V5_{n:int:1}\n"), "{path}:2: record 'dev': field 'self.mdev_type': templates appear only in COMPATIBLE records, never in SELF"),
    "text-template-undeclared": Case("dev.txt", text("SELF:\nCOMPATIBLE:\n  aggregator={val1}/2\n"), "{path}:3: record 'dev': field 'compatible[0].aggregator': variable 'val1' is not declared"),
    "text-template-unbalanced": Case("dev.txt", text("SELF:\nCOMPATIBLE:\n  mdev_type=V5_{val1:int:1,2\n"), "{path}:3: record 'dev': field 'compatible[0].mdev_type': unbalanced '{{' at column 4 in 'V5_{{val1:int:1,2'"),
    "text-non-utf8": Case("dev.txt", b"SELF:\n  vendor_driver=i9\xff5\n", "{path}:2: not UTF-8 (byte 0xff at offset 24)"),
    "text-byte-order-mark": Case("dev.txt", b"\xef\xbb\xbfSELF:\n", "{path}:1: starts with a byte-order mark (U+FEFF); save the file as UTF-8 without one"),
    "text-joined-byte-order-mark": Case("fleet.txt", text("DEVICE: a\nSELF:\n\ufeffDEVICE: b\nSELF:\n"), "{path}:3: record 'a': a byte-order mark (U+FEFF) inside the text; were two files joined?"),
    "text-very-long-line": Case("dev.txt", text("SELF:\n  mdev_type=" + LONG + "\n"), f"{{path}}:2: line is longer than the limit of {MAX_LINE_BYTES} bytes for one line"),
    # -- libvirt node-device XML -------------------------------------------------------------
    "xml-malformed": Case("n.xml", text("<device>\n  <name>x</nam>\n</device>\n"), "{path}:2: invalid XML: mismatched tag (column 12)"),
    "xml-no-element": Case("n.xml", text("<!-- nothing but a comment -->\n"), "{path}:2: invalid XML: no element found (column 1)"),
    "xml-junk-between-devices": Case("n.xml", text(GVT_MDEV + "junk\n" + GVT_PARENT), "{path}:16: text between two documents, outside any element"),
    "xml-billion-laughs": Case("n.xml", text(BILLION_LAUGHS), "{path}:2: a DTD (<!DOCTYPE ...>) is not allowed: libvirt never writes one, and its entities could expand without bound or read other files"),
    "xml-external-entity": Case("n.xml", text('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<device>&x;</device>\n'), "{path}:2: a DTD (<!DOCTYPE ...>) is not allowed: libvirt never writes one, and its entities could expand without bound or read other files"),
    "xml-undefined-entity": Case("n.xml", text("<device>&x;</device>\n"), "{path}:1: invalid XML: undefined entity (column 9)"),
    "xml-nested-deeply": Case("n.xml", text("<device>\n" + "<a>" * 1000 + "</a>" * 1000 + "\n</device>\n"), "{path}:2: XML nested more than 32 elements deep"),
    "xml-non-utf8": Case("n.xml", b"<device>\n<name>\xe9</name></device>", "{path}:2: not UTF-8 (byte 0xe9 at offset 15)"),
    "xml-byte-order-mark": Case("n.xml", b"\xef\xbb\xbf" + GVT_MDEV.encode(), "{path}:1: starts with a byte-order mark (U+FEFF); save the file as UTF-8 without one"),
    "xml-available-not-a-number": Case("n.xml", replaced("<availableInstances>2<", "<availableInstances>many<"), f"{{path}}:20: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity': expected an integer >= 0, got 'many' (at {TYPE_PATH}/availableInstances)"),
    "xml-available-negative": Case("n.xml", replaced("<availableInstances>2<", "<availableInstances>-1<"), f"{{path}}:20: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity': expected an integer >= 0, got '-1' (at {TYPE_PATH}/availableInstances)"),
    "xml-available-beyond-64-bits": Case("n.xml", replaced("<availableInstances>2<", "<availableInstances>99999999999999999999<"), f"{{path}}:20: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity': expected an integer >= 0, got '99999999999999999999' (at {TYPE_PATH}/availableInstances)"),
    "xml-available-missing": Case("n.xml", replaced("<availableInstances>2</availableInstances>", ""), f"{{path}}:17: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity': an mdev <type> needs <availableInstances> (at {TYPE_PATH})"),
    "xml-type-without-id": Case("n.xml", replaced("<type id='i915-GVTg_V5_4'>", "<type>"), "{path}:17: record 'pci_0000_00_02_0': field 'self.mdev_type': an mdev <type> needs an id (at /device/capability[@type='pci']/capability[@type='mdev_types']/type[1])"),
    "xml-vendor-id": Case("n.xml", replaced("<vendor id='0x8086'>", "<vendor id='intel'>"), "{path}:15: record '0000:00:02.0/i915-GVTg_V5_4': field 'self.device_id': expected a 16-bit hex id such as 0x8086, got 'intel' (at /device/capability[@type='pci']/vendor)"),
    "xml-product-id-too-wide": Case("n.xml", replaced("<product id='0x591d'>", "<product id='0x1591d'>"), "{path}:14: record '0000:00:02.0/i915-GVTg_V5_4': field 'self.device_id': expected a 16-bit hex id such as 0x8086, got '0x1591d' (at /device/capability[@type='pci']/product)"),
    "xml-mdev-without-uuid": Case("n.xml", text("<device>\n<name>mdev_gpu0</name>\n<capability type='mdev'><type id='t'/></capability>\n</device>"), "{path}:1: record 'mdev_gpu0': field 'id': an mdev needs a <uuid> or a name mdev_<uuid>, got name 'mdev_gpu0' (at /device)"),
    "xml-invalid-uuid": Case("n.xml", replaced("<uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid>", "<uuid>not-a-uuid</uuid>", GVT_MDEV), "{path}:10: record 'mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_00_02_0': field 'id': invalid UUID 'not-a-uuid' (at /device/capability[@type='mdev']/uuid)"),
    "xml-two-uuids": Case("n.xml", replaced("<iommuGroup number='12'/>", "<uuid>4b20d080-1b54-4048-85b3-a6a62d165c02</uuid>", GVT_MDEV), "{path}:11: record 'mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_00_02_0': a second <uuid> where one is expected (at /device/capability[@type='mdev']/uuid[2])"),
    "xml-mdev-without-type": Case("n.xml", replaced("<type id='i915-GVTg_V5_4'/>", "", GVT_MDEV), "{path}:8: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'self.mdev_type': an mdev needs <type id=...> (at /device/capability[@type='mdev'])"),
    "xml-attr-without-value": Case("n.xml", replaced("<attr name='pv_mode' value='none+ppgtt'/>", "<attr name='pv_mode'/>", GVT_MDEV), "{path}:13: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'self': an <attr> needs a name and a value (at /device/capability[@type='mdev']/attr[2])"),
    "xml-attr-repeats-type": Case("n.xml", replaced("<attr name='pv_mode'", "<attr name='mdev_type'", GVT_MDEV), "{path}:13: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'self.mdev_type': <attr name='mdev_type'> repeats an attribute the device already has (at /device/capability[@type='mdev']/attr[2])"),
    "xml-attr-alias-collides": Case("n.xml", replaced("<attr name='pv_mode'", "<attr name='type'", GVT_MDEV), "{path}:1: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'self': self holds both 'mdev_type' and 'type', which name the same attribute 'mdev_type'"),
    "xml-attr-invalid-version": Case("n.xml", replaced("value='1.2.0'", "value='1.2.x'", GVT_MDEV), f"{{path}}:12: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'self.software_version': invalid version '1.2.x' {VERSION_SYNTAX} (at /device/capability[@type='mdev']/attr[1])"),
    "xml-attr-invalid-set": Case("n.xml", replaced("value='none+ppgtt'", "value='none+'", GVT_MDEV), "{path}:13: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'self.pv_mode': set 'none+' has an empty item (at /device/capability[@type='mdev']/attr[2])"),
    "xml-duplicate-mdev": Case("n.xml", text(GVT_MDEV + GVT_MDEV), "{path}:16: record '4b20d080-1b54-4048-85b3-a6a62d165c01': field 'id': duplicate id '4b20d080-1b54-4048-85b3-a6a62d165c01' (first seen in record #0)"),
    # -- sysfs -------------------------------------------------------------------------------
    "sysfs-available-missing": Case("sysfs", sysfs(lambda root: os.unlink(root / V5_4 / "available_instances")), f"{{root}}/{V5_4}/available_instances: record '0000:00:02.0/i915-GVTg_V5_4': cannot read: No such file or directory"),
    "sysfs-available-not-a-number": Case("sysfs", sysfs(write_file(f"{V5_4}/available_instances", "lots\n")), f"{{root}}/{V5_4}/available_instances: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity': expected an integer >= 0, got 'lots'"),
    "sysfs-vendor-without-0x": Case("sysfs", sysfs(write_file("devices/pci0000:00/0000:00:02.0/vendor", "8086\n")), f"{{root}}/bus/mdev/devices/{GVT_UUID}: record '{GVT_UUID}': field 'self.device_id': expected a 16-bit hex id such as 0x8086, got '8086'".replace(f"bus/mdev/devices/{GVT_UUID}", "class/mdev_bus/0000:00:02.0/vendor")),
    "sysfs-migration-disagrees": Case("sysfs", sysfs(write_file(f"{V5_4}/migration/mdev_type", "i915-GVTg_V5_8\n")), f"{{root}}/{V5_4}/migration/mdev_type: record '0000:00:02.0/i915-GVTg_V5_4': field 'self.mdev_type': says 'i915-GVTg_V5_8', but the device's own files say 'i915-GVTg_V5_4'"),
    "sysfs-migration-invalid-version": Case("sysfs", sysfs(write_file(f"bus/mdev/devices/{GVT_UUID}/migration/software_version", "1.2.x\n")), f"{{root}}/bus/mdev/devices/{GVT_UUID}/migration/software_version: record '{GVT_UUID}': field 'self.software_version': invalid version '1.2.x' {VERSION_SYNTAX}"),
    "sysfs-compatible-self-block": Case("sysfs", sysfs(write_file(f"{V5_4}/migration/compatible", "SELF:\n a=1\n")), f"{{root}}/{V5_4}/migration/compatible:1: record '0000:00:02.0/i915-GVTg_V5_4': a compatible file holds COMPATIBLE: blocks of key=value lines only"),
    "sysfs-compatible-template": Case("sysfs", sysfs(write_file(f"{V5_4}/migration/compatible", "COMPATIBLE:\n aggregator={n}\n")), f"{{root}}/{V5_4}/migration/compatible:2: record '0000:00:02.0/i915-GVTg_V5_4': field 'compatible[0].aggregator': variable 'n' is not declared"),
    "sysfs-non-utf8": Case("sysfs", sysfs(write_file(f"{V5_4}/device_api", b"vfio-\xffpci\n")), f"{{root}}/bus/mdev/devices/{GVT_UUID}/mdev_type/device_api:1: record '{GVT_UUID}': not UTF-8 (byte 0xff at offset 5)"),
    "sysfs-byte-order-mark": Case("sysfs", sysfs(write_file(f"{V5_4}/migration/pv_mode", b"\xef\xbb\xbfnone\n")), f"{{root}}/{V5_4}/migration/pv_mode:1: record '0000:00:02.0/i915-GVTg_V5_4': starts with a byte-order mark (U+FEFF); save the file as UTF-8 without one"),
    "sysfs-huge-file": Case("sysfs", sysfs(write_file(f"{V5_4}/migration/compatible", "#" * (2 << 20))), f"{{root}}/{V5_4}/migration/compatible: record '0000:00:02.0/i915-GVTg_V5_4': larger than 1048576 bytes; a sysfs attribute is far smaller"),
    "sysfs-fifo": Case("sysfs", sysfs(lambda root: (os.unlink(root / V5_4 / "migration" / "pv_mode"), os.mkfifo(root / V5_4 / "migration" / "pv_mode"))), f"{{root}}/{V5_4}/migration/pv_mode: record '0000:00:02.0/i915-GVTg_V5_4': not a regular file"),
    "sysfs-link-out-of-the-tree": Case("sysfs", sysfs(lambda root: (os.unlink(root / V5_4 / "migration" / "pv_mode"), os.symlink("/etc/hostname", root / V5_4 / "migration" / "pv_mode"))), f"{{root}}/{V5_4}/migration/pv_mode: record '0000:00:02.0/i915-GVTg_V5_4': a link that leaves the sysfs tree (to /etc/hostname)"),
    "sysfs-link-loop": Case("sysfs", sysfs(lambda root: (os.unlink(root / V5_4 / "migration" / "pv_mode"), os.symlink("pv_mode", root / V5_4 / "migration" / "pv_mode"))), f"{{root}}/{V5_4}/migration/pv_mode: record '0000:00:02.0/i915-GVTg_V5_4': cannot read: Too many levels of symbolic links"),
    "sysfs-name-not-utf8": Case("sysfs", sysfs(lambda root: os.mkdir(os.fsencode(root / "bus/mdev/devices") + b"/gpu\xff")), "{root}/bus/mdev/devices: the name 'gpu\\udcff' is not UTF-8, and a device id must be"),
    "sysfs-mdev-type-elsewhere": Case("sysfs", sysfs(lambda root: (os.unlink(root / "devices/pci0000:00/0000:00:02.0" / GVT_UUID / "mdev_type"), os.symlink("..", root / "devices/pci0000:00/0000:00:02.0" / GVT_UUID / "mdev_type"))), f"{{root}}/bus/mdev/devices/{GVT_UUID}/mdev_type: record '{GVT_UUID}': field 'self.mdev_type': does not link to a parent's mdev_supported_types/<type> (it links to {{real_root}}/devices/pci0000:00/0000:00:02.0)"),
}


def materialise(case: Case, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The input on disk, and the values of the placeholders in its expected message."""
    if callable(case.content):
        root = tmp_path / "sys"
        root.mkdir()
        case.content(root)
        return root, {"root": str(root), "real_root": os.path.realpath(root)}
    path = tmp_path / case.name
    path.write_bytes(case.content)
    return path, {"path": str(path)}


def assert_message(message: str, case: Case, values: dict[str, str]) -> None:
    expected = case.expected.format(**values)
    if expected.endswith("...") and not expected.endswith("...'"):
        assert message.startswith(expected[:-3]), message
    else:
        assert message == expected


def test_the_table_is_large_enough():
    assert len(CASES) >= 60
    formats = {"json": 0, "text": 0, "xml": 0, "sysfs": 0}
    for case in CASES.values():
        kind = "sysfs" if case.name == "sysfs" else {".txt": "text", ".xml": "xml"}.get(Path(case.name).suffix, "json")
        formats[kind] += 1
    assert min(formats.values()) >= 10, formats


@pytest.mark.parametrize("case_id", CASES)
def test_load_gives_one_located_error(case_id, tmp_path):
    case = CASES[case_id]
    path, values = materialise(case, tmp_path)
    with pytest.raises(fastmatch.FastmatchError) as caught:
        fastmatch.load(path)
    assert_message(str(caught.value), case, values)


@pytest.mark.parametrize("case_id", CASES)
def test_command_line_gives_one_line_and_exit_2(case_id, tmp_path, capsys):
    case = CASES[case_id]
    path, values = materialise(case, tmp_path)
    output = tmp_path / "out.json"
    # As sources and as targets: a libvirt or sysfs input gives its types only as targets.
    status = main(["match", str(path), str(path), "--format", "json", "-o", str(output)])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("fastmatch: error: ")
    assert_message(lines[0].removeprefix("fastmatch: error: "), case, values)
    assert not output.exists()


def test_a_valid_but_very_long_line_is_refused_on_the_fast_path_too(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(rec()) + "\n" + json.dumps(rec("b", vendor_driver=LONG)) + "\n")
    with pytest.raises(fastmatch.FastmatchError, match="line is"):
        fastmatch.load(path)


def test_empty_inputs(tmp_path, capsys):
    """An empty fleet file is an empty fleet; where one device is needed, or XML is forced, it is an error."""
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert len(fastmatch.load(empty)) == 0
    assert main(["check", str(empty), str(empty)]) == 2
    assert capsys.readouterr().err == f"fastmatch: error: {empty}: expected exactly one device, found 0\n"
    with pytest.raises(fastmatch.FastmatchError) as caught:
        fastmatch.load(empty, input_format="libvirt")
    assert str(caught.value) == f"{empty}:1: invalid XML: no element found (column 1)"
