"""The reason mask of docs/model.md section 8 and the score layout of section 7.

Shared vocabulary of the kernel, the reference and the results: nothing here
evaluates a pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import numpy.typing as npt

from .errors import FastmatchError
from .policy import Policy

if TYPE_CHECKING:
    from .values import Version

# The vocabulary of reasons and scores, re-exported for the modules that read them.
from .codes import INCOMPATIBLE as _INCOMPATIBLE_BIT
from .codes import (
    NO_RECORD as NO_RECORD,
    NOT_MIGRATABLE as NOT_MIGRATABLE,
    OPAQUE as OPAQUE,
    SAME_DEVICE as SAME_DEVICE,
    SAME_HOST as SAME_HOST,
    SCORE_EXACT as SCORE_EXACT,
    SCORE_HAS_VERSION as SCORE_HAS_VERSION,
    SCORE_SAME_TYPE as SCORE_SAME_TYPE,
    SHARED_ATTRIBUTE_BIT as SHARED_ATTRIBUTE_BIT,
)

FIXED_REASONS = {
    SAME_DEVICE: "SAME_DEVICE",
    SAME_HOST: "SAME_HOST",
    NOT_MIGRATABLE: "NOT_MIGRATABLE",
    OPAQUE: "OPAQUE",
    NO_RECORD: "NO_RECORD",
}
# When each fixed reason is set (docs/model.md section 8), for `fastmatch reasons`.
FIXED_REASON_MEANINGS = {
    SAME_DEVICE: "the source and the target are one device",
    SAME_HOST: "both are on one host, and the policy excludes that (exclude_same_host)",
    NOT_MIGRATABLE: "the source or the target is not migratable",
    OPAQUE: "the opaque migration_version check failed",
    NO_RECORD: "the target has COMPATIBLE records and none accepted the source",
}

# Score layout (int64, higher is better, -1 when incompatible), docs/model.md section 7:
#   bit 62       exact: identical descriptors
#   bit 61       same_type: equal score_type values
#   bit 60       both sides have the score_version attribute
#   bits 0..59   prefer="closest": three fields, most significant first, each as wide as the target
#                fleet's distinct values of its component need (VersionScale):
#                  how close T.major is to S.major, how close T.minor is to S.minor, T.patch's rank
#                prefer="newest": the rank of T's version among the targets' versions
# Closeness counts the target values that are strictly closer, so every size of component ranks
# by its true difference (a date-stamped patch, a major in the millions): nothing is capped.
VERSION_BITS = 60


class VersionScale:
    """The target fleet's distinct majors, minors and patches, which the closest-version part
    of a score is measured against: one definition for the kernel and the reference."""

    def __init__(self, majors: Iterable[int], minors: Iterable[int], patches: Iterable[int]) -> None:
        self.majors = np.unique(np.asarray(majors, dtype=np.int64))
        self.minors = np.unique(np.asarray(minors, dtype=np.int64))
        self.patches = np.unique(np.asarray(patches, dtype=np.int64))
        self.minor_shift = int(len(self.patches)).bit_length()
        self.major_shift = self.minor_shift + int(len(self.minors)).bit_length()
        if self.major_shift + int(len(self.majors)).bit_length() > VERSION_BITS:
            raise FastmatchError(
                f"the targets' versions have {len(self.majors):,} majors, {len(self.minors):,} minors and "
                f"{len(self.patches):,} patches: more distinct values than a score's {VERSION_BITS} bits rank"
            )

    @classmethod
    def of(cls, versions: Iterable[Version]) -> "VersionScale":
        versions = list(versions)
        return cls([v.major for v in versions], [v.minor for v in versions], [v.patch for v in versions])

    def score(self, s_major: int, s_minor: int, t_major: int, t_minor: int, t_patch: int) -> int:
        """The version part of a prefer="closest" score, counted plainly (the reference's way)."""

        def closeness(values: npt.NDArray[np.int64], s: int, t: int) -> int:
            closer = sum(1 for v in values.tolist() if abs(v - s) < abs(t - s))
            return len(values) - 1 - closer

        patch_rank = int(np.searchsorted(self.patches, t_patch))  # the patches are unique and sorted
        return (
            SCORE_HAS_VERSION
            | closeness(self.majors, s_major, t_major) << self.major_shift
            | closeness(self.minors, s_minor, t_minor) << self.minor_shift
            | patch_rank
        )


# A class pair's outcome (int64) holds both: its score when compatible (>= 0), otherwise
# its reason mask with the sign bit set. The two never coexist, and one 8-byte value per
# pair halves what the kernel writes. SAME_DEVICE (bit 63, the sign) and SAME_HOST are
# about devices, not classes: outcomes never hold them, results add them from the devices.
INCOMPATIBLE = np.uint64(_INCOMPATIBLE_BIT).view(np.int64)
_CLASS_REASON_BITS = ~INCOMPATIBLE


def outcome_scores(outcomes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """int64 scores, -1 where incompatible."""
    return np.where(outcomes >= 0, outcomes, np.int64(-1))


def outcome_reasons(outcomes: npt.NDArray[np.int64] | np.int64) -> npt.NDArray[np.uint64]:
    """uint64 reason masks, 0 where compatible."""
    return np.where(outcomes < 0, outcomes & _CLASS_REASON_BITS, np.int64(0)).view(np.uint64)


def attribute_bit(index: int) -> int:
    return 1 << min(index, SHARED_ATTRIBUTE_BIT)


def reason_names(mask: int, attributes: list[str]) -> list[str]:
    """Names of the bits set in ``mask``: attributes (in order) then the fixed reasons."""
    names = [name for index, name in enumerate(attributes[:SHARED_ATTRIBUTE_BIT]) if mask >> index & 1]
    if mask >> SHARED_ATTRIBUTE_BIT & 1:
        names.append(
            attributes[SHARED_ATTRIBUTE_BIT]
            if len(attributes) == SHARED_ATTRIBUTE_BIT + 1
            else f"attributes {SHARED_ATTRIBUTE_BIT}+ ({', '.join(attributes[SHARED_ATTRIBUTE_BIT:])})"
        )
    names.extend(name for bit, name in sorted(FIXED_REASONS.items()) if mask & bit)
    return names


def reason_bits(policy: Policy) -> list[dict[str, Any]]:
    """Every reason a mask can hold under ``policy``, lowest bit first (docs/model.md section 8).

    The declared attributes in the policy's order, with their type and rule; then the bits
    undeclared attributes take, in order of first appearance in a match's inputs (one entry,
    ``"bit"`` to ``"last_bit"``); then the fixed reasons. ``"mask"`` is the bit as hex text,
    which JSON tools read exactly (bit 63 is beyond a double's integers).
    """
    entries: list[dict[str, Any]] = []
    for index, attribute in enumerate(policy.attributes):
        bit = min(index, SHARED_ATTRIBUTE_BIT)
        shared = " (attributes from this one on share the bit)" if index == SHARED_ATTRIBUTE_BIT else ""
        meaning = f"the {attribute.rule} rule fails ({attribute.type}){shared}"
        if attribute.rule in ("ignore", "dynamic"):
            meaning = f"never: the {attribute.rule} rule always passes ({attribute.type})"
        entries.append(_entry(bit, attribute.name, "attribute", meaning, type=attribute.type, rule=attribute.rule))
    first = len(policy.attributes)
    if first <= SHARED_ATTRIBUTE_BIT:
        unknown_rule = "ignore" if policy.unknown == "ignore" else "exact"
        meaning = (
            f"an undeclared attribute's {unknown_rule} rule fails (string); bits in order of first appearance, "
            f"from bit {SHARED_ATTRIBUTE_BIT} on shared"
            if unknown_rule != "ignore"
            else "never: undeclared attributes are ignored (unknown = \"ignore\")"
        )
        entry = _entry(min(first, SHARED_ATTRIBUTE_BIT), "(undeclared attributes)", "undeclared", meaning, type="string", rule=unknown_rule)
        entry["last_bit"] = SHARED_ATTRIBUTE_BIT
        entries.append(entry)
    # Fixed reasons a policy turns off, with the setting that does.
    turned_off = {
        SAME_HOST: "exclude_same_host = false" if not policy.exclude_same_host else None,
        OPAQUE: 'opaque = "ignore"' if policy.opaque == "ignore" else None,
    }
    for bit_value, name in sorted(FIXED_REASONS.items()):
        setting = turned_off.get(bit_value)
        meaning = f"never under this policy ({setting})" if setting else FIXED_REASON_MEANINGS[bit_value]
        entries.append(_entry(bit_value.bit_length() - 1, name, "fixed", meaning))
    return entries


def _entry(bit: int, name: str, kind: str, meaning: str, **more: str) -> dict[str, Any]:
    return {"bit": bit, "mask": f"{1 << bit:#x}", "name": name, "kind": kind, **more, "meaning": meaning}
