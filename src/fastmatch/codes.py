"""The numbers Python and the native kernel share: op kinds, record tests, reason and score bits.

This file is their one definition. ``setup.py`` writes ``native/codes.pxi`` from it before
the kernel compiles (each ``NAME = value`` line below, nothing else), so edit here only.
"""

# Op kinds of the per-pair rule loop (fastmatch/intern.py builds them, the kernel runs them).
OP_NE = 0  # fails where t != s (exact; opaque if-present; opaque required when s is present)
OP_VERSION = 1  # version rule on major codes and minor ranks
OP_GE = 2  # ge on order-preserving codes
OP_LE = 3  # le on order-preserving codes
OP_SUPERSET = 4  # superset on mask words
OP_MIGRATABLE = 5  # fails where the target is not migratable (all, when the source is not)
OP_REQUIRED = 6  # opaque required: NE, and all fail when the source has no migration_version
OP_CONFIRM = 7  # opaque check through a caller's confirmer table

# Tests of a compiled COMPATIBLE record field.
TEST_IN_CODES = 0  # the value's code is one of a list
TEST_SUBSET = 1  # the set's mask words lie within the record's

# docs/model.md section 8's fixed reason bits; attribute i has bit i, and from SHARED_ATTRIBUTE_BIT on they share it.
SAME_DEVICE = 1 << 63
SAME_HOST = 1 << 62
NOT_MIGRATABLE = 1 << 61
OPAQUE = 1 << 60
NO_RECORD = 1 << 59
SHARED_ATTRIBUTE_BIT = 58

# A class pair's outcome (int64): its score when compatible (>= 0), else its reason mask with
# the sign bit set; SAME_DEVICE (bit 63) is about devices, so class outcomes never hold it.
INCOMPATIBLE = 1 << 63

# docs/model.md section 7's score flags, above the version part (fastmatch/reasons.py: VersionScale).
SCORE_EXACT = 1 << 62
SCORE_SAME_TYPE = 1 << 61
SCORE_HAS_VERSION = 1 << 60
