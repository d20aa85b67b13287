# The vector loops of native/loops.h, and fused wrappers that pick the lane width.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

ctypedef fused lane_t:
    uint16_t
    uint32_t
    uint64_t


cdef extern from "loops.h" nogil:
    enum:
        FM_NO_RECORDS
        FM_NONE_MATCH
        FM_ONE_MATCH
        FM_MANY_MATCH
    void fm_fail_ne_u16(uint16_t* fails, const uint16_t* t, int64_t n, uint16_t s, uint16_t bit)
    void fm_fail_ne4_u16(uint16_t* fails, const uint16_t* t0, const uint16_t* t1, const uint16_t* t2, const uint16_t* t3, int64_t n, const uint16_t* s, const uint16_t* bit, int init)
    void fm_fail_ne2_u16(uint16_t* fails, const uint16_t* t0, const uint16_t* t1, int64_t n, const uint16_t* s, const uint16_t* bit, int init)
    void fm_fail_eq_u16(uint16_t* fails, const uint16_t* t, int64_t n, uint16_t s, uint16_t bit)
    void fm_fail_lt_u16(uint16_t* fails, const uint16_t* t, int64_t n, uint16_t s, uint16_t bit)
    void fm_fail_absent_or_gt_u16(uint16_t* fails, const uint16_t* t, int64_t n, uint16_t s, uint16_t bit)
    void fm_fail_version_u16(uint16_t* fails, const uint16_t* major, const uint16_t* minor, int64_t n, uint16_t s_major, uint16_t s_minor, uint16_t bit)
    void fm_fail_not_subset_u16(uint16_t* fails, const uint16_t* t, int64_t n, uint16_t s, uint16_t bit)
    uint8_t fm_outcomes_u16(const uint16_t* fails, const uint16_t* t_constrained, const uint16_t* state, int64_t n, uint16_t always, uint16_t s_constrained, uint16_t attribute_bits, int64_t* outcome, uint8_t* to_finish)
    uint8_t fm_outcomes_matched_u16(const uint16_t* fails, const uint16_t* t_constrained, int64_t n, uint16_t always, uint16_t s_constrained, uint16_t attribute_bits, uint16_t outside_of, uint16_t many, uint16_t accept, int64_t* outcome, uint8_t* to_finish)
    void fm_fill_u16(uint16_t* out, int64_t n, uint16_t value)
    void fm_fail_ne_u32(uint32_t* fails, const uint32_t* t, int64_t n, uint32_t s, uint32_t bit)
    void fm_fail_ne4_u32(uint32_t* fails, const uint32_t* t0, const uint32_t* t1, const uint32_t* t2, const uint32_t* t3, int64_t n, const uint32_t* s, const uint32_t* bit, int init)
    void fm_fail_ne2_u32(uint32_t* fails, const uint32_t* t0, const uint32_t* t1, int64_t n, const uint32_t* s, const uint32_t* bit, int init)
    void fm_fail_eq_u32(uint32_t* fails, const uint32_t* t, int64_t n, uint32_t s, uint32_t bit)
    void fm_fail_lt_u32(uint32_t* fails, const uint32_t* t, int64_t n, uint32_t s, uint32_t bit)
    void fm_fail_absent_or_gt_u32(uint32_t* fails, const uint32_t* t, int64_t n, uint32_t s, uint32_t bit)
    void fm_fail_version_u32(uint32_t* fails, const uint32_t* major, const uint32_t* minor, int64_t n, uint32_t s_major, uint32_t s_minor, uint32_t bit)
    void fm_fail_not_subset_u32(uint32_t* fails, const uint32_t* t, int64_t n, uint32_t s, uint32_t bit)
    uint8_t fm_outcomes_u32(const uint32_t* fails, const uint32_t* t_constrained, const uint32_t* state, int64_t n, uint32_t always, uint32_t s_constrained, uint32_t attribute_bits, int64_t* outcome, uint8_t* to_finish)
    uint8_t fm_outcomes_matched_u32(const uint32_t* fails, const uint32_t* t_constrained, int64_t n, uint32_t always, uint32_t s_constrained, uint32_t attribute_bits, uint32_t outside_of, uint32_t many, uint32_t accept, int64_t* outcome, uint8_t* to_finish)
    void fm_fill_u32(uint32_t* out, int64_t n, uint32_t value)
    void fm_fail_ne_u64(uint64_t* fails, const uint64_t* t, int64_t n, uint64_t s, uint64_t bit)
    void fm_fail_ne4_u64(uint64_t* fails, const uint64_t* t0, const uint64_t* t1, const uint64_t* t2, const uint64_t* t3, int64_t n, const uint64_t* s, const uint64_t* bit, int init)
    void fm_fail_ne2_u64(uint64_t* fails, const uint64_t* t0, const uint64_t* t1, int64_t n, const uint64_t* s, const uint64_t* bit, int init)
    void fm_fail_eq_u64(uint64_t* fails, const uint64_t* t, int64_t n, uint64_t s, uint64_t bit)
    void fm_fail_lt_u64(uint64_t* fails, const uint64_t* t, int64_t n, uint64_t s, uint64_t bit)
    void fm_fail_absent_or_gt_u64(uint64_t* fails, const uint64_t* t, int64_t n, uint64_t s, uint64_t bit)
    void fm_fail_version_u64(uint64_t* fails, const uint64_t* major, const uint64_t* minor, int64_t n, uint64_t s_major, uint64_t s_minor, uint64_t bit)
    void fm_fail_not_subset_u64(uint64_t* fails, const uint64_t* t, int64_t n, uint64_t s, uint64_t bit)
    uint8_t fm_outcomes_u64(const uint64_t* fails, const uint64_t* t_constrained, const uint64_t* state, int64_t n, uint64_t always, uint64_t s_constrained, uint64_t attribute_bits, int64_t* outcome, uint8_t* to_finish)
    uint8_t fm_outcomes_matched_u64(const uint64_t* fails, const uint64_t* t_constrained, int64_t n, uint64_t always, uint64_t s_constrained, uint64_t attribute_bits, uint64_t outside_of, uint64_t many, uint64_t accept, int64_t* outcome, uint8_t* to_finish)
    void fm_fill_u64(uint64_t* out, int64_t n, uint64_t value)
    void fm_score_compatible(int64_t* outcome, const int32_t* facts, int64_t n, const int64_t* version_part, int64_t low_mask, int64_t exact_key, int64_t exact_bit, uint32_t type_code, int64_t type_bit)
    int64_t fm_at_least(const int64_t* row, int64_t n, int64_t floor, int32_t* at)


cdef extern from "tile512.h" nogil:
    enum:
        FM_RULE_NE
        FM_RULE_EQ
        FM_RULE_LT
        FM_RULE_ABSENT_OR_GT
        FM_RULE_VERSION
        FM_RULE_NOT_SUBSET
        FM_RULE_KINDS
    ctypedef struct FmRule16:
        const uint16_t* row
        const uint16_t* minor
        uint16_t value
        uint16_t source_minor
        uint16_t bit
    int fm_tile512_available()
    int fm_tile512(const FmRule16* rules, const int32_t* count, int64_t j0, int64_t n, uint16_t always, const uint16_t* t_constrained, uint16_t s_constrained, uint16_t attribute_bits, const uint16_t* state, int plain, uint16_t* fails, int keep_fails, int64_t* outcome, uint64_t* pending)


cdef inline void fail_ne(lane_t* fails, const lane_t* t, int64_t n, lane_t s, lane_t bit) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_ne_u16(fails, t, n, s, bit)
    elif lane_t is uint32_t:
        fm_fail_ne_u32(fails, t, n, s, bit)
    else:
        fm_fail_ne_u64(fails, t, n, s, bit)


cdef inline void fail_ne4(lane_t* fails, const lane_t** t, int64_t n, const lane_t* s, const lane_t* bit, bint init) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_ne4_u16(fails, t[0], t[1], t[2], t[3], n, s, bit, init)
    elif lane_t is uint32_t:
        fm_fail_ne4_u32(fails, t[0], t[1], t[2], t[3], n, s, bit, init)
    else:
        fm_fail_ne4_u64(fails, t[0], t[1], t[2], t[3], n, s, bit, init)


cdef inline void fail_ne2(lane_t* fails, const lane_t** t, int64_t n, const lane_t* s, const lane_t* bit, bint init) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_ne2_u16(fails, t[0], t[1], n, s, bit, init)
    elif lane_t is uint32_t:
        fm_fail_ne2_u32(fails, t[0], t[1], n, s, bit, init)
    else:
        fm_fail_ne2_u64(fails, t[0], t[1], n, s, bit, init)


cdef inline void fail_eq(lane_t* fails, const lane_t* t, int64_t n, lane_t s, lane_t bit) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_eq_u16(fails, t, n, s, bit)
    elif lane_t is uint32_t:
        fm_fail_eq_u32(fails, t, n, s, bit)
    else:
        fm_fail_eq_u64(fails, t, n, s, bit)


cdef inline void fail_lt(lane_t* fails, const lane_t* t, int64_t n, lane_t s, lane_t bit) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_lt_u16(fails, t, n, s, bit)
    elif lane_t is uint32_t:
        fm_fail_lt_u32(fails, t, n, s, bit)
    else:
        fm_fail_lt_u64(fails, t, n, s, bit)


cdef inline void fail_absent_or_gt(lane_t* fails, const lane_t* t, int64_t n, lane_t s, lane_t bit) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_absent_or_gt_u16(fails, t, n, s, bit)
    elif lane_t is uint32_t:
        fm_fail_absent_or_gt_u32(fails, t, n, s, bit)
    else:
        fm_fail_absent_or_gt_u64(fails, t, n, s, bit)


cdef inline void fail_version(lane_t* fails, const lane_t* major, const lane_t* minor, int64_t n, lane_t s_major, lane_t s_minor, lane_t bit) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_version_u16(fails, major, minor, n, s_major, s_minor, bit)
    elif lane_t is uint32_t:
        fm_fail_version_u32(fails, major, minor, n, s_major, s_minor, bit)
    else:
        fm_fail_version_u64(fails, major, minor, n, s_major, s_minor, bit)


cdef inline void fail_not_subset(lane_t* fails, const lane_t* t, int64_t n, lane_t s, lane_t bit) noexcept nogil:
    if lane_t is uint16_t:
        fm_fail_not_subset_u16(fails, t, n, s, bit)
    elif lane_t is uint32_t:
        fm_fail_not_subset_u32(fails, t, n, s, bit)
    else:
        fm_fail_not_subset_u64(fails, t, n, s, bit)


cdef inline uint8_t outcomes(const lane_t* fails, const lane_t* t_constrained, const lane_t* state, int64_t n, lane_t always, lane_t s_constrained, lane_t attribute_bits, int64_t* outcome, uint8_t* to_finish) noexcept nogil:
    if lane_t is uint16_t:
        return fm_outcomes_u16(fails, t_constrained, state, n, always, s_constrained, attribute_bits, outcome, to_finish)
    elif lane_t is uint32_t:
        return fm_outcomes_u32(fails, t_constrained, state, n, always, s_constrained, attribute_bits, outcome, to_finish)
    else:
        return fm_outcomes_u64(fails, t_constrained, state, n, always, s_constrained, attribute_bits, outcome, to_finish)


cdef inline uint8_t outcomes_matched(const lane_t* fails, const lane_t* t_constrained, int64_t n, lane_t always, lane_t s_constrained, lane_t attribute_bits, lane_t outside_of, lane_t many, lane_t accept, int64_t* outcome, uint8_t* to_finish) noexcept nogil:
    if lane_t is uint16_t:
        return fm_outcomes_matched_u16(fails, t_constrained, n, always, s_constrained, attribute_bits, outside_of, many, accept, outcome, to_finish)
    elif lane_t is uint32_t:
        return fm_outcomes_matched_u32(fails, t_constrained, n, always, s_constrained, attribute_bits, outside_of, many, accept, outcome, to_finish)
    else:
        return fm_outcomes_matched_u64(fails, t_constrained, n, always, s_constrained, attribute_bits, outside_of, many, accept, outcome, to_finish)


cdef inline void fill(lane_t* out, int64_t n, lane_t value) noexcept nogil:
    if lane_t is uint16_t:
        fm_fill_u16(out, n, value)
    elif lane_t is uint32_t:
        fm_fill_u32(out, n, value)
    else:
        fm_fill_u64(out, n, value)
