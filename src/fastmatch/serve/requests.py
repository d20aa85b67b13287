"""Request bodies, decoded strictly: wrong types, unknown and missing fields are errors that
name the field, answered as ``4xx {"error": ...}``."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..errors import FastmatchError, printable


class RequestError(Exception):
    """A request the server refuses: its HTTP status and a one-line message for the client."""

    def __init__(self, status: int, message: str, kind: str = "request") -> None:
        super().__init__(message)
        self.status = status
        self.message = printable(message)
        self.kind = kind  # the label of the errors_total metric


class CandidatesRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Ranked available targets for each source device record."""

    sources: list[dict[str, Any]]
    k: int = 5


class ExplainRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Why one source record can or cannot go to one target of the fleet."""

    source: dict[str, Any]
    target: str


class CheckRequest(msgspec.Struct, forbid_unknown_fields=True):
    """One source record against one target record, outside the fleet."""

    source: dict[str, Any]
    target: dict[str, Any]


_AT = re.compile(r"^(.*?)(?: - at `\$\.?(.*)`)?$")
_NAMED = re.compile(r"^Object (contains unknown|missing required) field `(.*)`$")


def decode(body: bytes, kind: type, where: str = "") -> Any:
    """``body`` decoded as ``kind``; an error names the field (``where`` before its path)."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise RequestError(422, field_message(str(exc), where)) from None
    except msgspec.DecodeError as exc:
        raise RequestError(400, f"{where or 'request body'}: {_lower_first(str(exc))}") from None


def field_message(message: str, where: str = "") -> str:
    """msgspec's ``Expected `int`, got `str` - at `$.k``` as ``field 'k': expected `int`, got `str```,
    and ``Object contains unknown field `x``` as ``field 'x': unknown field``."""
    at = _AT.match(message)  # None only for a message over lines: then it is all text
    text, path = at.groups() if at is not None else (message, None)
    field = _join(where, path or "")
    named = _NAMED.match(text)
    if named is not None:
        what, name = named.groups()
        return f"field '{_join(field, name)}': {'unknown field' if what == 'contains unknown' else 'missing'}"
    return f"{f'field {field!r}' if field else 'request body'}: {_lower_first(text)}"


def _lower_first(text: str) -> str:
    """A sentence's first word in lower case, as the rest of a message (not an acronym: JSON)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _join(outer: str, inner: str) -> str:
    if not outer or not inner or inner.startswith("["):
        return f"{outer}{inner}"
    return f"{outer}.{inner}"


def records_error(exc: FastmatchError) -> RequestError:
    return RequestError(422, str(exc), kind="record")


def check_count(name: str, count: int, limit: int) -> None:
    if count > limit:
        raise RequestError(413, f"field '{name}': {count:,} items, more than the limit of {limit:,} a request")
