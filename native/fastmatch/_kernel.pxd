# What other native modules call of fastmatch._kernel (native/_kernel.pyx) directly, in C. Its
# path names the module that Cython imports it from; native/ is the include path.
from libc.stdint cimport int64_t, uint8_t


cdef struct Ranking:
    # One source device ranked against a RequestTargets' targets: what ``rank`` reads and writes
    # without the GIL. ``prepare_ranking`` sets what a descriptor's devices share (``side`` to
    # ``lane_bytes``), ``answer_of`` the answer (``k`` and after), the caller ``host`` and ``twin``.
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

cdef int prepare_ranking(object targets, object problem, Ranking* ranking) except -1
cdef tuple answer_of(Ranking* ranking, int64_t k)
cdef int rank(Ranking* ranking) noexcept nogil
