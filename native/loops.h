/* The kernel's portable vector loops: one op over a tile of targets, and the
 * pass that turns a tile's failure masks into outcomes (tile512.h does both in
 * one pass where the CPU has AVX-512).
 *
 * They are plain C so that `restrict` tells the compiler the arrays do not
 * overlap, and so that on x86-64 Linux each is built three times, for AVX-512
 * (x86-64-v4), AVX2 and the baseline, the loader picking one at run time
 * (target_clones): a wheel stays safe on older CPUs and still uses the wide
 * vectors where they exist.
 *
 * Every loop exists for three lane widths (16, 32 and 64 bits); see
 * fastmatch/intern.py for what the arrays hold.
 */
#ifndef FASTMATCH_LOOPS_H
#define FASTMATCH_LOOPS_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && !defined(FASTMATCH_NO_CLONES)
#define FM_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define FM_CLONES
#endif

#define FM_NO_RECORD_SHIFT 59
#define FM_FIXED_SHIFT 60 /* the lane's top two bits are OPAQUE (60) and NOT_MIGRATABLE (61) */
#define FM_INCOMPATIBLE 63 /* an outcome with this (sign) bit is a reason mask, otherwise a score */
/* What a target's COMPATIBLE records can do for a source */
#define FM_NO_RECORDS 0 /* it has none (that count) */
#define FM_NONE_MATCH 1 /* none of its records matches the source's SELF */
#define FM_ONE_MATCH 2  /* exactly one does */
#define FM_MANY_MATCH 3 /* several do */

#define FM_DEFINE_LOOPS(T, S)                                                                              \
    /* One pair's outcome from its reported failures: the attribute bits stay where they are; the lane's  \
     * top two bits (OPAQUE, NOT_MIGRATABLE), NO_RECORD and INCOMPATIBLE are gathered in the lane's width  \
     * first and moved to the top 16 bits with one shift, so a vector loop widens two values, not four.   \
     */                                                                                                    \
    static inline int64_t fm_outcome_##S(T reported, T attribute_bits, T no_record, T bad) {               \
        const int top = 8 * (int)sizeof(T) - 2;                                                            \
        T high = (T)(((T)(reported >> top) << (FM_FIXED_SHIFT - 48)) | (T)(no_record << (FM_NO_RECORD_SHIFT - 48)) | \
                     (T)(bad << (FM_INCOMPATIBLE - 48)));                                                  \
        return (int64_t)((uint64_t)(reported & attribute_bits) | ((uint64_t)high << 48));                  \
    }                                                                                                      \
    /* fails where t != s */                                                                               \
    static FM_CLONES void fm_fail_ne_##S(T *restrict fails, const T *restrict t, int64_t n, T s, T bit) {  \
        for (int64_t j = 0; j < n; j++) fails[j] |= t[j] != s ? bit : 0;                         \
    }                                                                                                      \
    /* fails where t_k != s_k, four rows at once (a row with bit 0 adds nothing); `init` writes the masks  \
     * instead of OR-ing into them. One pass instead of four keeps the masks in registers.                 \
     */                                                                                                    \
    static FM_CLONES void fm_fail_ne4_##S(T *restrict fails, const T *restrict t0, const T *restrict t1,   \
                                          const T *restrict t2, const T *restrict t3, int64_t n,           \
                                          const T *restrict s, const T *restrict bit, int init) {          \
        const T s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];                                                \
        const T b0 = bit[0], b1 = bit[1], b2 = bit[2], b3 = bit[3];                                        \
        if (init) {                                                                                        \
            for (int64_t j = 0; j < n; j++)                                                                \
                fails[j] = (T)((t0[j] != s0 ? b0 : 0) | (t1[j] != s1 ? b1 : 0) | (t2[j] != s2 ? b2 : 0) |  \
                               (t3[j] != s3 ? b3 : 0));                                                    \
        } else {                                                                                           \
            for (int64_t j = 0; j < n; j++)                                                                \
                fails[j] |= (T)((t0[j] != s0 ? b0 : 0) | (t1[j] != s1 ? b1 : 0) | (t2[j] != s2 ? b2 : 0) | \
                                (t3[j] != s3 ? b3 : 0));                                                   \
        }                                                                                                  \
    }                                                                                                      \
    /* fm_fail_ne4 for two rows */                                                                         \
    static FM_CLONES void fm_fail_ne2_##S(T *restrict fails, const T *restrict t0, const T *restrict t1,   \
                                          int64_t n, const T *restrict s, const T *restrict bit, int init) { \
        const T s0 = s[0], s1 = s[1], b0 = bit[0], b1 = bit[1];                                            \
        if (init) {                                                                                        \
            for (int64_t j = 0; j < n; j++) fails[j] = (T)((t0[j] != s0 ? b0 : 0) | (t1[j] != s1 ? b1 : 0)); \
        } else {                                                                                           \
            for (int64_t j = 0; j < n; j++) fails[j] |= (T)((t0[j] != s0 ? b0 : 0) | (t1[j] != s1 ? b1 : 0)); \
        }                                                                                                  \
    }                                                                                                      \
    /* fails where t == s */                                                                               \
    static FM_CLONES void fm_fail_eq_##S(T *restrict fails, const T *restrict t, int64_t n, T s, T bit) {  \
        for (int64_t j = 0; j < n; j++) fails[j] |= t[j] == s ? bit : 0;                         \
    }                                                                                                      \
    /* fails where t < s */                                                                                \
    static FM_CLONES void fm_fail_lt_##S(T *restrict fails, const T *restrict t, int64_t n, T s, T bit) {  \
        for (int64_t j = 0; j < n; j++) fails[j] |= t[j] < s ? bit : 0;                          \
    }                                                                                                      \
    /* fails where t is absent (0) or t > s: 0 - 1 wraps to the largest value */                           \
    static FM_CLONES void fm_fail_absent_or_gt_##S(T *restrict fails, const T *restrict t, int64_t n, T s, \
                                                   T bit) {                                                \
        for (int64_t j = 0; j < n; j++) fails[j] |= (T)(t[j] - 1) >= s ? bit : 0;                \
    }                                                                                                      \
    /* the version rule: fails where the major code differs or the minor rank is lower */                  \
    static FM_CLONES void fm_fail_version_##S(T *restrict fails, const T *restrict major,                  \
                                              const T *restrict minor, int64_t n, T s_major, T s_minor,    \
                                              T bit) {                                                     \
        for (int64_t j = 0; j < n; j++)                                                                    \
            fails[j] |= (major[j] != s_major) | (minor[j] < s_minor) ? bit : 0;                  \
    }                                                                                                      \
    /* superset, one mask word: fails where s has an item t lacks */                                       \
    static FM_CLONES void fm_fail_not_subset_##S(T *restrict fails, const T *restrict t, int64_t n, T s,   \
                                                 T bit) {                                                  \
        for (int64_t j = 0; j < n; j++) fails[j] |= (s & (T)~t[j]) != 0 ? bit : 0;               \
    }                                                                                                      \
    /* Failure masks -> outcomes, when failure bits are reason bits (low) and the top two bits are          \
     * OPAQUE and NOT_MIGRATABLE. A failed attribute that the pair's record holders constrain is theirs    \
     * to report (constrained). `state` is FM_NO_RECORDS or FM_NONE_MATCH per target: a target none of whose       \
     * records matches the source's SELF gets NO_RECORD (fm_outcomes_matched redoes the targets whose       \
     * records do match). `to_finish` gets 1 where a compatible pair still needs its score. Returns the OR of   \
     * to_finish.                                                                                               \
     */                                                                                                    \
    static FM_CLONES uint8_t fm_outcomes_##S(const T *restrict fails, const T *restrict t_constrained,            \
                                             const T *restrict state, int64_t n, T always, T s_constrained,       \
                                             T attribute_bits, int64_t *restrict outcome,                  \
                                             uint8_t *restrict to_finish) {                                     \
        uint8_t any = 0;                                                                                   \
        for (int64_t j = 0; j < n; j++) {                                                                  \
            T reported = (fails[j] | always) & (T)~(t_constrained[j] & s_constrained);                                   \
            T no_record = state[j];                                                                        \
            T bad = (T)((reported != 0) | no_record);                                                      \
            outcome[j] = fm_outcome_##S(reported, attribute_bits, no_record, bad);                         \
            uint8_t flag = (uint8_t)(bad ^ 1);                                                             \
            to_finish[j] = flag;                                                                                \
            any |= flag;                                                                                   \
        }                                                                                                  \
        return any;                                                                                        \
    }                                                                                                      \
    /* fm_outcomes for a run of targets with one record set, some record of which matches the source's    \
     * SELF. With one such record (`many` 0) the set accepts when the failed attributes lie within         \
     * `accept`. With several, NO_RECORD is set and, unless a failure rules them all out, to_finish gets 1:      \
     * each record is then checked one target at a time.                                                  \
     */                                                                                                    \
    static FM_CLONES uint8_t fm_outcomes_matched_##S(const T *restrict fails, const T *restrict t_constrained,    \
                                                     int64_t n, T always, T s_constrained, T attribute_bits,      \
                                                     T outside_of, T many, T accept,                       \
                                                     int64_t *restrict outcome, uint8_t *restrict to_finish) {  \
        uint8_t any = 0;                                                                                   \
        for (int64_t j = 0; j < n; j++) {                                                                  \
            T f = fails[j] | always;                                                                       \
            T reported = f & (T)~(t_constrained[j] & s_constrained);                                                     \
            T failed = f & attribute_bits;                                                                 \
            T ruled_out = (T)((failed & (T)~(t_constrained[j] & outside_of)) != 0);                               \
            T no_record = many | (T)((failed & (T)~accept) != 0);                                          \
            T check = many & (ruled_out ^ 1);                                                              \
            T bad = (T)((reported != 0) | no_record);                                                      \
            outcome[j] = fm_outcome_##S(reported, attribute_bits, no_record, bad);                         \
            uint8_t flag = (uint8_t)(check | (bad ^ 1));                                                   \
            to_finish[j] = flag;                                                                                \
            any |= flag;                                                                                   \
        }                                                                                                  \
        return any;                                                                                        \
    }                                                                                                      \
    static FM_CLONES void fm_fill_##S(T *restrict out, int64_t n, T value) {                               \
        for (int64_t j = 0; j < n; j++) out[j] = value;                                                    \
    }

FM_DEFINE_LOOPS(uint16_t, u16)
FM_DEFINE_LOOPS(uint32_t, u32)
FM_DEFINE_LOOPS(uint64_t, u64)

/* Scores, in place, the compatible pairs of a run of targets (outcome 0; a reason mask is
 * negative, a score already given positive): every pair's score is computed and kept where the
 * outcome is 0, so the loop has no branch to mispredict on the half of the pairs that are
 * compatible. `facts` holds four int32 per target (exact key, low bits, version class, type
 * code: ScoreFacts in _kernel.pyx); `version_part` the source's score against each version class.
 */
static FM_CLONES void fm_score_compatible(int64_t *restrict outcome, const int32_t *restrict facts, int64_t n,
                                         const int64_t *restrict version_part, int64_t low_mask,
                                         int64_t exact_key, int64_t exact_bit, uint32_t type_code,
                                         int64_t type_bit) {
    for (int64_t j = 0; j < n; j++) {
        const int32_t *f = facts + 4 * j;
        int64_t value = version_part[f[2]] | ((int64_t)f[1] & low_mask) |
                        (exact_bit & -(int64_t)((int64_t)f[0] == exact_key)) |
                        (type_bit & -(int64_t)((uint32_t)f[3] == type_code));
        outcome[j] = outcome[j] == 0 ? value : outcome[j];
    }
}

/* The places (from 0) of the values of `row[0:n]` that are at least `floor`, into `at`; returns
 * how many. A vector pass first finds the largest value, so a run with none is passed over at
 * memory speed; otherwise the places are written without a branch per value.
 */
static FM_CLONES int64_t fm_at_least(const int64_t *restrict row, int64_t n, int64_t floor, int32_t *restrict at) {
    int64_t largest = INT64_MIN;
    for (int64_t j = 0; j < n; j++) largest = row[j] > largest ? row[j] : largest;
    if (largest < floor) return 0;
    int64_t count = 0;
    for (int64_t j = 0; j < n; j++) {
        at[count] = (int32_t)j;
        count += row[j] >= floor;
    }
    return count;
}

#endif
