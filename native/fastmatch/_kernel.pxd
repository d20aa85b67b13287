# What other native modules call of fastmatch._kernel (native/_kernel.pyx) directly, in C. Its
# path names the module that Cython imports it from; native/ is the include path.
from libc.stdint cimport int64_t, uint8_t


cdef struct Ranking:
    # One source device ranked against a RequestTargets' targets: what ``rank`` reads and writes
    # without the GIL. ``ranking_of`` sets all but ``host`` and ``twin``.
    const void* side  # the RequestTargets'
    const void* kernel  # the problem's (NULL: no target can take it, the answer is filled)
    const uint8_t* target_matches
    const uint8_t* source_matches
    int lane_bytes
    int64_t k
    int64_t host  # the device's host's code among the targets' (0: none, -1: no target's)
    int64_t twin  # the target with the device's id, or -1
    int64_t* indices  # (1, k)
    int64_t* scores

cdef tuple ranking_of(object targets, object problem, int64_t k, Ranking* ranking)
cdef int rank(Ranking* ranking) noexcept nogil
