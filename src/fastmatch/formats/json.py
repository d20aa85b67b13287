"""Fleet JSON Lines, a JSON array of records, and the seed's ``{"self": [...], "compatible": [...]}``.

The three are told apart by content: a file that is one JSON value is an
array of records or a seed document; anything else is read as JSON Lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, NoReturn

from ..errors import FastmatchError, InputError
from .guards import TOO_DEEP, check_decoded, decode_utf8, id_from_name, line_too_deep

# json raises a plain ValueError (not a JSONDecodeError) for an integer of more digits
# than int() accepts (4300 by default).
_NUMBER_TOO_LONG = "invalid JSON: a number of thousands of digits"
_LONG_NUMBER = re.compile(r"[0-9]{1000}")


def read_json(
    data: bytes, path: Path, *, on_error: Callable[[Any, FastmatchError], None] | None = None
) -> tuple[list[Any], list[int] | None]:
    """``on_error(line_text, error)``, when given, takes each JSON Lines line that does not decode."""
    name = str(path)
    text = decode_utf8(data, name)
    stripped = text.lstrip()
    if stripped == "":
        return [], []
    if stripped[0] == "[":
        return _read_array(text, name)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if _first_line_is_json(text):
            return _read_lines(text, name, on_error)
        # One JSON document over several lines (a seed document): name the line of the slip,
        # not the first line, which is only an incomplete piece of it.
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=name, line=exc.lineno) from None
    except RecursionError:
        raise InputError(TOO_DEEP, file=name, line=line_too_deep(text)) from None
    except ValueError:
        raise InputError(_NUMBER_TOO_LONG, file=name, line=_line_of_long_number(text)) from None
    if isinstance(document, dict) and "self" in document and "id" not in document and isinstance(document["self"], list):
        check_decoded(document, name, None, text)
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
    return _read_lines(text, name, on_error)


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
    except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
        return False
    return True


def _read_lines(
    text: str, name: str, on_error: Callable[[Any, FastmatchError], None] | None = None
) -> tuple[list[Any], list[int]]:
    records, lines = [], []
    # Records end at "\n" only: str.splitlines() would also split at U+2028, U+0085
    # and the like, which JSON allows unescaped inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip() == "":
            continue
        try:
            records.append(_loads(line, name, number))
        except InputError as exc:
            if on_error is None:
                raise
            on_error(line, exc)
            continue
        lines.append(number)
    return records, lines


def _loads(text: str, name: str, line: int) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=name, line=line + exc.lineno - 1) from None
    except RecursionError:
        raise InputError(TOO_DEEP, file=name, line=line) from None
    except ValueError:
        raise InputError(_NUMBER_TOO_LONG, file=name, line=line) from None
    check_decoded(value, name, line, text)
    return value


def _read_array(text: str, name: str) -> tuple[list[Any], list[int]]:
    """Decode the array element by element, to know the line each record starts on."""
    decoder = json.JSONDecoder()
    records, lines = [], []
    position = text.index("[") + 1
    # Line numbers are counted onward from the last element, not from the start
    # of the text each time: that would make a large array quadratic.
    counted_to, line_at = 0, 1

    def line_of(pos: int) -> int:
        nonlocal counted_to, line_at
        line_at += text.count("\n", counted_to, pos)
        counted_to = pos
        return line_at

    def skip_space(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def fail(message: str, pos: int) -> NoReturn:
        raise InputError(message, file=name, line=line_of(pos))

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
                fail(TOO_DEEP, position)
            except ValueError:
                fail(_NUMBER_TOO_LONG, position)
            check_decoded(value, name, line_of(position), text[position:end])
            records.append(value)
            lines.append(line_of(position))
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


def _read_seed(document: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """One device per file, as in the seed discussion; its id is the file's stem."""
    unknown = set(document) - {"self", "compatible"}
    if unknown:
        raise InputError(f"unknown key {sorted(unknown)[0]!r} in a seed document (expected self, compatible)", file=str(path))
    selves = document["self"]
    compatible = document.get("compatible", [])
    if len(selves) == 0:
        raise InputError("'self' holds no descriptor", file=str(path), field="self")
    stem = id_from_name(path.stem, str(path))
    return [
        {"id": stem if len(selves) == 1 else f"{stem}#{k}", "self": descriptor, "compatible": compatible}
        for k, descriptor in enumerate(selves)
    ]


def _line_of_long_number(text: str) -> int | None:
    match = _LONG_NUMBER.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None
