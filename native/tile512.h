/* A whole tile in one pass, for 16-bit lanes on CPUs with AVX-512 (BW).
 *
 * The loops of loops.h take one rule at a time over a tile, each reading and
 * writing the failure masks in memory, then a last loop turns masks into
 * outcomes. Here 32 targets at a time go through every rule with their masks
 * in a register, and leave with their outcomes written and a bit each in
 * `pending` for the pairs still to score: what fm_fail_* then fm_outcomes do,
 * with the same results (tests/test_equivalence.py runs both).
 *
 * The rules come from the kernel's ops, resolved for one source class
 * (fastmatch/_kernel.pyx, rules_for): one rule per comparison, grouped by kind.
 */
#ifndef FASTMATCH_TILE512_H
#define FASTMATCH_TILE512_H

#include <stdint.h>

#include "loops.h"

enum { FM_RULE_NE, FM_RULE_EQ, FM_RULE_LT, FM_RULE_ABSENT_OR_GT, FM_RULE_VERSION, FM_RULE_NOT_SUBSET, FM_RULE_KINDS };

typedef struct {
    const uint16_t *row;   /* the targets' values (codes, major codes or a mask word), from target 0 */
    const uint16_t *minor; /* FM_RULE_VERSION: the targets' minor ranks */
    uint16_t value;        /* the source's value (code, major code, mask word) */
    uint16_t source_minor; /* FM_RULE_VERSION */
    uint16_t bit;          /* the failure bit */
} FmRule16;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && !defined(FASTMATCH_NO_AVX512)
#include <immintrin.h>

static int fm_tile512_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

#define FM_T512 __attribute__((target("avx512f,avx512bw")))

/* Every rule over four vectors of targets into f0 .. f3 (four variables, not an array: so they stay in
 * registers), rows read through FM_ROW and FM_MINOR. */
#define FM_EACH(M) M(0) M(1) M(2) M(3)
#define FM_OR(v, mask, r) f##v = _mm512_or_si512(f##v, _mm512_maskz_mov_epi16((mask), bit[r]));
#define FM_NE2(v) /* two at a time: one OR of three */                                                        \
    f##v = _mm512_ternarylogic_epi32(                                                                         \
        f##v, _mm512_maskz_mov_epi16(_mm512_cmpneq_epu16_mask(FM_ROW(r, v), value[r]), bit[r]),              \
        _mm512_maskz_mov_epi16(_mm512_cmpneq_epu16_mask(FM_ROW(r + 1, v), value[r + 1]), bit[r + 1]), 0xFE);
#define FM_NE(v) FM_OR(v, _mm512_cmpneq_epu16_mask(FM_ROW(r, v), value[r]), r)
#define FM_EQ(v) FM_OR(v, _mm512_cmpeq_epu16_mask(FM_ROW(r, v), value[r]), r)
#define FM_LT(v) FM_OR(v, _mm512_cmplt_epu16_mask(FM_ROW(r, v), value[r]), r)
#define FM_ABSENT_OR_GT(v) FM_OR(v, _mm512_cmpge_epu16_mask(_mm512_sub_epi16(FM_ROW(r, v), ones), value[r]), r)
#define FM_VERSION(v)                                                                                         \
    FM_OR(v, _mm512_cmpneq_epu16_mask(FM_ROW(r, v), value[r]) | _mm512_cmplt_epu16_mask(FM_MINOR(r, v), source_minor[r]), r)
#define FM_NOT_SUBSET(v) FM_OR(v, _mm512_test_epi16_mask(_mm512_andnot_si512(FM_ROW(r, v), value[r]), value[r]), r)
#define FM_RULES                                                                                              \
    {                                                                                                         \
        int r = 0;                                                                                            \
        for (; r + 1 < end[FM_RULE_NE]; r += 2) { FM_EACH(FM_NE2) }                                           \
        for (; r < end[FM_RULE_NE]; r++) { FM_EACH(FM_NE) }                                                   \
        for (; r < end[FM_RULE_EQ]; r++) { FM_EACH(FM_EQ) }                                                   \
        for (; r < end[FM_RULE_LT]; r++) { FM_EACH(FM_LT) }                                                   \
        for (; r < end[FM_RULE_ABSENT_OR_GT]; r++) { FM_EACH(FM_ABSENT_OR_GT) }                               \
        for (; r < end[FM_RULE_VERSION]; r++) { FM_EACH(FM_VERSION) }                                         \
        for (; r < end[FM_RULE_NOT_SUBSET]; r++) { FM_EACH(FM_NOT_SUBSET) }                                   \
    }

/* fm_outcome for 32 pairs: their failure masks f, the targets' constrained and record state (0 or 1); writes
 * the outcomes of the pairs in `live` and returns which are incompatible. */
FM_T512 static inline __attribute__((always_inline)) __mmask32 fm_outcomes512_(
    __m512i f, __m512i constrained, __m512i no_record, int plain, int64_t *outcome, __mmask32 live, __m512i s_constrained,
    __m512i attribute, __m512i incompatible, const __m512i *spread) {
    /* `plain`: targets without records (constrained and no_record 0), most of a fleet: fewer ops */
    __m512i reported = plain ? f : _mm512_andnot_si512(_mm512_and_si512(constrained, s_constrained), f);
    __m512i either = plain ? reported : _mm512_or_si512(reported, no_record);
    __mmask32 bad = _mm512_test_epi16_mask(either, either);
    __m512i low = _mm512_and_si512(reported, attribute);
    /* the lane's top two bits to 12 and 13, NO_RECORD to 11, INCOMPATIBLE to 15: bits 60, 61, 59 and 63
     * once moved to the top 16 bits of the outcome */
    __m512i fixed = _mm512_slli_epi16(_mm512_srli_epi16(reported, 14), FM_FIXED_SHIFT - 48);
    __m512i high = plain ? _mm512_mask_mov_epi16(fixed, bad, _mm512_or_si512(fixed, incompatible))
                         : _mm512_ternarylogic_epi32(fixed, _mm512_slli_epi16(no_record, FM_NO_RECORD_SHIFT - 48),
                                                     _mm512_maskz_mov_epi16(bad, incompatible), 0xFE);
    for (int c = 0; c < 4; c++) {
        __m512i spread_c = _mm512_maskz_permutex2var_epi16(0x99999999u, low, spread[c], high); /* words 0 and 3 of each qword */
        if (live == 0xFFFFFFFFu)
            _mm512_storeu_si512(outcome + 8 * c, spread_c);
        else if ((__mmask8)(live >> (8 * c)))
            _mm512_mask_storeu_epi64(outcome + 8 * c, (__mmask8)(live >> (8 * c)), spread_c);
    }
    return bad;
}

/* Targets j0 .. j0 + n (n <= the tile) against the rules: `count[k]` rules of kind k, one kind after
 * another. `rows`, `minor` and `t_constrained` are read from target j0 on; `state`, `fails`, `outcome` and
 * `pending` are the tile's. Writes fails (as fm_fail_* leave them, OR-ed with `always`; only if
 * `keep_fails`: few tiles need them afterwards), outcomes as
 * fm_outcomes does, and a bit per target in `pending` (bit b % 64 of word b / 64) where the pair is
 * compatible and needs its score. Returns whether any bit was set. */
FM_T512 static int fm_tile512(const FmRule16 *rules, const int32_t *count, int64_t j0, int64_t n, uint16_t always,
                              const uint16_t *t_constrained, uint16_t s_constrained, uint16_t attribute_bits,
                              const uint16_t *state, int plain, uint16_t *fails, int keep_fails,
                              int64_t *outcome, uint64_t *pending) {
    int n_rules = 0;
    int end[FM_RULE_KINDS];
    for (int kind = 0; kind < FM_RULE_KINDS; kind++) end[kind] = (n_rules += count[kind]);
    /* The rules' values and bits as vectors, once per call rather than once per 32 targets. */
    __m512i value[n_rules + 1], bit[n_rules + 1], source_minor[n_rules + 1];
    for (int r = 0; r < n_rules; r++) {
        value[r] = _mm512_set1_epi16((short)rules[r].value);
        bit[r] = _mm512_set1_epi16((short)rules[r].bit);
        source_minor[r] = _mm512_set1_epi16((short)rules[r].source_minor);
    }
    const __m512i ones = _mm512_set1_epi16(1);
    const __m512i v_always = _mm512_set1_epi16((short)always);
    const __m512i v_s_constrained = _mm512_set1_epi16((short)s_constrained);
    const __m512i v_attribute = _mm512_set1_epi16((short)attribute_bits);
    const __m512i v_incompatible = _mm512_set1_epi16((short)(1u << (FM_INCOMPATIBLE - 48)));
    /* Outcome qword q of chunk c takes word 8c + q of the low half (into its word 0) and of the high
     * half (into its word 3; index 32 + i picks word i of the second operand); words 1 and 2 are 0. */
    __m512i spread[4];
    for (int c = 0; c < 4; c++) {
        uint16_t index[32] = {0};
        for (int q = 0; q < 8; q++) {
            index[4 * q] = (uint16_t)(8 * c + q);
            index[4 * q + 3] = (uint16_t)(32 + 8 * c + q);
        }
        spread[c] = _mm512_loadu_si512(index);
    }

    int any = 0;
    int64_t j;
    /* 128 targets at a time, four vectors: each rule's own costs (its row, its loop) are paid once
     * per 128 targets, not 32. */
    for (j = 0; j < n; j += 128) {
        const int64_t at = j0 + j;
        __mmask32 live[4];
        for (int v = 0; v < 4; v++) {
            int64_t left = n - j - 32 * v;
            live[v] = left >= 32 ? (__mmask32)0xFFFFFFFFu : left <= 0 ? 0 : (__mmask32)((1u << left) - 1);
        }
        __m512i f0 = v_always, f1 = v_always, f2 = v_always, f3 = v_always;
#define fm_outcomes512(f, constrained, state, plain, out, live) \
    fm_outcomes512_(f, constrained, state, plain, out, live, v_s_constrained, v_attribute, v_incompatible, spread)
        /* Whole chunks load without masks (most of them); the tile's last one with. */
        if (live[3] == (__mmask32)0xFFFFFFFFu) {
#define FM_ROW(r, v) _mm512_loadu_si512(rules[r].row + at + 32 * (v))
#define FM_MINOR(r, v) _mm512_loadu_si512(rules[r].minor + at + 32 * (v))
            FM_RULES
#undef FM_ROW
#undef FM_MINOR
        } else {
#define FM_ROW(r, v) _mm512_maskz_loadu_epi16(live[v], rules[r].row + at + 32 * (v))
#define FM_MINOR(r, v) _mm512_maskz_loadu_epi16(live[v], rules[r].minor + at + 32 * (v))
            FM_RULES
#undef FM_ROW
#undef FM_MINOR
        }

        if (live[3] == (__mmask32)0xFFFFFFFFu) {
            uint64_t open[2] = {0, 0};
#define FM_FULL(v, plain)                                                                                    \
    {                                                                                                        \
        const int64_t k = j + 32 * (v); /* this vector's first target in the tile */                        \
        if (keep_fails) _mm512_storeu_si512(fails + k, f##v);                                                \
        __mmask32 bad = plain ? fm_outcomes512(f##v, f##v, f##v, 1, outcome + k, 0xFFFFFFFFu)                 \
                              : fm_outcomes512(f##v, _mm512_loadu_si512(t_constrained + j0 + k),                    \
                                               _mm512_loadu_si512(state + k), 0, outcome + k, 0xFFFFFFFFu);  \
        open[(v) / 2] |= (uint64_t)(uint32_t)~bad << (32 * ((v) % 2));                                       \
    }
#define FM_FULL_PLAIN(v) FM_FULL(v, 1)
#define FM_FULL_RECORDS(v) FM_FULL(v, 0)
            if (plain) {
                FM_EACH(FM_FULL_PLAIN)
            } else {
                FM_EACH(FM_FULL_RECORDS)
            }
#undef FM_FULL
#undef FM_FULL_PLAIN
#undef FM_FULL_RECORDS
            pending[j / 64] = open[0];
            pending[j / 64 + 1] = open[1];
            any |= (open[0] | open[1]) != 0;
        } else {
            __m512i f[4] = {f0, f1, f2, f3};
            for (int v = 0; v < 4 && live[v]; v++) {
                const int64_t k = j + 32 * v;
                if (keep_fails) _mm512_mask_storeu_epi16(fails + k, live[v], f[v]);
                __mmask32 bad = fm_outcomes512(f[v], _mm512_maskz_loadu_epi16(live[v], t_constrained + j0 + k),
                                               _mm512_maskz_loadu_epi16(live[v], state + k), 0, outcome + k, live[v]);
                uint32_t open = (uint32_t)(~bad & live[v]);
                ((uint32_t *)pending)[k / 32] = open;
                any |= open != 0;
            }
        }
    }
    j = (n + 31) / 32 * 32;
    if ((j / 32) % 2) ((uint32_t *)pending)[j / 32] = 0; /* the last word's upper half */
    return any;
}
#else
static int fm_tile512_available(void) { return 0; }
static int fm_tile512(const FmRule16 *rules, const int32_t *count, int64_t j0, int64_t n, uint16_t always,
                      const uint16_t *t_constrained, uint16_t s_constrained, uint16_t attribute_bits, const uint16_t *state,
                      int plain, uint16_t *fails, int keep_fails, int64_t *outcome, uint64_t *pending) {
    return 0; /* never called: fm_tile512_available() says no */
}
#endif

#endif
