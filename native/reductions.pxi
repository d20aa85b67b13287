# Reductions fused into the kernel's row loop (included by _kernel.pyx).
#
# A thread evaluates one source class against every target class into its own row buffer
# (a row of outcomes: 8 bytes a target class, in L1/L2), and reduces that row to what the
# caller asked for before it takes the next: the k best available targets of each device of
# the class, their count, their sparse row, or their dense rows. Only the reduction leaves
# the kernel (the pattern of scikit-learn's ArgKmin). What depends on the devices rather
# than their classes (the same device, the same host, capacity) is applied here, per device,
# from the arrays of ``DeviceView``.

from libc.string cimport memset

cdef enum:
    REDUCE_TOP_K = 0
    REDUCE_COUNTS = 1
    REDUCE_SPARSE = 2
    REDUCE_COMPATIBLE = 3
    REDUCE_SCORES = 4
    REDUCE_REASONS = 5



cdef struct Devices:
    # sources: the devices of class c are source_order[source_start[c]:source_start[c + 1]]
    const int64_t* source_order
    const int64_t* source_start
    const int64_t* source_host  # per source device: its host's code among the targets' hosts (0: none, -1: no target's)
    const int64_t* source_twin  # per source device: the target device with its id, or -1
    # targets
    int64_t n_targets
    int64_t n_classes
    const int64_t* target_class
    const int64_t* target_host
    const int64_t* available_order  # per target class, its devices with capacity, in device order
    const int64_t* available_start
    const int64_t* available_host  # the host of each device of available_order, beside it (read in order)
    const int64_t* class_order  # per target class, all its devices, in device order
    const int64_t* class_start
    const int64_t* host_order  # per host code (> 0), its target devices
    const int64_t* host_start
    bint exclude_same_host


cdef struct Reduction:
    int kind
    int64_t k  # top_k
    const int64_t* depth  # top_k: per source class, how many candidates to keep for its devices
    int64_t* indices  # top_k: (n, k); sparse: columns
    int64_t row_base  # top_k: -1, a device's row is its index; else the rows of a run (``Problem.top_k``'s ``in_runs``)
    int64_t* values  # top_k: scores (n, k); counts: (n,); sparse: data; dense scores and reasons: (n, m)
    uint8_t* flags  # dense compatible: (n, m)
    const int64_t* indptr  # sparse
    const uint8_t* counted  # counts: per target device, whether it counts
    const int64_t* counted_per_class  # counts: per target class, its devices that count


cdef inline bint excluded(const Devices* devices, int64_t d, int64_t t) noexcept nogil:
    """Whether source device d may not go to target device t whatever their classes say."""
    if devices.source_twin[d] == t:
        return True
    return devices.exclude_same_host and devices.source_host[d] > 0 and devices.target_host[t] == devices.source_host[d]


# -- top_k: a bounded heap per source class whose root is the worst candidate ------------------
cdef inline bint worse(int64_t score_a, int64_t dev_a, int64_t score_b, int64_t dev_b) noexcept nogil:
    """Candidate a ranks below b: a lower score, or the same score and a later target."""
    return score_a < score_b or (score_a == score_b and dev_a > dev_b)


cdef inline void sift_down(int64_t* scores, int64_t* devs, int64_t size, int64_t at) noexcept nogil:
    cdef int64_t child, score = scores[at], dev = devs[at]
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and worse(scores[child + 1], devs[child + 1], scores[child], devs[child]):
            child += 1
        if not worse(scores[child], devs[child], score, dev):
            break
        scores[at] = scores[child]
        devs[at] = devs[child]
        at = child
    scores[at] = score
    devs[at] = dev


cdef inline void sift_up(int64_t* scores, int64_t* devs, int64_t at) noexcept nogil:
    cdef int64_t parent, score = scores[at], dev = devs[at]
    while at > 0:
        parent = (at - 1) >> 1
        if not worse(score, dev, scores[parent], devs[parent]):
            break
        scores[at] = scores[parent]
        devs[at] = devs[parent]
        at = parent
    scores[at] = score
    devs[at] = dev


cdef enum:
    SCAN = 64  # target classes whose outcomes are screened against the list's floor at once
    SORTED_DEPTH = 16  # candidate lists up to this long (top_k's usual k) are kept sorted, not in a heap
    SAMPLE_STRIDE = 16  # a long row's classes first looked at one in this many, for a starting floor
    SAMPLE_MIN = 1024  # rows over fewer classes than this start from no floor


cdef inline void offer_class(
    const Devices* devices, int64_t j, int64_t s, int64_t depth, int64_t* scores, int64_t* devs, int64_t* size,
    int64_t* floor, int64_t twin, int64_t host, bint in_order,
) noexcept nogil:
    """Target class j's available devices, whose score is s (>= floor), into the bounded list,
    but the device ``twin`` and the devices on ``host`` (when > 0). The list is a heap whose
    root is the worst kept, or, ``in_order``, sorted best first: a short list takes a new
    candidate in a few moves, and needs no sorting at the end."""
    cdef int64_t p, d, q
    cdef int64_t p0 = devices.available_start[j], p1 = devices.available_start[j + 1]
    cdef int64_t worst = depth - 1 if in_order else 0  # where the worst kept is, once the list is full
    if p0 == p1 or (size[0] == depth and s == floor[0] and devices.available_order[p0] > devs[worst]):
        return  # no device, or a tie with the worst kept whose devices all come later
    for p in range(p0, p1):
        d = devices.available_order[p]
        if d == twin or (host > 0 and devices.available_host[p] == host):
            continue
        if in_order:
            if size[0] < depth:
                q = size[0]
                size[0] += 1
            elif worse(scores[worst], devs[worst], s, d):
                q = worst
            else:
                return  # this class's later devices rank lower still
            while q > 0 and worse(scores[q - 1], devs[q - 1], s, d):
                scores[q] = scores[q - 1]
                devs[q] = devs[q - 1]
                q -= 1
            scores[q] = s
            devs[q] = d
            if size[0] == depth:
                floor[0] = scores[worst]
        elif size[0] < depth:
            scores[size[0]] = s
            devs[size[0]] = d
            sift_up(scores, devs, size[0])
            size[0] += 1
            if size[0] == depth:
                floor[0] = scores[0]
        elif worse(scores[0], devs[0], s, d):
            scores[0] = s
            devs[0] = d
            sift_down(scores, devs, size[0], 0)
            floor[0] = scores[0]
        else:
            return  # this class's later devices rank lower still


cdef int64_t best_candidates(
    const Devices* devices, const int64_t* row, const int64_t* ranges, int64_t n_ranges, int64_t depth, int64_t* scores,
    int64_t* devs, int64_t twin, int64_t host,
) noexcept nogil:
    """The ``depth`` best available target devices for a row of outcomes over ``ranges`` of
    target classes, best first (score, then device order) in ``scores``/``devs``, but the
    device ``twin`` and the devices on ``host`` (when > 0); returns how many there are.

    The list (a heap, or sorted where short: offer_class) orders candidates completely (score,
    then device), so the order classes are offered in changes no answer, only how often the
    list changes. Classes come in blocked
    order, where scores often rise along a row: a heap filled in that order would take almost
    every compatible class in turn. So rows are read from their end, and a long row is first
    sampled (one class in SAMPLE_STRIDE): when the sample holds ``depth`` devices, the worst of
    its best ``depth`` is a floor that no candidate below it can pass (``depth`` devices rank
    above it). The list then starts again from that floor, and the row is screened SCAN classes
    at a time for outcomes at or above the floor (a vector loop, fm_at_least)."""
    cdef int64_t j, q, s, d, r, lo, hi, found, size = 0, floor = 0, length = 0
    cdef int32_t at[SCAN]
    cdef bint in_order = depth <= SORTED_DEPTH
    if depth <= 0:
        return 0
    for r in range(n_ranges):
        length += ranges[2 * r + 1] - ranges[2 * r]
    if length >= SAMPLE_MIN:
        for r in range(n_ranges - 1, -1, -1):
            j = ranges[2 * r + 1] - 1
            while j >= ranges[2 * r]:
                if row[j] >= floor:
                    offer_class(devices, j, row[j], depth, scores, devs, &size, &floor, twin, host, in_order)
                j -= SAMPLE_STRIDE
        if size < depth:
            floor = 0
        size = 0
    for r in range(n_ranges - 1, -1, -1):
        lo = ranges[2 * r]
        hi = ranges[2 * r + 1]
        while hi > lo:
            found = fm_at_least(row + max(lo, hi - SCAN), min(SCAN, hi - lo), floor, at)
            for q in range(found - 1, -1, -1):
                j = max(lo, hi - SCAN) + at[q]
                s = row[j]
                if s >= floor:  # the floor may have risen since the screen
                    offer_class(devices, j, s, depth, scores, devs, &size, &floor, twin, host, in_order)
            hi -= SCAN
    # Heap sort: the worst goes to the end, one at a time, leaving the best first.
    cdef int64_t end = size - 1 if not in_order else 0
    while end > 0:
        s, d = scores[0], devs[0]
        scores[0], devs[0] = scores[end], devs[end]
        scores[end], devs[end] = s, d
        sift_down(scores, devs, end, 0)
        end -= 1
    return size


cdef inline int64_t top_k_place(const Reduction* reduction, int64_t m, int64_t d) noexcept nogil:
    """The row of device d, the m-th in source order: its own index, or its place in a run
    (the devices of a run of classes, in source order)."""
    return d if reduction.row_base < 0 else m - reduction.row_base


cdef void top_k_row(
    const Devices* devices, const Reduction* reduction, int64_t c, const int64_t* row, const int64_t* ranges, int64_t n_ranges,
    int64_t* scratch,
) noexcept nogil:
    cdef int64_t depth = reduction.depth[c], k = reduction.k
    cdef int64_t* scores = scratch
    cdef int64_t* devs = scratch + depth
    cdef int64_t m, d, p, w, size
    cdef int64_t* indices
    cdef int64_t* values
    if devices.source_start[c + 1] - devices.source_start[c] == 1:
        # One device (every device, where descriptors are distinct): its own k best, its
        # exclusions applied as the candidates come, rather than a deeper list filtered after.
        m = devices.source_start[c]
        d = devices.source_order[m]
        size = best_candidates(
            devices, row, ranges, n_ranges, min(k, depth), scores, devs, devices.source_twin[d],
            devices.source_host[d] if devices.exclude_same_host else 0,
        )
        indices = reduction.indices + top_k_place(reduction, m, d) * k
        values = reduction.values + top_k_place(reduction, m, d) * k
        for w in range(size):
            indices[w] = devs[w]
            values[w] = scores[w]
        for w in range(size, k):
            indices[w] = -1
            values[w] = -1
        return
    size = best_candidates(devices, row, ranges, n_ranges, depth, scores, devs, -1, 0)
    for m in range(devices.source_start[c], devices.source_start[c + 1]):
        d = devices.source_order[m]
        indices = reduction.indices + top_k_place(reduction, m, d) * k
        values = reduction.values + top_k_place(reduction, m, d) * k
        w = 0
        p = 0
        while p < size and w < k:
            if not excluded(devices, d, devs[p]):
                indices[w] = devs[p]
                values[w] = scores[p]
                w += 1
            p += 1
        while w < k:
            indices[w] = -1
            values[w] = -1
            w += 1


# -- counts: compatible classes times their counted devices, less the devices' own exclusions --
cdef inline bint compatible_in(const int64_t* row, int64_t j, const int64_t* ranges, int64_t n_ranges) noexcept nogil:
    """Whether target class j is compatible in a row evaluated over ``ranges`` (outside them: not)."""
    cdef int64_t r
    for r in range(n_ranges):
        if ranges[2 * r] <= j < ranges[2 * r + 1]:
            return row[j] >= 0
    return False


cdef void counts_row(
    const Devices* devices, const Reduction* reduction, int64_t c, const int64_t* row, const int64_t* ranges, int64_t n_ranges
) noexcept nogil:
    cdef int64_t j, m, d, p, t, h, r, base = 0, count
    for r in range(n_ranges):
        for j in range(ranges[2 * r], ranges[2 * r + 1]):
            if row[j] >= 0:
                base += reduction.counted_per_class[j]
    for m in range(devices.source_start[c], devices.source_start[c + 1]):
        d = devices.source_order[m]
        count = base
        h = devices.source_host[d]
        if devices.exclude_same_host and h > 0:
            for p in range(devices.host_start[h], devices.host_start[h + 1]):
                t = devices.host_order[p]
                if reduction.counted[t] and compatible_in(row, devices.target_class[t], ranges, n_ranges):
                    count -= 1
        t = devices.source_twin[d]
        if t >= 0 and reduction.counted[t] and compatible_in(row, devices.target_class[t], ranges, n_ranges):
            if not (devices.exclude_same_host and h > 0 and devices.target_host[t] == h):  # not already taken off
                count -= 1
        reduction.values[d] = count


# -- sparse rows: every compatible target device, in device order, at its place in the CSR ----
cdef void sparse_row(
    const Devices* devices, const Reduction* reduction, int64_t c, const int64_t* row, const int64_t* ranges, int64_t n_ranges,
    uint64_t* found,
) noexcept nogil:
    """``found`` (a bit per target device, zeroed, left zeroed) puts the compatible devices of
    every visited class in device order: classes interleave, and sorting costs more."""
    cdef int64_t j, r, t, m, d, p, w, at, n_words = (devices.n_targets + 63) >> 6
    cdef uint64_t word
    for r in range(n_ranges):
        for j in range(ranges[2 * r], ranges[2 * r + 1]):
            if row[j] >= 0:
                for p in range(devices.class_start[j], devices.class_start[j + 1]):
                    t = devices.class_order[p]
                    found[t >> 6] |= 1ULL << (t & 63)
    for m in range(devices.source_start[c], devices.source_start[c + 1]):
        d = devices.source_order[m]
        at = reduction.indptr[d]
        for w in range(n_words):
            word = found[w]
            while word:
                t = (w << 6) + __builtin_ctzll(word)
                word &= word - 1
                if not excluded(devices, d, t):
                    reduction.indices[at] = t
                    # score + 1: a compatible pair whose score is 0 is still a stored entry >= 1
                    reduction.values[at] = row[devices.target_class[t]] + 1
                    at += 1
    for w in range(n_words):
        found[w] = 0


# -- dense rows: one value per target device, the devices' exclusions applied ----------------
cdef void dense_row(
    const Devices* devices, const Reduction* reduction, int64_t c, const int64_t* row, const int64_t* ranges, int64_t n_ranges
) noexcept nogil:
    """The rows of the devices of source class c: the class's row, written once for its first
    device and copied to the others, then each device's own exclusions. Blocked (compatible and
    scores), a row starts all incompatible and only the visited classes' devices are written."""
    cdef int64_t n = devices.n_targets, t, m, d, p, h, j, r, o, first = -1
    cdef const int64_t* target_class = devices.target_class
    cdef uint8_t* flags
    cdef int64_t* values
    cdef bint whole = n_ranges == 1 and ranges[0] == 0 and ranges[1] == devices.n_classes
    if devices.source_start[c] == devices.source_start[c + 1]:
        return
    first = devices.source_order[devices.source_start[c]]
    if reduction.kind == REDUCE_COMPATIBLE:
        flags = reduction.flags + first * n
        if whole:
            for t in range(n):
                flags[t] = row[target_class[t]] >= 0
        else:
            memset(flags, 0, n)
            for r in range(n_ranges):
                for j in range(ranges[2 * r], ranges[2 * r + 1]):
                    if row[j] >= 0:
                        for p in range(devices.class_start[j], devices.class_start[j + 1]):
                            flags[devices.class_order[p]] = 1
    elif reduction.kind == REDUCE_SCORES:
        values = reduction.values + first * n
        if whole:
            for t in range(n):
                o = row[target_class[t]]
                values[t] = o if o >= 0 else -1
        else:
            memset(values, 0xFF, n * sizeof(int64_t))  # -1
            for r in range(n_ranges):
                for j in range(ranges[2 * r], ranges[2 * r + 1]):
                    if row[j] >= 0:
                        for p in range(devices.class_start[j], devices.class_start[j + 1]):
                            values[devices.class_order[p]] = row[j]
    else:  # reasons: always the whole row, every pair's reasons
        values = reduction.values + first * n
        for t in range(n):
            o = row[target_class[t]]
            values[t] = <int64_t>(<uint64_t>o & ~INCOMPATIBLE) if o < 0 else 0
    cdef int64_t width = n if reduction.kind == REDUCE_COMPATIBLE else n * <int64_t>sizeof(int64_t)
    cdef const char* source_row = <const char*>reduction.flags + first * n if reduction.kind == REDUCE_COMPATIBLE else <const char*>(reduction.values + first * n)
    for m in range(devices.source_start[c] + 1, devices.source_start[c + 1]):
        d = devices.source_order[m]
        if reduction.kind == REDUCE_COMPATIBLE:
            memcpy(reduction.flags + d * n, source_row, width)
        else:
            memcpy(reduction.values + d * n, source_row, width)
    # Each device's own exclusions: its host's targets, and itself.
    for m in range(devices.source_start[c], devices.source_start[c + 1]):
        d = devices.source_order[m]
        h = devices.source_host[d]
        if devices.exclude_same_host and h > 0:
            for p in range(devices.host_start[h], devices.host_start[h + 1]):
                exclude_in_row(reduction, d, n, devices.host_order[p], SAME_HOST)
        if devices.source_twin[d] >= 0:
            exclude_in_row(reduction, d, n, devices.source_twin[d], SAME_DEVICE)


cdef inline void exclude_in_row(const Reduction* reduction, int64_t d, int64_t n, int64_t t, uint64_t reason) noexcept nogil:
    if reduction.kind == REDUCE_COMPATIBLE:
        reduction.flags[d * n + t] = 0
    elif reduction.kind == REDUCE_SCORES:
        reduction.values[d * n + t] = -1
    else:
        reduction.values[d * n + t] = <int64_t>(<uint64_t>reduction.values[d * n + t] | reason)


cdef inline void reduce_row(
    const Devices* devices, const Reduction* reduction, int64_t c, const int64_t* row, const int64_t* ranges, int64_t n_ranges,
    int64_t* scratch,
) noexcept nogil:
    if reduction.kind == REDUCE_TOP_K:
        top_k_row(devices, reduction, c, row, ranges, n_ranges, scratch)
    elif reduction.kind == REDUCE_COUNTS:
        counts_row(devices, reduction, c, row, ranges, n_ranges)
    elif reduction.kind == REDUCE_SPARSE:
        sparse_row(devices, reduction, c, row, ranges, n_ranges, <uint64_t*>scratch)
    else:
        dense_row(devices, reduction, c, row, ranges, n_ranges)


cdef void evaluate_and_reduce(
    const Kernel* kernel,
    int64_t i0,
    int64_t i1,
    uint64_t* scratch,
    int64_t* rows,
    int64_t row_stride,
    int64_t* reduce_scratch,
    int64_t reduce_stride,
    const uint8_t* target_matches,
    const uint8_t* source_matches,
    const Devices* devices,
    const Reduction* reduction,
    bint blocked,
    int workers,
    lane_t* lane,
) noexcept nogil:
    """Source classes i0..i1: each row evaluated into its thread's row buffer, then reduced.
    ``blocked``: only the target classes the blocking leaves are evaluated and read."""
    cdef int64_t i, tid, n_ranges, stride = scratch_words(kernel)
    cdef int64_t whole[2]
    cdef const int64_t* ranges
    whole[0] = 0
    whole[1] = kernel.tgt.n
    # dynamic, in chunks of 64 rows: a thread descheduled by another process (a shared 2-core
    # machine) holds up only its chunk, which guided's first chunks (half the rows) did not allow;
    # each row's reduction writes its own devices' places, so nothing is gained by long runs.
    for i in prange(i0, i1, num_threads=workers, schedule="dynamic", chunksize=64):
        tid = threadid()
        if devices.source_start[i] == devices.source_start[i + 1]:
            continue  # no device of this class is asked about
        ranges = row_ranges(kernel, i, blocked, whole)  # assigned, so each thread has its own
        n_ranges = row_range_count(kernel, i, blocked)
        evaluate_one(kernel, i, scratch + tid * stride, rows + tid * row_stride, target_matches, source_matches, ranges, n_ranges, lane)
        reduce_row(devices, reduction, i, rows + tid * row_stride, ranges, n_ranges, reduce_scratch + tid * reduce_stride)


cdef inline const int64_t* _at64(const int64_t[::1] values) noexcept:
    return &values[0] if values.shape[0] else NULL


cdef class DeviceView:
    """The device-level arrays the reductions read: the target side once per fleet
    (``for_targets``), the sources of one result or request on top (``with_sources``).
    Built by ``fastmatch.result.DeviceRules``, which documents what each array holds."""

    cdef Devices arrays
    cdef tuple keep

    @staticmethod
    def for_targets(
        const int64_t[::1] target_class,
        const int64_t[::1] target_host,
        const int64_t[::1] available_order,
        const int64_t[::1] available_start,
        const int64_t[::1] class_order,
        const int64_t[::1] class_start,
        const int64_t[::1] host_order,
        const int64_t[::1] host_start,
        bint exclude_same_host,
    ):
        cdef DeviceView view = DeviceView.__new__(DeviceView)
        view.arrays.n_targets = target_class.shape[0]
        view.arrays.n_classes = class_start.shape[0] - 1
        view.arrays.target_class = _at64(target_class)
        view.arrays.target_host = _at64(target_host)
        view.arrays.available_order = _at64(available_order)
        view.arrays.available_start = _at64(available_start)
        view.arrays.class_order = _at64(class_order)
        view.arrays.class_start = _at64(class_start)
        view.arrays.host_order = _at64(host_order)
        view.arrays.host_start = _at64(host_start)
        view.arrays.exclude_same_host = exclude_same_host
        available_host = np.empty(available_order.shape[0], dtype=np.int64)
        cdef int64_t[::1] hosts = available_host
        cdef int64_t p
        with nogil:
            for p in range(available_order.shape[0]):
                hosts[p] = target_host[available_order[p]]
        view.arrays.available_host = _at64(hosts)
        view.keep = (
            target_class, target_host, available_order, available_start, class_order, class_start, host_order, host_start,
            available_host,
        )
        return view

    def with_sources(
        self,
        const int64_t[::1] source_order,
        const int64_t[::1] source_start,
        const int64_t[::1] source_host,
        const int64_t[::1] source_twin,
    ):
        cdef DeviceView view = DeviceView.__new__(DeviceView)
        view.arrays = self.arrays
        view.arrays.source_order = _at64(source_order)
        view.arrays.source_start = _at64(source_start)
        view.arrays.source_host = _at64(source_host)
        view.arrays.source_twin = _at64(source_twin)
        view.keep = (self, source_order, source_start, source_host, source_twin)
        return view


def group_positions(const int64_t[::1] keys, int64_t n_groups):
    """``(order, start)``: the positions whose key is g are ``order[start[g]:start[g + 1]]``, in
    position order; positions whose key is outside 0..n_groups - 1 belong to no group and come
    last. A counting sort: two passes over the keys (a stable argsort took most of a blocked
    match's device view)."""
    cdef int64_t n = keys.shape[0], p, g
    order = np.empty(n, dtype=np.int64)
    start = np.zeros(n_groups + 2, dtype=np.int64)
    cdef int64_t[::1] placed = order
    cdef int64_t[::1] next_of = start
    with nogil:
        for p in range(n):
            g = keys[p]
            next_of[(g if 0 <= g < n_groups else n_groups) + 1] += 1
        for g in range(n_groups + 1):
            next_of[g + 1] += next_of[g]
        for p in range(n):
            g = keys[p]
            g = g if 0 <= g < n_groups else n_groups
            placed[next_of[g]] = p
            next_of[g] += 1
    # next_of[g] is now the end of group g, which is where group g + 1 starts.
    start[1:] = start[:-1].copy()
    start[0] = 0
    return order, start[: n_groups + 1]
