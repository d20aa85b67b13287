"""The four attribute types of docs/model.md section 3: parsing, normalising, ordering.

Every parser takes a JSON value (or a string from a template) and returns the
normal form, or ``None`` / the empty set for an absent value; invalid input
raises :class:`InputError` whose message names the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from .errors import InputError

Kind = Literal["string", "int", "version", "set"]
KINDS: tuple[Kind, ...] = ("string", "int", "version", "set")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_INT_RE = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_IDENT = r"[0-9A-Za-z-]+"
_VERSION_RE = re.compile(
    rf"v?(?P<parts>[0-9]+(?:\.[0-9]+)*)"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?\Z"
)
_SET_SPLIT = re.compile(r"[+,]")


@dataclass(frozen=True, slots=True)
class Version:
    """A lenient ``major.minor.patch...`` version ordered as docs/model.md section 3 says.

    Equality and ordering use :attr:`key` only, so ``1.0`` equals ``1.0.0`` and
    build metadata is ignored; :attr:`text` keeps what was written.
    """

    parts: tuple[int, ...]  # numeric components, trailing zeros removed
    prerelease: tuple[str, ...]
    text: str

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.parts, prerelease_key(self.prerelease) if self.prerelease else _RELEASE)

    def component(self, index: int) -> int:
        return self.parts[index] if index < len(self.parts) else 0

    @property
    def major(self) -> int:
        return self.component(0)

    @property
    def minor(self) -> int:
        return self.component(1)

    @property
    def patch(self) -> int:
        return self.component(2)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: "Version") -> bool:
        return self.key < other.key

    def __le__(self, other: "Version") -> bool:
        return self.key <= other.key

    def __gt__(self, other: "Version") -> bool:
        return self.key > other.key

    def __ge__(self, other: "Version") -> bool:
        return self.key >= other.key

    def __str__(self) -> str:
        return self.text

    @property
    def canonical(self) -> str:
        """The one spelling of every version equal to this one: at least three components,
        numeric prerelease identifiers without leading zeros, no build metadata
        (``1`` and ``1.0.0+b7`` are both ``1.0.0``)."""
        numbers = ".".join(map(str, self.parts + (0,) * (3 - len(self.parts))))
        if not self.prerelease:
            return numbers
        return numbers + "-" + ".".join(p.lstrip("0") or "0" if p.isdigit() else p for p in self.prerelease)


_RELEASE = (1,)  # the prerelease key of a version without one


def prerelease_key(prerelease: tuple[str, ...]) -> tuple[Any, ...]:
    """What orders versions with equal numeric components by their prerelease (SemVer 2.0
    precedence): none sorts after any; equal keys are equal prereleases."""
    if not prerelease:
        return _RELEASE
    # Numeric identifiers compare by value: by length without leading zeros, then digit by
    # digit (int() would refuse one of thousands of digits, and hostile input has them).
    ids = tuple((0, len(p.lstrip("0")), p.lstrip("0")) if p.isdigit() else (1, 0, p) for p in prerelease)
    return (0, ids)


def describe(raw: Any) -> str:
    """A value as an error message shows it: its repr, cut short when long (input may be hostile)."""
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def _literal_to_int(literal: str, hexadecimal: bool) -> int:
    """The value of an integer literal already matched by its pattern, except that one with more
    digits than any int64 comes back as INT64_MAX + 1: int() refuses (ValueError) strings of
    thousands of digits, and hostile input has them."""
    digits = literal.lstrip("+-")
    digits = (digits[2:] if hexadecimal else digits).lstrip("0") or "0"
    if len(digits) > 19:
        return INT64_MAX + 1
    value = int(digits, 16 if hexadecimal else 10)
    return -value if literal.startswith("-") else value


def parse_string(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InputError(f"expected a string, got {describe(raw)}")
    return raw or None


def parse_int(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InputError(f"expected an integer, got {describe(raw)}")
    if isinstance(raw, str):
        if raw == "":
            return None
        if not _INT_RE.match(raw):
            raise InputError(f"invalid integer {describe(raw)}")
        value = _literal_to_int(raw, hexadecimal="x" in raw.lower())
    else:
        value = raw
    if not INT64_MIN <= value <= INT64_MAX:
        raise InputError(f"integer {describe(raw)} does not fit in 64 bits")
    return value


def parse_version(raw: Any) -> Version | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InputError(f"expected a version string, got {describe(raw)}")
    text = str(raw)
    if text == "":
        return None
    match = _VERSION_RE.match(text)
    if match is None:
        raise InputError(f"invalid version {describe(raw)} (expected [v]N(.N)*[-prerelease][+build])")
    parts = [_literal_to_int(p, hexadecimal=False) for p in match["parts"].split(".")]
    if any(p > INT64_MAX for p in parts):
        raise InputError(f"version {describe(raw)} has a component beyond 64 bits")
    while parts and parts[-1] == 0:
        parts.pop()
    prerelease = tuple(match["pre"].split(".")) if match["pre"] else ()
    return Version(tuple(parts), prerelease, text)


def parse_set(raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if isinstance(raw, str):
        if raw.strip() == "":
            return frozenset()
        items = [item.strip() for item in _SET_SPLIT.split(raw)]
    elif isinstance(raw, list):
        if not all(isinstance(item, str) for item in raw):
            raise InputError(f"expected a set of strings, got {describe(raw)}")
        items = [item.strip() for item in raw]
    else:
        raise InputError(f"expected a set (array of strings or 'a+b' string), got {describe(raw)}")
    if any(item == "" for item in items):
        raise InputError(f"set {describe(raw)} has an empty item")
    return frozenset(items)


PARSERS = {"string": parse_string, "int": parse_int, "version": parse_version, "set": parse_set}


def parse_value(kind: Kind, raw: Any) -> Any:
    """Parse ``raw`` as a value of ``kind``; absent values give ``None`` (empty set for sets)."""
    return PARSERS[kind](raw)


def is_absent(value: Any) -> bool:
    return value is None or value == frozenset()


def format_value(value: Any) -> str:
    """How a normal-form value reads in explanations and tables."""
    if value is None:
        return "(absent)"
    if isinstance(value, frozenset):
        return "+".join(sorted(value)) if value else "(empty set)"
    return str(value)
