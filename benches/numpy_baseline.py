"""A plain NumPy-broadcast implementation of the kernel's rules: the baseline the kernel is measured against.

It computes what ``fastmatch.match`` computes at class level (SPEC sections
6-8): per-attribute rules (exact, version, superset, ge, le), the opaque check,
migratability, COMPATIBLE records with ``records = "override"`` or ``"and"``,
NO_RECORD, the 64-bit reason masks and the scores of ``fastmatch/reasons.py``,
written as the kernel writes them: one int64 outcome per pair.
``benches/test_baseline_equal.py`` holds it to ``fastmatch.match``.

Honestly optimised NumPy: sources are taken a block at a time and broadcast
against every target class; each rule is one or two vectorised comparisons
written into preallocated buffers (``out=``), failures are OR-ed into a
lane-wide failure mask per pair, reasons come from that mask by shifts (or byte
tables) straight into the output, records are matched once per (record, class)
and applied per record slot, and scores are computed only for the compatible
pairs. Python loops run over rules, records, record slots and blocks, never
over pairs.

Coupling to ``fastmatch.intern``: the baseline reads the interned arrays (the
same inputs the native kernel reads), so both are timed on equal terms.
Everything it reads from them is gathered in :func:`_read_interned` below;
when ``intern`` changes, that is the one place to update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastmatch.intern import (  # the op and test codes of the interned tables
    OP_CONFIRM,
    OP_GE,
    OP_LE,
    OP_MIGRATABLE,
    OP_NE,
    OP_REQUIRED,
    OP_SUPERSET,
    OP_VERSION,
    TEST_IN_CODES,
    Interned,
    intern,
)
from fastmatch.reasons import (
    INCOMPATIBLE,
    NO_RECORD,
    SCORE_EXACT,
    SCORE_HAS_VERSION,
    SCORE_SAME_TYPE,
    VersionScale,
    outcome_reasons,
    outcome_scores,
)

PAIRS_PER_BLOCK = 1 << 17  # about 130,000 pairs: the block's buffers stay in L2 (measured best)
NO_RECORD_BIT = NO_RECORD.bit_length() - 1
FIXED_SHIFT = 60  # identity bits: the lane's top two failure bits are OPAQUE (60) and NOT_MIGRATABLE (61)


@dataclass
class _SideArrays:
    codes: np.ndarray  # [rows, classes]
    vmajor: np.ndarray
    vminor: np.ndarray
    masks: np.ndarray
    constrained: np.ndarray
    rec_start: np.ndarray
    rec_ids: np.ndarray
    cmask: np.ndarray  # per record of this side
    matched: np.ndarray | None  # bool [other side's classes, this side's records]
    exact_key: np.ndarray
    has_version: np.ndarray
    major: np.ndarray
    minor: np.ndarray
    patch: np.ndarray
    newest_rank: np.ndarray

    @property
    def n(self) -> int:
        return self.codes.shape[1]


def _read_interned(interned: Interned) -> tuple[_SideArrays, _SideArrays, dict]:
    """Everything the baseline reads from ``fastmatch.intern``'s output (the coupling point).
    It keeps a pair's failures in one lane: problems whose masks take several failure words
    (more rules than a lane has bits) are not its to time."""
    if interned.failure_words != 1:
        raise ValueError(f"{interned.failure_words} failure words: the baseline keeps one per pair")

    def side(data, other) -> _SideArrays:
        # Each class's records: its record set's members, one list after another.
        sets = [data.set_records[data.set_start[k] : data.set_start[k + 1]] for k in range(len(data.set_start) - 1)]
        per_class = [sets[k] for k in data.record_set]
        rec_start = np.concatenate([[0], np.cumsum([len(r) for r in per_class], dtype=np.int64)])
        rec_ids = np.concatenate(per_class).astype(np.int32) if per_class else np.zeros(0, dtype=np.int32)
        return _SideArrays(
            codes=data.codes,
            vmajor=data.vmajor,
            vminor=data.vminor,
            masks=data.masks,
            constrained=data.constrained[0],
            rec_start=rec_start,
            rec_ids=rec_ids,
            cmask=data.records.cmask[:, 0],
            matched=_match_records(data.records, other),
            exact_key=data.exact_key,
            has_version=data.has_version.astype(bool),
            major=data.major,
            minor=data.minor,
            patch=data.patch,
            newest_rank=data.newest_rank,
        )

    policy = interned.policy
    ops = [
        (int(kind), int(row), int(words), interned.lane(bit))
        for kind, row, words, bit in zip(interned.op_kind, interned.op_row, interned.op_words, interned.op_bit)
    ]
    # As a table of opaque codes (both sides'), from the confirmer's rows and columns.
    table = interned.opaque_table[np.ix_(interned.opaque_rows, interned.opaque_columns)].astype(bool)
    if table.size:  # both absent: passes with opaque="if-present"; one absent: fails
        table[0, :] = table[:, 0] = False
        table[0, 0] = policy.opaque == "if-present"
    config = {
        "lane": interned.lane,
        "ops": ops,
        "identity_bits": bool(interned.identity_bits),
        "reason_table": interned.reason_table,
        "attribute_bits": interned.lane(interned.attribute_bits),
        "type_row": int(interned.type_row),
        "prefer_newest": bool(interned.prefer_newest),
        "records_and": policy.records == "and",
        "opaque_table": table,
    }
    return side(interned.sources, interned.targets), side(interned.targets, interned.sources), config


def _match_records(tables, other) -> np.ndarray:
    """bool [other's classes, records]: whether each class of the other side matches each record.

    A record matches when its common tests pass and, for some alternative, that
    alternative's tests pass. Each test is one vectorised check over all classes.
    """
    n_records = len(tables.cmask)
    out = np.zeros((other.codes.shape[1], n_records), dtype=bool)
    cache: dict[int, np.ndarray] = {}

    def test(t: int) -> np.ndarray:
        if t not in cache:
            row, start, length = int(tables.test_row[t]), int(tables.test_start[t]), int(tables.test_len[t])
            if tables.test_kind[t] == TEST_IN_CODES:
                cache[t] = np.isin(other.codes[row], tables.code_pool[start : start + length])
            else:  # subset: no item outside the record's mask, word by word
                ok = np.ones(other.codes.shape[1], dtype=bool)
                for k in range(length):
                    ok &= (other.masks[row + k] & ~tables.mask_pool[start + k]) == 0
                cache[t] = ok
        return cache[t]

    for r in range(n_records):
        ok = np.ones(other.codes.shape[1], dtype=bool)
        for t in range(tables.common_begin[r], tables.common_end[r]):
            ok &= test(t)
        any_alternative = np.zeros_like(ok)
        for a in range(tables.alt_start[r], tables.alt_start[r + 1]):
            alt = ok.copy()
            for t in range(tables.alt_begin[a], tables.alt_end[a]):
                alt &= test(t)
            any_alternative |= alt
        out[:, r] = any_alternative
    return out


class NumpyBaseline:
    """Class-pair scores and reasons of an interned problem, computed with NumPy broadcasting."""

    def __init__(self, interned: Interned, block: int | None = None) -> None:
        self.src, self.tgt, self.config = _read_interned(interned)
        has = self.tgt.has_version.astype(bool)
        self.scale = VersionScale(self.tgt.major[has], self.tgt.minor[has], self.tgt.patch[has])
        n_t = max(self.tgt.n, 1)
        self.block = block or max(1, PAIRS_PER_BLOCK // n_t)
        self.shape = (self.src.n, self.tgt.n)
        lane = self.config["lane"]
        self.lane_bits = np.iinfo(lane).bits
        self.reason_tables = self.config["reason_table"]
        # Targets with records, and their records slot by slot: slot k holds the k-th record of each.
        self.t_with = np.flatnonzero(np.diff(self.tgt.rec_start) > 0)
        self.t_slots = [
            (members if k else None, records, ~self.tgt.cmask[records][None, :])
            for k, (members, records) in enumerate(_slots(self.tgt.rec_start, self.tgt.rec_ids, self.t_with))
        ]
        self._t_outside = ~self.tgt.constrained[self.t_with][None, :]  # attributes none of its records constrain
        self.s_has_records = np.diff(self.src.rec_start) > 0
        self._t_lacks = ~self.tgt.masks  # the items each target lacks, per mask word
        # Preallocated block buffers.
        rows = min(self.block, max(self.src.n, 1))
        self._fails = np.empty((rows, self.tgt.n), dtype=lane)
        self._lane = np.empty((rows, self.tgt.n), dtype=lane)
        self._flag = np.empty((rows, self.tgt.n), dtype=bool)
        self._flag2 = np.empty((rows, self.tgt.n), dtype=bool)
        self._wide = np.empty((rows, self.tgt.n), dtype=np.uint64)

    def run(self, outcomes: np.ndarray | None = None) -> np.ndarray:
        """Fill (or allocate) the int64 outcomes of shape (source classes, target classes)."""
        if outcomes is None:
            outcomes = np.empty(self.shape, dtype=np.int64)
        if self.tgt.n == 0:
            return outcomes
        for i0 in range(0, self.src.n, self.block):
            i1 = min(self.src.n, i0 + self.block)
            self._block(i0, i1, outcomes[i0:i1])
        return outcomes

    def run_rows(self, i0: int, i1: int) -> np.ndarray:
        """The outcomes of source classes i0..i1 only (for spot checks)."""
        outcomes = np.empty((i1 - i0, self.tgt.n), dtype=np.int64)
        for b0 in range(i0, i1, self.block):
            b1 = min(i1, b0 + self.block)
            self._block(b0, b1, outcomes[b0 - i0 : b1 - i0])
        return outcomes

    # -- one block of source classes against every target class ----------------------------------
    def _block(self, i0: int, i1: int, outcomes: np.ndarray) -> None:
        b = i1 - i0
        reasons = outcomes.view(np.uint64)  # the reason masks first, then the outcomes in place
        fails, tmp, flag, flag2, wide = self._fails[:b], self._lane[:b], self._flag[:b], self._flag2[:b], self._wide[:b]
        src, tgt, config = self.src, self.tgt, self.config
        fails.fill(0)
        for kind, row, words, bit in config["ops"]:
            self._op(kind, row, words, i0, i1, flag, flag2)
            np.multiply(flag, bit, out=tmp)  # (a masked `where=` OR is about 3x slower)
            np.bitwise_or(fails, tmp, out=fails)

        # Failure bits -> reason bits; attribute failures that the pair's record holders constrain are theirs to report.
        np.bitwise_and(tgt.constrained[None, :], src.constrained[i0:i1, None], out=tmp)
        np.invert(tmp, out=tmp)
        np.bitwise_and(tmp, fails, out=tmp)  # the reported failures
        if config["identity_bits"]:
            np.bitwise_and(tmp, config["attribute_bits"], out=reasons)
            np.right_shift(tmp, self.lane_bits - 2, out=tmp)
            np.left_shift(tmp, FIXED_SHIFT, out=wide, dtype=np.uint64)
            np.bitwise_or(reasons, wide, out=reasons)
        else:
            reasons.fill(0)
            for position, table in enumerate(self.reason_tables):
                np.right_shift(tmp, 8 * position, out=wide, dtype=np.uint64)
                np.bitwise_and(wide, 0xFF, out=wide)
                np.bitwise_or(reasons, table[wide], out=reasons)

        # COMPATIBLE records: of the targets that have some, then of the sources.
        failed = np.bitwise_and(fails, config["attribute_bits"], out=fails)  # fails is not read again
        if len(self.t_with):
            self._target_records(i0, i1, failed, reasons)
        if self.s_has_records[i0:i1].any():
            self._source_records(i0, i1, failed, reasons)

        # Outcomes: the reason mask with the sign bit, or for the compatible pairs their score.
        np.equal(reasons, 0, out=flag)
        np.bitwise_or(outcomes, INCOMPATIBLE, out=outcomes)
        rows, cols = np.nonzero(flag)
        if len(rows):
            outcomes[rows, cols] = self._scores(rows + i0, cols)

    def _op(self, kind: int, row: int, words: int, i0: int, i1: int, flag: np.ndarray, flag2: np.ndarray) -> None:
        """``flag`` := where the op fails, for the block's sources against every target."""
        src, tgt = self.src, self.tgt
        if kind == OP_NE:
            np.not_equal(tgt.codes[row][None, :], src.codes[row, i0:i1, None], out=flag)
        elif kind == OP_VERSION:
            s_major = src.vmajor[row, i0:i1, None]
            np.not_equal(tgt.vmajor[row][None, :], s_major, out=flag)
            # A present source also fails where the target's minor is lower (an absent one has rank 0).
            s_minor = np.where(s_major[:, 0] != 0, src.vminor[row, i0:i1], 0)[:, None]
            np.less(tgt.vminor[row][None, :], s_minor, out=flag2)
            np.logical_or(flag, flag2, out=flag)
        elif kind == OP_GE:  # fails where t < s, or where s is absent and t is not
            s = src.codes[row, i0:i1, None]
            np.less(tgt.codes[row][None, :], s, out=flag)
            np.logical_and((s == 0), (tgt.codes[row] != 0)[None, :], out=flag2)
            np.logical_or(flag, flag2, out=flag)
        elif kind == OP_LE:  # fails where t > s, or where s is present and t is not
            s = src.codes[row, i0:i1, None]
            np.greater(tgt.codes[row][None, :], s, out=flag)
            np.logical_and((s != 0), (tgt.codes[row] == 0)[None, :], out=flag2)
            np.logical_or(flag, flag2, out=flag)
        elif kind == OP_SUPERSET:  # fails where the source has an item the target lacks
            flag.fill(False)
            for w in range(row, row + words):
                lacking = np.bitwise_and(src.masks[w, i0:i1, None], self._t_lacks[w][None, :])
                np.not_equal(lacking, 0, out=flag2)
                np.logical_or(flag, flag2, out=flag)
        elif kind == OP_MIGRATABLE:  # codes row: 1 migratable, 0 not
            np.logical_or((src.codes[row, i0:i1] == 0)[:, None], (tgt.codes[row] == 0)[None, :], out=flag)
        elif kind == OP_REQUIRED:  # both must have it, and equal
            np.not_equal(tgt.codes[row][None, :], src.codes[row, i0:i1, None], out=flag)
            flag |= (src.codes[row, i0:i1] == 0)[:, None]
        elif kind == OP_CONFIRM:  # the caller's confirmer, as a table of opaque codes
            table = self.config["opaque_table"]
            np.logical_not(table[src.codes[row, i0:i1, None], tgt.codes[row][None, :]], out=flag)
        else:
            raise AssertionError(f"unknown op kind {kind}")

    def _target_records(self, i0: int, i1: int, failed: np.ndarray, reasons: np.ndarray) -> None:
        """NO_RECORD where no record of a target (that has records) accepts the source."""
        cols = self.t_with
        f = np.take(failed, cols, axis=1)
        # A failed attribute that none of the target's records constrains (with records="and": any
        # failure) rules out every record.
        accepted = np.equal(f if self.config["records_and"] else f & self._t_outside, 0)
        any_record = None
        matched = self.tgt.matched[i0:i1]
        for members, records, not_cmask in self.t_slots:
            ok = np.take(matched, records, axis=1)
            if not self.config["records_and"]:
                ok &= (f[:, members] if members is not None else f) & not_cmask == 0
            if any_record is None:  # slot 0: every target with records has a first record
                any_record = ok
            else:
                any_record[:, members] |= ok
        accepted &= any_record
        np.logical_not(accepted, out=accepted)
        no_record = np.take(reasons, cols, axis=1)
        no_record |= accepted.astype(np.uint64) << NO_RECORD_BIT
        reasons[:, cols] = no_record

    def _source_records(self, i0: int, i1: int, failed: np.ndarray, reasons: np.ndarray) -> None:
        """NO_RECORD where no record of a source (that has records) accepts the target."""
        src, config = self.src, self.config
        rows = np.flatnonzero(self.s_has_records[i0:i1])
        f = failed[rows]
        if config["records_and"]:
            accepted = f == 0
        else:
            accepted = (f & ~src.constrained[i0 + rows][:, None]) == 0
        any_record = np.zeros(accepted.shape, dtype=bool)
        for members, records in _slots(src.rec_start, src.rec_ids, i0 + rows):
            ok = src.matched[:, records].T  # [members, targets]
            if not config["records_and"]:
                ok = ok & ((f[members] & ~src.cmask[records][:, None]) == 0)
            any_record[members] |= ok
        accepted &= any_record
        block_rows, block_cols = np.nonzero(~accepted)
        reasons[rows[block_rows], block_cols] |= np.uint64(NO_RECORD)

    def _scores(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        src, tgt, config = self.src, self.tgt, self.config
        score = np.where(src.exact_key[i] == tgt.exact_key[j], SCORE_EXACT, 0).astype(np.int64)
        if config["type_row"] >= 0:
            row = config["type_row"]
            score |= np.where(src.codes[row, i] == tgt.codes[row, j], SCORE_SAME_TYPE, 0)
        both = src.has_version[i] & tgt.has_version[j]
        if config["prefer_newest"]:
            version = SCORE_HAS_VERSION | tgt.newest_rank[j]
        else:
            scale = self.scale
            version = (
                SCORE_HAS_VERSION
                | _closeness(scale.majors, src.major[i], tgt.major[j]) << scale.major_shift
                | _closeness(scale.minors, src.minor[i], tgt.minor[j]) << scale.minor_shift
                | np.searchsorted(scale.patches, tgt.patch[j])
            )
        score |= np.where(both, version, 0)
        return score


def _closeness(values: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """VersionScale's closeness (fastmatch/reasons.py) of t to s: the values strictly closer, counted
    from the two ends of the open interval around s."""
    d = np.abs(t - s)
    closer = np.searchsorted(values, s + d, side="left") - np.searchsorted(values, s - d, side="right")
    return len(values) - 1 - np.where(d > 0, closer, 0)  # (s, s) is empty


def _slots(rec_start: np.ndarray, rec_ids: np.ndarray, holders: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For k = 0, 1, ...: (positions in ``holders`` with a k-th record, those records' ids)."""
    counts = rec_start[holders + 1] - rec_start[holders]
    slots = []
    for k in range(int(counts.max()) if len(counts) else 0):
        members = np.flatnonzero(counts > k)
        slots.append((members, rec_ids[rec_start[holders[members]] + k].astype(np.int64)))
    return slots


def numpy_match(sources, targets, policy=None, confirm=None, block: int | None = None):
    """Intern, then compute class-pair ``(scores, reasons, source_class, target_class)`` with NumPy."""
    from fastmatch import Policy

    policy = policy or sources.policy or Policy.default()
    interned = intern(sources, targets, policy, confirm)
    outcomes = NumpyBaseline(interned, block).run()
    return outcome_scores(outcomes), outcome_reasons(outcomes), interned.sources.class_of, interned.targets.class_of
