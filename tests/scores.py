"""Scores as SPEC section 7 states them, for tests: flags and ordering keys, not numbers.

The version part of a score is as wide as the target fleet needs (fastmatch/reasons.py), so
a score's number means something only beside the other targets' for the same source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT, SAME_TYPE, HAS_VERSION = 1 << 62, 1 << 61, 1 << 60


@dataclass(frozen=True)
class Expected:
    """A compatible pair's score as SPEC section 7 states it: its flags and its version key."""

    flags: int
    version: tuple

    def __ror__(self, flags: int) -> "Expected":
        return Expected(self.flags | flags, self.version)

    def key(self) -> tuple:
        return (bool(self.flags & EXACT), bool(self.flags & SAME_TYPE), True, self.version)


def closest(d_major, d_minor, patch):
    return Expected(0, (-d_major, -d_minor, patch))


def newest(rank):
    return Expected(0, (rank,))


def _key(expected):
    """SPEC section 7's ordering key of an expected score (an int: flags alone, no version; -1: none)."""
    if isinstance(expected, Expected):
        return expected.key()
    return None if expected == -1 else (bool(expected & EXACT), bool(expected & SAME_TYPE), False, ())


def assert_scores(row, expected) -> None:
    """Each score has the expected flags, and scores order (and tie) exactly as the keys do."""
    got = [int(x) for x in np.asarray(row).reshape(-1)]
    keys = [_key(e) for e in expected]
    assert len(got) == len(keys)
    for g, k in zip(got, keys):
        if k is None:
            assert g == -1, got
            continue
        assert g >= 0 and (bool(g & EXACT), bool(g & SAME_TYPE), bool(g & HAS_VERSION)) == k[:3], (got, keys)
    for a in range(len(got)):
        for b in range(len(got)):
            if keys[a] is not None and keys[b] is not None:
                assert (got[a] > got[b]) == (keys[a] > keys[b]), (a, b, got, keys)
                assert (got[a] == got[b]) == (keys[a] == keys[b]), (a, b, got, keys)


def assert_flags(values, expected) -> None:
    """Scores of different sources (or single pairs): only their flags can be compared."""
    got = [int(x) for x in np.asarray(values).reshape(-1)]
    keys = [_key(e) for e in expected]
    assert len(got) == len(keys)
    for g, k in zip(got, keys):
        if k is None:
            assert g == -1, got
        else:
            assert g >= 0 and (bool(g & EXACT), bool(g & SAME_TYPE), bool(g & HAS_VERSION)) == k[:3], (got, keys)
