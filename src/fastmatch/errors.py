"""The one exception family a user can cause, and where it happened."""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, NamedTuple

# What a terminal acts on instead of showing: C0 and C1 control characters (ESC, BEL,
# CR, newline, ...), DEL, the line and paragraph separators, and the bidirectional
# overrides and isolates that reorder text on screen.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class FastmatchError(Exception):
    """An error in user input: a file, a record, a field, a policy.

    The message is one line that names where the problem is:
    ``FILE:LINE: record 'ID': field 'self.pv_mode': what is wrong``.
    Location parts that are unknown are left out; readers add them as the
    error travels outward (see :meth:`located`).

    ``line`` is a line number in ``file``, or, for input that is not one
    line-oriented file, a place inside ``file`` written as a path: a file in
    a directory (``host1.xml:14``) or a directory of a sysfs tree
    (``bus/mdev/devices/<uuid>``). See :func:`join_place`.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | str | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.record = record
        self.field = field
        super().__init__(str(self))

    def located(
        self,
        *,
        file: str | None = None,
        line: int | str | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> "FastmatchError":
        """Fill in location parts that are still unknown, outermost caller last."""
        self.file = self.file if self.file is not None else file
        self.line = self.line if self.line is not None else line
        self.record = self.record if self.record is not None else record
        if field is not None:
            self.field = field if self.field is None else f"{field}.{self.field}"
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        where = []
        place = join_place(self.file, self.line)
        if place is not None:
            where.append(place)
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return ": ".join([*where, self.message])


def join_place(file: str | None, line: int | str | None) -> str | None:
    """Where ``line`` is inside ``file``: ``FILE:LINE``, or ``FILE/PLACE`` for a place that is a path."""
    if isinstance(line, str):
        return line if file is None else os.path.join(file, line)
    if file is None:
        return None if line is None else f"line {line}"
    return file if line is None else f"{file}:{line}"


class FieldPlace(NamedTuple):
    """Where one field's value is: a line (or a place, as for :func:`join_place`), and for XML
    the path of the element that holds it."""

    line: int | str | None
    element: str | None = None


class _LineWithFields(int):
    fields: Mapping[str, FieldPlace]


class _PlaceWithFields(str):
    fields: Mapping[str, FieldPlace]


def with_fields(place: int | str | None, fields: Mapping[str, FieldPlace]) -> int | str | None:
    """A record's place (as readers return it; it compares equal to ``place``) that also says
    where each of its fields is, keyed ``self.<key>``, ``compatible[k]``, ``compatible[k].<key>``,
    ``<device key>`` as written (keys may be aliases)."""
    if place is None or not fields:
        return place
    located = _LineWithFields(place) if isinstance(place, int) else _PlaceWithFields(place)
    located.fields = fields
    return located


def fields_of(place: Any) -> Mapping[str, FieldPlace]:
    return getattr(place, "fields", {})


def rebase(place: int | str | None, prefix: str) -> int | str | None:
    """``place`` inside ``prefix`` (a file of a directory), field places included."""
    fields = {key: FieldPlace(join_place(prefix, where.line), where.element) for key, where in fields_of(place).items()}
    return with_fields(join_place(prefix, place), fields)


class PolicyError(FastmatchError):
    """The policy itself is invalid (unknown key, rule that does not fit its type, ...)."""


class InputError(FastmatchError):
    """A device record or an input file is invalid."""


class TemplateError(InputError):
    """A COMPATIBLE template does not parse or cannot be grounded."""


class UnknownIdError(FastmatchError, KeyError):
    """An id that names no device of a set (also a ``KeyError``, as a failed lookup is)."""


class ResultTooLargeError(FastmatchError):
    """A dense result would exceed the configured memory limit."""


def printable(text: str) -> str:
    """``text`` safe to show a person: each character a terminal would act on
    (see ``_UNPRINTABLE``) written as an escape (``\\x1b``, ``\\n``, ``\\u202e``)."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(character)
    if named is not None:
        return named
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
