/* The kernel's vector loops: one op over a tile of targets, and the pass that
 * turns a tile's failure masks into reason masks.
 *
 * They are plain C so that `restrict` tells the compiler the arrays do not
 * overlap, and so that on x86-64 Linux each is built twice, for AVX2 and for
 * the baseline, the loader picking one at run time (target_clones): a wheel
 * stays safe on older CPUs and still uses the wide vectors where they exist.
 *
 * Every loop exists for three lane widths (16, 32 and 64 bits); see
 * fastmatch/intern.py for what the arrays hold.
 */
#ifndef FASTMATCH_LOOPS_H
#define FASTMATCH_LOOPS_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && !defined(FASTMATCH_NO_CLONES)
#define FM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FM_CLONES
#endif

#define FM_NO_RECORD_SHIFT 59
#define FM_FIXED_SHIFT 60 /* the lane's top two bits are OPAQUE (60) and NOT_MIGRATABLE (61) */
#define FM_PASSED 1        /* todo: a target without records that passed every rule: score it */
#define FM_CHECK_RECORDS 2 /* todo: a target whose records may still accept the source */
#define FM_NO_RECORDS 0    /* record_state: the target has no COMPATIBLE records (that count) */
#define FM_NONE_MATCH 1    /* record_state: none of its records matches the source's SELF */
#define FM_SOME_MATCH 2    /* record_state: some record matches: the rules decide which may accept */

#define FM_DEFINE_LOOPS(T, S)                                                                              \
    /* fails where t != s */                                                                               \
    static FM_CLONES void fm_fail_ne_##S(T *restrict fails, const T *restrict t, int64_t n, T s, T bit) {  \
        for (int64_t j = 0; j < n; j++) fails[j] |= bit & (T)(0 - (T)(t[j] != s));                         \
    }                                                                                                      \
    /* fails where t == s */                                                                               \
    static FM_CLONES void fm_fail_eq_##S(T *restrict fails, const T *restrict t, int64_t n, T s, T bit) {  \
        for (int64_t j = 0; j < n; j++) fails[j] |= bit & (T)(0 - (T)(t[j] == s));                         \
    }                                                                                                      \
    /* fails where t < s */                                                                                \
    static FM_CLONES void fm_fail_lt_##S(T *restrict fails, const T *restrict t, int64_t n, T s, T bit) {  \
        for (int64_t j = 0; j < n; j++) fails[j] |= bit & (T)(0 - (T)(t[j] < s));                          \
    }                                                                                                      \
    /* fails where t is absent (0) or t > s: 0 - 1 wraps to the largest value */                           \
    static FM_CLONES void fm_fail_absent_or_gt_##S(T *restrict fails, const T *restrict t, int64_t n, T s, \
                                                   T bit) {                                                \
        for (int64_t j = 0; j < n; j++) fails[j] |= bit & (T)(0 - (T)((T)(t[j] - 1) >= s));                \
    }                                                                                                      \
    /* the version rule: fails where the major code differs or the minor rank is lower */                  \
    static FM_CLONES void fm_fail_version_##S(T *restrict fails, const T *restrict major,                  \
                                              const T *restrict minor, int64_t n, T s_major, T s_minor,    \
                                              T bit) {                                                     \
        for (int64_t j = 0; j < n; j++)                                                                    \
            fails[j] |= bit & (T)(0 - (T)((major[j] != s_major) | (minor[j] < s_minor)));                  \
    }                                                                                                      \
    /* superset, one mask word: fails where s has an item t lacks */                                       \
    static FM_CLONES void fm_fail_not_subset_##S(T *restrict fails, const T *restrict t, int64_t n, T s,   \
                                                 T bit) {                                                  \
        for (int64_t j = 0; j < n; j++) fails[j] |= bit & (T)(0 - (T)((s & (T)~t[j]) != 0));               \
    }                                                                                                      \
    /* Failure masks -> reason masks, when failure bits are reason bits (low) and the top two bits are     \
     * OPAQUE and NOT_MIGRATABLE. A failed attribute that the pair's record holders constrain is theirs    \
     * to report (cany). `record_state` per target: FM_NO_RECORDS, FM_NONE_MATCH (it has records, and      \
     * none accepts this source's SELF), FM_SOME_MATCH; NO_RECORD is set here when no record can accept    \
     * (none matches, or a failure outside `outside_of & cany` rules them all out). Scores become -1.      \
     * `todo` gets, per target, FM_PASSED when it passed without records and FM_CHECK_RECORDS when a       \
     * matching record still has to be checked; returns the OR of `todo`.                                  \
     */                                                                                                    \
    static FM_CLONES uint8_t fm_reasons_##S(const T *restrict fails, const T *restrict t_cany,             \
                                            const T *restrict record_state, int64_t n, T always, T s_cany, \
                                            T low, T attribute_bits, T outside_of,                         \
                                            uint64_t *restrict reason, int64_t *restrict score,            \
                                            uint8_t *restrict todo) {                                      \
        uint8_t any = 0;                                                                                   \
        const int top = 8 * (int)sizeof(T) - 2;                                                            \
        for (int64_t j = 0; j < n; j++) {                                                                  \
            T f = fails[j] | always;                                                                       \
            T reported = f & (T)~(t_cany[j] & s_cany);                                                     \
            T ruled_out = (T)((f & attribute_bits & (T)~(t_cany[j] & outside_of)) != 0);                   \
            T state = record_state[j];                                                                     \
            T no_record = (T)((state == FM_NONE_MATCH) | ((state == FM_SOME_MATCH) & ruled_out));          \
            T check = (T)((state == FM_SOME_MATCH) & (ruled_out ^ 1));                                     \
            T passed = (T)((state == FM_NO_RECORDS) & (reported == 0));                                    \
            reason[j] = (uint64_t)(reported & low) | ((uint64_t)(reported >> top) << FM_FIXED_SHIFT) |      \
                        ((uint64_t)no_record << FM_NO_RECORD_SHIFT);                                       \
            score[j] = -1;                                                                                 \
            uint8_t flag = (uint8_t)((FM_PASSED & (0 - passed)) | (FM_CHECK_RECORDS & (0 - check)));        \
            todo[j] = flag;                                                                                \
            any |= flag;                                                                                   \
        }                                                                                                  \
        return any;                                                                                        \
    }

FM_DEFINE_LOOPS(uint16_t, u16)
FM_DEFINE_LOOPS(uint32_t, u32)
FM_DEFINE_LOOPS(uint64_t, u64)

#endif
