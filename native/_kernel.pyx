# cython: language_level=3
"""The native kernel: typed loops over raw pointers, GIL released.

It knows nothing of files, policies or records as Python objects: it reads the
integer-coded, field-major arrays that ``fastmatch.intern`` builds and writes,
for a block of source classes x all target classes, the reason mask and the
score of every pair. See ``fastmatch/intern.py`` for what each array means.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

import numpy as np

# Keep in step with fastmatch/intern.py and fastmatch/reasons.py.
cdef enum:
    OP_EXACT = 0
    OP_VERSION = 1
    OP_SUPERSET = 2
    OP_GE = 3
    OP_LE = 4
    TEST_IN_CODES = 0
    TEST_SUBSET = 1
    OPAQUE_IF_PRESENT = 0
    OPAQUE_REQUIRED = 1

cdef uint64_t NOT_MIGRATABLE = 1ULL << 61
cdef uint64_t OPAQUE = 1ULL << 60
cdef uint64_t NO_RECORD = 1ULL << 59
cdef int64_t SCORE_EXACT = 1LL << 62
cdef int64_t SCORE_SAME_TYPE = 1LL << 61
cdef int64_t SCORE_HAS_VERSION = 1LL << 60
cdef int64_t FIELD_CAP = (1LL << 20) - 1


cdef struct Records:
    int64_t n
    const uint64_t* cmask
    const int64_t* common_begin
    const int64_t* common_end
    const int64_t* alt_start
    const int64_t* alt_begin
    const int64_t* alt_end
    const int32_t* test_attr
    const int32_t* test_kind
    const int64_t* test_start
    const int64_t* test_len
    const int32_t* code_pool
    const uint64_t* mask_pool


cdef struct Side:
    int64_t n  # classes: the row stride of every field-major array
    const int32_t* codes
    const int64_t* vmajor
    const int64_t* vminor
    const uint64_t* masks
    const uint8_t* migratable
    const int32_t* opaque
    const int64_t* exact_key
    const uint64_t* cany  # attributes its records constrain; all ones when its records do not count
    const int64_t* rec_start
    const int32_t* rec_ids
    const uint8_t* has_version
    const int64_t* major
    const int64_t* minor
    const int64_t* patch
    const int64_t* newest_rank


cdef inline bint run_test(const Records* R, const Side* S, int64_t t, int64_t c) noexcept nogil:
    cdef int64_t k
    cdef int64_t start = R.test_start[t]
    cdef int64_t length = R.test_len[t]
    cdef int64_t row = R.test_attr[t]
    cdef int32_t code
    if R.test_kind[t] == TEST_IN_CODES:
        code = S.codes[row * S.n + c]
        for k in range(length):
            if R.code_pool[start + k] == code:
                return True
        return False
    for k in range(length):
        if S.masks[(row + k) * S.n + c] & ~R.mask_pool[start + k]:
            return False
    return True


cdef inline bint record_matches(const Records* R, const Side* S, int64_t r, int64_t c) noexcept nogil:
    cdef int64_t t, alt
    cdef bint ok
    for t in range(R.common_begin[r], R.common_end[r]):
        if not run_test(R, S, t, c):
            return False
    for alt in range(R.alt_start[r], R.alt_start[r + 1]):
        ok = True
        for t in range(R.alt_begin[alt], R.alt_end[alt]):
            if not run_test(R, S, t, c):
                ok = False
                break
        if ok:
            return True
    return False


cdef inline bint records_accept(
    const Records* R, const Side* holder, int64_t h, const uint8_t* matched_row, uint64_t crec, bint records_and
) noexcept nogil:
    """Whether some record of class ``h`` accepts the other side (its match bits in ``matched_row``)."""
    cdef int64_t k, r
    if records_and and crec != 0:
        return False
    for k in range(holder.rec_start[h], holder.rec_start[h + 1]):
        r = holder.rec_ids[k]
        if matched_row[r] and (records_and or (crec & ~R.cmask[r]) == 0):
            return True
    return False


cdef class Problem:
    """The interned arrays of one match, held alive while pointers into them are used."""

    cdef Side src, tgt
    cdef Records src_rec, tgt_rec
    cdef int64_t n_ops
    cdef const int32_t* op_kind
    cdef const int32_t* op_attr
    cdef const int32_t* op_aux
    cdef const int32_t* op_words
    cdef const uint64_t* op_rbit
    cdef const uint64_t* op_cbit
    cdef int type_attr
    cdef bint use_target_records, use_source_records, records_and, prefer_newest
    cdef int opaque_mode
    cdef const uint8_t* opaque_table
    cdef int64_t opaque_n
    cdef list _keep

    def __init__(self, interned, source_cany, target_cany):
        policy = interned.policy
        self._keep = []
        self._side(&self.src, interned.sources, source_cany)
        self._side(&self.tgt, interned.targets, target_cany)
        self._records(&self.src_rec, interned.sources.records)
        self._records(&self.tgt_rec, interned.targets.records)
        self.n_ops = len(interned.op_kind)
        self.op_kind = self._i32(interned.op_kind)
        self.op_attr = self._i32(interned.op_attr)
        self.op_aux = self._i32(interned.op_aux)
        self.op_words = self._i32(interned.op_words)
        self.op_rbit = self._u64(interned.op_rbit)
        self.op_cbit = self._u64(interned.op_cbit)
        self.type_attr = interned.type_attr
        self.use_target_records = policy.direction in ("target-accepts", "both")
        self.use_source_records = policy.direction in ("source-offers", "both")
        self.records_and = policy.records == "and"
        self.prefer_newest = policy.prefer == "newest"
        self.opaque_mode = {"if-present": 0, "required": 1, "ignore": 2}[policy.opaque]
        if interned.opaque_table is None:
            self.opaque_table = NULL
            self.opaque_n = 0
        else:
            self.opaque_table = self._u8(interned.opaque_table)
            self.opaque_n = interned.opaque_table.shape[0]

    # -- holding arrays ---------------------------------------------------------------
    cdef const int32_t* _i32(self, array) except NULL:
        cdef const int32_t[::1] view = self._flat(array, np.int32)
        return &view[0]

    cdef const int64_t* _i64(self, array) except NULL:
        cdef const int64_t[::1] view = self._flat(array, np.int64)
        return &view[0]

    cdef const uint64_t* _u64(self, array) except NULL:
        cdef const uint64_t[::1] view = self._flat(array, np.uint64)
        return &view[0]

    cdef const uint8_t* _u8(self, array) except NULL:
        cdef const uint8_t[::1] view = self._flat(array, np.uint8)
        return &view[0]

    cdef _flat(self, array, dtype):
        # One spare element, so that empty arrays still have an address.
        flat = np.ascontiguousarray(array, dtype=dtype).reshape(-1)
        flat = np.concatenate([flat, np.zeros(1, dtype=dtype)])
        self._keep.append(flat)
        return flat

    cdef _side(self, Side* side, data, cany):
        side.n = data.codes.shape[1]
        side.codes = self._i32(data.codes)
        side.vmajor = self._i64(data.vmajor)
        side.vminor = self._i64(data.vminor)
        side.masks = self._u64(data.masks)
        side.migratable = self._u8(data.migratable)
        side.opaque = self._i32(data.opaque)
        side.exact_key = self._i64(data.exact_key)
        side.cany = self._u64(cany)
        side.rec_start = self._i64(data.rec_start)
        side.rec_ids = self._i32(data.rec_ids)
        side.has_version = self._u8(data.has_version)
        side.major = self._i64(data.major)
        side.minor = self._i64(data.minor)
        side.patch = self._i64(data.patch)
        side.newest_rank = self._i64(data.newest_rank)

    cdef _records(self, Records* rec, tables):
        rec.n = len(tables.cmask)
        rec.cmask = self._u64(tables.cmask)
        rec.common_begin = self._i64(tables.common_begin)
        rec.common_end = self._i64(tables.common_end)
        rec.alt_start = self._i64(tables.alt_start)
        rec.alt_begin = self._i64(tables.alt_begin)
        rec.alt_end = self._i64(tables.alt_end)
        rec.test_attr = self._i32(tables.test_attr)
        rec.test_kind = self._i32(tables.test_kind)
        rec.test_start = self._i64(tables.test_start)
        rec.test_len = self._i64(tables.test_len)
        rec.code_pool = self._i32(tables.code_pool)
        rec.mask_pool = self._u64(tables.mask_pool)

    # -- record matching --------------------------------------------------------------
    def match_target_records(self, int workers):
        """uint8 [source classes, target records]: which source classes each target record accepts."""
        return self._match(&self.tgt_rec, &self.src, workers)

    def match_source_records(self, int workers):
        """uint8 [target classes, source records]: which target classes each source record accepts."""
        return self._match(&self.src_rec, &self.tgt, workers)

    cdef _match(self, const Records* R, const Side* S, int workers):
        out = np.zeros((S.n, R.n), dtype=np.uint8)
        cdef uint8_t[:, ::1] view = out
        cdef int64_t c, r, n_rec = R.n
        if S.n == 0 or n_rec == 0:
            return out
        for c in prange(S.n, nogil=True, num_threads=workers, schedule="dynamic"):
            for r in range(n_rec):
                view[c, r] = record_matches(R, S, r, c)
        return out

    # -- the pairs --------------------------------------------------------------------
    def evaluate(
        self,
        int64_t i0,
        int64_t i1,
        const uint8_t[:, ::1] target_record_matches,
        const uint8_t[:, ::1] source_record_matches,
        int64_t[:, ::1] scores,
        uint64_t[:, ::1] reasons,
        int workers,
    ):
        """Fill ``scores`` and ``reasons`` (rows i0..i1 of source classes, all target classes)."""
        cdef int64_t n_t = self.tgt.n
        if i1 <= i0 or n_t == 0:
            return
        scratch = np.zeros((max(workers, 1), n_t), dtype=np.uint64)
        cdef uint64_t[:, ::1] crec_rows = scratch
        cdef int64_t i
        cdef int tid
        with nogil, parallel(num_threads=workers):
            tid = threadid()
            for i in prange(i0, i1, schedule="dynamic"):
                self._row(
                    i,
                    &reasons[i - i0, 0],
                    &scores[i - i0, 0],
                    &crec_rows[tid, 0],
                    &target_record_matches[i, 0] if target_record_matches.shape[1] > 0 else NULL,
                    &source_record_matches[0, 0] if source_record_matches.shape[1] > 0 else NULL,
                    source_record_matches.shape[1],
                )

    cdef void _row(
        self,
        int64_t i,
        uint64_t* reason,
        int64_t* score,
        uint64_t* crec,
        const uint8_t* target_matches,
        const uint8_t* source_matches,
        int64_t n_source_records,
    ) noexcept nogil:
        cdef const Side* s = &self.src
        cdef const Side* t = &self.tgt
        cdef int64_t n_t = t.n, n_s = s.n, j, k, w, a
        cdef uint64_t r, fail, cb, rb, cbs, sc_any, smask
        cdef int32_t scode, sop, top
        cdef const int32_t* tcodes
        cdef const uint64_t* tmask
        cdef const uint64_t* tcany = t.cany
        cdef int64_t smaj, smin
        cdef bint opaque_ok
        cdef uint8_t smig = s.migratable[i]

        # Pair facts that do not depend on attributes.
        sop = s.opaque[i]
        for j in range(n_t):
            r = 0
            if not (smig and t.migratable[j]):
                r = NOT_MIGRATABLE
            if self.opaque_mode != 2:
                top = t.opaque[j]
                if sop == 0 or top == 0:
                    opaque_ok = self.opaque_mode == OPAQUE_IF_PRESENT and sop == 0 and top == 0
                elif self.opaque_table != NULL:
                    opaque_ok = self.opaque_table[sop * self.opaque_n + top] != 0
                else:
                    opaque_ok = sop == top
                if not opaque_ok:
                    r = r | OPAQUE
            reason[j] = r
            crec[j] = 0

        # The rule of every attribute, one attribute at a time over all targets.
        sc_any = s.cany[i]
        for k in range(self.n_ops):
            a = self.op_attr[k]
            cb = self.op_cbit[k]
            rb = self.op_rbit[k]
            cbs = cb & sc_any
            scode = s.codes[a * n_s + i]
            tcodes = t.codes + a * n_t
            if self.op_kind[k] == OP_EXACT:
                for j in range(n_t):
                    fail = 0ULL - <uint64_t>(tcodes[j] != scode)
                    crec[j] |= fail & cb
                    reason[j] |= fail & rb & (0ULL - <uint64_t>((cbs & tcany[j]) == 0))
            elif self.op_kind[k] == OP_VERSION:
                smaj = s.vmajor[self.op_aux[k] * n_s + i]
                smin = s.vminor[self.op_aux[k] * n_s + i]
                for j in range(n_t):
                    if scode == 0:
                        fail = 0ULL - <uint64_t>(tcodes[j] != 0)
                    else:
                        fail = 0ULL - <uint64_t>(
                            tcodes[j] == 0
                            or t.vmajor[self.op_aux[k] * n_t + j] != smaj
                            or t.vminor[self.op_aux[k] * n_t + j] < smin
                        )
                    crec[j] |= fail & cb
                    reason[j] |= fail & rb & (0ULL - <uint64_t>((cbs & tcany[j]) == 0))
            elif self.op_kind[k] == OP_SUPERSET:
                for w in range(self.op_words[k]):
                    smask = s.masks[(self.op_aux[k] + w) * n_s + i]
                    if smask == 0:
                        continue
                    tmask = t.masks + (self.op_aux[k] + w) * n_t
                    for j in range(n_t):
                        fail = 0ULL - <uint64_t>((smask & ~tmask[j]) != 0)
                        crec[j] |= fail & cb
                        reason[j] |= fail & rb & (0ULL - <uint64_t>((cbs & tcany[j]) == 0))
            else:  # OP_GE / OP_LE on order-preserving codes; 0 is absent
                for j in range(n_t):
                    if scode == 0:
                        fail = 0ULL - <uint64_t>(tcodes[j] != 0)
                    elif self.op_kind[k] == OP_GE:
                        fail = 0ULL - <uint64_t>(tcodes[j] < scode)
                    else:
                        fail = 0ULL - <uint64_t>(tcodes[j] == 0 or tcodes[j] > scode)
                    crec[j] |= fail & cb
                    reason[j] |= fail & rb & (0ULL - <uint64_t>((cbs & tcany[j]) == 0))

        # COMPATIBLE records, then the score of what passed.
        for j in range(n_t):
            r = reason[j]
            if self.use_target_records and t.rec_start[j + 1] > t.rec_start[j]:
                if not records_accept(&self.tgt_rec, t, j, target_matches, crec[j], self.records_and):
                    r = r | NO_RECORD
            if self.use_source_records and s.rec_start[i + 1] > s.rec_start[i]:
                if not records_accept(
                    &self.src_rec, s, i, source_matches + j * n_source_records, crec[j], self.records_and
                ):
                    r = r | NO_RECORD
            reason[j] = r
            score[j] = -1 if r != 0 else self._score(i, j)

    cdef inline int64_t _score(self, int64_t i, int64_t j) noexcept nogil:
        cdef const Side* s = &self.src
        cdef const Side* t = &self.tgt
        cdef int64_t value = 0, d_major, d_minor
        if s.exact_key[i] == t.exact_key[j]:
            value |= SCORE_EXACT
        if self.type_attr >= 0 and s.codes[self.type_attr * s.n + i] == t.codes[self.type_attr * t.n + j]:
            value |= SCORE_SAME_TYPE
        if s.has_version[i] and t.has_version[j]:
            if self.prefer_newest:
                value |= SCORE_HAS_VERSION | t.newest_rank[j]
            else:
                d_major = t.major[j] - s.major[i]
                d_minor = t.minor[j] - s.minor[i]
                d_major = min(-d_major if d_major < 0 else d_major, FIELD_CAP)
                d_minor = min(-d_minor if d_minor < 0 else d_minor, FIELD_CAP)
                value |= SCORE_HAS_VERSION | (FIELD_CAP - d_major) << 40 | (FIELD_CAP - d_minor) << 20 | t.patch[j]
        return value
