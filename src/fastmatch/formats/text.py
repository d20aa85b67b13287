"""The SELF/COMPATIBLE text of the upstream proposal.

::

    # a comment                  (also after a value, following a space)
    DEVICE: kbl-02-gvt0          optional: without DEVICE: lines a file holds one
    host=kbl-02                  device, whose id is the file's stem; key=value
    SELF:                        lines before the first block are the device's
      device_id=8086591d         own fields (host, vm, capacity, migration_version,
      pv_mode="none+ppgtt"       migratable)
    COMPATIBLE:
      mdev_type=i915-GVTg_V5_{val1:int:1,2,4,8}
      aggregator={val1}/2
      pv_mode=""                 # "" : the source must lack it

Indentation is free. A value is the rest of the line with surrounding
whitespace removed, or one double-quoted string (no escapes); ``""`` means
absent. Values stay strings: typing them is the policy's business, when
:class:`~fastmatch.DeviceSet` validates the records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import FastmatchError, FieldPlace, InputError, with_fields
from ..values import describe
from .guards import OnError, build_each, decode_utf8, id_from_name, parse_count

DEVICE_KEYS = ("host", "vm", "capacity", "migration_version", "migratable")

_HEADER = re.compile(r"(SELF|COMPATIBLE|DEVICE)\s*:(.*)\Z", re.IGNORECASE)
_KEY = re.compile(r"[^\s=#\"]+\Z")


@dataclass(frozen=True, slots=True)
class _Line:
    """One meaningful line: a block header (``key`` is SELF or COMPATIBLE) or a key=value pair."""

    number: int
    header: bool
    key: str
    value: str


def read_text(
    data: bytes, path: Path, *, on_error: OnError | None = None
) -> tuple[list[dict[str, Any]], list[int | str | None]]:
    """Device records and the line each starts on.

    ``on_error(device_text, error)``, when given, takes each device that does
    not parse (a file with ``DEVICE:`` lines goes on with the next device).
    """
    name = str(path)
    text = decode_utf8(data, name)
    jobs = [
        (
            lambda device_id=device_id, chunk=chunk: _device_record(device_id, chunk, name),
            lambda chunk=chunk: "\n".join(raw for _, raw in chunk),
            None,
        )
        for device_id, chunk in _devices(text.split("\n"), name, id_from_name(path.stem, name))
    ]
    built, _ = build_each(jobs, on_error)
    return [record for record, _ in built], [place for _, place in built]


def read_compatible(text: str, name: str) -> tuple[list[dict[str, str]], dict[str, FieldPlace]]:
    """The COMPATIBLE blocks of a text that holds nothing else (a sysfs ``compatible`` file),
    and the line of each block and value (``compatible[k]``, ``compatible[k].<key>``)."""
    blocks = _Blocks(name)
    for number, raw in enumerate(text.split("\n"), start=1):
        line = _parse_line(raw.removesuffix("\r"), number, name)
        if line is None:
            continue
        if (line.header and line.key != "COMPATIBLE") or (not line.header and not blocks.compatible):
            raise InputError("a compatible file holds COMPATIBLE: blocks of key=value lines only", file=name, line=number)
        blocks.add(line)
    blocks.finish()
    return blocks.compatible, blocks.field_lines


# -- lines -----------------------------------------------------------------------------
def _devices(raw_lines: list[str], name: str, stem: str) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """``(id, [(line number, text), ...])`` per device: split at DEVICE: lines, if there are any.

    A device's lines start with its DEVICE: line, which gives its first line number.
    """
    numbered = [(number, raw.removesuffix("\r")) for number, raw in enumerate(raw_lines, start=1)]
    starts = [k for k, (_, raw) in enumerate(numbered) if _is_device_header(raw)]
    if not starts:
        meaningful = [item for item in numbered if not _is_blank(item[1])]
        if meaningful:
            yield stem, meaningful
        return
    for number, raw in numbered[: starts[0]]:
        if not _is_blank(raw):
            raise InputError("text before the first DEVICE: line (each device starts with DEVICE: <id>)", file=name, line=number)
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(numbered)
        number, raw = numbered[start]
        header = _HEADER.match(raw.strip())
        assert header is not None, "a start is a DEVICE: line"
        device_id = _value(header.group(2).strip(), name, number)
        if device_id == "":
            raise InputError("DEVICE: needs an id (DEVICE: <id>)", file=name, line=number)
        yield device_id, [item for item in numbered[start:end] if not _is_blank(item[1])]


def _is_device_header(raw: str) -> bool:
    match = _HEADER.match(raw.strip())
    return match is not None and match.group(1).upper() == "DEVICE"


def _is_blank(raw: str) -> bool:
    stripped = raw.strip()
    return stripped == "" or stripped.startswith("#")


def _parse_line(raw: str, number: int, name: str) -> _Line | None:
    """A header or a key=value pair; ``None`` for a blank line, a comment or a DEVICE: line."""
    stripped = raw.strip()
    if stripped == "" or stripped.startswith("#"):
        return None
    if stripped.startswith("\ufeff"):
        raise InputError("a byte-order mark (U+FEFF) inside the text; were two files joined?", file=name, line=number)
    header = _HEADER.match(stripped)
    if header is not None:
        key = header.group(1).upper()
        if key == "DEVICE":
            return None
        rest = header.group(2).strip()
        if rest and not rest.startswith("#"):
            raise InputError(f"nothing may follow {key}: on its line, found {describe(rest)}", file=name, line=number)
        return _Line(number, True, key, "")
    key, equals, value = stripped.partition("=")
    key = key.strip()
    if not equals:
        raise InputError(
            f"expected key=value, a SELF:, COMPATIBLE: or DEVICE: line, or a # comment; found {describe(stripped)}",
            file=name, line=number,
        )
    if not _KEY.match(key):
        raise InputError(f"invalid key {describe(key)} (a key is one word without spaces, '=', '#' or '\"')", file=name, line=number)
    return _Line(number, False, key, _value(value.strip(), name, number, key))


def _value(text: str, name: str, number: int, key: str | None = None) -> str:
    """A value without its comment; a value that is one quoted string loses its quotes."""
    if text.startswith('"'):
        close = text.find('"', 1)
        if close == -1:
            raise InputError("unterminated quoted value", file=name, line=number, field=key)
        rest = text[close + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise InputError(f"unexpected text after the closing quote: {describe(rest)}", file=name, line=number, field=key)
        return text[1:close]
    # A comment starts at a '#' outside quotes that begins the value or follows
    # whitespace; a template may quote '#' in its values, and ids may contain '#'.
    in_quotes = False
    for i, ch in enumerate(text):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "#" and not in_quotes and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text



# -- devices ---------------------------------------------------------------------------
class _Blocks:
    """The fields of one device, filled line by line: its own fields, SELF and COMPATIBLE blocks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.own: dict[str, str] = {}  # the lines before the first block
        self.own_lines: dict[str, int] = {}
        self.self_fields: dict[str, str] | None = None
        self.self_line = 0
        self.compatible: list[dict[str, str]] = []
        self.compatible_lines: list[int] = []
        self.field_lines: dict[str, FieldPlace] = {}  # every block and value, for errors about one of them
        self._fields, self._where, self._lines = self.own, "", self.own_lines

    def add(self, line: _Line) -> None:
        if line.header and line.key == "SELF":
            if self.self_fields is not None:
                raise InputError(f"a second SELF: block (the first is on line {self.self_line})", file=self.name, line=line.number)
            self.self_fields, self.self_line = {}, line.number
            self._fields, self._where, self._lines = self.self_fields, "self", {}
            self.field_lines["self"] = FieldPlace(line.number)
        elif line.header:
            self.compatible.append({})
            self.compatible_lines.append(line.number)
            self._fields, self._where, self._lines = self.compatible[-1], f"compatible[{len(self.compatible) - 1}]", {}
            self.field_lines[self._where] = FieldPlace(line.number)
        else:
            field = f"{self._where}.{line.key}" if self._where else line.key
            if line.key in self._fields:
                raise InputError(
                    f"{line.key!r} is given twice (first on line {self._lines[line.key]})",
                    file=self.name, line=line.number, field=field,
                )
            self._fields[line.key] = line.value
            self._lines[line.key] = line.number
            self.field_lines[field] = FieldPlace(line.number)

    def finish(self) -> None:
        # An empty COMPATIBLE record would accept every source: almost surely a cut-off file.
        for k, fields in enumerate(self.compatible):
            if not fields:
                raise InputError(
                    "an empty COMPATIBLE: block (it would accept any device)",
                    file=self.name, line=self.compatible_lines[k], field=f"compatible[{k}]",
                )


def _device_record(device_id: str, chunk: list[tuple[int, str]], name: str) -> tuple[dict[str, Any], int | str | None]:
    """One device from its numbered lines, and its place: its first line, which also says
    where each of its values is (a value found invalid later is reported at its own line)."""
    record: dict[str, Any] = {"id": device_id}
    blocks = _Blocks(name)
    try:
        for number, raw in chunk:
            line = _parse_line(raw, number, name)
            if line is not None:
                blocks.add(line)
        blocks.finish()
        if blocks.self_fields is None:
            raise InputError("the device has no SELF: block", file=name, line=chunk[0][0])
        for key, value in blocks.own.items():
            converted = _device_field(key, value, name, blocks.own_lines[key])
            if converted is not None:
                record[key] = converted
    except FastmatchError as exc:
        raise exc.located(record=f"'{device_id}'") from None
    record["self"] = blocks.self_fields
    if blocks.compatible:
        record["compatible"] = blocks.compatible
    return record, with_fields(chunk[0][0], blocks.field_lines)


def _device_field(key: str, value: str, name: str, number: int) -> Any:
    """A device's own field, typed as a fleet record holds it; ``None`` when absent."""
    if key not in DEVICE_KEYS:
        raise InputError(
            f"unknown device key {key!r} before the SELF: block (expected {', '.join(DEVICE_KEYS)})",
            file=name, line=number, field=key,
        )
    if value == "":
        return None
    if key == "capacity":
        capacity = parse_count(value)
        if capacity is None:
            raise InputError(f"expected an integer >= 0, got {describe(value)}", file=name, line=number, field=key)
        return capacity
    if key == "migratable":
        if value.lower() not in ("true", "false"):
            raise InputError(f"expected true or false, got {describe(value)}", file=name, line=number, field=key)
        return value.lower() == "true"
    return value
