"""Hypothesis strategies for random fleets and policies (SPEC sections 2-5).

Everything generated here is *valid*: every record loads with
``DeviceSet.from_records`` under the generated policy. The point is to compare
evaluations (the native kernel against the reference), not error handling.

Shape of one example (:class:`Scenario`):

* a policy, built with ``Policy.from_dict`` from a random dict (options, changed
  rules, extra declared attributes, sometimes 40-130 filler attributes so that
  attribute bits run past bit 58 and failure masks past one lane);
* a *fleet schema*: the few attributes this fleet uses, each with a tiny pool of
  semantic values, so that equal values (spelled differently: ``16``, ``"0x10"``,
  ``"+16"``; ``"1.2"``, ``"v01.2.0+b5"``; ``"a+b"``, ``["b", " a"]``) collide often;
* a small pool of *descriptors* (self, COMPATIBLE records, migration_version,
  migratable) that the devices of both sides pick from, so identical devices
  (which the native engine collapses into classes) are common;
* sources and targets: unique ids per side, some ids shared by the two sides
  (the same device), hosts from a tiny vocabulary, capacities 0..3.

The main entry point is :func:`scenarios`; :func:`policy_dicts` and
:func:`fleet_for` are usable on their own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import strategies as st

from fastmatch import DeviceSet, Policy

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

MISSING = object()  # "leave the key out"


# =========================================================================================
# Policies
# =========================================================================================
OPTION_CHOICES: dict[str, tuple] = {
    "direction": ("target-accepts", "source-offers", "both"),
    "records": ("override", "and"),
    "unknown": ("exact", "ignore"),
    "prefer": ("closest", "newest"),
    "exclude_same_host": (True, False),
    "opaque": ("if-present", "required", "ignore"),
}

# Rules a default attribute may be switched to (the first entry is the default).
DEFAULT_RULE_CHOICES: dict[str, tuple[str, ...]] = {
    "device_api": ("exact", "ignore"),
    "mdev_type": ("exact", "ignore", "dynamic"),
    "vendor_driver": ("exact", "ignore"),
    "software_version": ("version", "ge", "le", "exact", "dynamic", "ignore"),
    "pv_mode": ("superset", "exact", "ignore", "dynamic"),
    "aggregator": ("exact", "ge", "le", "dynamic", "ignore"),
}

# Extra declared attributes: name -> (type, rules, aliases)
EXTRA_ATTRIBUTES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "gen": ("int", ("ge", "exact", "le", "ignore", "dynamic"), ("generation",)),
    "fw": ("version", ("version", "ge", "le", "exact", "ignore", "dynamic"), ("firmware",)),
    "caps": ("set", ("superset", "exact", "ignore", "dynamic"), ()),
    "region": ("string", ("exact", "ignore", "dynamic"), ("zone",)),
}

FILLER_TYPES = ("string", "int", "version", "set")
FILLER_TOTALS = (13, 14, 15, 29, 30, 31, 56, 58, 59, 66)
# Totals past a 64-bit failure mask: the kernel's masks take several failure words.
MANY_ATTRIBUTE_TOTALS = (60, 66, 70, 79, 96, 130)

# Attributes no policy declares (typed string, rule from policy.unknown).
UNKNOWN_NAMES = ("x_vendor", "gpu-class", "vendor.feature")
RECORD_ONLY_UNKNOWN = "rec_only"  # appears only in COMPATIBLE records


def filler_name(i: int) -> str:
    return f"f{i:02d}"


@st.composite
def policy_dicts(draw, fillers: bool | None = None, totals: tuple[int, ...] = FILLER_TOTALS) -> dict[str, Any]:
    """A policy as a ``Policy.from_dict`` dict (TOML keys); with fillers, declared attributes
    come to about one of ``totals``."""
    data: dict[str, Any] = {}
    for key, choices in OPTION_CHOICES.items():
        if draw(st.booleans()):
            data[key] = draw(st.sampled_from(choices))
    attributes: dict[str, Any] = {}
    # A lenient policy (rules that let unequal values pass) gives compatible pairs of
    # unlike devices, whose scores differ in more than the exact bit.
    lenient = draw(st.integers(0, 3)) == 3
    for name, rules in DEFAULT_RULE_CHOICES.items():
        if lenient and draw(st.integers(0, 3)) < 3:
            attributes[name] = {"rule": draw(st.sampled_from([r for r in rules if r != "exact"]))}
        elif draw(st.integers(0, 2)) == 2:
            attributes[name] = {"rule": draw(st.sampled_from(rules))}
    if draw(st.integers(0, 4)) == 4:  # device ids as integers ("0x1912" == 6418)
        attributes["device_id"] = {"type": "int", "rule": draw(st.sampled_from(("exact", "ge", "le")))}
    extras = draw(st.lists(st.sampled_from(sorted(EXTRA_ATTRIBUTES)), unique=True, max_size=4))
    for name in extras:
        kind, rules, aliases = EXTRA_ATTRIBUTES[name]
        entry: dict[str, Any] = {"type": kind, "rule": draw(st.sampled_from(rules))}
        if aliases and draw(st.booleans()):
            entry["aliases"] = list(aliases)
        attributes[name] = entry
    if fillers is None:
        fillers = draw(st.integers(0, 4)) == 4
    if fillers:
        # Filler attributes bring the declared count to a total near the edges of the
        # native kernel's lanes (failure bit i = attribute i while i < 14 / 30 / 58),
        # or past 58 where attributes share reason bit 58 and failure bits are packed;
        # past 62 rules a pair's failure mask takes several words.
        total = draw(st.sampled_from(totals))
        count = max(0, total - len(DEFAULT_RULE_CHOICES) - 1 - len(extras))
        for i in range(count):
            kind = FILLER_TYPES[i % len(FILLER_TYPES)]
            attributes[filler_name(i)] = {"type": kind, "rule": "superset" if kind == "set" else "exact"}
    if attributes:
        data["attributes"] = attributes
    type_choices = ["mdev_type", "", "device_api", "pv_mode", "aggregator"] + (["region"] if "region" in extras else [])
    if draw(st.integers(0, 2)) == 2:
        data["score_type"] = draw(st.sampled_from(type_choices))
    version_choices = ["software_version", ""] + (["fw"] if "fw" in extras else [])
    if draw(st.integers(0, 2)) == 2:
        data["score_version"] = draw(st.sampled_from(version_choices))
    Policy.from_dict(data)  # must be valid
    return data


# =========================================================================================
# Values: semantic values and their spellings
# =========================================================================================
STRING_VOCAB: dict[str, tuple[str, ...]] = {
    "device_api": ("vfio-pci", "vfio-ccw", "vfio-ap"),
    "mdev_type": ("i915-GVTg_V5_4", "i915-GVTg_V5_2", "i915-GVTg_V5_8", "i915-GVTg_V5_1", "nvidia-35", "nvidia-36", "vfio_ccw-io"),
    "vendor_driver": ("i915", "nvidia", "vfio_ccw"),
    "device_id": ("8086:1912", "10de:1eb8", "0x1912"),
    "region": ("eu", "us", "eu-west"),
}
GENERIC_STRINGS = ("a", "b", "t-1", "t-2", "x y", "a+b", "a,b", "*", "ü", " a")

INT_VOCAB = (0, 1, 2, 4, 8, 16, -3, 6418, 3, INT64_MAX, INT64_MIN)

SMALL_SET_ITEMS = ("none", "ppgtt", "context", "a", "b", "c")
BIG_SET_ITEMS = tuple(f"m{i}" for i in range(100))

# SemVer precedence cases: 1.0.0-alpha < -alpha.1 < -alpha.beta < -beta < -beta.2 < -beta.11 < -rc.1 < 1.0.0
PRERELEASES: tuple[tuple[str, ...], ...] = (
    (),
    ("alpha",),
    ("alpha", "1"),
    ("alpha", "beta"),
    ("beta",),
    ("beta", "2"),
    ("beta", "11"),
    ("rc", "1"),
    ("1",),
    ("0a",),
    ("x-y",),
    ("01",),  # numeric with a leading zero: lenient parser, compares as 1
)
BUILDS = ("build.5", "sha.0abc", "001", "b-1")


@dataclass(frozen=True)
class V:
    """A semantic version: components (trailing zeros stripped) and prerelease identifiers."""

    parts: tuple[int, ...]
    pre: tuple[str, ...] = ()


@st.composite
def versions(draw) -> V:
    major = draw(st.sampled_from((1, 0, 2, 10, 550, INT64_MAX)))
    minor = draw(st.sampled_from((0, 1, 2, 127)))
    patch = draw(st.sampled_from((0, 3, 8, 2_000_000)))  # 2_000_000: beyond the 20-bit score field
    extra = draw(st.lists(st.sampled_from((0, 1, 31_400_000)), max_size=2))
    pre = draw(st.sampled_from(PRERELEASES)) if draw(st.integers(0, 2)) == 2 else ()
    parts = [major, minor, patch, *extra]
    while parts and parts[-1] == 0:
        parts.pop()
    return V(tuple(parts), pre)


@st.composite
def spell_version(draw, value: V, allow_int: bool = True) -> Any:
    parts = list(value.parts) or [0]
    while len(parts) < 5 and draw(st.integers(0, 2)) == 2:
        parts.append(0)
    padded = ["0" * draw(st.integers(1, 2)) + str(p) if draw(st.integers(0, 5)) == 5 else str(p) for p in parts]
    v_prefix = draw(st.integers(0, 4)) == 4
    build = draw(st.sampled_from(BUILDS)) if draw(st.integers(0, 4)) == 4 else None
    if allow_int and len(parts) == 1 and not value.pre and not v_prefix and build is None and parts[0] <= INT64_MAX:
        if draw(st.integers(0, 2)) == 2:
            return parts[0]
    text = ("v" if v_prefix else "") + ".".join(padded)
    if value.pre:
        text += "-" + ".".join(value.pre)
    if build:
        text += "+" + build
    return text


@st.composite
def spell_int(draw, value: int) -> Any:
    form = draw(st.integers(0, 5))
    if form <= 1:
        return value
    if form == 2:
        return str(value)
    if form == 3:
        return ("-" if value < 0 else "") + draw(st.sampled_from(("0x", "0X"))) + format(abs(value), draw(st.sampled_from(("x", "X"))))
    if form == 4 and value >= 0:
        return "+" + str(value)
    return str(value)


@st.composite
def spell_set(draw, value: frozenset, as_array: bool | None = None) -> Any:
    items = draw(st.permutations(sorted(value)))
    items = list(items)
    if items and draw(st.integers(0, 5)) == 5:
        items.append(items[0])  # a duplicate item
    if as_array is None:
        as_array = draw(st.booleans())
    if as_array:
        pads = ("", "", "", " ")
        return [draw(st.sampled_from(pads)) + item + draw(st.sampled_from(pads)) for item in items]
    if not items:
        return draw(st.sampled_from(("", " ")))
    out = items[0]
    for item in items[1:]:
        out += draw(st.sampled_from(("+", ",", ", ", " + ", "+"))) + item
    return out


def absent_spellings(kind: str) -> tuple:
    if kind == "set":
        return (MISSING, None, "", [], " ")
    return (MISSING, None, "")


# =========================================================================================
# The fleet schema: attributes in use and their value pools
# =========================================================================================
@dataclass
class AttrSpec:
    name: str
    kind: str
    keys: tuple[str, ...]  # the name and its aliases
    pool: list
    rule: str = "exact"


def _string_pool_vocab(name: str) -> tuple[str, ...]:
    return STRING_VOCAB.get(name, GENERIC_STRINGS)


@st.composite
def value_pool(draw, name: str, kind: str, big_sets: bool) -> list:
    size = draw(st.integers(1, 3))
    if kind == "string":
        return draw(st.lists(st.sampled_from(_string_pool_vocab(name)), min_size=1, max_size=size, unique=True))
    if kind == "int":
        return draw(st.lists(st.sampled_from(INT_VOCAB), min_size=1, max_size=size, unique=True))
    if kind == "version":
        first = draw(versions())
        pool = [first]
        for _ in range(size - 1):
            if draw(st.booleans()):  # a neighbour of the first one: same major, other minor/patch/prerelease
                parts = list(first.parts) + [0] * (3 - len(first.parts))
                parts[draw(st.integers(1, 2))] = draw(st.sampled_from((0, 1, 2, 5)))
                while parts and parts[-1] == 0:
                    parts.pop()
                pre = draw(st.sampled_from(PRERELEASES)) if draw(st.integers(0, 2)) == 2 else ()
                pool.append(V(tuple(parts), pre))
            else:
                pool.append(draw(versions()))
        return list(dict.fromkeys(pool))
    # set
    if big_sets:
        base = draw(st.sets(st.sampled_from(BIG_SET_ITEMS), min_size=68, max_size=90))
        pool = [frozenset(base)]
        for _ in range(size - 1):
            drop = draw(st.sets(st.sampled_from(sorted(base)), max_size=3))
            add = draw(st.sets(st.sampled_from(BIG_SET_ITEMS), max_size=3))
            pool.append(frozenset((base - drop) | add))
        return list(dict.fromkeys(pool))
    # nested sets (subsets of one base set), so that superset rules pass one way
    base = draw(st.sets(st.sampled_from(SMALL_SET_ITEMS), min_size=1, max_size=4))
    pool = [frozenset(base)]
    for _ in range(size - 1):
        pool.append(frozenset(draw(st.sets(st.sampled_from(sorted(base)), max_size=len(base)))))
    return list(dict.fromkeys(pool))


@st.composite
def extended_schema(draw, schema: list[AttrSpec], big_sets: bool) -> list[AttrSpec]:
    """The schema with one or two more values per pool: values only the sources have
    (ints and versions between the known ones, set items no target has)."""
    out = []
    for spec in schema:
        extra = draw(value_pool(spec.name, spec.kind, big_sets))[:2]
        if spec.kind == "set" and draw(st.booleans()):
            extra = [value | {"exotic"} for value in extra]
        out.append(AttrSpec(spec.name, spec.kind, spec.keys, list(dict.fromkeys([*spec.pool, *extra])), spec.rule))
    return out


@st.composite
def fresh_value(draw, spec: AttrSpec, big_sets: bool) -> Any:
    """A value of the attribute's kind outside (or maybe inside) its pool."""
    return draw(value_pool(spec.name, spec.kind, big_sets))[0]


@st.composite
def spell_value(draw, kind: str, value: Any, *, in_record: bool = False) -> Any:
    if kind == "string":
        return value
    if kind == "int":
        return draw(spell_int(value))
    if kind == "version":
        return draw(spell_version(value))
    return draw(spell_set(value))


@st.composite
def fleet_schema(draw, policy: Policy, big_sets: bool | None = None) -> tuple[list[AttrSpec], bool]:
    declared = [a for a in policy.attributes if not re.fullmatch(r"f\d{2,3}", a.name)]
    fillers = [a for a in policy.attributes if re.fullmatch(r"f\d{2,3}", a.name)]
    # Attributes whose rule lets unequal values pass are drawn twice as often:
    # they give compatible pairs of non-identical devices.
    weighted = declared + [a for a in declared if a.rule not in ("exact",)]
    chosen = draw(st.lists(st.sampled_from(weighted), unique_by=lambda a: a.name, min_size=1, max_size=4))
    if fillers and draw(st.integers(0, 3)) < 3:
        # mostly the last ones (the highest failure and reason bits), sometimes any
        last = fillers[-4:] if draw(st.integers(0, 3)) < 3 else fillers
        chosen += draw(st.lists(st.sampled_from(last), unique_by=lambda a: a.name, min_size=1, max_size=2))
    if big_sets is None:
        big_sets = draw(st.integers(0, 4)) == 4
    if big_sets and not any(a.type == "set" for a in chosen):
        chosen.append(next(a for a in policy.attributes if a.type == "set"))
    specs = []
    for attr in chosen:
        keys = (attr.name, *attr.aliases) if draw(st.integers(0, 3)) == 3 else (attr.name,)
        specs.append(AttrSpec(attr.name, attr.type, keys, draw(value_pool(attr.name, attr.type, big_sets)), attr.rule))
    for name in draw(st.lists(st.sampled_from(UNKNOWN_NAMES), unique=True, max_size=2)):
        rule = policy.attribute(name).rule
        specs.append(AttrSpec(name, "string", (name,), draw(value_pool(name, "string", False)), rule))
    return specs, big_sets


# =========================================================================================
# SELF: semantic values first (name -> value, None when absent), then spellings
# =========================================================================================
@st.composite
def _draw_value(draw, spec: AttrSpec, big_sets: bool) -> Any:
    roll = draw(st.integers(0, 19))
    if roll < 16:
        return draw(st.sampled_from(spec.pool))
    if roll < 19:
        return None
    return draw(fresh_value(spec, big_sets))


@st.composite
def semantic_self(draw, schema: list[AttrSpec], big_sets: bool) -> dict[str, Any]:
    return {spec.name: draw(_draw_value(spec, big_sets)) for spec in schema}


@st.composite
def mutated_self(
    draw, base: dict[str, Any], schema: list[AttrSpec], big_sets: bool, drift: tuple[int, int] = (8, 3)
) -> dict[str, Any]:
    """``base`` with a few attributes changed: neighbours in the fleet differ in little.

    ``drift``: an attribute changes with probability 1/drift[0] when its rule is
    ``exact`` (0: never), 1/drift[1] otherwise; a change of an exact attribute
    rarely leaves a pair compatible, a change of the others often does.
    """
    out = dict(base)
    for spec in schema:
        odds = drift[0] if spec.rule == "exact" else drift[1]
        if odds and draw(st.integers(1, odds)) == odds:
            out[spec.name] = draw(_draw_value(spec, big_sets))
    return out


@st.composite
def spell_self(draw, semantic: dict[str, Any], schema: list[AttrSpec]) -> dict[str, Any]:
    """A SELF object: attributes in a random order, keys maybe aliases, values in some spelling."""
    out: dict[str, Any] = {}
    for spec in draw(st.permutations(schema)):
        value = semantic[spec.name]
        if value is None or (spec.kind == "set" and not value and draw(st.booleans())):
            spelled: Any = draw(st.sampled_from(absent_spellings(spec.kind)))
        else:
            spelled = draw(spell_value(spec.kind, value))
        if spelled is MISSING:
            continue
        out[draw(st.sampled_from(spec.keys))] = spelled
    return out


@st.composite
def self_object(draw, schema: list[AttrSpec], big_sets: bool) -> dict[str, Any]:
    return draw(spell_self(draw(semantic_self(schema, big_sets)), schema))


# =========================================================================================
# COMPATIBLE records
# =========================================================================================
@dataclass(frozen=True)
class Ref:
    """A use of a record-wide int variable; one use per variable becomes its declaration."""

    name: str


@dataclass
class _RecordContext:
    int_vars: dict[str, tuple[int, ...]] = field(default_factory=dict)
    spelled: dict[str, str] = field(default_factory=dict)  # declaration value text
    n_string_vars: int = 0


INT_VAR_NAMES = ("v", "w", "val1")
INT_VAR_VALUES = (1, 2, 4, 8, 0, 3)


@st.composite
def _int_var(draw, ctx: _RecordContext) -> Ref:
    if ctx.int_vars and (len(ctx.int_vars) >= 2 or draw(st.booleans())):
        return Ref(draw(st.sampled_from(sorted(ctx.int_vars))))
    name = next(n for n in INT_VAR_NAMES if n not in ctx.int_vars)
    values = tuple(draw(st.lists(st.sampled_from(INT_VAR_VALUES), min_size=1, max_size=4, unique=True)))
    ctx.int_vars[name] = values
    spelled = []
    for value in values:
        text = draw(st.sampled_from((str(value), str(value), hex(value), "+" + str(value))))
        spelled.append(draw(st.sampled_from((text, text, " " + text + " "))))
    if draw(st.integers(0, 3)) == 3:
        spelled.append(spelled[0])  # a repeated value
    ctx.spelled[name] = ",".join(spelled)
    return Ref(name)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def _string_var(draw, ctx: _RecordContext, values: list[str]) -> str:
    """A local string variable declared in place: ``{sN:string:a,"b+c",...}``."""
    name = f"s{ctx.n_string_vars}"
    ctx.n_string_vars += 1
    values = list(dict.fromkeys(values))
    shown = []
    for value in values:
        needs = value == "" or "," in value or '"' in value or value != value.strip()
        shown.append(_quote(value) if needs or draw(st.integers(0, 4)) == 4 else value)
    return "{" + name + ":string:" + ",".join(shown) + "}"


@st.composite
def _expression(draw, ctx: _RecordContext, nonneg: bool, depth: int = 0) -> list:
    """Parts of an integer expression; the top level is always binary with a variable on one side."""
    ops = ("+", "*", "/") if nonneg else ("+", "-", "*", "/")

    def sp() -> str:
        return draw(st.sampled_from(("", "", " ")))

    def leaf() -> list:
        if draw(st.integers(0, 2)):
            return [draw(_int_var(ctx))]
        return [str(draw(st.integers(0, 4)))]

    def sub(d: int) -> list:
        roll = draw(st.integers(0, 3))
        if d >= 2 or roll <= 1:
            node = leaf()
            if not nonneg and roll == 0 and draw(st.integers(0, 3)) == 0:
                node = ["-", *node]
            return node
        return ["(", *sub(d + 1), sp(), draw(st.sampled_from(ops)), sp(), *sub(d + 1), ")"]

    left = [draw(_int_var(ctx))]
    right = sub(1)
    if draw(st.booleans()):
        left, right = right, left
    return [*left, sp(), draw(st.sampled_from(ops)), sp(), *right]


def _digits_suffix(text: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"(.*?)(\d+)", text)
    return (m.group(1), m.group(2)) if m and m.group(1) else None


@st.composite
def _string_pattern(draw, ctx: _RecordContext, spec: AttrSpec):
    roll = draw(st.integers(0, 9))
    pool = spec.pool
    vocab = list(dict.fromkeys([*pool, *_string_pool_vocab(spec.name)]))
    if roll <= 3:
        return draw(st.sampled_from(pool))
    if roll == 4:
        items = draw(st.lists(st.sampled_from([*vocab, None, ""]), min_size=1, max_size=3))
        return items
    if roll == 5:
        return draw(st.sampled_from(("", None, "*")))
    # templates
    target = draw(st.sampled_from(pool))
    split = _digits_suffix(target)
    if split and draw(st.booleans()):
        return [split[0], draw(_int_var(ctx))]  # i915-GVTg_V5_{v:int:1,2,4,8}
    if len(target) >= 2 and draw(st.booleans()):
        k = draw(st.integers(1, len(target) - 1))
        others = draw(st.lists(st.sampled_from(["x", "1", "-35", target[k:]]), max_size=2))
        return [target[:k], draw(_string_var(ctx, [target[k:], *others]))]
    values = draw(st.lists(st.sampled_from([*vocab, ""]), min_size=1, max_size=3))
    return [draw(_string_var(ctx, values))]


def _literal_pattern(draw, spec: AttrSpec, spell, roll: int):
    """Rolls 0-4 of the int and version patterns: a spelled value (0-2), a list of them with
    absent items (3), an absent or any-value field (4)."""
    if roll <= 2:
        return draw(spell(draw(st.sampled_from(spec.pool))))
    if roll == 3:
        items = draw(st.lists(st.sampled_from([*spec.pool, None]), min_size=1, max_size=3))
        return [draw(spell(v)) if v is not None else draw(st.sampled_from((None, ""))) for v in items]
    return draw(st.sampled_from(("", None, "*")))


@st.composite
def _int_pattern(draw, ctx: _RecordContext, spec: AttrSpec):
    roll = draw(st.integers(0, 10))
    if roll <= 4:
        return _literal_pattern(draw, spec, spell_int, roll)
    if roll == 5:
        return [draw(_int_var(ctx))]  # "{v}"
    if roll == 6:
        return [draw(_int_var(ctx)), "0"]  # "{v}0": text, not an expression
    if roll == 7:
        return ["0x", draw(_string_var(ctx, draw(st.lists(st.sampled_from(("4", "10", "1f", "0", "1912")), min_size=1, max_size=3))))]
    return draw(_expression(ctx, nonneg=False))


@st.composite
def _version_pattern(draw, ctx: _RecordContext, spec: AttrSpec):
    roll = draw(st.integers(0, 10))
    if roll <= 4:
        return _literal_pattern(draw, spec, spell_version, roll)
    if roll == 5:
        return [draw(_int_var(ctx))]  # "{v}": the version "N"
    if roll == 6:
        return draw(_expression(ctx, nonneg=True))  # "{v}/2": an int, read as a version
    # text templates: always hold a '.', so they are never read as expressions
    model = draw(st.sampled_from(spec.pool))
    major = str(model.parts[0]) if model.parts else "0"
    form = draw(st.integers(0, 4))
    if form == 0:
        return [draw(_int_var(ctx)), ".", draw(_int_var(ctx))]
    if form == 1:
        return [major + ".", draw(_int_var(ctx))]
    if form == 2:
        return ["v" + major + ".", draw(_int_var(ctx)), ".0"]
    if form == 3:
        pres = [".".join(p) for p in PRERELEASES if p]
        return [major + ".", draw(_int_var(ctx)), ".0-", draw(_string_var(ctx, draw(st.lists(st.sampled_from(pres), min_size=1, max_size=3))))]
    return [major + ".", draw(_int_var(ctx)), "+", draw(_string_var(ctx, list(BUILDS[:2])))]


@st.composite
def _set_pattern(draw, ctx: _RecordContext, spec: AttrSpec):
    roll = draw(st.integers(0, 9))
    if roll <= 3:
        value = draw(st.sampled_from(spec.pool))
        if draw(st.booleans()):
            value = value | draw(st.sampled_from(spec.pool))
        return draw(spell_set(value))
    if roll == 4:
        return draw(st.sampled_from(("", None, "*", [])))
    values = draw(st.lists(st.sampled_from(spec.pool), min_size=1, max_size=3))
    spelled = [draw(spell_set(v, as_array=False)) for v in values]
    if roll <= 7 or any(s.strip() == "" for s in spelled):
        return [draw(_string_var(ctx, spelled))]  # {s0:string:"a+b",c}
    items = sorted(set().union(*values)) or ["none"]
    item = draw(st.sampled_from(items))
    var = draw(_string_var(ctx, spelled))
    return [item, "+", var] if draw(st.booleans()) else [var, ", ", item]


PATTERNS = {"string": _string_pattern, "int": _int_pattern, "version": _version_pattern, "set": _set_pattern}


@st.composite
def compatible_record(draw, schema: list[AttrSpec]) -> dict[str, Any]:
    ctx = _RecordContext()
    specs = draw(st.lists(st.sampled_from(schema), unique_by=lambda s: s.name, min_size=0, max_size=3))
    if not specs and draw(st.booleans()):
        specs = [schema[0]]
    fields: list[tuple[str, Any]] = []
    for spec in specs:
        fields.append((draw(st.sampled_from(spec.keys)), draw(PATTERNS[spec.kind](ctx, spec))))
    if draw(st.integers(0, 9)) == 9:
        fields.append((RECORD_ONLY_UNKNOWN, draw(st.sampled_from(("a", "*", "", ["a", "b"])))))

    # Each int variable is declared at exactly one of its uses.
    uses: dict[str, list[tuple[int, int]]] = {}
    for f, (_, value) in enumerate(fields):
        if isinstance(value, list):
            for p, part in enumerate(value):
                if isinstance(part, Ref):
                    uses.setdefault(part.name, []).append((f, p))
    declaration = {name: draw(st.sampled_from(where)) for name, where in uses.items()}

    record: dict[str, Any] = {}
    for f, (key, value) in enumerate(fields):
        if isinstance(value, list) and any(isinstance(p, Ref) or (isinstance(p, str) and "{" in p) for p in value):
            text = ""
            for p, part in enumerate(value):
                if isinstance(part, Ref):
                    if declaration[part.name] == (f, p):
                        text += "{" + part.name + ":int:" + ctx.spelled[part.name] + "}"
                    else:
                        text += "{" + part.name + "}"
                else:
                    text += part
            record[key] = text
        else:
            record[key] = value
    return record


# =========================================================================================
# Devices and fleets
# =========================================================================================
HOSTS = ("h1", "h2", "h3", "", None, MISSING)
SEMANTIC = "__semantic"  # a descriptor's SELF as semantic values; never part of a device record
CHANGED = "__changed"  # the attribute a source-only descriptor changed; never part of a record
MIGRATION_VERSIONS = ("mv1", "mv1", "mv2", "nv1", "", None, MISSING, MISSING, MISSING)


@st.composite
def descriptor(
    draw,
    schema: list[AttrSpec],
    big_sets: bool,
    base: dict[str, Any] | None = None,
    opaque_style: str = "mixed",
    drift: tuple[int, int] = (8, 3),
) -> dict[str, Any]:
    """The descriptor part of a record: self, compatible, migration_version, migratable.

    ``base`` is the fleet's typical SELF (semantic values), which this one varies a little.
    """
    semantic = draw(mutated_self(base, schema, big_sets, drift) if base is not None else semantic_self(schema, big_sets))
    out: dict[str, Any] = {"self": draw(spell_self(semantic, schema)), SEMANTIC: semantic}
    n_records = draw(st.sampled_from((0, 0, 0, 1, 1, 2, 3)))
    if n_records:
        out["compatible"] = [draw(compatible_record(schema)) for _ in range(n_records)]
    else:
        empty = draw(st.sampled_from((MISSING, MISSING, [], None)))
        if empty is not MISSING:
            out["compatible"] = empty
    if opaque_style == "none":
        mv = draw(st.sampled_from((MISSING, MISSING, MISSING, None, "")))
    elif opaque_style == "uniform":
        mv = draw(st.sampled_from(("mv1", "mv1", "mv1", "mv2", "nv1", MISSING)))
    else:
        mv = draw(st.sampled_from(MIGRATION_VERSIONS))
    if mv is not MISSING:
        out["migration_version"] = mv
    roll = draw(st.integers(0, 15))
    if roll == 15:
        out["migratable"] = False
    elif roll == 14:
        out["migratable"] = True
    return out


@st.composite
def _near(draw, spec: AttrSpec, known: list) -> Any:
    """A value next to a known one: k +- 1, a version one minor or patch or prerelease
    away, a known set plus one item no pool has; for strings, any other value."""
    if spec.kind == "string":
        return draw(st.sampled_from(["zz", *spec.pool]))
    value = draw(st.sampled_from(known))
    if spec.kind == "int":
        step = draw(st.sampled_from((1, -1)))
        return value + step if INT64_MIN <= value + step <= INT64_MAX else value - step
    if spec.kind == "version":
        parts = list(value.parts) + [0] * (3 - len(value.parts))
        how = draw(st.integers(0, 4))
        if how == 4:
            return V(value.parts, ("rc", "9")) if not value.pre else V(value.parts, (*value.pre, "9"))
        where, step = ((1, 1), (2, 1), (1, 2), (0, 1))[how]  # minor, patch, minor + 2, major
        parts[where] += step if parts[where] + step <= INT64_MAX else -step  # components stay in 64 bits
        if where < 2:
            parts[where + 1 :] = [0] * (len(parts) - where - 1) if draw(st.booleans()) else parts[where + 1 :]
        while parts and parts[-1] == 0:
            parts.pop()
        return V(tuple(parts), value.pre)
    return value | {draw(st.sampled_from(("exotic", "zz-item")))}


@st.composite
def _one_value_unseen(
    draw, parts: dict[str, Any], wide: list[AttrSpec], narrow: list[AttrSpec], name: str | None = None, around: Any = None
) -> dict[str, Any]:
    """A copy of a descriptor whose SELF differs in one attribute (``name``, or mostly an
    int, version or set one, whose unseen values are coded between or beside the known
    ones), set to a value near a known one (or near ``around``) or to a value of the wider
    schema that the narrow one lacks. The attribute's name is under the key CHANGED."""
    semantic = dict(parts[SEMANTIC])
    ordered = [s for s in wide if s.kind != "string"]
    if name is not None:
        spec = next(s for s in wide if s.name == name)
    else:
        spec = draw(st.sampled_from(ordered if ordered and draw(st.integers(0, 3)) < 3 else wide))
    known = next(s for s in narrow if s.name == spec.name).pool
    if around is not None and spec.kind != "string":
        semantic[spec.name] = draw(_near(spec, [around]))
    elif draw(st.booleans()):
        semantic[spec.name] = draw(_near(spec, known))
    else:
        extra = [v for v in spec.pool if v not in known] or spec.pool
        semantic[spec.name] = draw(st.sampled_from(extra))
    return {**parts, "self": draw(spell_self(semantic, wide)), SEMANTIC: semantic, CHANGED: spec.name}


@st.composite
def _device(draw, device_id: str, descriptor_parts: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"id": device_id}
    host = draw(st.sampled_from(HOSTS))
    if host is not MISSING:
        record["host"] = host
    if draw(st.integers(0, 5)) == 5:
        record["vm"] = draw(st.sampled_from(("vm1", "", None)))
    parts = {key: value for key, value in descriptor_parts.items() if key not in (SEMANTIC, CHANGED)}
    record.update(json.loads(json.dumps(parts)))  # a copy: records must not share lists
    capacity = draw(st.sampled_from((MISSING, MISSING, 0, 1, 2, 3)))
    if capacity is not MISSING:
        record["capacity"] = capacity
    return record


@dataclass
class Scenario:
    """One generated case: a policy, the two sides, an optional opaque confirmer."""

    policy_dict: dict[str, Any]
    sources: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    confirm_name: str | None = None

    @property
    def policy(self) -> Policy:
        return Policy.from_dict(self.policy_dict)

    @property
    def confirm(self) -> Callable[[str, str], bool] | None:
        return CONFIRMERS[self.confirm_name] if self.confirm_name else None

    def to_json(self) -> str:
        return json.dumps(
            {"policy": self.policy_dict, "sources": self.sources, "targets": self.targets, "confirm": self.confirm_name},
            ensure_ascii=False,
        )

    def __repr__(self) -> str:
        lines = [f"Scenario(policy_dict={json.dumps(self.policy_dict, ensure_ascii=False)},"]
        lines.append("  sources=[")
        lines += [f"    {json.dumps(r, ensure_ascii=False)}," for r in self.sources]
        lines.append("  ], targets=[")
        lines += [f"    {json.dumps(r, ensure_ascii=False)}," for r in self.targets]
        lines.append(f"  ], confirm_name={self.confirm_name!r})")
        return "\n".join(lines)


def confirm_same_first_char(source: str, target: str) -> bool:
    """A caller-supplied opaque confirmer: deterministic, not plain equality."""
    return source[:1] == target[:1]


def confirm_source_not_newer(source: str, target: str) -> bool:
    """An asymmetric confirmer (``mv1 -> mv2`` passes, ``mv2 -> mv1`` does not): catches swapped arguments."""
    return source <= target


CONFIRMERS: dict[str, Callable[[str, str], bool]] = {
    "same-first-char": confirm_same_first_char,
    "source-not-newer": confirm_source_not_newer,
}


def _size(low: int, high: int) -> st.SearchStrategy[int]:
    """Sizes in low..high; the empty side only now and then."""
    if low > 0 or high == 0:
        return st.integers(low, high)
    return st.integers(0, 11).flatmap(lambda roll: st.just(0) if roll == 11 else st.integers(1, high))


@st.composite
def fleet_for(
    draw,
    policy: Policy,
    *,
    min_sources: int = 0,
    max_sources: int = 8,
    min_targets: int = 0,
    max_targets: int = 8,
    max_descriptors: int = 6,
    big_sets: bool | None = None,
    unseen_sources: bool | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sources and targets under ``policy``. ``unseen_sources``: the sources also take
    descriptors of their own, with values that no target has."""
    schema, big = draw(fleet_schema(policy, big_sets))
    base = draw(semantic_self(schema, big)) if draw(st.integers(0, 5)) < 5 else None
    opaque_style = draw(st.sampled_from(("none", "uniform", "mixed")))
    n_pool = draw(st.sampled_from((2, 3, 1, 4, 5, 6, 7, 8)[:max_descriptors]))
    drift = draw(st.sampled_from(((0, 2), (8, 3), (0, 2), (3, 3))))
    pool = [draw(descriptor(schema, big, base, opaque_style, drift)) for _ in range(n_pool)]
    # Devices take the pool's descriptors in a random rotation, and now and then a random one:
    # plain sampled_from would give nearly every device the first descriptor.
    rotation = draw(st.permutations(range(n_pool)))
    counter = iter(range(1 << 30))

    def pick() -> dict[str, Any]:
        k = next(counter)
        return pool[draw(st.integers(0, n_pool - 1))] if draw(st.integers(0, 3)) == 3 else pool[rotation[k % n_pool]]

    if unseen_sources is None:
        unseen_sources = draw(st.integers(0, 3)) == 3
    source_pool: list[dict[str, Any]] = []
    if unseen_sources:
        wide = draw(extended_schema(schema, big))
        for _ in range(draw(st.integers(1, 4))):
            base_parts = pick()
            first = draw(_one_value_unseen(base_parts, wide, schema))
            source_pool.append(first)
            if draw(st.booleans()):  # a sibling: the same attribute, a value next to the first (maybe the same code)
                name = first[CHANGED]
                around = first[SEMANTIC][name]
                source_pool.append(draw(_one_value_unseen(base_parts, wide, schema, name, around)))

    def pick_source() -> dict[str, Any]:
        if source_pool and draw(st.integers(0, 2)) < 2:
            return source_pool[draw(st.integers(0, len(source_pool) - 1))]
        return pick()

    n_sources = draw(_size(min_sources, max_sources))
    n_targets = draw(_size(min_targets, max_targets))
    sources = [draw(_device(f"dev{i}", pick_source())) for i in range(n_sources)]
    targets = []
    shared = list(range(n_sources))
    for j in range(n_targets):
        if shared and draw(st.integers(0, 3)) == 3:  # the same device on both sides
            i = shared.pop(draw(st.integers(0, len(shared) - 1)))
            if draw(st.booleans()):
                record = json.loads(json.dumps(sources[i]))
                if draw(st.booleans()):
                    record["capacity"] = draw(st.integers(0, 3))
            else:
                record = draw(_device(sources[i]["id"], pick()))
        else:
            record = draw(_device(f"dev{n_sources + j}", pick()))
        targets.append(record)
    # a few ids that are not "devN", so id order is not index order
    if targets and draw(st.integers(0, 3)) == 3:
        targets = draw(st.permutations(targets))
    return sources, list(targets)


@st.composite
def scenarios(
    draw,
    *,
    min_sources: int = 0,
    max_sources: int = 8,
    min_targets: int = 0,
    max_targets: int = 8,
    max_descriptors: int = 6,
    big_sets: bool | None = None,
    fillers: bool | None = None,
    filler_totals: tuple[int, ...] = FILLER_TOTALS,
    confirm: bool = True,
    unseen_sources: bool | None = None,
) -> Scenario:
    policy_dict = draw(policy_dicts(fillers=fillers, totals=filler_totals))
    policy = Policy.from_dict(policy_dict)
    sources, targets = draw(
        fleet_for(
            policy,
            min_sources=min_sources,
            max_sources=max_sources,
            min_targets=min_targets,
            max_targets=max_targets,
            max_descriptors=max_descriptors,
            big_sets=big_sets,
            unseen_sources=unseen_sources,
        )
    )
    confirm_name = draw(st.sampled_from((None, None, "source-not-newer", "same-first-char"))) if confirm else None
    return Scenario(policy_dict, sources, targets, confirm_name)


def validate(scenario: Scenario) -> tuple[DeviceSet, DeviceSet]:
    """Load both sides; raises FastmatchError when the strategy produced an invalid record."""
    policy = scenario.policy
    return DeviceSet.from_records(scenario.sources, policy), DeviceSet.from_records(scenario.targets, policy)
