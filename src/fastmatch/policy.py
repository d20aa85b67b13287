"""The policy of docs/model.md section 4: attribute types, rules, aliases and options."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import InputError, PolicyError
from .files import input_name, read_input
from .values import KINDS, Kind, describe

# A policy is a few dozen lines; anything near this is not one (or is /dev/zero).
MAX_POLICY_BYTES = 1 << 20
RULES = ("exact", "version", "superset", "ge", "le", "dynamic", "ignore")
_RULE_KINDS: dict[str, tuple[Kind, ...]] = {
    "exact": KINDS,
    "version": ("version",),
    "superset": ("set",),
    "ge": ("int", "version"),
    "le": ("int", "version"),
    "dynamic": KINDS,
    "ignore": KINDS,
}
_CHOICES = {
    "direction": ("target-accepts", "source-offers", "both"),
    "records": ("override", "and"),
    "unknown": ("exact", "ignore"),
    "prefer": ("closest", "newest"),
    "opaque": ("if-present", "required", "ignore"),
}


@dataclass(frozen=True, slots=True)
class Attribute:
    """One declared attribute: its type, the rule that compares it, and the names it may
    also be written under (docs/model.md sections 3 and 4)."""

    name: str
    type: Kind = "string"
    rule: str = "exact"
    aliases: tuple[str, ...] = ()


_DEFAULT_ATTRIBUTES = (
    Attribute("device_api"),
    Attribute("mdev_type", aliases=("type",)),
    Attribute("vendor_driver", aliases=("driver",)),
    Attribute("device_id", aliases=("pciid", "pci_id")),
    Attribute("software_version", "version", "version", ("interface_version", "gvt-version")),
    Attribute("pv_mode", "set", "superset", ("pv-mode",)),
    Attribute("aggregator", "int"),
)


@dataclass(frozen=True, repr=False)
class Policy:
    """How descriptors are compared (docs/model.md section 4). Immutable; build one with
    :meth:`default`, :meth:`from_toml` or :meth:`from_dict`."""

    attributes: tuple[Attribute, ...] = _DEFAULT_ATTRIBUTES
    direction: str = "target-accepts"
    records: str = "override"
    unknown: str = "exact"
    prefer: str = "closest"
    exclude_same_host: bool = True
    opaque: str = "if-present"
    score_type: str = "mdev_type"
    score_version: str = "software_version"
    _by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False)
    _alias_of: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Attribute] = {}
        alias_of: dict[str, str] = {}
        for attr in self.attributes:
            where = f"attributes.{attr.name}"
            if not attr.name:
                raise PolicyError("an attribute name is empty")
            if attr.type not in KINDS:
                raise PolicyError(f"unknown type {attr.type!r} (expected one of {', '.join(KINDS)})", field=where)
            if attr.rule not in RULES:
                raise PolicyError(f"unknown rule {attr.rule!r} (expected one of {', '.join(RULES)})", field=where)
            if attr.type not in _RULE_KINDS[attr.rule]:
                raise PolicyError(f"rule {attr.rule!r} does not fit type {attr.type!r}", field=where)
            if attr.name in by_name or attr.name in alias_of:
                raise PolicyError(f"attribute name {attr.name!r} is declared twice or is another attribute's alias", field=where)
            by_name[attr.name] = attr
        for attr in self.attributes:
            for alias in attr.aliases:
                if alias in by_name or alias in alias_of or alias == "":
                    raise PolicyError(f"alias {alias!r} collides with another attribute or alias", field=f"attributes.{attr.name}.aliases")
                alias_of[alias] = attr.name
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise PolicyError(f"{getattr(self, key)!r} is not one of {', '.join(choices)}", field=key)
        if not isinstance(self.exclude_same_host, bool):
            raise PolicyError("expected true or false", field="exclude_same_host")
        for key in ("score_type", "score_version"):
            name = getattr(self, key)
            if not isinstance(name, str):
                raise PolicyError("expected an attribute name", field=key)
            if name and name not in by_name:
                raise PolicyError(f"{name!r} is not a declared attribute", field=key)
        if self.score_version and by_name[self.score_version].type != "version":
            raise PolicyError(f"{self.score_version!r} is not a version attribute", field="score_version")
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_alias_of", alias_of)

    def __repr__(self) -> str:
        """What sets this policy apart from the default, in one short line: the options
        that differ, then the attributes added, changed or left out (:meth:`to_dict` has it all)."""
        default = _DEFAULT_POLICY_DICT
        mine = self.to_dict()
        said = [f"{key}={value!r}" for key, value in mine.items() if key != "attributes" and value != default[key]]
        attributes, default_attributes = mine["attributes"], default["attributes"]
        for verb, names in (
            ("added", [a for a in attributes if a not in default_attributes]),
            ("changed", [a for a in attributes if a in default_attributes and attributes[a] != default_attributes[a]]),
            ("without", [a for a in default_attributes if a not in attributes]),
        ):
            if names:
                said.append(f"{verb} {', '.join(names)}")
        return f"<Policy {'; '.join(said) if said else 'default'}>"

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def default(cls) -> "Policy":
        """The built-in policy (docs/model.md section 4)."""
        return cls()

    @classmethod
    def from_toml(cls, path: str | Path) -> "Policy":
        """Read a policy file (TOML, at most 1 MiB); keys left out keep the defaults."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        name = input_name(path)
        try:
            data = read_input(path, limit=MAX_POLICY_BYTES, line_limit=False)
        except InputError as exc:
            raise PolicyError(f"cannot read policy: {exc.message.removeprefix('cannot read: ')}", file=name) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise PolicyError(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=name, line=line) from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"invalid TOML: {exc}", file=name) from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise PolicyError("invalid TOML: arrays or tables nested too deeply", file=name) from None
        try:
            return cls.from_dict(document)
        except PolicyError as exc:
            raise exc.located(file=name) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Policy":
        """Keys as in the TOML file; missing keys keep the defaults.

        An ``attributes`` entry adds a new attribute, or replaces a default one;
        the keys it leaves out are taken from the attribute it replaces.
        """
        if not isinstance(data, Mapping):
            raise PolicyError("a policy is a table of keys")
        options: dict[str, Any] = {}
        attributes = {attr.name: attr for attr in _DEFAULT_ATTRIBUTES}
        for key, value in data.items():
            if key == "attributes":
                if not isinstance(value, Mapping):
                    raise PolicyError("expected a table of attributes", field="attributes")
                for name, entry in value.items():
                    attributes[name] = _attribute_from_dict(name, entry, attributes.get(name))
            elif key in cls.__dataclass_fields__ and not key.startswith("_") and key != "attributes":
                options[key] = value
            else:
                raise PolicyError(f"unknown policy key {key!r}", field=key)
        return cls(attributes=tuple(attributes.values()), **options)

    def to_dict(self) -> dict[str, Any]:
        """The policy as :meth:`from_dict` reads it (every key, every attribute)."""
        out: dict[str, Any] = {
            key: getattr(self, key)
            for key in ("direction", "records", "unknown", "prefer", "exclude_same_host", "opaque", "score_type", "score_version")
        }
        out["attributes"] = {
            a.name: {"type": a.type, "rule": a.rule, "aliases": list(a.aliases)} for a in self.attributes
        }
        return out

    def to_toml(self) -> str:
        """The policy as a TOML file that :meth:`from_toml` reads back to an equal policy."""
        import tomli_w  # only `fastmatch policy` writes TOML

        return tomli_w.dumps(self.to_dict())

    # -- lookups ----------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The attribute name for ``name``, which may be an alias."""
        return self._alias_of.get(name, name)

    def attribute(self, name: str) -> Attribute:
        """The declared attribute, or the typed-string one that ``unknown`` gives."""
        attr = self._by_name.get(name)
        if attr is not None:
            return attr
        return Attribute(name, "string", "ignore" if self.unknown == "ignore" else "exact")

    def attribute_order(self, names_in_order: Iterable[str]) -> list[str]:
        """Declared attributes first, then unknown ones in the order given (docs/model.md section 8)."""
        order = [a.name for a in self.attributes]
        seen = set(order)
        for name in names_in_order:
            if name not in seen:
                seen.add(name)
                order.append(name)
        return order


def _attribute_from_dict(name: str, entry: Any, base: Attribute | None) -> Attribute:
    where = f"attributes.{name}"
    if not isinstance(entry, Mapping):
        raise PolicyError("expected a table with type, rule and aliases", field=where)
    unknown = set(entry) - {"type", "rule", "aliases"}
    if unknown:
        raise PolicyError(f"unknown key {sorted(unknown)[0]!r}", field=where)
    base = base or Attribute(name)
    aliases = entry.get("aliases", base.aliases)
    if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) for a in aliases):
        raise PolicyError(f"expected a list of names, got {describe(aliases)}", field=f"{where}.aliases")
    kind = entry.get("type", base.type)
    rule = entry.get("rule", base.rule if "type" not in entry else "exact")
    for key, value in (("type", kind), ("rule", rule)):
        if not isinstance(value, str):
            raise PolicyError("expected a string", field=f"{where}.{key}")
    return Attribute(name, kind, rule, tuple(aliases))


_DEFAULT_POLICY_DICT = Policy().to_dict()
