/* The one 64-bit finaliser the native modules hash with (splitmix64's): every bit of h moves
   the low bits a table's slot is taken from. A hash only picks a slot: equal keys are always
   compared in full. */
#ifndef FASTMATCH_HASHING_H
#define FASTMATCH_HASHING_H
#include <stdint.h>

static inline uint64_t fm_mix(uint64_t h) {
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 31);
}

#endif
