"""What-if: changes applied to the fleet before planning (``--assume FILE``), so that an
operator can ask "if I upgrade these hosts' drivers first, can I drain those?".

A file holds patches, TOML ``[[patch]]`` tables or a JSON list (or ``{"patch": [...]}``)::

    [[patch]]
    side = "targets"                 # sources, targets or both (default)
    hosts = ["kbl-0[1-4]"]           # shell-style host patterns (fnmatch), or ...
    # ids = ["host-1/0000:17:00.0/i915-GVTg_V5_4"]   # ... device ids
    self = { software_version = "17.4" }             # merged into SELF; null removes
    # capacity = 4, migration_version = "...", migratable = false, compatible = [...] (replaced)

Patched records are validated again as any input is. A patch that matches no device is an
error: a typo must not make the answer look better than it is.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any, Mapping

from ..devices import DeviceSet
from ..errors import InputError
from .inputs import read_document

SIDES = ("sources", "targets", "both")
SELECTORS = ("hosts", "ids")
CHANGES = ("self", "capacity", "migration_version", "migratable", "compatible")
PATCH_KEYS = ("side", *SELECTORS, *CHANGES)


def read_assumptions(path: str | os.PathLike[str]) -> tuple[str, list[dict[str, Any]]]:
    """``(name, patches)``, each patch checked for its shape (its values are checked when applied)."""
    name, document = read_document(path)
    return name, check_patches(document, name)


def check_patches(document: Any, name: str | None = None) -> list[dict[str, Any]]:
    if isinstance(document, Mapping):
        unknown = set(document) - {"patch"}
        if unknown:
            raise InputError(f"unknown key {sorted(unknown)[0]!r} (expected 'patch')", file=name, field=sorted(unknown)[0])
        document = document.get("patch", [])
    if not isinstance(document, list):
        raise InputError(f"expected a list of patches, got {type(document).__name__}", file=name, field="patch")
    patches = []
    for k, patch in enumerate(document):
        where = f"patch[{k}]"
        if not isinstance(patch, Mapping):
            raise InputError(f"a patch is a table, got {type(patch).__name__}", file=name, field=where)
        for key in patch:
            if key not in PATCH_KEYS:
                raise InputError(f"unknown key {key!r} (expected {', '.join(PATCH_KEYS)})", file=name, field=f"{where}.{key}")
        side = patch.get("side", "both")
        if side not in SIDES:
            raise InputError(f"expected one of {', '.join(SIDES)}, got {side!r}", file=name, field=f"{where}.side")
        selectors = [key for key in SELECTORS if key in patch]
        if len(selectors) != 1:
            raise InputError("a patch selects devices by exactly one of 'hosts' or 'ids'", file=name, field=where)
        selector = patch[selectors[0]]
        if isinstance(selector, str):
            selector = [selector]
        if not isinstance(selector, list) or not selector or not all(isinstance(s, str) and s for s in selector):
            raise InputError("expected a non-empty list of non-empty strings", file=name, field=f"{where}.{selectors[0]}")
        if not any(key in patch for key in CHANGES):
            raise InputError(f"a patch changes at least one of {', '.join(CHANGES)}", file=name, field=where)
        if "self" in patch and not isinstance(patch["self"], Mapping):
            raise InputError("expected a table of attributes", file=name, field=f"{where}.self")
        patches.append({**patch, "side": side, selectors[0]: selector})
    return patches


def apply_assumptions(
    sources: DeviceSet, targets: DeviceSet, patches: list[dict[str, Any]], name: str | None = None
) -> tuple[DeviceSet, DeviceSet]:
    """The two fleets with every patch applied in order (a later patch sees an earlier one's changes)."""
    if not patches:
        return sources, targets
    sides = {"sources": sources.to_records(), "targets": targets.to_records()}
    matched = [0] * len(patches)
    for side, records in sides.items():
        for k, patch in enumerate(patches):
            if patch["side"] in (side, "both"):
                matched[k] += _apply(patch, records)
    for k, count in enumerate(matched):
        if count == 0:
            selector = "hosts" if "hosts" in patches[k] else "ids"
            raise InputError(f"matches no {_side_words(patches[k]['side'])}", file=name, field=f"patch[{k}].{selector}")
    policy = sources.policy
    patched = []
    for side, records in sides.items():
        patched.append(DeviceSet.from_records(records, policy, source=f"{side} patched by {name or 'assumptions'}"))
    return patched[0], patched[1]


def _side_words(side: str) -> str:
    return {"sources": "source device", "targets": "target device"}.get(side, "device")


def _apply(patch: Mapping[str, Any], records: list[dict[str, Any]]) -> int:
    if "ids" in patch:
        wanted = set(patch["ids"])
        chosen = [r for r in records if r["id"] in wanted]
    else:
        patterns = patch["hosts"]
        chosen = [r for r in records if any(fnmatch.fnmatchcase(r.get("host", ""), p) for p in patterns)]
    for record in chosen:
        if "self" in patch:
            attributes = dict(record["self"])
            for key, value in patch["self"].items():
                if value is None:
                    attributes.pop(key, None)
                else:
                    attributes[key] = value
            record["self"] = attributes
        for key in ("capacity", "migration_version", "migratable", "compatible"):
            if key in patch:
                record[key] = patch[key]
    return len(chosen)
