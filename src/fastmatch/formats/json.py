"""Fleet JSON Lines, a JSON array of records, and the seed's ``{"self": [...], "compatible": [...]}``.

The three are told apart by content: a file that is one JSON value is an
array of records or a seed document; anything else is read as JSON Lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError


def read_json(data: bytes, path: Path) -> tuple[list[Any], list[int] | None]:
    name = str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=name, line=line) from None
    stripped = text.lstrip()
    if stripped == "":
        return [], []
    if stripped[0] == "[":
        return _read_array(text, name)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if _first_line_is_json(text):
            return _read_lines(text, name)
        # One JSON document over several lines (a seed document): name the line of the slip,
        # not the first line, which is only an incomplete piece of it.
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=name, line=exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", file=name) from None
    if isinstance(document, dict) and "self" in document and "id" not in document and isinstance(document["self"], list):
        return _read_seed(document, path), None
    if not _first_line_is_json(text):
        # One JSON value over several lines, but neither a seed document nor an array:
        # reading it line by line would only report that line 1 is cut short.
        if isinstance(document, dict) and "self" in document and "id" not in document:
            raise InputError(
                f"a seed document's 'self' is a list of descriptors, got {type(document['self']).__name__}",
                file=name, field="self",
            )
        raise InputError(
            "a JSON value over several lines that is not a seed document ({\"self\": [...], \"compatible\": [...]}); "
            "write device records one per line (JSON Lines) or as a JSON array",
            file=name, line=1,
        )
    return _read_lines(text, name)


def _first_line_is_json(text: str) -> bool:
    """Whether the first non-blank line is a JSON value on its own, as in JSON Lines."""
    start = 0
    while True:  # find the first non-blank line without splitting a whole fleet file
        end = text.find("\n", start)
        first = text[start:] if end < 0 else text[start:end]
        if first.strip() or end < 0:
            break
        start = end + 1
    try:
        json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _read_lines(text: str, name: str) -> tuple[list[Any], list[int]]:
    records, lines = [], []
    # Records end at "\n" only: str.splitlines() would also split at U+2028, U+0085
    # and the like, which JSON allows unescaped inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip() == "":
            continue
        records.append(_loads(line, name, number))
        lines.append(number)
    return records, lines


def _loads(text: str, name: str, line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=name, line=line + exc.lineno - 1) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", file=name, line=line) from None


def _read_array(text: str, name: str) -> tuple[list[Any], list[int]]:
    """Decode the array element by element, to know the line each record starts on."""
    decoder = json.JSONDecoder()
    records, lines = [], []
    position = text.index("[") + 1

    def skip_space(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def fail(message: str, pos: int):
        raise InputError(message, file=name, line=text.count("\n", 0, pos) + 1)

    position = skip_space(position)
    if position < len(text) and text[position] == "]":
        position += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                fail(f"invalid JSON: {exc.msg} (column {exc.colno})", exc.pos)
            except RecursionError:
                fail("JSON nested too deeply", position)
            records.append(value)
            lines.append(text.count("\n", 0, position) + 1)
            position = skip_space(end)
            if position < len(text) and text[position] == ",":
                position = skip_space(position + 1)
                continue
            if position < len(text) and text[position] == "]":
                position += 1
                break
            fail("invalid JSON: expected ',' or ']' in the array of records", position)
    if text[position:].strip():
        fail("invalid JSON: extra data after the array of records", skip_space(position))
    return records, lines


def _read_seed(document: dict, path: Path) -> list[dict[str, Any]]:
    """One device per file, as in the seed discussion; its id is the file's stem."""
    unknown = set(document) - {"self", "compatible"}
    if unknown:
        raise InputError(f"unknown key {sorted(unknown)[0]!r} in a seed document (expected self, compatible)", file=str(path))
    selves = document["self"]
    compatible = document.get("compatible", [])
    if len(selves) == 0:
        raise InputError("'self' holds no descriptor", file=str(path), field="self")
    stem = path.stem
    return [
        {"id": stem if len(selves) == 1 else f"{stem}#{k}", "self": descriptor, "compatible": compatible}
        for k, descriptor in enumerate(selves)
    ]
