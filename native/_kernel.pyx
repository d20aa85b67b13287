# cython: language_level=3
"""The native kernel: typed loops over raw pointers, GIL released.

It knows nothing of files, policies or records as Python objects: it reads the
integer-coded, field-major arrays that ``fastmatch.intern`` builds (see there
for what each array means) and writes, for a block of source classes x all
target classes, one outcome per pair: its score if it is compatible, else its
reason mask with the sign bit set (``fastmatch/reasons.py``).

Per source class, targets are taken a tile at a time. A vector pass computes
every pair's failure mask and outcome as if no target's COMPATIBLE records
matched the source: on AVX-512 in one pass over the tile (``tile512.h``),
elsewhere one loop per op then one over the outcomes (``loops.h``); codes are
16-bit lanes whenever they fit. Then only what is left is visited: the runs of
targets whose records match the source, and the compatible pairs to score.
"""

from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memcpy

from loops cimport *

import os

import numpy as np
cimport numpy as cnp

from fastmatch.reasons import VersionScale

cnp.import_array()


cdef inline size_t address(cnp.ndarray array) noexcept:
    """Where an array's data starts (``.ctypes.data`` costs a microsecond; this, nothing)."""
    return <size_t>cnp.PyArray_DATA(array)

include "codes.pxi"  # op kinds, record tests, reason and score bits: generated from fastmatch/codes.py

cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)

cdef enum:
    CACHE_LINE = 64  # bytes, and an AVX-512 vector
    TILE = 2048  # targets per tile: the failure masks of a tile stay in L1
    SHORT_RANGE = 64  # targets, fewer than which a tile's compatible pairs are scored by one vector loop whatever their number

cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil
    int __builtin_popcountll(unsigned long long) nogil



cdef struct Records:
    int64_t n
    const void* cmask
    const int64_t* common_begin
    const int64_t* common_end
    const int64_t* alt_start
    const int64_t* alt_begin
    const int64_t* alt_end
    const int32_t* test_row
    const int32_t* test_kind
    const int64_t* test_start
    const int64_t* test_len
    const void* code_pool
    const void* mask_pool


cdef struct ScoreFacts:  # 16 bytes: four to a cache line
    int32_t exact_key
    int32_t low
    int32_t vclass
    uint32_t type_code


cdef struct Side:
    int64_t n  # classes
    int64_t stride  # the row stride of the field-major arrays: n rounded up to whole cache lines
    const void* codes
    const void* vmajor
    const void* vminor
    const void* masks
    const void* constrained
    const int32_t* record_set  # per class: its set of records, 0 for none
    const int64_t* set_start  # set k holds set_records[set_start[k]:set_start[k + 1]]
    const int32_t* set_records
    int64_t n_sets
    const int64_t* run_start  # classes come in runs of one record set: run k is classes run_start[k]..[k + 1]
    const int32_t* run_set
    int64_t n_runs
    const int64_t* record_set_start  # record r is in sets record_sets[record_set_start[r]:[r + 1]]
    const int32_t* record_sets
    const int64_t* set_run_start  # set k's classes are runs set_runs[set_run_start[k]:[k + 1]]
    const int32_t* set_runs
    const void* base_state  # per class: FM_NO_RECORDS, or FM_NONE_MATCH when it has records
    int64_t n_plain  # the first classes have no records and constrain nothing (constrained 0)
    const int64_t* exact_key
    const uint8_t* has_version
    const int64_t* major
    const int64_t* minor
    const int64_t* patch
    const int64_t* newest_rank
    # Scores: per class, its version's class (has it, major, minor) and what it adds itself (patch or
    # rank), with its exact key and type code, side by side for the one read per scored pair
    const ScoreFacts* score_facts
    int64_t n_vclasses
    const int64_t* vclass_major
    const int64_t* vclass_minor
    const uint8_t* vclass_has
    # The targets' VersionScale (fastmatch/reasons.py): their distinct majors and minors, sorted,
    # and where the major and minor closeness sit in a score (a target's ``patch`` is its rank)
    const int64_t* scale_majors
    int64_t n_scale_majors
    const int64_t* scale_minors
    int64_t n_scale_minors
    int64_t major_shift
    int64_t minor_shift
    Records records


cdef struct Kernel:
    Side src
    Side tgt
    int64_t n_ops
    int64_t n_ne  # the first n_ne ops are OP_NE
    const int32_t* op_kind
    const int32_t* op_row
    const int32_t* op_words
    const int32_t* op_word  # the failure word of the op's bit
    const void* op_bit
    bint identity_bits  # failure bits below the lane's top two are reason bits; those two are OPAQUE, NOT_MIGRATABLE
    const uint64_t* reason_table  # otherwise: [failure words * lane bytes][256], the reasons of each byte of a failure mask
    # A pair's failure mask is failure_words lanes (one unless the rules outnumber a lane's bits);
    # a tile's masks are word-major, word w of target b at fails[w * TILE + b].
    int64_t failure_words
    int64_t fail_scratch  # scratch words (64 bits) a tile's failure masks take
    const void* attribute_words  # [failure_words]: the bits of each word that belong to attributes
    uint64_t attribute_bits  # attribute_words[0], for the loops of one failure word
    int64_t type_row
    bint records_and
    bint prefer_newest
    bint opaque_if_present
    const uint8_t* opaque_table  # a caller's confirmer: [source strings + 1][opaque_n], through the maps below
    int64_t opaque_n
    const int32_t* opaque_rows  # per opaque code: its row (a source's string) of opaque_table
    const int32_t* opaque_columns  # per opaque code: its column (a target's string)
    bint score_table  # per source class, score the targets' version classes once (when they are few)
    # With score_table: the version part of the score of each source version class against each
    # target version class, a row of tgt.n_vclasses per source version class, and each source
    # class's row; NULL: each row fills its own (a request's one class).
    const int64_t* version_scores
    const int32_t* source_vclass
    bint tile512  # tiles through fm_tile512 (tile512.h) rather than the loops of loops.h
    int64_t max_rules  # the most rules one source class can resolve to (fm_tile512)
    # Blocking (fastmatch/blocks.py): the target classes source class i can match lie in the
    # ranges [block_ranges[2r], block_ranges[2r + 1]) for r in block_start[i]..block_start[i + 1];
    # NULL: every target class.
    const int64_t* block_start
    const int64_t* block_ranges
    const uint8_t* block_settled  # per range: every exact-match op passes in it (NULL: not known)


# -- record matching ---------------------------------------------------------------------
cdef void run_test(const Records* records, const Side* side, int64_t t, uint8_t* passed, lane_t* lane) noexcept nogil:
    """Test ``t`` of the records against every class of ``side``: ``passed[c]`` is 1 where it holds.
    Loops over classes innermost, so the compiler vectorises them."""
    cdef int64_t c, k
    cdef int64_t start = records.test_start[t], length = records.test_len[t], row = records.test_row[t], n = side.n
    cdef const lane_t* codes
    cdef const lane_t* masks
    cdef lane_t item
    if records.test_kind[t] == TEST_IN_CODES:
        codes = <const lane_t*>side.codes + row * side.stride
        for c in range(n):
            passed[c] = 0
        for k in range(length):
            item = (<const lane_t*>records.code_pool)[start + k]
            for c in range(n):
                passed[c] |= codes[c] == item
    else:  # subset: no item outside the record's mask, word by word
        for c in range(n):
            passed[c] = 1
        for k in range(length):
            item = (<const lane_t*>records.mask_pool)[start + k]
            masks = <const lane_t*>side.masks + (row + k) * side.stride
            for c in range(n):
                passed[c] &= (masks[c] & ~item) == 0


cdef inline int64_t match_scratch_bytes(const Side* side, int workers) noexcept nogil:
    """match_records' scratch: four bytes per class per thread (and 8 spare)."""
    return (4 * side.n + 8) * workers


cdef inline void both(uint8_t* into, const uint8_t* other, int64_t n) noexcept nogil:
    cdef int64_t c
    for c in range(n):
        into[c] &= other[c]


cdef void match_records(
    const Records* records, const Side* side, uint8_t* out, uint8_t* scratch, int workers, lane_t* lane
) noexcept nogil:
    """``out[c, r]`` (zeroed by the caller) = 1 where class c of ``side`` matches record r: its
    common tests pass, and the tests of one of its alternatives. Each test runs over all classes
    at once; a record's matches, few, are then found eight classes at a time."""
    cdef int64_t n = side.n, r, t, alt, c
    cdef uint8_t* passed
    cdef uint8_t* alternative
    cdef uint8_t* common
    cdef uint8_t* matches
    for r in prange(records.n, num_threads=workers, schedule="dynamic"):
        passed = scratch + (4 * n + 8) * threadid()
        alternative = passed + n
        common = passed + 2 * n
        matches = passed + 3 * n
        for c in range(n):
            common[c] = 1
            matches[c] = 0
        for c in range(n, n + 8):
            matches[c] = 0
        for t in range(records.common_begin[r], records.common_end[r]):
            run_test(records, side, t, passed, lane)
            both(common, passed, n)
        for alt in range(records.alt_start[r], records.alt_start[r + 1]):
            for c in range(n):
                alternative[c] = common[c]
            for t in range(records.alt_begin[alt], records.alt_end[alt]):
                run_test(records, side, t, passed, lane)
                both(alternative, passed, n)
            for c in range(n):
                matches[c] |= alternative[c]
        mark(matches, n, out + r, records.n)


cdef inline void mark(const uint8_t* flags, int64_t n, uint8_t* out, int64_t stride) noexcept nogil:
    """out[c * stride] = 1 where flags[c] (bytes of 0 or 1, padded to 8), found eight at a time."""
    cdef int64_t q, c
    cdef uint64_t word
    for q in range(0, n, 8):
        memcpy(&word, flags + q, 8)
        while word:
            c = q + (__builtin_ctzll(word) >> 3)
            word &= word - 1
            out[c * stride] = 1


cdef inline bint records_accept(
    const Side* holder, int64_t h, const uint8_t* matched, const lane_t* failed, int64_t words, bint records_and
) noexcept nogil:
    """Whether a record of class ``h`` accepts the other side, whose attribute failures are
    ``failed`` (``words`` failure words)."""
    cdef int64_t k, r, w
    cdef const lane_t* cmask = <const lane_t*>holder.records.cmask
    cdef const lane_t* constrained = <const lane_t*>holder.constrained
    cdef bint any_failed = False, within
    # A failed attribute that no record constrains, and with records="and" any failure, rules out every record.
    for w in range(words):
        if failed[w] & ~constrained[w * holder.stride + h]:
            return False
        any_failed = any_failed or failed[w] != 0
    if records_and and any_failed:
        return False
    cdef int64_t record_set = holder.record_set[h]
    for k in range(holder.set_start[record_set], holder.set_start[record_set + 1]):
        r = holder.set_records[k]
        if not matched[r]:
            continue
        within = True
        if not records_and:
            for w in range(words):
                if failed[w] & ~cmask[r * words + w]:
                    within = False
                    break
        if within:
            return True
    return False


# -- the opaque check through a caller's confirmer: a table lookup, not a vector loop --
cdef inline void fail_unconfirmed(
    const Kernel* kernel, lane_t* fails, const lane_t* t, int64_t n, lane_t s, lane_t bit
) noexcept nogil:
    cdef int64_t j
    cdef bint ok
    for j in range(n):
        if s == 0 or t[j] == 0:
            ok = kernel.opaque_if_present and s == 0 and t[j] == 0
        else:
            ok = kernel.opaque_table[kernel.opaque_rows[s] * kernel.opaque_n + kernel.opaque_columns[t[j]]] != 0
        if not ok:
            fails[j] |= bit


# -- one source class against all target classes ----------------------------------------
cdef inline int64_t closeness(const int64_t* values, int64_t n, int64_t s, int64_t t) noexcept nogil:
    """How close t is to s among the sorted distinct ``values`` (t among them): n - 1 less the
    values strictly closer to s than t is. Differences as unsigned: no component overflows."""
    cdef uint64_t d = <uint64_t>(t - s) if t >= s else <uint64_t>(s - t)
    cdef int64_t lo = 0, hi = n, mid, split, first, end
    while lo < hi:  # split: the first value >= s
        mid = (lo + hi) >> 1
        if values[mid] < s:
            lo = mid + 1
        else:
            hi = mid
    split = lo
    lo, hi = 0, split
    while lo < hi:  # first: the first value below s that is closer than d
        mid = (lo + hi) >> 1
        if <uint64_t>(s - values[mid]) >= d:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    lo, hi = split, n
    while lo < hi:  # end: the first value from s on that is not closer than d
        mid = (lo + hi) >> 1
        if <uint64_t>(values[mid] - s) < d:
            lo = mid + 1
        else:
            hi = mid
    end = lo
    return n - 1 - (end - first)


cdef inline int64_t closest_versions(const Side* t, int64_t s_major, int64_t s_minor, int64_t t_major, int64_t t_minor) noexcept nogil:
    """The version part of a prefer="closest" score but T's patch rank (fastmatch/reasons.py)."""
    return (
        SCORE_HAS_VERSION
        | closeness(t.scale_majors, t.n_scale_majors, s_major, t_major) << t.major_shift
        | closeness(t.scale_minors, t.n_scale_minors, s_minor, t_minor) << t.minor_shift
    )


cdef inline int64_t pair_score(const Kernel* kernel, int64_t i, int64_t j, lane_t* lane) noexcept nogil:
    cdef const Side* s = &kernel.src
    cdef const Side* t = &kernel.tgt
    cdef int64_t value = 0
    if s.exact_key[i] == t.exact_key[j]:
        value |= SCORE_EXACT
    if kernel.type_row >= 0 and (
        (<const lane_t*>s.codes)[kernel.type_row * s.stride + i] == (<const lane_t*>t.codes)[kernel.type_row * t.stride + j]
    ):
        value |= SCORE_SAME_TYPE
    if s.has_version[i] and t.has_version[j]:
        if kernel.prefer_newest:
            value |= SCORE_HAS_VERSION | t.newest_rank[j]
        else:
            value |= closest_versions(t, s.major[i], s.minor[i], t.major[j], t.minor[j]) | t.patch[j]
    return value


cdef inline void fill_score_table(
    const Kernel* kernel, bint has_version, int64_t major, int64_t minor, int64_t* table
) noexcept nogil:
    """The version part of the score of a source version (``has_version``, ``major``, ``minor``)
    against each of the targets' version classes."""
    cdef const Side* t = &kernel.tgt
    cdef int64_t c
    for c in range(t.n_vclasses):
        if not (has_version and t.vclass_has[c]):
            table[c] = 0
        elif kernel.prefer_newest:
            table[c] = SCORE_HAS_VERSION
        else:
            table[c] = closest_versions(t, major, minor, t.vclass_major[c], t.vclass_minor[c])


cdef inline int64_t table_score(
    const Kernel* kernel, int64_t i, int64_t j, const int64_t* table, int64_t low_mask, lane_t s_type
) noexcept nogil:
    """pair_score, with the source's part of the version score looked up in ``table``."""
    cdef const ScoreFacts* facts = &kernel.tgt.score_facts[j]
    cdef int64_t value = table[facts.vclass] | (facts.low & low_mask)
    value |= SCORE_EXACT & -<int64_t>(facts.exact_key == kernel.src.exact_key[i])
    if kernel.type_row >= 0:
        value |= SCORE_SAME_TYPE & -<int64_t>(facts.type_code == <uint32_t>s_type)
    return value


cdef inline void place(
    FmRule16* rules, int32_t* placed, int wanted, int kind, const uint16_t* row, const uint16_t* minor,
    uint16_t value, uint16_t source_minor, uint16_t bit
) noexcept nogil:
    if kind == wanted:
        rules[placed[0]].row = row
        rules[placed[0]].minor = minor
        rules[placed[0]].value = value
        rules[placed[0]].source_minor = source_minor
        rules[placed[0]].bit = bit
        placed[0] += 1


cdef uint16_t rules_for(const Kernel* kernel, int64_t i, FmRule16* rules, int32_t* count) noexcept nogil:
    """The ops resolved for source class ``i``, as fm_tile512 reads them (grouped by kind: one
    pass over the ops per kind); returns the bits that fail whatever the target, as tile_ops
    finds them."""
    cdef const Side* s = &kernel.src
    cdef const Side* t = &kernel.tgt
    cdef const uint16_t* s_codes = <const uint16_t*>s.codes
    cdef const uint16_t* t_codes = <const uint16_t*>t.codes
    cdef const uint16_t* bits = <const uint16_t*>kernel.op_bit
    cdef uint16_t always = 0, sv, bit
    cdef int32_t placed = 0, before
    cdef int wanted, op
    cdef int64_t k, w, row
    for wanted in range(FM_RULE_KINDS):
        before = placed
        for k in range(kernel.n_ops):
            op = kernel.op_kind[k]
            row = kernel.op_row[k]
            bit = bits[k]
            if op == OP_NE or op == OP_REQUIRED:
                sv = s_codes[row * s.stride + i]
                if op == OP_REQUIRED and sv == 0:
                    always |= bit
                else:
                    place(rules, &placed, wanted, FM_RULE_NE, t_codes + row * t.stride, NULL, sv, 0, bit)
            elif op == OP_VERSION:
                sv = (<const uint16_t*>s.vmajor)[row * s.stride + i]
                if sv == 0:
                    place(rules, &placed, wanted, FM_RULE_NE, <const uint16_t*>t.vmajor + row * t.stride, NULL, 0, 0, bit)
                else:
                    place(
                        rules,
                        &placed,
                        wanted,
                        FM_RULE_VERSION,
                        <const uint16_t*>t.vmajor + row * t.stride,
                        <const uint16_t*>t.vminor + row * t.stride,
                        sv,
                        (<const uint16_t*>s.vminor)[row * s.stride + i],
                        bit,
                    )
            elif op == OP_GE or op == OP_LE:
                sv = s_codes[row * s.stride + i]
                if sv == 0:
                    place(rules, &placed, wanted, FM_RULE_NE, t_codes + row * t.stride, NULL, 0, 0, bit)
                elif op == OP_GE:
                    place(rules, &placed, wanted, FM_RULE_LT, t_codes + row * t.stride, NULL, sv, 0, bit)
                else:
                    place(rules, &placed, wanted, FM_RULE_ABSENT_OR_GT, t_codes + row * t.stride, NULL, sv, 0, bit)
            elif op == OP_SUPERSET:
                for w in range(row, row + kernel.op_words[k]):
                    sv = (<const uint16_t*>s.masks)[w * s.stride + i]
                    if sv != 0:
                        place(rules, &placed, wanted, FM_RULE_NOT_SUBSET, <const uint16_t*>t.masks + w * t.stride, NULL, sv, 0, bit)
            elif op == OP_MIGRATABLE:
                if s_codes[row * s.stride + i] == 0:
                    always |= bit
                else:
                    place(rules, &placed, wanted, FM_RULE_EQ, t_codes + row * t.stride, NULL, 0, 0, bit)
        count[wanted] = placed - before
    return always


cdef inline void check_records(
    const Kernel* kernel, int64_t j, const lane_t* failed, int64_t* outcome, const uint8_t* target_matches
) noexcept nogil:
    """Several of target j's records match the source: NO_RECORD was set until one of them
    accepts; an outcome left with no reason but INCOMPATIBLE is a compatible pair (0)."""
    if records_accept(&kernel.tgt, j, target_matches, failed, kernel.failure_words, kernel.records_and):
        outcome[j] = <int64_t>(<uint64_t>outcome[j] & ~NO_RECORD)
        if outcome[j] == <int64_t>INCOMPATIBLE:
            outcome[j] = 0


cdef inline int64_t score(
    const Kernel* kernel, int64_t i, int64_t j, const int64_t* score_table, int64_t low_mask, lane_t s_type
) noexcept nogil:
    if kernel.score_table:
        return table_score(kernel, i, j, score_table, low_mask, s_type)
    return pair_score(kernel, i, j, &s_type)


cdef inline void score_compatible(
    const Kernel* kernel, int64_t i, int64_t j0, int64_t n, int64_t* outcome, const int64_t* score_table, int64_t low_mask,
    lane_t s_type,
) noexcept nogil:
    """table_score for every pair of targets j0 .. j0 + n whose outcome is 0 (compatible, not yet scored)."""
    fm_score_compatible(
        outcome + j0, <const int32_t*>(kernel.tgt.score_facts + j0), n, score_table, low_mask, kernel.src.exact_key[i],
        SCORE_EXACT, <uint32_t>s_type, SCORE_SAME_TYPE if kernel.type_row >= 0 else 0,
    )


cdef inline void pair_failed(
    const Kernel* kernel, const lane_t* fails, int64_t b, const lane_t* always, lane_t* failed
) noexcept nogil:
    """The attribute failures of target ``b`` of a tile, word by word, into ``failed``."""
    cdef const lane_t* attribute = <const lane_t*>kernel.attribute_words
    cdef int64_t w
    for w in range(kernel.failure_words):
        failed[w] = (fails[w * TILE + b] | always[w]) & attribute[w]


cdef inline void finish_pair(
    const Kernel* kernel,
    int64_t i,
    int64_t j,
    const lane_t* failed,
    int64_t* outcome,
    const uint8_t* target_matches,
    const int64_t* score_table,
    int64_t low_mask,
    lane_t s_type,
) noexcept nogil:
    """A pair the vector pass left to do: check its records (when it has a reason, it is one
    whose several records match), then score it if it is compatible."""
    if outcome[j] != 0:
        check_records(kernel, j, failed, outcome, target_matches)
    if outcome[j] == 0:
        outcome[j] = score(kernel, i, j, score_table, low_mask, s_type)


cdef void tile_ops(
    const Kernel* kernel, int64_t i, int64_t j0, int64_t n, lane_t* fails, lane_t* always, bint exact_settled
) noexcept nogil:
    """Every op of source class ``i`` over targets j0 .. j0 + n, one loop of loops.h at a time, into
    ``fails`` (word-major); ``always`` (a lane per failure word) gets the bits that fail whatever
    the target, decided by the source alone. ``exact_settled``: the exact-match ops pass for
    every one of these targets (a block whose key holds their codes), and are not run."""
    cdef const Side* s = &kernel.src
    cdef const Side* t = &kernel.tgt
    cdef const lane_t* s_codes = <const lane_t*>s.codes
    cdef const lane_t* t_codes = <const lane_t*>t.codes
    cdef const lane_t* bits = <const lane_t*>kernel.op_bit
    cdef int64_t s_stride = s.stride, t_stride = t.stride, k, g, w, row, group, word, words = kernel.failure_words
    cdef lane_t bit, sv, s_mask
    cdef lane_t* into
    cdef const lane_t* ne_rows[4]
    cdef lane_t ne_values[4]
    cdef lane_t ne_bits[4]
    for w in range(words):
        always[w] = 0
    # With one failure word the first pass of exact-match ops sets the masks; with several, or
    # none of those ops, the masks start clear.
    if words > 1 or kernel.n_ne == 0 or exact_settled:
        for w in range(words):
            fill(fails + w * TILE, n, <lane_t>0)
    # The exact-match ops come first, up to four of one failure word to a pass (a pass of three
    # has a fourth row that adds nothing).
    k = kernel.n_ne if exact_settled else 0
    while k < kernel.n_ne:
        word = kernel.op_word[k]
        group = 1
        while group < 4 and k + group < kernel.n_ne and kernel.op_word[k + group] == word:
            group += 1
        w = 4 if group >= 3 else 2
        for g in range(w):
            if g < group:
                row = kernel.op_row[k + g]
                ne_rows[g] = t_codes + row * t_stride + j0
                ne_values[g] = s_codes[row * s_stride + i]
                ne_bits[g] = bits[k + g]
            else:
                ne_rows[g] = ne_rows[0]
                ne_values[g] = ne_values[0]
                ne_bits[g] = 0
        if w == 4:
            fail_ne4(fails + word * TILE, ne_rows, n, ne_values, ne_bits, k == 0 and words == 1)
        else:
            fail_ne2(fails + word * TILE, ne_rows, n, ne_values, ne_bits, k == 0 and words == 1)
        k += group
    for k in range(kernel.n_ne, kernel.n_ops):
        bit = bits[k]
        row = kernel.op_row[k]
        word = kernel.op_word[k]
        into = fails + word * TILE
        if kernel.op_kind[k] == OP_VERSION:
            sv = (<const lane_t*>s.vmajor)[row * s_stride + i]
            if sv == 0:
                fail_ne(into, <const lane_t*>t.vmajor + row * t_stride + j0, n, <lane_t>0, bit)
            else:
                fail_version(
                    into,
                    <const lane_t*>t.vmajor + row * t_stride + j0,
                    <const lane_t*>t.vminor + row * t_stride + j0,
                    n,
                    sv,
                    (<const lane_t*>s.vminor)[row * s_stride + i],
                    bit,
                )
        elif kernel.op_kind[k] == OP_GE or kernel.op_kind[k] == OP_LE:
            sv = s_codes[row * s_stride + i]
            if sv == 0:
                fail_ne(into, t_codes + row * t_stride + j0, n, sv, bit)
            elif kernel.op_kind[k] == OP_GE:
                fail_lt(into, t_codes + row * t_stride + j0, n, sv, bit)
            else:
                fail_absent_or_gt(into, t_codes + row * t_stride + j0, n, sv, bit)
        elif kernel.op_kind[k] == OP_SUPERSET:
            for w in range(row, row + kernel.op_words[k]):
                s_mask = (<const lane_t*>s.masks)[w * s_stride + i]
                if s_mask != 0:
                    fail_not_subset(into, <const lane_t*>t.masks + w * t_stride + j0, n, s_mask, bit)
        elif kernel.op_kind[k] == OP_MIGRATABLE:
            if s_codes[row * s_stride + i] == 0:
                always[word] |= bit
            else:
                fail_eq(into, t_codes + row * t_stride + j0, n, <lane_t>0, bit)
        elif kernel.op_kind[k] == OP_REQUIRED:
            sv = s_codes[row * s_stride + i]
            if sv == 0:
                always[word] |= bit
            else:
                fail_ne(into, t_codes + row * t_stride + j0, n, sv, bit)
        else:  # OP_CONFIRM
            fail_unconfirmed(kernel, into, t_codes + row * t_stride + j0, n, s_codes[row * s_stride + i], bit)


cdef int64_t matching_runs(
    const Kernel* kernel, const uint8_t* target_matches, int32_t* set_count, lane_t* set_accept, int32_t* hits, int64_t* runs
) noexcept nogil:
    """The runs of targets (in order) whose record set has a record that matches the source
    (``target_matches``: a byte per record); ``set_count[k]`` gets how many of set k's records
    match, ``set_accept[k]`` (a lane per failure word) the failures a lone matching record accepts."""
    cdef const Side* t = &kernel.tgt
    cdef const lane_t* cmask = <const lane_t*>t.records.cmask
    cdef int64_t r, w, k, h, n_hits = 0, n_runs = 0, n_records = t.records.n, words = kernel.failure_words, f
    cdef int64_t run
    for k in range(t.n_sets):
        set_count[k] = 0
    for r in range(n_records):
        if target_matches[r]:
            for w in range(t.record_set_start[r], t.record_set_start[r + 1]):
                k = t.record_sets[w]
                if set_count[k] == 0:
                    hits[n_hits] = <int32_t>k
                    n_hits += 1
                set_count[k] += 1
                for f in range(words):
                    set_accept[k * words + f] = 0 if kernel.records_and else cmask[r * words + f]
    for h in range(n_hits):
        for w in range(t.set_run_start[hits[h]], t.set_run_start[hits[h] + 1]):
            # insertion into the sorted list: the lists are short
            run = t.set_runs[w]
            k = n_runs
            while k > 0 and runs[k - 1] > run:
                runs[k] = runs[k - 1]
                k -= 1
            runs[k] = run
            n_runs += 1
    return n_runs


cdef void evaluate_row(
    const Kernel* kernel,
    int64_t i,
    lane_t* fails,
    int32_t* set_count,
    lane_t* set_accept,
    int32_t* hits,
    int64_t* runs,
    int64_t* score_scratch,  # a row of version scores, when the problem has no table of them
    FmRule16* rules,
    uint64_t* pending,
    uint8_t* to_finish,
    int64_t* outcome,
    const uint8_t* target_matches,
    const uint8_t* source_matches,
    const int64_t* ranges,  # sorted target-class ranges [ranges[2r], ranges[2r + 1]) to evaluate
    int64_t n_ranges,
    lane_t* word_scratch,  # three lanes per failure word
) noexcept nogil:
    cdef const Side* s = &kernel.src
    cdef const Side* t = &kernel.tgt
    cdef const lane_t* s_codes = <const lane_t*>s.codes
    cdef const lane_t* t_constrained = <const lane_t*>t.constrained
    cdef int64_t words = kernel.failure_words
    # Per failure word: what this source's records constrain, what fails whatever the target,
    # and one pair's attribute failures.
    cdef lane_t* s_words = word_scratch
    cdef lane_t* always_words = word_scratch + words
    cdef lane_t* failed = word_scratch + 2 * words
    cdef lane_t s_constrained = (<const lane_t*>s.constrained)[i]  # its first word: the loops of one word read it
    cdef lane_t always = 0, row_always = 0, state
    cdef lane_t attribute_bits = <lane_t>kernel.attribute_bits
    cdef lane_t outside_of = <lane_t>0 if kernel.records_and else <lane_t>-1
    cdef lane_t s_type = s_codes[kernel.type_row * s.stride + i] if kernel.type_row >= 0 else 0
    cdef int64_t low_mask = -<int64_t>(s.has_version[i] != 0)
    cdef int64_t j0, j1, n, j, k, w, b, q, a, z, r, n_runs, run = 0
    cdef int64_t n_t = t.n, n_source_records = s.records.n
    cdef bint source_has_records = s.record_set[i] != 0
    cdef bint fused = False
    # Without the fused pass, and where the outcome of a pair is its reasons, a tile's compatible
    # pairs may be scored by one vector loop rather than one at a time (below).
    cdef bint vector_scores = kernel.identity_bits and kernel.score_table
    cdef bint vector_tile, records_in_tile, exact_settled
    cdef int64_t left
    cdef uint8_t any_to_finish
    cdef uint64_t word
    cdef int32_t rule_count[FM_RULE_KINDS]
    cdef const int64_t* score_table = score_scratch
    # Per range, whether its exact-match ops all pass: known where the ranges are this row's
    # blocks (Problem.block), not every target class.
    cdef const uint8_t* settled = NULL
    if kernel.block_settled != NULL and ranges == kernel.block_ranges + 2 * kernel.block_start[i]:
        settled = kernel.block_settled + kernel.block_start[i]

    for w in range(words):
        s_words[w] = (<const lane_t*>s.constrained)[w * s.stride + i]
    # The runs of targets whose record set has a record that matches this source's SELF, in
    # order (the others keep their base state, NO_RECORD): from the few records that match.
    n_runs = matching_runs(kernel, target_matches, set_count, set_accept, hits, runs)
    if kernel.score_table and kernel.version_scores != NULL:  # the source's row of the problem's table
        score_table = kernel.version_scores + kernel.source_vclass[i] * t.n_vclasses
    elif kernel.score_table:
        fill_score_table(kernel, s.has_version[i] != 0, s.major[i], s.minor[i], score_scratch)
    if lane_t is uint16_t:
        if kernel.tile512:
            row_always = rules_for(kernel, i, rules, rule_count)
            fused = True

    for r in range(n_ranges):
        j0 = ranges[2 * r]
        exact_settled = settled != NULL and settled[r] != 0
        while j0 < ranges[2 * r + 1]:
            j1 = min(j0 + TILE, ranges[2 * r + 1])
            n = j1 - j0
            while run < n_runs and t.run_start[runs[run] + 1] <= j0:
                run += 1
            # Failure bits -> outcomes, as if no target's records matched this source (tile512.h, loops.h).
            if fused:
                always = row_always
                always_words[0] = always
                if lane_t is uint16_t:  # always so when fused: this only spares the other lanes the call
                    any_to_finish = fm_tile512(
                        rules,
                        rule_count,
                        j0,
                        n,
                        always,
                        t_constrained,
                        s_constrained,
                        attribute_bits,
                        <const uint16_t*>t.base_state + j0,
                        j1 <= t.n_plain,
                        fails,
                        source_has_records or (run < n_runs and t.run_start[runs[run]] < j1),  # who reads fails
                        outcome + j0,
                        pending,
                    )
            else:
                tile_ops(kernel, i, j0, n, fails, always_words, exact_settled)
                always = always_words[0]
                if kernel.identity_bits:
                    any_to_finish = outcomes(
                        fails, t_constrained + j0, <const lane_t*>t.base_state + j0, n, always, s_constrained, attribute_bits, outcome + j0, to_finish
                    )
                else:
                    any_to_finish = table_outcomes(
                        kernel, fails, t_constrained + j0, t.stride, <const lane_t*>t.base_state + j0, 0, NULL, n, always_words, s_words,
                        outcome + j0, to_finish,
                    )
            # Then again for the runs of targets whose record set has a record that matches.
            w = run
            records_in_tile = w < n_runs and t.run_start[runs[w]] < j1
            while w < n_runs and t.run_start[runs[w]] < j1:
                k = runs[w]
                w += 1
                state = FM_ONE_MATCH if set_count[t.run_set[k]] == 1 else FM_MANY_MATCH
                a = max(t.run_start[k], j0) - j0
                z = min(t.run_start[k + 1], j1) - j0
                if kernel.identity_bits:
                    any_to_finish |= outcomes_matched(
                        fails + a,
                        t_constrained + j0 + a,
                        z - a,
                        always,
                        s_constrained,
                        attribute_bits,
                        outside_of,
                        state == FM_MANY_MATCH,
                        set_accept[t.run_set[k]],
                        outcome + j0 + a,
                        to_finish + a,
                    )
                else:
                    any_to_finish |= table_outcomes(
                        kernel, fails + a, t_constrained + j0 + a, t.stride, NULL, state, set_accept + t.run_set[k] * words, z - a,
                        always_words, s_words, outcome + j0 + a, to_finish + a,
                    )
                if fused:  # the fused pass keeps the pairs to score as bits: check records here
                    for b in range(a, z):
                        if to_finish[b] and outcome[j0 + b] != 0:
                            failed[0] = (fails[b] | always) & attribute_bits
                            check_records(kernel, j0 + b, failed, outcome, target_matches)
                        if outcome[j0 + b] == 0:
                            pending[b >> 6] |= 1ULL << (b & 63)

            # The pairs left to do: check their records, score what passed.
            if any_to_finish and fused:  # every pending pair is compatible: scores only, no branches
                for q in range(0, (n + 63) >> 6):
                    word = pending[q]
                    while word:
                        j = j0 + (q << 6) + __builtin_ctzll(word)
                        word &= word - 1
                        outcome[j] = score(kernel, i, j, score_table, low_mask, s_type)
            elif any_to_finish:
                for j in range(n, n + 8):
                    to_finish[j] = 0
                # One vector loop scores the whole tile (every pair left at 0 is compatible): it
                # pays where many pairs are left, as within blocks, and in any short range; where
                # few are (a dense pass, mostly incompatible), each is scored alone.
                vector_tile = vector_scores and n <= SHORT_RANGE
                if vector_scores and not vector_tile:
                    left = 0
                    for q in range(0, n, 8):
                        memcpy(&word, to_finish + q, 8)
                        left += __builtin_popcountll(word)  # flags are 0 or 1: one bit a pair
                    vector_tile = 4 * left >= n
                # With the scores to come for the whole tile, only records are checked here: none
                # unless a run of targets whose records match lies in the tile.
                for q in range(0, n if records_in_tile or not vector_tile else 0, 8):
                    memcpy(&word, to_finish + q, 8)
                    while word:
                        b = q + (__builtin_ctzll(word) >> 3)
                        word &= word - 1
                        if vector_tile:
                            if outcome[j0 + b] != 0:
                                pair_failed(kernel, fails, b, always_words, failed)
                                check_records(kernel, j0 + b, failed, outcome, target_matches)
                        else:
                            pair_failed(kernel, fails, b, always_words, failed)
                            finish_pair(kernel, i, j0 + b, failed, outcome, target_matches, score_table, low_mask, s_type)
                if vector_tile:
                    score_compatible(kernel, i, j0, n, outcome, score_table, low_mask, s_type)

            # The source's COMPATIBLE records (rarely read: direction source-offers or both).
            if source_has_records:
                for j in range(j0, j1):
                    pair_failed(kernel, fails, j - j0, always_words, failed)
                    if not records_accept(s, i, source_matches + j * n_source_records, failed, words, kernel.records_and):
                        outcome[j] = <int64_t>((<uint64_t>outcome[j] if outcome[j] < 0 else INCOMPATIBLE) | NO_RECORD)
            j0 = j1


cdef uint8_t table_outcomes(
    const Kernel* kernel,
    const lane_t* fails,
    const lane_t* t_constrained,
    int64_t t_stride,
    const lane_t* base_state,
    lane_t state,
    const lane_t* accept,
    int64_t n,
    const lane_t* always,
    const lane_t* s_constrained,
    int64_t* outcome,
    uint8_t* to_finish,
) noexcept nogil:
    """fm_outcomes and fm_outcomes_matched for failure bits that are not reason bits, in one
    failure word or several: each byte of a mask maps to its reasons through a table. Record
    states are ``base_state`` per target, or, without it, ``state`` and ``accept`` for all.
    ``t_constrained`` (a row per word, ``t_stride`` apart), ``accept``, ``always`` and
    ``s_constrained`` hold a lane per failure word."""
    cdef const lane_t* attribute = <const lane_t*>kernel.attribute_words
    cdef lane_t outside_of = <lane_t>0 if kernel.records_and else <lane_t>-1
    cdef lane_t f, reported, failed, constrained
    cdef uint64_t r
    cdef int64_t j, b, w, words = kernel.failure_words
    cdef const uint64_t* table
    cdef bint ruled_out, not_accepted, no_record
    cdef uint8_t any_to_finish = 0
    for j in range(n):
        r = 0
        ruled_out = False
        not_accepted = False
        for w in range(words):
            f = fails[w * TILE + j] | always[w]
            if f == 0:
                continue
            constrained = t_constrained[w * t_stride + j]
            reported = f & ~(constrained & s_constrained[w])
            table = kernel.reason_table + w * <int64_t>sizeof(lane_t) * 256
            for b in range(<int64_t>sizeof(lane_t)):
                r |= table[b * 256 + ((reported >> (8 * b)) & 0xFF)]
            failed = f & attribute[w]
            ruled_out = ruled_out or (failed & ~(constrained & outside_of)) != 0
            not_accepted = not_accepted or (accept != NULL and (failed & ~accept[w]) != 0)
        if base_state != NULL:
            state = base_state[j]
        to_finish[j] = 0
        no_record = False
        if state == FM_NONE_MATCH:
            no_record = True
        elif state == FM_ONE_MATCH:
            no_record = not_accepted
        elif state == FM_MANY_MATCH:  # until one of the records accepts
            no_record = True
            to_finish[j] = not ruled_out
        if no_record:
            r |= NO_RECORD
        if r != 0:
            outcome[j] = <int64_t>(r | INCOMPATIBLE)
        else:
            outcome[j] = 0
            to_finish[j] = 1
        any_to_finish |= to_finish[j]
    return any_to_finish


cdef inline int64_t scratch_words(const Kernel* kernel) noexcept nogil:
    """Per thread, in 64-bit words: a tile's failure masks; per record set, a count, an accept
    mask (a word per failure word) and a place in a list; a place per run of targets; a score
    per version class of the targets; the rules of fm_tile512 (four words each) and its pending
    bits; a byte per target of the tile (and 8 spare); three words per failure word."""
    return (
        kernel.fail_scratch + (2 + kernel.failure_words) * kernel.tgt.n_sets + kernel.tgt.n_runs + kernel.tgt.n_vclasses
        + 4 * kernel.max_rules + TILE // 64 + 1 + TILE // 8 + 2 + 3 * kernel.failure_words
    )


cdef inline const int64_t* row_ranges(const Kernel* kernel, int64_t i, bint blocked, const int64_t* whole) noexcept nogil:
    """The target-class ranges row ``i`` covers (``whole``, every class, unless ``blocked``)."""
    if blocked and kernel.block_start != NULL:
        return kernel.block_ranges + 2 * kernel.block_start[i]
    return whole


cdef inline int64_t row_range_count(const Kernel* kernel, int64_t i, bint blocked) noexcept nogil:
    if blocked and kernel.block_start != NULL:
        return kernel.block_start[i + 1] - kernel.block_start[i]
    return 1


cdef inline void evaluate_one(
    const Kernel* kernel,
    int64_t i,
    uint64_t* mine,
    int64_t* outcome,
    const uint8_t* target_matches,
    const uint8_t* source_matches,
    const int64_t* ranges,
    int64_t n_ranges,
    lane_t* lane,
) noexcept nogil:
    """Row ``i`` of outcomes over ``ranges`` of target classes into ``outcome``, with one
    thread's scratch ``mine`` (scratch_words)."""
    cdef int64_t n_sets = kernel.tgt.n_sets, n_vclasses = kernel.tgt.n_vclasses, max_rules = kernel.max_rules
    cdef int64_t words = kernel.failure_words
    cdef uint64_t* per_set = mine + kernel.fail_scratch
    cdef uint64_t* per_row = per_set + (2 + words) * n_sets + kernel.tgt.n_runs  # what follows the per-set and per-run lists
    cdef uint64_t* to_finish = per_row + n_vclasses + 4 * max_rules + TILE // 64 + 1
    evaluate_row(
        kernel,
        i,
        <lane_t*>mine,
        <int32_t*>per_set,
        <lane_t*>(per_set + n_sets),
        <int32_t*>(per_set + (1 + words) * n_sets),
        <int64_t*>(per_set + (2 + words) * n_sets),
        <int64_t*>per_row,
        <FmRule16*>(per_row + n_vclasses),
        per_row + n_vclasses + 4 * max_rules,
        <uint8_t*>to_finish,
        outcome,
        target_matches + i * kernel.tgt.records.n,
        source_matches,
        ranges,
        n_ranges,
        <lane_t*>(to_finish + TILE // 8 + 2),
    )


cdef void evaluate_rows(
    const Kernel* kernel,
    int64_t i0,
    int64_t i1,
    uint64_t* scratch,
    int64_t* outcomes,
    const uint8_t* target_matches,
    const uint8_t* source_matches,
    int workers,
    lane_t* lane,
) noexcept nogil:
    cdef int64_t i, n_t = kernel.tgt.n
    cdef int64_t stride = scratch_words(kernel)
    cdef int64_t whole[2]
    whole[0] = 0
    whole[1] = n_t
    # guided: each thread starts on a long run of rows, so a block's rows of the output stay with
    # one core from block to block (dynamic interleaves them: lines move between the cores'
    # caches); the shrinking last chunks still even out a busy core.
    for i in prange(i0, i1, num_threads=workers, schedule="guided"):
        evaluate_one(
            kernel, i, scratch + threadid() * stride, outcomes + (i - i0) * n_t, target_matches, source_matches, whole, 1, lane
        )


include "reductions.pxi"


ALIGNMENT = CACHE_LINE
# Entries of a problem's table of version scores (8 bytes each; Kernel.version_scores): past
# this, each row fills its own.
MAX_VERSION_SCORES = 1 << 20


cdef extern from "hashing.h" nogil:
    uint64_t fm_mix(uint64_t h)


cdef int64_t group_versions(
    const uint8_t* has, const int64_t* major, const int64_t* minor, int64_t n, int64_t* group, int64_t* member,
    int64_t* slots, int64_t mask,
) noexcept nogil:
    """Classes grouped by (has, major, minor) in a hash table of ``mask + 1`` slots (-1: empty),
    groups numbered in order of first appearance: each class's ``group``, a ``member`` of each
    group; returns the number of groups."""
    cdef int64_t c, g, at, n_groups = 0
    for c in range(n):
        at = <int64_t>(fm_mix(fm_mix(<uint64_t>major[c] ^ (<uint64_t>has[c] << 63)) ^ <uint64_t>minor[c]) & <uint64_t>mask)
        while True:
            g = slots[at]
            if g < 0:
                slots[at] = n_groups
                member[n_groups] = c
                group[c] = n_groups
                n_groups += 1
                break
            if has[member[g]] == has[c] and major[member[g]] == major[c] and minor[member[g]] == minor[c]:
                group[c] = g
                break
            at = (at + 1) & mask
    return n_groups


def _version_classes_of(data):
    """A side's classes grouped by the version a score reads (has it, major, minor): per class
    those three (0 where it has none), a class of each group, and each class's group. Hashed
    natively: NumPy's unique hashed or sorted every class, for a few distinct versions."""
    has = np.ascontiguousarray(data.has_version, dtype=np.uint8)
    major = np.where(has, data.major, 0).astype(np.int64)
    minor = np.where(has, data.minor, 0).astype(np.int64)
    cdef int64_t n = len(has), size = 1
    while size < 2 * n:
        size <<= 1
    group = np.empty(n, dtype=np.int64)
    member = np.empty(max(n, 1), dtype=np.int64)
    slots = np.full(size, -1, dtype=np.int64)
    cdef const uint8_t[::1] has_view = has
    cdef const int64_t[::1] major_view = major
    cdef const int64_t[::1] minor_view = minor
    cdef int64_t[::1] group_view = group
    cdef int64_t[::1] member_view = member
    cdef int64_t[::1] slot_view = slots
    cdef int64_t n_groups = 0
    if n:
        with nogil:
            n_groups = group_versions(
                &has_view[0], &major_view[0], &minor_view[0], n, &group_view[0], &member_view[0], &slot_view[0], size - 1
            )
    return has.view(bool), major, minor, member[:n_groups], group


# -- blocking (fastmatch/blocks.py): each source class's ranges of target classes ---------------
def key_slots(const int64_t[::1] keys):
    """An open-addressing table of the distinct ``keys``: a slot holds a key's position, or -1."""
    cdef int64_t n = keys.shape[0], size = 2, p
    while size < 2 * n:
        size *= 2
    slots = np.full(size, -1, dtype=np.int64)
    cdef int64_t[::1] table = slots
    cdef uint64_t mask = <uint64_t>(size - 1), h
    with nogil:
        for p in range(n):
            h = fm_mix(<uint64_t>keys[p]) & mask
            while table[h] >= 0:
                h = (h + 1) & mask
            table[h] = p
    return slots


cdef inline int64_t key_position(const int64_t* keys, const int64_t* slots, uint64_t mask, int64_t key) noexcept nogil:
    """Where ``key`` is among the keys of ``slots`` (key_slots), or -1."""
    cdef uint64_t h = fm_mix(<uint64_t>key) & mask
    while slots[h] >= 0:
        if keys[slots[h]] == key:
            return slots[h]
        h = (h + 1) & mask
    return -1


cdef void pattern_keys(
    const lane_t* codes, int64_t stride, int64_t n, const int64_t* rows, const int64_t* radix, const int64_t* weight,
    int64_t n_rules, const uint8_t* wildcard, int64_t* key,
) noexcept nogil:
    """Each source class's key for one pattern of wildcards: its codes on ``rows`` in mixed
    ``radix`` (code + 1 times the rule's ``weight``, the product of the radixes after it), a
    wildcard 0; a code past every target's (radix - 2: no target has it) matches none of them.
    A rule at a time over every class: one vector loop each."""
    cdef int64_t i, r, last, rule_weight
    cdef const lane_t* row
    for i in range(n):
        key[i] = 0
    for r in range(n_rules):
        if wildcard[r]:
            continue
        row = codes + rows[r] * stride
        last = radix[r] - 2
        rule_weight = weight[r]  # a local: the keys written cannot be taken to change it, and the loop vectorises
        for i in range(n):
            key[i] += (min(<int64_t>row[i], last) + 1) * rule_weight


def block_ranges(
    const lane_t[:, ::1] codes,
    const int64_t[::1] rows,
    const int64_t[::1] radix,
    const uint8_t[:, ::1] patterns,
    const int64_t[::1] keys,
    const int64_t[::1] slots,
    const int64_t[::1] first,
    const int64_t[::1] end,
    const uint8_t[::1] settled,
):
    """``(start, ranges, settled, pairs)`` of ``fastmatch.blocks.Blocks`` for the source classes
    whose codes are ``codes`` (field-major), against the targets' distinct ``keys`` (the targets
    of key k are the classes first[k]..end[k], ``settled[k]`` whether every exact rule passes
    for them, ``slots`` their key_slots): for each pattern of wildcards, the key of a source's
    codes on ``rows`` (in mixed ``radix``, a wildcard -1) finds one range. Each class's
    non-empty ranges are sorted by where they start (the ranges of distinct keys are disjoint)."""
    cdef int64_t n = codes.shape[1], n_rules = rows.shape[0], n_patterns = patterns.shape[0]
    cdef int64_t i, p, q, r, at, w, pairs = 0
    cdef uint64_t mask = <uint64_t>(slots.shape[0] - 1)
    start = np.zeros(n + 1, dtype=np.int64)
    if n == 0 or keys.shape[0] == 0:
        return start, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8), 0
    weights = np.ones(max(n_rules, 1), dtype=np.int64)
    for r in range(n_rules - 2, -1, -1):
        weights[r] = weights[r + 1] * radix[r + 1]
    key_of = np.empty(n, dtype=np.int64)
    found_of = np.empty((n_patterns, n), dtype=np.int64)  # per pattern and class: its key's position, or -1
    cdef int64_t[::1] starts = start
    cdef int64_t* key = <int64_t*>address(key_of)
    cdef int64_t* found = <int64_t*>address(found_of)
    cdef const int64_t* weight = <const int64_t*>address(weights)
    cdef const lane_t* codes_at = &codes[0, 0]
    cdef const uint8_t* patterns_at = &patterns[0, 0] if n_rules else NULL
    cdef const int64_t* rows_at = &rows[0] if n_rules else NULL  # no rule: every key is 0
    cdef const int64_t* radix_at = &radix[0] if n_rules else NULL
    cdef int64_t order[64]  # a class's found ranges (patterns are at most blocks.MAX_PATTERNS)
    if n_patterns > 64:
        raise ValueError(f"{n_patterns} patterns of wildcards: at most 64")
    with nogil:
        for p in range(n_patterns):
            pattern_keys(codes_at, codes.shape[1], n, rows_at, radix_at, weight, n_rules, patterns_at + p * n_rules, key)
            for i in range(n):
                at = key_position(&keys[0], &slots[0], mask, key[i])
                found[p * n + i] = at if at >= 0 and end[at] > first[at] else -1
                if found[p * n + i] >= 0:
                    starts[i + 1] += 1
                    pairs += end[at] - first[at]
        for i in range(n):
            starts[i + 1] += starts[i]
    ranges = np.empty(2 * starts[n], dtype=np.int64)
    ranges_settled = np.empty(starts[n], dtype=np.uint8)
    cdef int64_t[::1] into = ranges
    cdef uint8_t[::1] settled_into = ranges_settled
    with nogil:
        for i in range(n):
            w = 0
            for p in range(n_patterns):
                at = found[p * n + i]
                if at < 0:
                    continue
                q = w
                while q > 0 and first[order[q - 1]] > first[at]:
                    order[q] = order[q - 1]
                    q -= 1
                order[q] = at
                w += 1
            for q in range(w):
                into[2 * (starts[i] + q)] = first[order[q]]
                into[2 * (starts[i] + q) + 1] = end[order[q]]
                settled_into[starts[i] + q] = settled[order[q]]
    return start, ranges, ranges_settled, pairs


def aligned_empty(shape, dtype):
    """``np.empty`` whose data starts on a cache line (NumPy promises 16 bytes)."""
    dtype = np.dtype(dtype)
    size = shape if isinstance(shape, int) else int(np.prod(shape))
    raw = np.empty(size * dtype.itemsize + ALIGNMENT, dtype=np.uint8)
    start = -address(raw) % ALIGNMENT
    return raw[start : start + size * dtype.itemsize].view(dtype).reshape(shape)


def avx512_available():
    """Whether this CPU runs the AVX-512 tile pass (tile512.h)."""
    return bool(fm_tile512_available())


cdef class KernelTemplate:
    """What a problem's kernel holds that depends only on the targets and the ops (its target
    side, ops, reason tables, policy flags), and the arrays it points into: a TargetIndex's
    requests copy it and add their own source side. (Prepared targets have no confirmer, so
    their opaque table, empty, does not depend on the sources either.)"""

    cdef Kernel kernel
    cdef list keep
    # A source side of one class without records (a request's one descriptor): made with the
    # first such request; later ones copy it and replace only the class's own values.
    cdef Side one_class
    cdef bint has_one_class
    # The reductions' buffers (Problem._reduce), sized by the targets: the problems made from one
    # template take them from one pool, so a request does not allocate (and page-fault) its own.
    cdef list buffers
    # The source side of the last problem that asked to keep it (``Problem(keep_sources=True)``:
    # a match of two sets whose interning is kept), for the next problem of the same sources.
    cdef SourceTemplate sources


cdef class SourceTemplate:
    """A kernel's source side and its table of version scores against the template's targets,
    the arrays they point into, and the interned sources (``fastmatch.intern.Side``) they
    were made of: they serve another problem of the very same object only."""

    cdef object made_of
    cdef Side side
    cdef const int64_t* version_scores
    cdef const int32_t* source_vclass
    cdef list keep


cdef class Problem:
    """The interned arrays of one match, held alive while the kernel points into them."""

    cdef Kernel kernel
    cdef int lane_bytes
    cdef list _keep
    cdef object _target_matches, _source_matches
    cdef list _buffers  # (workers, extra words, scratch, rows, extra) of earlier reductions, to reuse (the template's pool)

    def __init__(self, interned, str vector="portable", bint keep_sources=False):
        """``keep_sources``: ``interned.sources`` serves later matches too (its interning is
        kept), so its side of the kernel is kept with the template, for the next problem."""
        cdef KernelTemplate template
        self._keep = []
        self.lane_bytes = np.dtype(interned.lane).itemsize
        lane = interned.lane
        cache = interned.kernel_cache
        template = cache.get("kernel") if cache is not None else None
        if template is None:
            template = self._template(interned)
            if cache is not None:
                cache["kernel"] = template
        self.kernel = template.kernel
        self._keep.append(template)
        self.kernel.version_scores = NULL
        self.kernel.source_vclass = NULL
        if interned.sources.n_classes == 1 and len(interned.sources.records.cmask) == 0:
            self._one_class_side(template, interned.sources, lane)  # a request's one descriptor
        elif template.sources is not None and template.sources.made_of is interned.sources:
            self._kept_sources(template.sources)
        else:
            start = len(self._keep)
            self._side(&self.kernel.src, interned.sources, lane)
            self._version_scores(interned.sources)
            if keep_sources:
                template.sources = self._source_template(interned.sources, self._keep[start:])
        # fastmatch.dispatch decides (vector_path): one pass per tile on AVX-512, 16-bit lanes.
        if vector == "avx512" and not (self.lane_bytes == 2 and interned.identity_bits and fm_tile512_available()):
            raise ValueError("the AVX-512 tile pass cannot take this problem on this CPU")
        self.kernel.tile512 = vector == "avx512"
        self._target_matches = None
        self._source_matches = None
        self._buffers = template.buffers
        self.kernel.block_start = NULL
        self.kernel.block_ranges = NULL
        self.kernel.block_settled = NULL

    cdef KernelTemplate _template(self, interned):
        """Everything but the source side, the arrays kept by the template."""
        cdef KernelTemplate template = KernelTemplate()
        template.buffers = []
        lane = interned.lane
        start = len(self._keep)
        # Ops in any order give the same masks: the exact-match ops go first, to be fused.
        order = np.argsort(interned.op_kind, kind="stable")
        self.kernel.n_ops = len(interned.op_kind)
        self.kernel.n_ne = int(np.count_nonzero(interned.op_kind == OP_NE))
        self.kernel.op_kind = <const int32_t*>self._ptr(interned.op_kind[order], np.int32)
        self.kernel.op_row = <const int32_t*>self._ptr(interned.op_row[order], np.int32)
        self.kernel.op_words = <const int32_t*>self._ptr(interned.op_words[order], np.int32)
        self.kernel.op_word = <const int32_t*>self._ptr(interned.op_word[order], np.int32)
        self.kernel.op_bit = self._ptr(interned.op_bit[order], lane)
        self.kernel.identity_bits = interned.identity_bits
        # (read only when failure bits are not reason bits: building it costs a request's time)
        table = np.zeros(1, dtype=np.uint64) if interned.identity_bits else interned.reason_table
        self.kernel.reason_table = <const uint64_t*>self._ptr(table, np.uint64)
        words = interned.failure_words
        self.kernel.failure_words = words
        self.kernel.fail_scratch = max(TILE, -(-words * TILE * self.lane_bytes // 8))
        lane_bits = 8 * self.lane_bytes
        attribute_words = [interned.attribute_bits >> lane_bits * w & (1 << lane_bits) - 1 for w in range(words)]
        self.kernel.attribute_words = self._ptr(np.array(attribute_words, dtype=lane), lane)
        self.kernel.attribute_bits = attribute_words[0]
        self.kernel.type_row = interned.type_row
        policy = interned.policy
        self.kernel.records_and = policy.records == "and"
        self.kernel.prefer_newest = interned.prefer_newest
        self.kernel.opaque_if_present = policy.opaque == "if-present"
        self.kernel.opaque_table = <const uint8_t*>self._ptr(interned.opaque_table, np.uint8)
        self.kernel.opaque_n = interned.opaque_table.shape[1]
        self.kernel.opaque_rows = <const int32_t*>self._ptr(interned.opaque_rows, np.int32)
        self.kernel.opaque_columns = <const int32_t*>self._ptr(interned.opaque_columns, np.int32)
        self._side(&self.kernel.tgt, interned.targets, lane)
        self._version_classes(&self.kernel.tgt, interned.targets)
        # A table per source class pays off when it is much smaller than a row of targets.
        self.kernel.score_table = self.kernel.tgt.n_vclasses * 4 <= self.kernel.tgt.n
        kinds = np.asarray(interned.op_kind)
        self.kernel.max_rules = int(np.where(kinds == OP_SUPERSET, interned.op_words, 1).sum())
        template.kernel = self.kernel
        template.keep = self._keep[start:]
        del self._keep[start:]
        return template

    cdef SourceTemplate _source_template(self, sources, list arrays):
        cdef SourceTemplate kept = SourceTemplate()
        kept.made_of = sources
        kept.side = self.kernel.src
        kept.version_scores = self.kernel.version_scores
        kept.source_vclass = self.kernel.source_vclass
        kept.keep = arrays
        return kept

    cdef _kept_sources(self, SourceTemplate kept):
        self.kernel.src = kept.side
        self.kernel.version_scores = kept.version_scores
        self.kernel.source_vclass = kept.source_vclass
        self._keep.append(kept)

    def block(self, block_start, block_ranges, block_settled=None):
        """Restrict top_k and counts to the target-class ranges that ``fastmatch.blocks`` leaves
        each source class: ``block_ranges[2r], block_ranges[2r + 1]`` for r in
        ``block_start[i]..block_start[i + 1]``, sorted and disjoint per class; ``block_settled[r]``
        (uint8, optional): every exact rule passes for every pair of range r, so its rows skip them."""
        self.kernel.block_start = <const int64_t*>self._ptr(block_start, np.int64)
        self.kernel.block_ranges = <const int64_t*>self._ptr(block_ranges, np.int64)
        self.kernel.block_settled = NULL
        if block_settled is not None and len(block_settled):
            self.kernel.block_settled = <const uint8_t*>self._ptr(block_settled, np.uint8)

    cdef const void* _ptr(self, array, dtype) except NULL:
        """The address of ``array`` as ``dtype`` on a cache line (a vector load that straddles
        two lines costs two), kept alive with the problem: a copy unless it already is."""
        flat = np.asarray(array).reshape(-1)
        if flat.size and flat.dtype == dtype and flat.flags.c_contiguous and address(flat) % ALIGNMENT == 0:
            self._keep.append(flat)
            return <const void*>address(flat)
        copy = aligned_empty(max(flat.size, 1), dtype)
        copy[: flat.size] = flat
        self._keep.append(copy)
        return <const void*>address(copy)

    cdef const void* _rows(self, array, dtype, int64_t stride) except NULL:
        """``_ptr`` for a field-major array, each row starting on a cache line (``stride``)."""
        rows = np.asarray(array)
        copy = aligned_empty(max(rows.shape[0] * stride, 1), dtype)
        copy[: rows.shape[0] * stride].reshape(rows.shape[0], stride)[:, : rows.shape[1]] = rows
        self._keep.append(copy)
        return <const void*>address(copy)

    cdef _one_class_side(self, KernelTemplate template, data, lane):
        """The source side of a request's one descriptor (one class, no records), without the
        ~25 NumPy calls of ``_side``: its runs and sets of records are the template's, and its
        values go into two small buffers."""
        cdef Side built
        cdef Side* side = &self.kernel.src
        if not template.has_one_class:
            start = len(self._keep)
            self._side(&built, data, lane)
            template.keep.extend(self._keep[start:])
            del self._keep[start:]
            template.one_class = built  # whole, after it is built: another thread may be reading it
            template.has_one_class = True
        side[0] = template.one_class
        rows = (data.codes, data.vmajor, data.vminor, data.masks, data.constrained)
        cdef int64_t first[6]
        cdef int64_t k
        first[0] = 0
        for k in range(5):
            first[k + 1] = first[k] + len(rows[k])
        line = ALIGNMENT // self.lane_bytes  # a row of the field-major arrays is one cache line
        lanes = aligned_empty((max(first[5], 1), line), lane)
        for k in range(5):
            lanes[first[k] : first[k + 1], 0] = rows[k][:, 0]
        cdef const char* at = <const char*>address(lanes)
        cdef int64_t row_bytes = ALIGNMENT
        side.codes = at + first[0] * row_bytes
        side.vmajor = at + first[1] * row_bytes
        side.vminor = at + first[2] * row_bytes
        side.masks = at + first[3] * row_bytes
        side.constrained = at + first[4] * row_bytes
        side.n_plain = 0 if np.any(data.constrained) else 1
        numbers = np.array([data.exact_key[0], data.major[0], data.minor[0], data.patch[0], data.newest_rank[0]], dtype=np.int64)
        flag = np.array(data.has_version, dtype=np.uint8)
        cdef const int64_t* number = <const int64_t*>address(numbers)
        side.exact_key, side.major, side.minor, side.patch, side.newest_rank = number, number + 1, number + 2, number + 3, number + 4
        side.has_version = <const uint8_t*>address(flag)
        self._keep += [lanes, numbers, flag]

    cdef _side(self, Side* side, data, lane):
        side.n = data.codes.shape[1]
        line = ALIGNMENT // np.dtype(lane).itemsize
        side.stride = max(1, -(-side.n // line)) * line
        side.codes = self._rows(data.codes, lane, side.stride)
        side.vmajor = self._rows(data.vmajor, lane, side.stride)
        side.vminor = self._rows(data.vminor, lane, side.stride)
        side.masks = self._rows(data.masks, lane, side.stride)
        side.constrained = self._rows(data.constrained, lane, side.stride)
        side.record_set = <const int32_t*>self._ptr(data.record_set, np.int32)
        side.set_start = <const int64_t*>self._ptr(data.set_start, np.int64)
        side.set_records = <const int32_t*>self._ptr(data.set_records, np.int32)
        side.n_sets = len(data.set_start) - 1
        starts = np.flatnonzero(np.diff(data.record_set, prepend=-1) != 0)
        side.run_start = <const int64_t*>self._ptr(np.append(starts, side.n), np.int64)
        side.run_set = <const int32_t*>self._ptr(data.record_set[starts], np.int32)
        side.n_runs = len(starts)
        set_of = np.repeat(np.arange(side.n_sets, dtype=np.int32), np.diff(data.set_start))
        order = np.argsort(data.set_records, kind="stable")
        side.record_sets = <const int32_t*>self._ptr(set_of[order], np.int32)
        n_records = len(data.records.cmask)
        side.record_set_start = <const int64_t*>self._ptr(
            np.searchsorted(np.asarray(data.set_records)[order], np.arange(n_records + 1)), np.int64
        )
        run_sets = np.asarray(data.record_set)[starts]
        order = np.argsort(run_sets, kind="stable")
        side.set_runs = <const int32_t*>self._ptr(order, np.int32)
        side.set_run_start = <const int64_t*>self._ptr(np.searchsorted(run_sets[order], np.arange(side.n_sets + 1)), np.int64)
        side.base_state = self._ptr(np.where(data.record_set != 0, FM_NONE_MATCH, FM_NO_RECORDS), lane)
        plain = (np.asarray(data.record_set) == 0) & (np.asarray(data.constrained) == 0).all(axis=0)
        side.n_plain = side.n if plain.all() else int(np.argmin(plain))
        side.exact_key = <const int64_t*>self._ptr(data.exact_key, np.int64)
        side.has_version = <const uint8_t*>self._ptr(data.has_version, np.uint8)
        side.major = <const int64_t*>self._ptr(data.major, np.int64)
        side.minor = <const int64_t*>self._ptr(data.minor, np.int64)
        side.patch = <const int64_t*>self._ptr(data.patch, np.int64)
        side.newest_rank = <const int64_t*>self._ptr(data.newest_rank, np.int64)
        tables = data.records
        rec = &side.records
        rec.n = len(tables.cmask)
        rec.cmask = self._ptr(tables.cmask, lane)
        rec.common_begin = <const int64_t*>self._ptr(tables.common_begin, np.int64)
        rec.common_end = <const int64_t*>self._ptr(tables.common_end, np.int64)
        rec.alt_start = <const int64_t*>self._ptr(tables.alt_start, np.int64)
        rec.alt_begin = <const int64_t*>self._ptr(tables.alt_begin, np.int64)
        rec.alt_end = <const int64_t*>self._ptr(tables.alt_end, np.int64)
        rec.test_row = <const int32_t*>self._ptr(tables.test_row, np.int32)
        rec.test_kind = <const int32_t*>self._ptr(tables.test_kind, np.int32)
        rec.test_start = <const int64_t*>self._ptr(tables.test_start, np.int64)
        rec.test_len = <const int64_t*>self._ptr(tables.test_len, np.int64)
        rec.code_pool = self._ptr(tables.code_pool, lane)
        rec.mask_pool = self._ptr(tables.mask_pool, lane)

    cdef _version_scores(self, data):
        """``kernel.version_scores``: each distinct source version scored once against the
        targets' version classes, rather than once per source class and row (a blocked row
        visits a few targets, and filling its row of scores cost more than the visit)."""
        if not self.kernel.score_table or self.kernel.src.n == 0:
            return
        has, major, minor, member, vclass = _version_classes_of(data)
        cdef int64_t n_versions = len(member), n_targets = self.kernel.tgt.n_vclasses, v
        if n_versions * n_targets > MAX_VERSION_SCORES:
            return  # rows fill their own
        table = aligned_empty((n_versions, max(n_targets, 1)), np.int64)
        cdef int64_t[:, ::1] scores = table
        cdef const uint8_t[::1] source_has = has[member].astype(np.uint8)
        cdef const int64_t[::1] source_major = major[member]
        cdef const int64_t[::1] source_minor = minor[member]
        with nogil:
            for v in range(n_versions):
                fill_score_table(&self.kernel, source_has[v] != 0, source_major[v], source_minor[v], &scores[v, 0])
        self.kernel.version_scores = <const int64_t*>self._ptr(table, np.int64)
        self.kernel.source_vclass = <const int32_t*>self._ptr(vclass, np.int32)

    cdef _version_classes(self, Side* side, data):
        has, major, minor, member, vclass = _version_classes_of(data)
        side.n_vclasses = len(member)
        side.vclass_has = <const uint8_t*>self._ptr(has[member], np.uint8)
        side.vclass_major = <const int64_t*>self._ptr(major[member], np.int64)
        side.vclass_minor = <const int64_t*>self._ptr(minor[member], np.int64)
        versioned = member[has[member]]  # a class of each version: the same majors and minors as all
        scale = VersionScale(major[versioned], minor[versioned], np.asarray(data.patch)[has])
        side.scale_majors = <const int64_t*>self._ptr(scale.majors, np.int64)
        side.n_scale_majors = len(scale.majors)
        side.scale_minors = <const int64_t*>self._ptr(scale.minors, np.int64)
        side.n_scale_minors = len(scale.minors)
        side.major_shift = scale.major_shift
        side.minor_shift = scale.minor_shift
        patch_rank = np.where(has, np.searchsorted(scale.patches, data.patch), 0)
        side.patch = <const int64_t*>self._ptr(patch_rank, np.int64)
        low = data.newest_rank if self.kernel.prefer_newest else patch_rank
        # Exact keys, ranks and codes count distinct things of one fleet: each fits in 31 bits.
        facts = np.empty((len(has), 4), dtype=np.int32)
        facts[:, 0] = data.exact_key
        facts[:, 1] = np.where(has, low, 0)
        facts[:, 2] = vclass
        facts[:, 3] = data.codes[self.kernel.type_row] if self.kernel.type_row >= 0 else 0
        side.score_facts = <const ScoreFacts*>self._ptr(facts, np.int32)

    @property
    def tile512(self):
        """Whether tiles go through the AVX-512 pass (tile512.h)."""
        return bool(self.kernel.tile512)

    @property
    def shape(self):
        return (self.kernel.src.n, self.kernel.tgt.n)

    def prepare(self, int workers):
        """Match every COMPATIBLE record against the other side's classes, once per problem."""
        self._target_matches = self._match_records(&self.kernel.tgt.records, &self.kernel.src, workers)
        self._source_matches = self._match_records(&self.kernel.src.records, &self.kernel.tgt, workers)

    cdef _match_records(self, const Records* records, const Side* side, int workers):
        out = np.zeros((side.n, records.n), dtype=np.uint8)
        cdef uint8_t[:, ::1] view = out
        if side.n == 0 or records.n == 0:
            return out
        workers = max(workers, 1)
        scratch = np.empty(match_scratch_bytes(side, workers), dtype=np.uint8)
        cdef uint8_t[::1] scratch_view = scratch
        with nogil:
            if self.lane_bytes == 2:
                match_records(records, side, &view[0, 0], &scratch_view[0], workers, <uint16_t*>NULL)
            elif self.lane_bytes == 4:
                match_records(records, side, &view[0, 0], &scratch_view[0], workers, <uint32_t*>NULL)
            else:
                match_records(records, side, &view[0, 0], &scratch_view[0], workers, <uint64_t*>NULL)
        return out

    def evaluate(self, int64_t i0, int64_t i1, int64_t[:, ::1] outcomes, int workers):
        """Fill ``outcomes`` for source classes i0..i1 against all target classes: a pair's
        score when it is compatible, otherwise its reason mask with the sign bit set."""
        if i1 <= i0 or self.kernel.tgt.n == 0:
            return
        if outcomes.shape[0] < i1 - i0 or outcomes.shape[1] != self.kernel.tgt.n:
            raise ValueError("the output block does not match the problem's shape")
        tm, sm = self._matches(workers)
        # Per call, not per problem: callers may evaluate one problem from several threads.
        scratch = np.empty(max(workers, 1) * scratch_words(&self.kernel), dtype=np.uint64)
        cdef uint64_t[::1] scratch_view = scratch
        cdef const uint8_t* tm_ptr = _at8(tm)
        cdef const uint8_t* sm_ptr = _at8(sm)
        cdef uint64_t* scratch_ptr = &scratch_view[0]
        cdef int64_t* out = &outcomes[0, 0]
        with nogil:
            if self.lane_bytes == 2:
                evaluate_rows(&self.kernel, i0, i1, scratch_ptr, out, tm_ptr, sm_ptr, workers, <uint16_t*>NULL)
            elif self.lane_bytes == 4:
                evaluate_rows(&self.kernel, i0, i1, scratch_ptr, out, tm_ptr, sm_ptr, workers, <uint32_t*>NULL)
            else:
                evaluate_rows(&self.kernel, i0, i1, scratch_ptr, out, tm_ptr, sm_ptr, workers, <uint64_t*>NULL)

    def _matches(self, int workers):
        """The record matches of both sides, flattened (``prepare`` once)."""
        if self._target_matches is None:
            self.prepare(workers)
        return self._target_matches.reshape(-1), self._source_matches.reshape(-1)

    # -- reductions fused into the row loop (reductions.pxi) --------------------------------
    def top_k(
        self, int64_t i0, int64_t i1, DeviceView devices, int64_t k, const int64_t[::1] depth,
        int64_t[:, ::1] indices, int64_t[:, ::1] scores, int workers, bint in_runs=False,
    ):
        """Rows of ``indices``/``scores`` for the devices of source classes i0..i1: their k best
        available targets, best first (score, then target order), -1 past the last. Each
        device's row is its index; ``in_runs``: the first rows, one per device of the classes,
        in the view's source order (a run of sources in arrays sized for it)."""
        cdef Reduction reduction
        cdef int64_t rows
        reduction.kind = REDUCE_TOP_K
        reduction.k = k
        reduction.row_base = -1
        if in_runs and i1 > i0:
            reduction.row_base = devices.arrays.source_start[i0]
            rows = devices.arrays.source_start[i1] - reduction.row_base
            if indices.shape[0] < rows or scores.shape[0] < rows:
                raise ValueError(f"top_k: {rows} devices in classes {i0} to {i1}, for {indices.shape[0]} rows")
        reduction.depth = _at64(depth)
        reduction.indices = &indices[0, 0] if indices.shape[0] * k else NULL
        reduction.values = &scores[0, 0] if scores.shape[0] * k else NULL
        cdef int64_t c, max_depth = 0
        for c in range(i0, i1):  # a typed loop: Python's max over a memoryview boxes every value
            max_depth = max(max_depth, depth[c])
        self._reduce(i0, i1, devices, &reduction, 2 * max_depth, True, workers)

    def counts(
        self, int64_t i0, int64_t i1, DeviceView devices, const uint8_t[::1] counted,
        const int64_t[::1] counted_per_class, int64_t[::1] out, int workers,
    ):
        """``out[d]`` for the devices d of source classes i0..i1: their compatible targets among ``counted``."""
        cdef Reduction reduction
        reduction.kind = REDUCE_COUNTS
        reduction.counted = _at8(counted)
        reduction.counted_per_class = _at64(counted_per_class)
        reduction.values = _mut64(out)
        self._reduce(i0, i1, devices, &reduction, 0, True, workers)

    def sparse(
        self, int64_t i0, int64_t i1, DeviceView devices, const int64_t[::1] indptr,
        int64_t[::1] columns, int64_t[::1] data, int workers,
    ):
        """The CSR rows (``indptr`` already counted) of the devices of source classes i0..i1."""
        cdef Reduction reduction
        reduction.kind = REDUCE_SPARSE
        reduction.indptr = _at64(indptr)
        reduction.indices = _mut64(columns)
        reduction.values = _mut64(data)
        self._reduce(i0, i1, devices, &reduction, (devices.arrays.n_targets + 63) >> 6, True, workers)

    def dense(self, int64_t i0, int64_t i1, DeviceView devices, str what, out, int workers):
        """Rows of a dense (n, m) output for the devices of source classes i0..i1: ``compatible``
        (uint8), ``scores`` (int64, -1 where incompatible) or ``reasons`` (SPEC's masks)."""
        cdef Reduction reduction
        cdef uint8_t[:, ::1] flags
        cdef int64_t[:, ::1] values
        reduction.kind = {"compatible": REDUCE_COMPATIBLE, "scores": REDUCE_SCORES, "reasons": REDUCE_REASONS}[what]
        reduction.flags = NULL
        reduction.values = NULL
        if out.size == 0:
            return
        if reduction.kind == REDUCE_COMPATIBLE:
            flags = out
            reduction.flags = &flags[0, 0]
        else:
            values = out.view(np.int64)
            reduction.values = &values[0, 0]
        # Blocked rows leave out incompatible pairs, whose reasons the reasons output needs.
        self._reduce(i0, i1, devices, &reduction, 0, reduction.kind != REDUCE_REASONS, workers)

    cdef _reduce(
        self, int64_t i0, int64_t i1, DeviceView devices, const Reduction* reduction, int64_t reduce_words, bint blocked, int workers
    ):
        if i1 <= i0 or self.kernel.tgt.n == 0:
            return
        tm, sm = self._matches(workers)
        workers = max(workers, 1)
        cdef int64_t row_stride = (self.kernel.tgt.n + 7) // 8 * 8  # rows on cache lines
        # Buffers outlive the call: fresh ones cost a page fault per page first written, and with
        # a million target classes a thread's row is 8 MB. Taken from and given back to a pool,
        # so that callers on other threads never share one.
        buffers = self._buffers.pop() if self._buffers else None
        if buffers is None or buffers[0] != workers or buffers[1] < reduce_words:
            extra_words = max(reduce_words, 1)
            buffers = (
                workers,
                extra_words,
                np.empty(workers * scratch_words(&self.kernel), dtype=np.uint64),
                aligned_empty(workers * row_stride, np.int64),
                np.zeros(workers * extra_words, dtype=np.int64),  # sparse rows' bits start clear, and are left so
            )
        _, extra_words, scratch, rows, extra = buffers
        reduce_words = extra_words
        if reduction.kind == REDUCE_SPARSE:
            extra.fill(0)  # another reduction may have used it
        cdef uint64_t[::1] scratch_view = scratch
        cdef int64_t[::1] rows_view = rows
        cdef int64_t[::1] extra_view = extra
        cdef const uint8_t* tm_ptr = _at8(tm)
        cdef const uint8_t* sm_ptr = _at8(sm)
        cdef uint64_t* scratch_ptr = &scratch_view[0]
        cdef int64_t* rows_ptr = &rows_view[0]
        cdef int64_t* extra_ptr = &extra_view[0]
        cdef const Devices* arrays = &devices.arrays
        with nogil:
            if self.lane_bytes == 2:
                evaluate_and_reduce(
                    &self.kernel, i0, i1, scratch_ptr, rows_ptr, row_stride, extra_ptr, reduce_words, tm_ptr, sm_ptr, arrays, reduction,
                    blocked, workers, <uint16_t*>NULL,
                )
            elif self.lane_bytes == 4:
                evaluate_and_reduce(
                    &self.kernel, i0, i1, scratch_ptr, rows_ptr, row_stride, extra_ptr, reduce_words, tm_ptr, sm_ptr, arrays, reduction,
                    blocked, workers, <uint32_t*>NULL,
                )
            else:
                evaluate_and_reduce(
                    &self.kernel, i0, i1, scratch_ptr, rows_ptr, row_stride, extra_ptr, reduce_words, tm_ptr, sm_ptr, arrays, reduction,
                    blocked, workers, <uint64_t*>NULL,
                )
        self._buffers.append(buffers)


cdef inline const uint8_t* _at8(const uint8_t[::1] values) noexcept:
    return &values[0] if values.shape[0] else NULL


cdef inline int64_t* _mut64(int64_t[::1] values) noexcept:
    return &values[0] if values.shape[0] else NULL


# -- one-device requests against prepared targets (fastmatch.index) ---------------------------
cdef enum:
    WORDS_PER_LINE = CACHE_LINE // 8


cdef inline int64_t whole_lines(int64_t words) noexcept nogil:
    """``words`` rounded up to whole cache lines, in words."""
    return (words + WORDS_PER_LINE - 1) // WORDS_PER_LINE * WORDS_PER_LINE


cdef struct RequestSide:  # what RequestTargets holds for its rankings: read without the GIL
    Devices arrays
    const int64_t* available_on_host
    int64_t n_host_codes
    const uint8_t* available
    int64_t available_count


cdef class RequestTargets:
    """What a one-device request reads of a TargetIndex's targets besides the problem of the
    device's descriptor: the targets' device arrays (``DeviceView``), the available targets on
    each host and each target's availability.

    ``top_k`` answers a request in one call whose work runs without the GIL: the device's row of
    outcomes, its bounded heap of candidates, its exclusions and its k best targets. Its buffers
    are the calling thread's own, taken from and given back to the C allocator without the GIL
    (a thread's arena hands the same memory back from call to call: no page faults, no lock
    shared with the other callers). ``fastmatch._request`` calls the same steps in C
    (``prepare_ranking`` once a descriptor, ``answer_of`` with the GIL, ``rank`` without)."""

    cdef RequestSide side
    cdef tuple keep

    def __init__(self, DeviceView targets, available_on_host, available):
        on_host = np.ascontiguousarray(available_on_host, dtype=np.int64)
        flags = np.ascontiguousarray(available, dtype=np.uint8)
        if len(flags) != targets.arrays.n_targets:
            raise ValueError("one availability flag a target device")
        self.side.arrays = targets.arrays
        self.side.available_on_host = <const int64_t*>address(on_host)
        self.side.n_host_codes = len(on_host)
        self.side.available = <const uint8_t*>address(flags)
        self.side.available_count = int(np.count_nonzero(flags))
        self.keep = (targets, on_host, flags)

    def top_k(self, Problem problem, int64_t host, int64_t twin, int64_t k):
        """``(indices, scores)``, int64 (1, k): the k best available targets of a source device,
        best first (score, then target order), -1 past the last, as ``Problem.top_k`` ranks
        them. ``problem``: of the device's descriptor, one source class (None: no target can
        take it); ``host``: the code of its host among the targets' (0: none, -1: no target's);
        ``twin``: the target with its id, or -1."""
        cdef Ranking ranking
        prepare_ranking(self, problem, &ranking)
        answer = answer_of(&ranking, max(k, 0))
        ranking.host = host
        ranking.twin = twin
        cdef int ranked
        if ranking.kernel != NULL:
            with nogil:
                ranked = rank(&ranking)
            if ranked != 0:
                raise MemoryError()
        return answer


cdef int prepare_ranking(object targets, object problem, Ranking* ranking) except -1:
    """What a ranking reads of ``targets`` (a RequestTargets) and ``problem`` (None: no target
    can take the device's descriptor), the same for every device of that descriptor; the caller
    holds both while it ranks."""
    cdef RequestTargets side = <RequestTargets?>targets
    ranking.side = &side.side
    ranking.kernel = NULL
    if problem is None:
        return 0
    cdef Problem kept = <Problem?>problem
    if kept.kernel.src.n != 1 or kept.kernel.tgt.n != side.side.arrays.n_classes:
        raise ValueError("a problem of one source class against these targets")
    if kept._target_matches is None:
        raise ValueError("a problem whose records are matched (Problem.prepare)")
    ranking.kernel = &kept.kernel
    ranking.target_matches = <const uint8_t*>address(kept._target_matches)
    ranking.source_matches = <const uint8_t*>address(kept._source_matches)
    ranking.lane_bytes = kept.lane_bytes
    return 0


cdef tuple answer_of(Ranking* ranking, int64_t k):
    """``(indices, scores)``, (1, k) each, that ``rank`` fills once the ranking's ``host`` and
    ``twin`` are set; filled now when no target can take the descriptor (``kernel`` NULL)."""
    cdef cnp.npy_intp shape[2]
    shape[0] = 1
    shape[1] = k
    cdef cnp.ndarray indices = cnp.PyArray_EMPTY(2, shape, cnp.NPY_INT64, 0)
    cdef cnp.ndarray scores = cnp.PyArray_EMPTY(2, shape, cnp.NPY_INT64, 0)
    ranking.k = k
    ranking.indices = <int64_t*>address(indices)
    ranking.scores = <int64_t*>address(scores)
    cdef int64_t c
    if ranking.kernel == NULL:
        for c in range(k):
            ranking.indices[c] = -1
            ranking.scores[c] = -1
    return indices, scores


cdef int rank(Ranking* ranking) noexcept nogil:
    """Fills a ranking's answer (``ranking_of``): -1 when its buffers cannot be had, else 0.
    The caller holds the problem and the targets."""
    cdef const RequestSide* side = <const RequestSide*>ranking.side
    cdef const Kernel* kernel = <const Kernel*>ranking.kernel
    cdef Devices arrays = side.arrays
    # The candidates to rank so that k are left after the device's own exclusions (the available
    # targets on its host, and itself): as DeviceRules.top_k_depth.
    cdef int64_t depth = ranking.k
    if arrays.exclude_same_host and 0 < ranking.host < side.n_host_codes:
        depth += side.available_on_host[ranking.host]
    if 0 <= ranking.twin < arrays.n_targets and side.available[ranking.twin]:
        depth += 1
    depth = min(depth, side.available_count)
    cdef int64_t scratch_size = whole_lines(scratch_words(kernel))
    cdef int64_t row_size = whole_lines(arrays.n_classes)
    cdef void* buffers = NULL
    if posix_memalign(&buffers, CACHE_LINE, (scratch_size + row_size + 2 * depth + 1) * 8) != 0:
        return -1
    cdef uint64_t* scratch = <uint64_t*>buffers
    cdef int64_t* row = <int64_t*>buffers + scratch_size
    cdef int64_t whole[2]
    whole[0] = 0
    whole[1] = arrays.n_classes
    cdef const int64_t* ranges = row_ranges(kernel, 0, True, whole)
    cdef int64_t n_ranges = row_range_count(kernel, 0, True)
    cdef int64_t source_order[1]
    cdef int64_t source_start[2]
    source_order[0] = 0
    source_start[0] = 0
    source_start[1] = 1
    arrays.source_order = source_order
    arrays.source_start = source_start
    arrays.source_host = &ranking.host
    arrays.source_twin = &ranking.twin
    cdef Reduction reduction
    reduction.kind = REDUCE_TOP_K
    reduction.k = ranking.k
    reduction.row_base = -1
    reduction.depth = &depth
    reduction.indices = ranking.indices
    reduction.values = ranking.scores
    if ranking.lane_bytes == 2:
        evaluate_one(kernel, 0, scratch, row, ranking.target_matches, ranking.source_matches, ranges, n_ranges, <uint16_t*>NULL)
    elif ranking.lane_bytes == 4:
        evaluate_one(kernel, 0, scratch, row, ranking.target_matches, ranking.source_matches, ranges, n_ranges, <uint32_t*>NULL)
    else:
        evaluate_one(kernel, 0, scratch, row, ranking.target_matches, ranking.source_matches, ranges, n_ranges, <uint64_t*>NULL)
    top_k_row(&arrays, &reduction, 0, row, ranges, n_ranges, row + row_size)
    free(buffers)
    return 0
