"""The reason mask of SPEC section 8 and the score layout of section 7.

Shared vocabulary of the kernel, the reference and the results: nothing here
evaluates a pair.
"""

from __future__ import annotations

import numpy as np

SAME_DEVICE = 1 << 63
SAME_HOST = 1 << 62
NOT_MIGRATABLE = 1 << 61
OPAQUE = 1 << 60
NO_RECORD = 1 << 59
SHARED_ATTRIBUTE_BIT = 58  # attributes from this index on share this bit

FIXED_REASONS = {
    SAME_DEVICE: "SAME_DEVICE",
    SAME_HOST: "SAME_HOST",
    NOT_MIGRATABLE: "NOT_MIGRATABLE",
    OPAQUE: "OPAQUE",
    NO_RECORD: "NO_RECORD",
}

# Score layout (int64, higher is better, -1 when incompatible):
#   bit 62       exact: identical descriptors
#   bit 61       same_type: equal score_type values
#   bit 60       both sides have the score_version attribute
#   bits 0..59   prefer="closest": three 20-bit fields, most significant first:
#                  CAP - min(|dMajor|, CAP), CAP - min(|dMinor|, CAP), min(T.patch, CAP)
#                prefer="newest": the rank of T's version among the targets' versions
SCORE_EXACT = 1 << 62
SCORE_SAME_TYPE = 1 << 61
SCORE_HAS_VERSION = 1 << 60
FIELD_BITS = 20
FIELD_CAP = (1 << FIELD_BITS) - 1


# A class pair's outcome (int64) holds both: its score when compatible (>= 0), otherwise
# its reason mask with the sign bit set. The two never coexist, and one 8-byte value per
# pair halves what the kernel writes. SAME_DEVICE (bit 63, the sign) and SAME_HOST are
# about devices, not classes: outcomes never hold them, results add them from the devices.
INCOMPATIBLE = np.int64(-(1 << 63))
_CLASS_REASON_BITS = np.int64((1 << 63) - 1)


def outcome_scores(outcomes: np.ndarray) -> np.ndarray:
    """int64 scores, -1 where incompatible."""
    return np.where(outcomes >= 0, outcomes, np.int64(-1))


def outcome_reasons(outcomes: np.ndarray) -> np.ndarray:
    """uint64 reason masks, 0 where compatible."""
    return np.where(outcomes < 0, outcomes & _CLASS_REASON_BITS, np.int64(0)).view(np.uint64)


def attribute_bit(index: int) -> int:
    return 1 << min(index, SHARED_ATTRIBUTE_BIT)


def closest_version_score(s_major: int, s_minor: int, t_major: int, t_minor: int, t_patch: int) -> int:
    d_major = min(abs(t_major - s_major), FIELD_CAP)
    d_minor = min(abs(t_minor - s_minor), FIELD_CAP)
    return (
        SCORE_HAS_VERSION
        | (FIELD_CAP - d_major) << (2 * FIELD_BITS)
        | (FIELD_CAP - d_minor) << FIELD_BITS
        | min(t_patch, FIELD_CAP)
    )


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
