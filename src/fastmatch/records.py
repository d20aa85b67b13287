"""COMPATIBLE records (docs/model.md section 5): patterns, templates, the expression parser, grounding.

A record is parsed once into fields of literals and templates, then grounded
into every combination of its variables' values. The result, a
:class:`GroundedRecord`, is a list of alternatives; each alternative gives, for
every field of the record, the set of source values it accepts. Nothing here is
ever evaluated as code: templates are scanned and expressions parsed by the
small recursive-descent parser below.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from .errors import FastmatchError, InputError, TemplateError
from .policy import Policy
from .values import INT64_MAX, INT64_MIN, Kind, describe, format_value, parse_int, parse_set, parse_value

MAX_COMBINATIONS = 4096
# Grounding costs some tens of microseconds a combination, so the total is bounded too:
# per device (one line of a fleet file) and per input (a file, or one from_records call), where
# the bound grows with the devices read, so that work stays proportional to the input: a
# million-device fleet of GVT-g records (4 combinations each) is read whole, a small file of
# huge records is not. Descriptors that devices share are grounded once, and count once.
MAX_DEVICE_COMBINATIONS = 16384
MAX_INPUT_COMBINATIONS = 1 << 19
COMBINATIONS_PER_DEVICE = 16


class GroundingBudget:
    """Combinations that may still be grounded: ``limit`` in all, for ``what`` (a device, an input)."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.remaining = limit
        self.what = what

    def grant(self, count: int) -> None:
        """``count`` more combinations (another device read)."""
        self.limit += count
        self.remaining += count

    def take(self, count: int) -> None:
        if count > self.remaining:
            raise TemplateError(
                f"the record has {count} combinations of its variables, which would take the {self.what}'s "
                f"COMPATIBLE records past the limit of {self.limit} combinations in all"
            )
        self.remaining -= count
# Parentheses and signs nest the recursive parser and evaluator; real expressions nest once or twice.
MAX_EXPRESSION_NESTING = 32
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EXPRESSION_TEXT = re.compile(r"[0-9+\-*/()\s]*\Z")
_EXPRESSION_OPERATOR = re.compile(r"[+\-*/()]")


# -- what a grounded field accepts ---------------------------------------------------------
class AnyValue:
    """``"*"``: anything, absent included."""

    __slots__ = ()

    def accepts(self, value: Any) -> bool:
        return True

    def __repr__(self) -> str:
        return "ANY"

    def describe(self) -> str:
        return "*"


ANY = AnyValue()


@dataclass(frozen=True, slots=True)
class AnyOf:
    """The source value must be one of these (``None`` for absent)."""

    values: frozenset[Any]

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        shown = sorted(format_value(v) for v in self.values)
        return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)


@dataclass(frozen=True, slots=True)
class SubsetOf:
    """The source's set must be a subset of this one (set attributes)."""

    items: frozenset[str]

    def accepts(self, value: Any) -> bool:
        return bool(value <= self.items)

    def describe(self) -> str:
        return "a subset of " + format_value(self.items)


Accept = Union[AnyValue, AnyOf, SubsetOf]


@dataclass(frozen=True, slots=True)
class GroundedRecord:
    """A COMPATIBLE record with its variables expanded.

    ``attrs`` are the attributes the record constrains (``"*"`` fields included);
    each alternative holds one :data:`Accept` per attribute, in that order.
    A source matches the record when some alternative accepts all its values.
    """

    attrs: tuple[str, ...]
    alternatives: tuple[tuple[Accept, ...], ...]

    def matches(self, value_of: Callable[[str], Any]) -> bool:
        """Whether a descriptor whose attribute values ``value_of`` gives matches this record."""
        own = [value_of(a) for a in self.attrs]
        return any(all(acc.accepts(v) for acc, v in zip(alt, own)) for alt in self.alternatives)


# -- templates -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    type: str  # "int" or "string"
    values: tuple[int, ...] | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """Text mixed with placeholders; ``expression`` is set when the field is arithmetic."""

    parts: tuple[str | Ref, ...]
    declarations: tuple[Variable, ...]
    expression: Any = None  # parsed expression tree, or None for a text template

    def names(self) -> set[str]:
        return {p.name for p in self.parts if isinstance(p, Ref)}


class _NoValue(Exception):
    """A division left a remainder or divided by zero: that combination does not exist."""


def _scan_placeholders(text: str) -> tuple[list[str | Ref], list[Variable]]:
    parts: list[str | Ref] = []
    declarations: list[Variable] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "}":
            raise TemplateError(f"unbalanced '}}' at column {i + 1} in {describe(text)}")
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        end = _placeholder_end(text, i)
        if literal:
            parts.append("".join(literal))
            literal = []
        name, variable = _parse_placeholder(text[i + 1 : end], text)
        if variable is not None:
            declarations.append(variable)
        parts.append(Ref(name))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return parts, declarations


def _placeholder_end(text: str, start: int) -> int:
    """Index of the '}' closing the placeholder at ``start``; quoted values may hold braces."""
    quoted = False
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "{":
            raise TemplateError(f"'{{' inside a placeholder at column {i + 1} in {describe(text)}")
        elif ch == "}":
            return i
        i += 1
    raise TemplateError(f"unbalanced '{{' at column {start + 1} in {describe(text)}")


def _parse_placeholder(body: str, text: str) -> tuple[str, Variable | None]:
    name, sep, rest = body.partition(":")
    name = name.strip()
    if not _NAME_RE.match(name):
        raise TemplateError(f"invalid variable name {describe(name)} in {describe(text)}")
    if not sep:
        return name, None
    vtype, sep, values_text = rest.partition(":")
    vtype = vtype.strip()
    if vtype not in ("int", "string"):
        raise TemplateError(f"variable {name!r} has type {vtype!r}; expected int or string")
    if not sep:
        raise TemplateError(f"variable {name!r} declares no values (expected {{{name}:{vtype}:v1,v2,...}})")
    raw_values = _split_values(values_text, name)
    if vtype == "int":
        values = []
        for raw in raw_values:
            try:
                value = parse_int(raw)
            except FastmatchError as exc:
                raise TemplateError(f"variable {name!r}: {exc.message}") from None
            if value is None:
                raise TemplateError(f"variable {name!r} has an empty int value")
            values.append(value)
        return name, Variable(name, vtype, tuple(dict.fromkeys(values)))
    return name, Variable(name, vtype, tuple(dict.fromkeys(raw_values)))


def _split_values(text: str, name: str) -> list[str]:
    """Comma-separated values; a double-quoted value may hold ',' and '+' (and \\" escapes)."""
    values: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chars = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise TemplateError(f"variable {name!r}: unterminated quoted value")
            i += 1
            value = "".join(chars)
            while i < n and text[i].isspace():
                i += 1
        else:
            start = i
            while i < n and text[i] != ",":
                if text[i] == '"':
                    raise TemplateError(f"variable {name!r}: stray quote in a value")
                i += 1
            value = text[start:i].strip()
            if value == "":
                raise TemplateError(f"variable {name!r} has an empty value (quote it as \"\" to mean empty)")
        values.append(value)
        if i >= n:
            return values
        if text[i] != ",":
            raise TemplateError(f"variable {name!r}: expected ',' after a quoted value")
        i += 1


# -- integer expressions -------------------------------------------------------------------
_TOKEN_RE = re.compile(r"\s*(?:(?P<num>[0-9]+)|(?P<op>[+\-*/()])|(?P<ref>\x00[0-9]+\x00))")


# An expression tree: ('num', n), ('var', name), ('neg', e) or (op, left, right).
Expression = tuple[Any, ...]


def _parse_expression(parts: tuple[str | Ref, ...], text: str) -> Expression:
    """Parse ``{a}/2``-style text into a tree of ('num', n) / ('var', name) / (op, l, r) / ('neg', e)."""
    refs: list[str] = []
    encoded = []
    for part in parts:
        if isinstance(part, Ref):
            encoded.append(f"\x00{len(refs)}\x00")
            refs.append(part.name)
        else:
            encoded.append(part)
    source = "".join(encoded)
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(source, pos)
        if m is None:
            raise TemplateError(f"expression {describe(text)} does not parse")
        if m["num"] is not None:
            # The length check keeps int() away from the thousands of digits it refuses.
            if len(m["num"].lstrip("0")) > 19 or int(m["num"]) > INT64_MAX:
                raise TemplateError(f"integer {describe(m['num'])} in {describe(text)} does not fit in 64 bits")
            value = int(m["num"])
            tokens.append(("num", value))
        elif m["op"] is not None:
            tokens.append(("op", m["op"]))
        else:
            tokens.append(("var", refs[int(m["ref"][1:-1])]))
        pos = m.end()

    index = 0
    nesting = 0

    def nested(parse: Callable[[], Expression]) -> Expression:
        """``parse()`` one level deeper: inside a parenthesis or after a sign."""
        nonlocal nesting
        nesting += 1
        if nesting > MAX_EXPRESSION_NESTING:
            raise TemplateError(f"expression {text[:40]!r}... nests more than {MAX_EXPRESSION_NESTING} levels")
        node = parse()
        nesting -= 1
        return node

    def peek() -> tuple[str | None, Any]:
        return tokens[index] if index < len(tokens) else (None, None)

    def take() -> tuple[str, Any]:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def expr() -> Expression:
        node = term()
        while peek() in (("op", "+"), ("op", "-")):
            node = (take()[1], node, term())
        return node

    def term() -> Expression:
        node = unary()
        while peek() in (("op", "*"), ("op", "/")):
            node = (take()[1], node, unary())
        return node

    def unary() -> Expression:
        if peek() == ("op", "-"):
            take()
            return ("neg", nested(unary))
        if peek() == ("op", "+"):
            take()
            return nested(unary)
        return atom()

    def atom() -> Expression:
        kind, value = peek()
        if kind in ("num", "var"):
            take()
            return (kind, value)
        if (kind, value) == ("op", "("):
            take()
            node = nested(expr)
            if peek() != ("op", ")"):
                raise TemplateError(f"expression {describe(text)}: missing ')'")
            take()
            return node
        raise TemplateError(f"expression {describe(text)} does not parse")

    if len(tokens) > 1000:
        raise TemplateError(f"expression {text[:40]!r}... is too long")
    tree = expr()
    if index != len(tokens):
        raise TemplateError(f"expression {describe(text)} does not parse")
    return tree


def _evaluate(node: Expression, env: Mapping[str, Any]) -> int:
    kind = node[0]
    if kind == "num":
        return int(node[1])
    if kind == "var":
        value = env[node[1]]
        if isinstance(value, int):
            return value
        parsed = parse_int(value) if value else None
        if parsed is None:
            raise TemplateError(f"variable {node[1]!r} = {value!r} is not an integer in an expression")
        return parsed
    if kind == "neg":
        return -_evaluate(node[1], env)
    left, right = _evaluate(node[1], env), _evaluate(node[2], env)
    if kind == "+":
        return left + right
    if kind == "-":
        return left - right
    if kind == "*":
        return left * right
    if right == 0 or left % right:
        raise _NoValue
    return left // right


def parse_template(text: str, kind: Kind) -> Template:
    parts, declarations = _scan_placeholders(text)
    literal_text = "".join(p for p in parts if isinstance(p, str))
    expression = None
    if kind in ("int", "version") and _EXPRESSION_TEXT.match(literal_text) and _EXPRESSION_OPERATOR.search(literal_text):
        expression = _parse_expression(tuple(parts), text)
    return Template(tuple(parts), tuple(declarations), expression)


def _render(template: Template, env: Mapping[str, Any]) -> int | str:
    if template.expression is not None:
        value = _evaluate(template.expression, env)
        if not INT64_MIN <= value <= INT64_MAX:
            raise TemplateError(f"expression gives {value}, beyond 64 bits")
        return value
    return "".join(str(env[p.name]) if isinstance(p, Ref) else p for p in template.parts)


# -- parsing a whole record ----------------------------------------------------------------
def _has_braces(value: Any) -> bool:
    return isinstance(value, str) and ("{" in value or "}" in value)


def _literal_accept(kind: Kind, raw: Any) -> Accept:
    if kind == "set":
        return SubsetOf(parse_set(raw))
    return AnyOf(frozenset([parse_value(kind, raw)]))


def _pattern(kind: Kind, raw: Any) -> Accept | Template:
    if raw is None or raw == "":
        return SubsetOf(frozenset()) if kind == "set" else AnyOf(frozenset([None]))
    if raw == "*":
        return ANY
    if isinstance(raw, list):
        if kind == "set":
            return SubsetOf(parse_set(raw))
        if not raw:
            raise TemplateError("an empty array accepts no value")
        if any(_has_braces(item) for item in raw):
            raise TemplateError("templates cannot appear inside an array")
        return AnyOf(frozenset(parse_value(kind, item) for item in raw))
    if _has_braces(raw):
        return parse_template(raw, kind)
    if isinstance(raw, (bool, float, dict)):
        raise TemplateError(f"expected a {kind} pattern, got {describe(raw)}")
    return _literal_accept(kind, raw)


def canonical_fields(raw: Mapping[str, Any], policy: Policy, what: str) -> dict[str, Any]:
    """Rename aliases to attribute names; an alias beside its name is an error."""
    out: dict[str, Any] = {}
    source_key: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or key == "":
            raise InputError(f"empty attribute name in {what}")
        name = policy.canonical(key)
        if name in out:
            raise InputError(f"{what} holds both {source_key[name]!r} and {key!r}, which name the same attribute {name!r}")
        out[name] = value
        source_key[name] = key
    return out


def ground_record(fields: Mapping[str, Any], policy: Policy, budgets: tuple[GroundingBudget, ...] = ()) -> GroundedRecord:
    """Ground one record whose keys are already canonical attribute names; its combinations
    are taken from each of ``budgets`` first.

    Raises :class:`TemplateError` with ``field`` set to the offending attribute.
    """
    patterns: dict[str, Accept | Template] = {}
    declared: dict[str, Variable] = {}
    for name, raw in fields.items():
        kind = policy.attribute(name).type
        try:
            pattern = _pattern(kind, raw)
            if isinstance(pattern, Template):
                for variable in pattern.declarations:
                    if variable.name in declared:
                        raise TemplateError(f"variable {variable.name!r} is declared twice")
                    declared[variable.name] = variable
        except FastmatchError as exc:
            raise exc.located(field=name) from None
        patterns[name] = pattern

    for name, pattern in patterns.items():
        if isinstance(pattern, Template):
            missing = sorted(pattern.names() - declared.keys())
            if missing:
                raise TemplateError(f"variable {missing[0]!r} is not declared", field=name)

    variables = list(declared.values())
    count = 1
    for variable in variables:
        count *= len(variable.values)
    if count > MAX_COMBINATIONS:
        raise TemplateError(f"the record has {count} combinations of its variables, more than {MAX_COMBINATIONS}")
    for budget in budgets:
        budget.take(count)

    attrs = tuple(patterns)
    alternatives: dict[tuple[Accept, ...], None] = {}
    for combination in itertools.product(*(v.values for v in variables)):
        env = dict(zip((v.name for v in variables), combination))
        try:
            alternative = tuple(_ground_field(patterns[a], a, policy, env) for a in attrs)
        except _NoValue:
            continue
        alternatives[alternative] = None
    return GroundedRecord(attrs, tuple(alternatives))


def _ground_field(pattern: Accept | Template, name: str, policy: Policy, env: Mapping[str, Any]) -> Accept:
    if not isinstance(pattern, Template):
        return pattern
    kind = policy.attribute(name).type
    try:
        rendered = _render(pattern, env)
        if kind != "set" and rendered == "":
            return AnyOf(frozenset([None]))
        return _literal_accept(kind, rendered)
    except FastmatchError as exc:
        where = ", ".join(f"{k}={v!r}" for k, v in env.items())
        exc.message += f" (with {where})"
        raise exc.located(field=name) from None
