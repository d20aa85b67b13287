"""Blocking: the target classes a source class can match at all, so the kernel visits no others.

An ``exact`` rule (and the opaque check, ``if-present``) fails a pair whose codes differ, and
the pair is then incompatible unless a COMPATIBLE record of the target constrains that
attribute (with ``records = "override"``: the record decides it instead). So with
``direction = "target-accepts"``, a target class agrees with every source it can match on
each exact attribute its records leave alone. Targets are ordered by those codes (an
attribute a target's records constrain counts as a wildcard, -1), each distinct key a
contiguous range; a source class visits, for each pattern of wildcards among the targets,
the one range whose key is its own codes with that pattern's wildcards. An attribute that
every record of a target pins to one literal (the same one) is no wildcard: the records accept
only sources with that value, so the target's key holds the literal's code. The kernel then
evaluates and reduces only those ranges (``Problem.block``): cost follows the pairs that
agree on the exact attributes, as a hash join's does, not N x M.

Blocking changes which pairs are visited, never an answer: ``top_k``, ``counts``,
``to_sparse``, ``.compatible`` and ``.scores`` read only visited pairs, and every pair left
out is incompatible. ``.reasons`` evaluates every pair: it reports every rule that fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from .errors import FastmatchError
from .codes import OP_NE, TEST_IN_CODES
from .intern import RecordTables, Side
from .policy import Policy

# Blocks pay when they leave at most this share of the class pairs: a blocked row has a few
# ranges to set up instead of one, and its reductions check ranges for the devices' exclusions.
BLOCKED_SHARE = 0.5
# Below this many class pairs the kernel takes less time (well under a millisecond) than
# finding the blocks does (a few hundred microseconds of NumPy: a scheduler's small requests).
MIN_BLOCKED_PAIRS = 1 << 20
# Distinct wildcard patterns kept apart: each is one more range per source class. Targets with
# a rarer pattern are treated as wildcards on every attribute (visited by every source).
MAX_PATTERNS = 8
# Visited class pairs per source row from which the rows are reordered (Blocks.reorder_pays).
REORDER_PAIRS_PER_ROW = 64
KEY_BITS = 62  # a key's codes, packed in mixed radix, fit in an int64
BLOCKING_MODES = ("auto", "always", "never")


def blocking_mode() -> str:
    """``FASTMATCH_BLOCKING``: ``auto`` (blocks when they pay), ``always`` or ``never``: the
    answers are the same; the tests run every mode."""
    mode = os.environ.get("FASTMATCH_BLOCKING", "auto").strip().lower() or "auto"
    if mode not in BLOCKING_MODES:
        raise FastmatchError(f"FASTMATCH_BLOCKING={mode!r}: expected one of {', '.join(BLOCKING_MODES)}")
    return mode


@dataclass
class Blocks:
    """Each source class's ranges of target classes, in blocked order (``TargetKeys.order``)."""

    start: np.ndarray  # int64 [n_source_classes + 1]: source class i has ranges start[i]..start[i + 1]
    ranges: np.ndarray  # int64 [2 * n_ranges]: (first, end) target classes in blocked order
    pairs: int  # class pairs the ranges hold
    # uint8 [n_ranges]: 1 where every exact rule passes for every pair of the range (its targets'
    # own codes make the key the source matched; TargetKeys.settled); None: not known
    settled: np.ndarray | None = None

    @property
    def reorder_pays(self) -> bool:
        """Whether taking the source classes in :meth:`source_order` pays for itself: where rows
        visit many target classes (30,000 all-distinct, 1,200 a row: 5% less kernel time), not
        where they visit a few (the selective 10,000 fleet, 15 a row: no change, while ordering
        took a millisecond, a tenth of the match)."""
        return self.pairs >= REORDER_PAIRS_PER_ROW * (len(self.start) - 1)

    def source_order(self) -> np.ndarray:
        """The source classes ordered by the ranges they visit (first range, then second):
        consecutive rows of the kernel then read the same target classes while they are still
        in cache. Rows are reduced one by one into each device's own place, so the order changes
        no answer."""
        n_ranges = np.diff(self.start)
        firsts = self.ranges[0::2]
        if len(firsts) == 0:
            return np.arange(len(n_ranges), dtype=np.int64)

        def first_of(r: int) -> np.ndarray:  # where each row's r-th range starts, + 1; 0: it has none
            return np.where(n_ranges > r, firsts[np.minimum(self.start[:-1] + r, len(firsts) - 1)] + 1, 0)

        # Both starts packed in one key (they are below 2^31: class numbers): one sort, not two.
        key = first_of(0) << 32 | first_of(1)
        return np.argsort(key).astype(np.int64, copy=False)

    def in_source_order(self, order: np.ndarray) -> Blocks:
        """These blocks for the source classes taken in ``order`` (``order[new] = old``)."""
        n_ranges = np.diff(self.start)[order]
        start = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(n_ranges, out=start[1:])
        moved = np.repeat(self.start[order] - start[:-1], n_ranges) + np.arange(start[-1])
        ranges = self.ranges.reshape(-1, 2)[moved].reshape(-1)
        settled = None if self.settled is None else self.settled[moved]
        return Blocks(start, np.ascontiguousarray(ranges, dtype=np.int64), self.pairs, settled)


def in_order(side: Side, order: np.ndarray) -> Side:
    """A side with its classes in ``order`` (``order[new] = old``)."""
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return replace(
        side,
        class_of=position[side.class_of],
        codes=_columns(side.codes, order),
        vmajor=_columns(side.vmajor, order),
        vminor=_columns(side.vminor, order),
        masks=_columns(side.masks, order),
        constrained=_columns(side.constrained, order),
        record_set=side.record_set[order],
        exact_key=side.exact_key[order],
        has_version=side.has_version[order],
        major=side.major[order],
        minor=side.minor[order],
        patch=side.patch[order],
        newest_rank=side.newest_rank[order],
    )


def _columns(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``rows[:, order]`` a row at a time: NumPy's fancy index along the second axis of a
    field-major array walks it a column at a time, several times slower."""
    out = np.empty((rows.shape[0], len(order)), dtype=rows.dtype)
    for row, into in zip(rows, out):
        np.take(row, order, out=into)
    return out


def _pinned_codes(side: Side, rows: np.ndarray) -> np.ndarray:
    """int64 (rules, record sets): the code every record of the set pins that rule's attribute to
    (a field with one literal, the same in every alternative), or -1."""
    records: RecordTables = side.records
    row_index = {int(row): k for k, row in enumerate(rows)}
    pinned_by_record = np.full((len(rows), len(records.cmask)), -1, dtype=np.int64)
    for r in range(len(records.cmask)):
        for t in range(int(records.common_begin[r]), int(records.common_end[r])):
            k = row_index.get(int(records.test_row[t]))
            if k is not None and records.test_kind[t] == TEST_IN_CODES and records.test_len[t] == 1:
                pinned_by_record[k, r] = int(records.code_pool[records.test_start[t]])
    n_sets = len(side.set_start) - 1
    pinned = np.full((len(rows), n_sets), -1, dtype=np.int64)
    for k in range(1, n_sets):  # set 0: no records
        members = side.set_records[side.set_start[k] : side.set_start[k + 1]]
        codes = pinned_by_record[:, members]
        agree = (codes >= 0).all(axis=1) & (codes == codes[:, :1]).all(axis=1)
        pinned[:, k] = np.where(agree, codes[:, 0], -1)
    return pinned


def _patterns(wildcard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of ``wildcard`` (rules, classes), as bool (patterns, rules), and each
    class's pattern: a column's bits as one integer (np.unique along an axis sorts bytes: slow)."""
    weights = np.left_shift(1, np.arange(wildcard.shape[0], dtype=np.int64))
    if not wildcard.any():  # every target's records leave every exact rule alone (or it has none)
        return np.zeros((1, wildcard.shape[0]), dtype=bool), np.zeros(wildcard.shape[1], dtype=np.int64)
    bits, pattern_of = np.unique(weights @ wildcard, return_inverse=True)
    return (bits[:, None] & weights[None, :]) != 0, pattern_of.reshape(-1)


class TargetKeys:
    """The targets' codes on the exact rules that block, and the ranges of equal keys.

    Built once per target side (a TargetIndex keeps it across requests); ``blocks(sources)``
    gives the ranges of one set of sources.
    """

    def __init__(
        self, policy: Policy, op_kind: np.ndarray, op_row: np.ndarray, op_word: np.ndarray, op_bit: np.ndarray, targets: Side
    ) -> None:
        self.usable = policy.direction == "target-accepts" and targets.n_classes > 0
        exact = np.flatnonzero(np.asarray(op_kind) == OP_NE)
        if not self.usable or len(exact) == 0:
            self.usable = False
            return
        rows = np.asarray(op_row)[exact]
        words = np.asarray(op_word)[exact]
        bits = np.asarray(op_bit)[exact].astype(np.uint64)
        codes = targets.codes[rows].astype(np.int64)  # (rules, target classes)
        if policy.records == "and" or not targets.record_set.any():
            # Records only add conditions, or no target has any: an exact failure always counts.
            wildcard = np.zeros(codes.shape, dtype=bool)
        else:
            wildcard = (targets.constrained[words].astype(np.uint64) & bits[:, None]) != 0
            pinned = _pinned_codes(targets, rows)[:, targets.record_set]  # (rules, target classes), -1: not pinned
            codes = np.where(wildcard & (pinned >= 0), pinned, codes)
            wildcard &= pinned < 0
        # The most selective rules first, as many as fit in one packed key.
        radix = np.maximum(codes.max(axis=1, initial=0), 0) + 3  # codes, + one no target has, + the wildcard
        chosen, bits_used = [], 0.0
        for k in np.argsort(-radix, kind="stable"):
            if bits_used + np.log2(float(radix[k])) > KEY_BITS:
                continue
            chosen.append(int(k))
            bits_used += np.log2(float(radix[k]))
        self.rows, self.radix = rows[chosen].astype(np.int64), radix[chosen].astype(np.int64)
        # A target whose key holds its own codes on every exact rule: a source that finds its key
        # (no wildcard) has those codes, and every exact rule passes for the pair.
        own_codes = (len(chosen) == len(exact)) & (codes[chosen] == targets.codes[self.rows]).all(axis=0)
        codes, wildcard = codes[chosen], wildcard[chosen]

        patterns, pattern_of = _patterns(wildcard)
        if len(patterns) > MAX_PATTERNS:  # the rarest become wildcards on every rule
            kept = np.argsort(-np.bincount(pattern_of), kind="stable")[: MAX_PATTERNS - 1]
            wildcard[:, ~np.isin(pattern_of, kept)] = True
            patterns, pattern_of = _patterns(wildcard)
        self.patterns = np.ascontiguousarray(patterns, dtype=np.uint8)  # (patterns, rules): 1 where a wildcard
        keys = self._pack(np.where(wildcard, -1, codes) if wildcard.any() else codes)
        if targets.record_set.any():  # a key's targets together, runs of records kept
            self.order = np.lexsort((targets.record_set, keys)).astype(np.int64)
        else:
            self.order = np.argsort(keys).astype(np.int64, copy=False)
        sorted_keys = keys[self.order]
        self.first = np.flatnonzero(np.diff(sorted_keys, prepend=sorted_keys[:1] - 1))
        self.keys = sorted_keys[self.first]
        self.end = np.append(self.first[1:], len(sorted_keys))
        self.n_targets = targets.n_classes
        settled = (own_codes & ~wildcard.any(axis=0))[self.order]
        self.settled = np.logical_and.reduceat(settled, self.first).astype(np.uint8)  # per key: all of its targets are
        from .native import _kernel  # loaded there, after the OpenMP settings it needs

        self.slots = _kernel.key_slots(self.keys)  # a hash table of the keys: a source's key found in O(1)

    def _pack(self, codes: np.ndarray) -> np.ndarray:
        """One int64 per class from its codes on the chosen rules (-1, a wildcard, included)."""
        key = np.zeros(codes.shape[1], dtype=np.int64)
        for row, radix in zip(codes, self.radix):
            key = key * radix + (row + 1)
        return key

    def blocks(self, sources: Side) -> Blocks | None:
        """The ranges of target classes each source class can match; None when blocking does not pay."""
        n_sources = sources.n_classes
        mode = blocking_mode()
        if not self.usable or n_sources == 0 or mode == "never":
            return None
        if mode == "auto" and n_sources * self.n_targets < MIN_BLOCKED_PAIRS:
            return None
        from .native import _kernel

        start, ranges, settled, pairs = _kernel.block_ranges(
            np.ascontiguousarray(sources.codes), self.rows, self.radix, self.patterns, self.keys, self.slots, self.first,
            self.end, self.settled,
        )
        if mode == "auto" and pairs > BLOCKED_SHARE * n_sources * self.n_targets:
            return None
        return Blocks(start, ranges, int(pairs), settled)
