# cython: language_level=3
"""Native help for reading fleet JSON Lines faster than msgspec decodes them.

- :func:`read_file`: a regular file read into one bytes object, its lines' lengths checked
  as the bytes arrive (GIL released while reading and scanning);
- :func:`count_lines`: the lines that are not blank;
- :class:`LineCoder`: the per-device columns of the file's lines, read where they lie when a
  line is written plainly (msgspec decodes the others), and each line's descriptor coded by
  its ``self`` and ``compatible`` bytes in a C hash table: no Python object is made per line
  beyond its id, host and vm;
- :func:`code_strings` and :func:`positions_in`: a device column of str (hosts, ids) coded,
  or looked up in another, in the same C hash tables: no dict or set of a million str;
- :func:`group_rows` and :func:`arrow_strings`: a columnar fleet's rows grouped by their
  descriptor codes, and its string columns made str.

It knows nothing of policies or records: ``fastmatch.files`` and
``fastmatch.formats.fleet_lines`` say what the answers mean.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from cpython.list cimport PyList_GET_ITEM, PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.sequence cimport PySequence_Fast_ITEMS
from libc.errno cimport EINTR, errno
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

import numpy as np

cdef extern from "unistd.h" nogil:
    ssize_t pread(int fd, void* buf, size_t count, long offset)

cdef extern from "Python.h":
    PyObject* Py_None
    # Reading a str's characters needs no reference and no GIL: str is immutable.
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject*) nogil
    int PyUnicode_KIND(PyObject*) nogil
    void* PyUnicode_DATA(PyObject*) nogil
    bint PyUnicode_Check(PyObject*)
    object PyUnicode_DecodeUTF8(const char* data, Py_ssize_t size, const char* errors)
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

# Bytes read between two checks of the lines and two progress updates: a few milliseconds.
cdef enum:
    READ_CHUNK = 1 << 23
    NEWLINE = 10  # \n
    OPEN = 123  # {
    CLOSE = 125  # }


# -- reading a regular file ----------------------------------------------------------------------
def read_file(int fd, long start, Py_ssize_t size, Py_ssize_t max_line, progress):
    """``size`` bytes of the regular file ``fd`` from offset ``start`` (fewer if it ends first),
    read into one bytes object a chunk at a time, the GIL released; the descriptor's own
    position is left alone.

    Returns ``(data, long_line)``: ``long_line`` is 0, or the number (from 1) of the first line
    longer than ``max_line`` bytes when ``max_line >= 0``, found as the bytes arrive; reading
    then stops there (``data`` is empty), so a huge one-line file costs a chunk of memory, not
    its size. ``progress(n)`` is called with each chunk's size.
    """
    data = PyBytes_FromStringAndSize(NULL, size)
    cdef char* base = PyBytes_AS_STRING(data)
    cdef Py_ssize_t done = 0, want, got
    cdef Py_ssize_t newlines = 0, line_start = 0
    cdef bint too_long = False
    while done < size:
        want = min(<Py_ssize_t>READ_CHUNK, size - done)
        with nogil:
            got = pread(fd, base + done, want, start + done)
        if got < 0:
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
            PyErr_CheckSignals()  # Ctrl-C during a read: KeyboardInterrupt
            continue
        if got == 0:
            break
        if max_line >= 0:
            with nogil:
                too_long = _line_too_long(base, done, done + got, max_line, &newlines, &line_start)
            if too_long:
                return b"", newlines + 1
        done += got
        progress(got)
    return (data if done == size else data[:done]), 0  # a file that shrank while read: a copy


cdef bint _line_too_long(
    const char* data, Py_ssize_t start, Py_ssize_t end, Py_ssize_t max_line, Py_ssize_t* newlines, Py_ssize_t* line_start
) noexcept nogil:
    """Whether a line of ``data[:end]`` is longer than ``max_line`` bytes, scanning on from
    ``start`` (``newlines`` and ``line_start`` carry on from chunk to chunk; at a long line,
    ``newlines`` counts the lines before it)."""
    cdef const char* found
    cdef Py_ssize_t at = start
    while at < end:
        found = <const char*>memchr(data + at, NEWLINE, end - at)
        if found == NULL:
            break
        at = found - data
        if at - line_start[0] > max_line:
            return True
        newlines[0] += 1
        at += 1
        line_start[0] = at
    return end - line_start[0] > max_line


# -- the lines of a fleet JSON Lines file -------------------------------------------------------
cdef inline bint _blank(const unsigned char* p, const unsigned char* end) noexcept nogil:
    """Whether a line is empty or all white space as ``bytes.isspace`` has it (the lines the
    readers pass over)."""
    while p < end:
        if not (p[0] == 32 or 9 <= p[0] <= 13):  # space, \t \n \v \f \r
            return False
        p += 1
    return True


def count_lines(const uint8_t[::1] data):
    """The lines of ``data`` (split at each newline) that are not blank (:func:`_blank`)."""
    cdef Py_ssize_t n = data.shape[0], lines = 0
    if n == 0:
        return 0
    cdef const unsigned char* p = &data[0]
    cdef const unsigned char* end = p + n
    cdef const unsigned char* stop
    with nogil:
        while p < end:
            stop = <const unsigned char*>memchr(p, NEWLINE, end - p)
            if stop == NULL:
                stop = end
            if not _blank(p, stop):
                lines += 1
            p = stop + 1
    return lines


# -- the columns of a fleet file's lines ---------------------------------------------------------
cdef extern from "hashing.h" nogil:
    uint64_t fm_mix(uint64_t h)


cdef extern from *:
    """
    static inline uint64_t fm_step(uint64_t h, const unsigned char* p) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        return h ^ (h >> 29);
    }
    /* A hash only picks a slot: equal keys are always compared in full. Four independent
       lanes over 32 bytes at a time, so that the multiplies overlap. */
    static inline uint64_t fm_hash(const void* data, Py_ssize_t n, uint64_t seed) {
        const unsigned char* p = (const unsigned char*)data;
        uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL), w;
        if (n >= 32) {
            uint64_t b = 0x2545f4914f6cdd1dULL, c = 0x94d049bb133111ebULL, d = 0xbf58476d1ce4e5b9ULL;
            while (n >= 32) {
                h = fm_step(h, p); b = fm_step(b, p + 8); c = fm_step(c, p + 16); d = fm_step(d, p + 24);
                p += 32; n -= 32;
            }
            h ^= fm_mix(b) ^ fm_mix(c + 1) ^ fm_mix(d + 2);
        }
        while (n >= 8) { h = fm_step(h, p); p += 8; n -= 8; }
        if (n) { w = 0; memcpy(&w, p, (size_t)n); h = (h ^ w) * 0xff51afd7ed558ccdULL; }
        return fm_mix(h);
    }
    """
    uint64_t fm_hash(const void* data, Py_ssize_t n, uint64_t seed) nogil

# Lines gathered (with the GIL) before they are coded (without it): a block's spans stay in L2.
cdef enum:
    BLOCK = 4096
    PREFETCH = 16  # lines ahead: enough misses in flight to hide memory's latency

cdef extern from *:
    void __builtin_prefetch(const void*) nogil


cdef struct Span:
    const char* data
    Py_ssize_t size


cdef struct LineKey:
    Span self_
    Span compatible  # size 0: the line has no "compatible"
    Span version  # the migration version's UTF-8 bytes; data NULL: none (absent or null)
    bint migratable


cdef struct Descriptor:
    LineKey key
    uint64_t hash
    Py_ssize_t first_row


cdef struct Table:
    uint64_t* slots  # each slot: 0, or the tag of a key's hash (bits of its high half) over its number + 1
    uint64_t mask
    uint64_t tags  # which bits of a hash are its tag


cdef enum:
    EMPTY = 0


cdef inline uint64_t _tag(const Table* table, uint64_t h) noexcept nogil:
    return h & table.tags


cdef inline int64_t _held(uint64_t slot) noexcept nogil:
    return <int64_t>(slot & 0xFFFFFFFFULL) - 1


cdef int _table_init(Table* table, Py_ssize_t entries, int tag_bits) except -1 nogil:
    """A table for ``entries`` keys (at most half full), empty; ``tag_bits`` (at most 32) of
    each hash kept in its slot, to tell most other keys apart without reading them."""
    if <uint64_t>entries >= 0xFFFFFFFFULL:  # a slot holds a key's number + 1 in 32 bits
        with gil:
            raise OverflowError(f"{entries:,} keys are more than a table holds")
    cdef uint64_t size = 16
    while size < 2 * <uint64_t>entries:
        size <<= 1
    table.slots = <uint64_t*>calloc(size, sizeof(uint64_t))
    if table.slots == NULL:
        with gil:
            raise MemoryError()
    table.mask = size - 1
    table.tags = (0xFFFFFFFF00000000ULL << (32 - tag_bits)) if tag_bits else 0
    return 0


cdef int _table_rebuilt(Table* table, Py_ssize_t entries) except -1 nogil:
    """The table emptied and sized for ``entries`` keys, its tag bits kept: the caller then
    places every key again (``_place``)."""
    cdef uint64_t tags = table.tags
    free(table.slots)
    table.slots = NULL
    _table_init(table, entries, 0)
    table.tags = tags
    return 0


cdef inline void _place(Table* table, uint64_t h, Py_ssize_t k) noexcept nogil:
    """Key number ``k``, whose hash is ``h``, in the first empty slot from its own."""
    cdef uint64_t slot = h & table.mask
    while table.slots[slot] != EMPTY:
        slot = (slot + 1) & table.mask
    table.slots[slot] = _tag(table, h) | <uint64_t>(k + 1)


cdef struct Scratch:  # a block's hashes and first guesses, kept apart from the tables
    uint64_t id_hash[BLOCK]
    uint64_t key_hash[BLOCK]
    int64_t candidate[BLOCK]


cdef inline bint _same_str(PyObject* a, PyObject* b) noexcept nogil:
    """Equal str objects: same kind (canonical, so equal strings share it), length and units."""
    if a == b:
        return True
    if a == Py_None or b == Py_None:
        return False
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(a)
    cdef int kind = PyUnicode_KIND(a)
    return n == PyUnicode_GET_LENGTH(b) and kind == PyUnicode_KIND(b) and memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), n * kind) == 0


cdef inline uint64_t _str_hash(PyObject* s, uint64_t seed) noexcept nogil:
    if s == Py_None:
        return fm_mix(seed)
    return fm_hash(PyUnicode_DATA(s), PyUnicode_GET_LENGTH(s) * PyUnicode_KIND(s), seed ^ <uint64_t>PyUnicode_KIND(s))


cdef inline bint _same_span(Span a, Span b) noexcept nogil:
    return a.size == b.size and (a.data == b.data or memcmp(a.data, b.data, a.size) == 0)


cdef inline bint _same_version(Span a, Span b) noexcept nogil:
    if a.data == NULL or b.data == NULL:  # none: absent or null
        return a.data == b.data
    return _same_span(a, b)


cdef inline bint _same_key(const LineKey* a, const LineKey* b) noexcept nogil:
    return (
        a.migratable == b.migratable
        and _same_span(a.self_, b.self_)
        and _same_span(a.compatible, b.compatible)
        and _same_version(a.version, b.version)
    )


cdef inline uint64_t _key_hash(const LineKey* key) noexcept nogil:
    cdef uint64_t h = fm_hash(key.self_.data, key.self_.size, key.migratable)
    h = fm_hash(key.compatible.data, key.compatible.size, h)
    if key.version.data == NULL:
        return fm_mix(h)
    return fm_hash(key.version.data, key.version.size, h ^ 1)


cdef Span _span(raw) except *:
    cdef Py_buffer view
    PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE)
    # The Raw keeps the bytes it views alive, and the coder keeps its line: the span outlives the view.
    cdef Span span = Span(<const char*>view.buf, view.len)
    PyBuffer_Release(&view)
    return span


# -- scanning a fleet line where it lies ---------------------------------------------------------
cdef enum:
    QUOTE = 34  # "
    COMMA = 44  # ,
    MINUS = 45  # -
    DOT = 46  # .
    COLON = 58  # :
    OPEN_LIST = 91  # [
    BACKSLASH = 92  # \
    CLOSE_LIST = 93  # ]
    MAX_DIGITS = 18  # a capacity of at most this many digits fits an int64
    # The keys of a fleet line, one bit each.
    HAS_ID = 1
    HAS_HOST = 2
    HAS_VM = 4
    HAS_SELF = 8
    HAS_COMPATIBLE = 16
    HAS_CAPACITY = 32
    HAS_VERSION = 64
    HAS_MIGRATABLE = 128


cdef struct Scanned:  # a line's per-device fields as spans into the file (``plain``), or its bytes for msgspec
    Span line
    Span id
    Span host  # size 0: empty, absent or null; vm too
    Span vm
    int64_t capacity
    bint plain


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    return c == 32 or c == 9 or c == 13  # JSON's white space, newline aside (a line holds none)


cdef inline const unsigned char* _skip_space(const unsigned char* p, const unsigned char* end) noexcept nogil:
    while p < end and _is_space(p[0]):
        p += 1
    return p


cdef extern from *:
    """
    /* Eight bytes at a time (SWAR): a bit set in the high bit of each byte of w equal to c, or
       below c (c <= 128). Borrows run only upward from a byte that is one, so the lowest bit
       set is always a true one: the first such byte, on a little-endian machine. */
    #define FM_ONES 0x0101010101010101ULL
    #define FM_HIGHS 0x8080808080808080ULL
    static inline uint64_t fm_equal_bytes(uint64_t w, unsigned char c) {
        uint64_t x = w ^ (FM_ONES * c);
        return (x - FM_ONES) & ~x & FM_HIGHS;
    }
    static inline uint64_t fm_bytes_below(uint64_t w, unsigned char c) {
        return (w - FM_ONES * c) & ~w & FM_HIGHS;
    }
    /* The first byte from p on that ends a run of a JSON string's plain characters: a quote, a
       backslash or (with controls) a control character; end if none. */
    static inline const unsigned char* fm_string_stop(const unsigned char* p, const unsigned char* end, int controls) {
        uint64_t w, hit;
        while (end - p >= 8) {
            memcpy(&w, p, 8);
            hit = fm_equal_bytes(w, 0x22) | fm_equal_bytes(w, 0x5c);  /* " and backslash */
            if (controls)
                hit |= fm_bytes_below(w, 0x20);
            if (hit)
                return p + (__builtin_ctzll(hit) >> 3);
            p += 8;
        }
        while (p < end && *p != 0x22 && *p != 0x5c && !(controls && *p < 0x20))
            p++;
        return p;
    }
    """
    const unsigned char* fm_string_stop(const unsigned char* p, const unsigned char* end, int controls) nogil


cdef inline const unsigned char* _plain_string(const unsigned char* p, const unsigned char* end, Span* text) noexcept nogil:
    """The string whose quote is at ``p``, when it holds no escape and no control character:
    its bytes in ``text``, and where it ends; else NULL."""
    cdef const unsigned char* start = p + 1
    p = fm_string_stop(start, end, True)
    if p == end or p[0] != QUOTE:
        return NULL
    text.data = <const char*>start
    text.size = p - start
    return p + 1


cdef inline const unsigned char* _value_end(const unsigned char* p, const unsigned char* end) noexcept nogil:
    """Where the JSON value at ``p`` ends, exactly when it is valid JSON (msgspec decodes every
    distinct one, and refuses the others: an invalid value never passes); NULL when the line
    ends first."""
    cdef Py_ssize_t depth = 0
    cdef unsigned char c = p[0]
    if c != OPEN and c != OPEN_LIST and c != QUOTE:  # a number or a literal: up to what follows it
        while p < end and p[0] != COMMA and p[0] != CLOSE and p[0] != CLOSE_LIST and not _is_space(p[0]):
            p += 1
        return p
    while p < end:
        c = p[0]
        if c == QUOTE:
            while True:
                p = fm_string_stop(p + 1, end, False)
                if p >= end:
                    return NULL
                if p[0] == QUOTE:
                    break
                p += 1  # a backslash: the character it escapes is passed over
        elif c == OPEN or c == OPEN_LIST:
            depth += 1
        elif c == CLOSE or c == CLOSE_LIST:
            depth -= 1
        p += 1
        if depth == 0:
            return p
    return NULL


cdef inline const unsigned char* _integer(const unsigned char* p, const unsigned char* end, int64_t* value) noexcept nogil:
    """The JSON integer at ``p`` when it has at most MAX_DIGITS digits, and where it ends; else
    NULL (a fraction or an exponent too: msgspec reads those as floats, and refuses them)."""
    cdef bint negative = p[0] == MINUS
    cdef int64_t v = 0
    if negative:
        p += 1
    cdef const unsigned char* start = p
    while p < end and 48 <= p[0] <= 57:
        if p - start == MAX_DIGITS:
            return NULL
        v = 10 * v + (p[0] - 48)
        p += 1
    if p == start or (start[0] == 48 and p - start > 1):  # no digit, or a leading zero
        return NULL
    if p < end and (p[0] == DOT or p[0] == 101 or p[0] == 69):  # . e E
        return NULL
    value[0] = -v if negative else v
    return p


cdef inline bint _literal(const unsigned char* p, const unsigned char* end, const char* word, Py_ssize_t size) noexcept nogil:
    return end - p >= size and memcmp(p, word, size) == 0


cdef inline unsigned int _key_bit(Span name) noexcept nogil:
    """The bit of a fleet line's key written as is; 0 for any other."""
    cdef const char* s = name.data
    if name.size == 2:
        return HAS_ID if memcmp(s, b"id", 2) == 0 else HAS_VM if memcmp(s, b"vm", 2) == 0 else 0
    if name.size == 4:
        return HAS_HOST if memcmp(s, b"host", 4) == 0 else HAS_SELF if memcmp(s, b"self", 4) == 0 else 0
    if name.size == 8:
        return HAS_CAPACITY if memcmp(s, b"capacity", 8) == 0 else 0
    if name.size == 10:
        return HAS_COMPATIBLE if memcmp(s, b"compatible", 10) == 0 else HAS_MIGRATABLE if memcmp(s, b"migratable", 10) == 0 else 0
    if name.size == 17:
        return HAS_VERSION if memcmp(s, b"migration_version", 17) == 0 else 0
    return 0


cdef bint _scan_line(const unsigned char* p, const unsigned char* end, Scanned* line, LineKey* key) noexcept nogil:
    """The fields of a fleet line written plainly: every key of a fleet line at most once, written
    without escapes, an id, and strings without escapes (nor control characters) for the id,
    host, vm and migration version, a capacity of at most MAX_DIGITS digits. False for any
    other line, valid or not: msgspec then decodes it. What a valid line gives is what msgspec
    gives (``self`` and ``compatible``: the bytes its Raw holds); for the bytes of ``self``
    and ``compatible``, and the UTF-8 of the strings, see ``LineCoder``."""
    cdef unsigned int seen = 0, bit
    cdef Span name, text
    cdef const unsigned char* start
    line.host.size = 0
    line.vm.size = 0
    line.capacity = 1
    key.compatible = Span(NULL, 0)
    key.version = Span(NULL, 0)
    key.migratable = True
    p = _skip_space(p, end)
    if p == end or p[0] != OPEN:
        return False
    p = _skip_space(p + 1, end)
    while True:
        if p == end or p[0] != QUOTE:
            return False
        p = _plain_string(p, end, &name)
        if p == NULL:
            return False
        bit = _key_bit(name)
        if bit == 0 or seen & bit:  # msgspec keeps a repeated key's last value: it decides
            return False
        seen |= bit
        p = _skip_space(p, end)
        if p == end or p[0] != COLON:
            return False
        p = _skip_space(p + 1, end)
        if p == end:
            return False
        if bit == HAS_SELF or bit == HAS_COMPATIBLE:
            start = p
            p = _value_end(p, end)
            if p == NULL or p == start:
                return False
            text = Span(<const char*>start, p - start)
            if bit == HAS_SELF:
                key.self_ = text
            else:
                key.compatible = text
        elif bit == HAS_CAPACITY:
            p = _integer(p, end, &line.capacity)
            if p == NULL:
                return False
        elif bit == HAS_MIGRATABLE:
            if _literal(p, end, b"true", 4):
                p += 4
            elif _literal(p, end, b"false", 5):
                key.migratable = False
                p += 5
            else:
                return False
        elif p[0] == QUOTE:
            p = _plain_string(p, end, &text)
            if p == NULL:
                return False
            if bit == HAS_ID:
                line.id = text
            elif bit == HAS_HOST:
                line.host = text
            elif bit == HAS_VM:
                line.vm = text
            else:
                key.version = text
        elif bit != HAS_ID and _literal(p, end, b"null", 4):  # the default stays
            p += 4
        else:
            return False
        p = _skip_space(p, end)
        if p == end:
            return False
        if p[0] == CLOSE:
            return _skip_space(p + 1, end) == end and (seen & (HAS_ID | HAS_SELF)) == (HAS_ID | HAS_SELF)
        if p[0] != COMMA:
            return False
        p = _skip_space(p + 1, end)


cdef const unsigned char* _scan_block(
    const unsigned char* p, const unsigned char* end, Scanned* lines, LineKey* keys, Py_ssize_t* count
) noexcept nogil:
    """Scan the next BLOCK lines that are not blank from ``p`` (at a line's start) on; where
    the next block starts."""
    cdef const unsigned char* stop
    cdef Py_ssize_t j = 0
    while p < end and j < BLOCK:
        stop = <const unsigned char*>memchr(p, NEWLINE, end - p)
        if stop == NULL:
            stop = end
        if not _blank(p, stop):
            lines[j].line = Span(<const char*>p, stop - p)
            lines[j].plain = _scan_line(p, stop, &lines[j], &keys[j])
            j += 1
        p = stop + 1 if stop < end else end
    count[0] = j
    return p


cdef class LineCoder:
    """The columns of a fleet JSON Lines file (``data``, ``n`` lines that are not blank) and its
    lines' descriptors coded, given a range of its lines at a time (``add``); ``columns`` at
    the end.

    A line written plainly (:func:`_scan_line`: nearly all lines) is read where it lies: its
    id, host and vm made str (a host or vm the same as the line before's is that str again),
    its ``self`` and ``compatible`` hashed in place; no other object is made for it. Any other
    line is decoded by ``decode_line`` (msgspec, into a struct with the attributes ``id``,
    ``self_`` and ``compatible`` (Raw), ``host``, ``vm``, ``capacity``, ``migration_version``
    and ``migratable``), which raises where the line is not valid. Lines are alike when their
    ``self`` and ``compatible`` bytes, migration version and migratable are: each line's group
    is numbered in order of its first line. ``hosts`` and ``vms`` hold ``empty`` where a line
    has none.
    """

    cdef bytes data
    cdef object decode_line
    cdef Py_ssize_t n, rows
    cdef str empty
    cdef list ids, hosts, vms, decoded, last_text
    cdef object capacities, descriptor_of
    cdef Scanned* lines
    cdef LineKey* keys
    cdef Scratch* scratch
    cdef PyObject** id_of_row  # borrowed: ``ids`` holds them
    cdef Descriptor* found  # its spans point into ``data`` or ``decoded``
    cdef Py_ssize_t n_found, found_room
    cdef Table by_id, by_key
    cdef Span last_span[2]  # the bytes of the last host and vm made str (``last_text``)

    def __cinit__(self, bytes data, Py_ssize_t n, str empty, decode_line, int tag_bits=32):
        """``tag_bits`` below 32 make keys share tags (0: all of them), so that tests reach the
        paths that tell such keys apart."""
        if not 0 <= tag_bits <= 32:
            raise ValueError(f"tag_bits must be in [0, 32], got {tag_bits}")
        self.data = data
        self.decode_line = decode_line
        self.n = n
        self.empty = empty
        # Empty slots (NULL) until the lines fill them: a list frees and the GC walks such slots
        # safely, and the lists are handed out only once every line has filled its own.
        self.ids = PyList_New(n)
        self.hosts = PyList_New(n)
        self.vms = PyList_New(n)
        self.decoded = []
        self.last_text = [empty, empty]
        self.last_span[0] = self.last_span[1] = Span(NULL, 0)
        self.capacities = np.empty(n, dtype=np.int64)
        self.descriptor_of = np.empty(n, dtype=np.int64)
        self.found_room = 64
        self.lines = <Scanned*>malloc(BLOCK * sizeof(Scanned))
        self.keys = <LineKey*>malloc(BLOCK * sizeof(LineKey))
        self.scratch = <Scratch*>malloc(sizeof(Scratch))
        self.id_of_row = <PyObject**>malloc(max(n, 1) * sizeof(PyObject*))
        self.found = <Descriptor*>malloc(self.found_room * sizeof(Descriptor))
        if self.lines == NULL or self.keys == NULL or self.scratch == NULL or self.id_of_row == NULL or self.found == NULL:
            raise MemoryError()
        _table_init(&self.by_id, n, tag_bits)
        _table_init(&self.by_key, self.found_room, tag_bits)

    def __dealloc__(self):
        free(self.lines)
        free(self.keys)
        free(self.scratch)
        free(self.id_of_row)
        free(self.found)
        free(self.by_id.slots)
        free(self.by_key.slots)

    def add(self, Py_ssize_t start, Py_ssize_t stop):
        """Code the lines of ``data[start:stop]`` (``start`` at a line's start, ``stop`` at a
        line's end); the number of lines coded, or -1 when the fast path must step aside: more
        lines than room, an empty or repeated id, a capacity below 0 or beyond int64. A line
        that msgspec refuses raises its error (a ValueError), a string that is not UTF-8 its
        UnicodeDecodeError."""
        if not 0 <= start <= stop <= len(self.data):
            raise ValueError(f"[{start}, {stop}) is not a range of the {len(self.data)} bytes")
        cdef const unsigned char* base = <const unsigned char*>PyBytes_AS_STRING(self.data)
        cdef const unsigned char* p = base + start
        cdef const unsigned char* end = base + stop
        cdef Py_ssize_t count, before = self.rows
        cdef int64_t[::1] capacity = self.capacities
        cdef int64_t[::1] group = self.descriptor_of
        cdef bint refused
        while p < end:
            with nogil:
                p = _scan_block(p, end, self.lines, self.keys, &count)
            if self.rows + count > self.n:
                return -1
            try:
                self._fill_columns(count, &capacity[0])
            except OverflowError:  # a capacity beyond int64
                return -1
            with nogil:
                refused = _code_block(
                    self.keys, self.id_of_row, self.scratch, self.rows, self.rows + count, &self.by_id, &self.by_key,
                    &self.found, &self.n_found, &self.found_room, &capacity[0], &group[0],
                )
            if refused:
                return -1
            self.rows += count
        return self.rows - before

    cdef int _fill_columns(self, Py_ssize_t count, int64_t* capacity) except -1:
        """A block's ids, hosts and vms made str and put in the columns, its capacities; the lines
        that are not plain decoded by msgspec, their fields read from what it makes."""
        cdef Py_ssize_t j, row
        cdef Scanned* line
        cdef LineKey* key
        for j in range(count):
            line = &self.lines[j]
            key = &self.keys[j]
            row = self.rows + j
            if line.plain:
                device_id = PyUnicode_DecodeUTF8(line.id.data, line.id.size, NULL)
                _fill(self.hosts, row, self._repeated(line.host, 0))
                _fill(self.vms, row, self._repeated(line.vm, 1))
                capacity[row] = line.capacity
            else:
                decoded = self.decode_line(PyBytes_FromStringAndSize(line.line.data, line.line.size))
                self.decoded.append(decoded)  # its Raw values, which the keys point into, live as long as the coder
                device_id = decoded.id
                _fill(self.hosts, row, decoded.host or self.empty)
                _fill(self.vms, row, decoded.vm or self.empty)
                capacity[row] = PyLong_AsLongLong(decoded.capacity)
                key.self_ = _span(decoded.self_)
                key.compatible = _span(decoded.compatible)
                key.version = Span(NULL, 0) if decoded.migration_version is None else _utf8(decoded.migration_version)
                key.migratable = decoded.migratable is True
            _fill(self.ids, row, device_id)
            self.id_of_row[row] = <PyObject*>device_id
        return 0

    cdef object _repeated(self, Span text, int column):
        """The str of a host (``column`` 0) or vm (1): the line before's again when its bytes are the same."""
        if text.size == 0:
            return self.empty
        if _same_span(text, self.last_span[column]):
            return self.last_text[column]
        value = PyUnicode_DecodeUTF8(text.data, text.size, NULL)
        self.last_text[column] = value
        self.last_span[column] = text
        return value

    def columns(self):
        """``(ids, hosts, vms, capacities, descriptor_of, descriptors)`` of the lines added;
        ``descriptors`` holds each group's ``(self, compatible, migration_version,
        migratable)`` as its first line has them (the bytes of ``self`` and ``compatible``,
        ``b""`` without ``compatible``; the migration version's UTF-8 bytes, or None).
        ``None`` if fewer lines came than room."""
        if self.rows != self.n:
            return None
        cdef Py_ssize_t k
        first_row = np.empty(self.n_found, dtype=np.int64)
        cdef int64_t[::1] first = first_row
        for k in range(self.n_found):
            first[k] = self.found[k].first_row
        order = np.argsort(first_row, kind="stable")
        descriptors = [_parts(&self.found[k].key) for k in order.tolist()]
        if np.any(first_row[1:] < first_row[:-1]):  # keys that shared a tag were numbered late: renumber
            number = np.empty(self.n_found, dtype=np.int64)
            number[order] = np.arange(self.n_found)
            return self.ids, self.hosts, self.vms, self.capacities, number[self.descriptor_of], descriptors
        return self.ids, self.hosts, self.vms, self.capacities, self.descriptor_of, descriptors


cdef inline void _fill(list column, Py_ssize_t row, object value):
    """Put ``value`` in a column's slot, in place of what it held, if anything (a block that
    stepped aside may have filled some of its rows)."""
    cdef PyObject* held = PyList_GET_ITEM(column, row)
    Py_INCREF(value)
    PyList_SET_ITEM(column, row, value)
    Py_XDECREF(held)


cdef Span _utf8(str text) except *:
    """A str's UTF-8 bytes (kept with it: the span lives as long as the str)."""
    cdef Py_ssize_t size
    cdef const char* data = PyUnicode_AsUTF8AndSize(text, &size)
    return Span(data, size)


cdef tuple _parts(const LineKey* key):
    version = None if key.version.data == NULL else PyBytes_FromStringAndSize(key.version.data, key.version.size)
    return (
        PyBytes_FromStringAndSize(key.self_.data, key.self_.size),
        PyBytes_FromStringAndSize(key.compatible.data, key.compatible.size),
        version,
        key.migratable,
    )


cdef bint _code_block(
    LineKey* keys,
    PyObject** id_of_row,
    Scratch* scratch,
    Py_ssize_t start,
    Py_ssize_t stop,
    Table* by_id,
    Table* by_key,
    Descriptor** found,
    Py_ssize_t* n_found,
    Py_ssize_t* found_room,
    int64_t* capacity,
    int64_t* group,
) except -1 nogil:
    """Code a block of lines: check its ids are new and non-empty, its capacities >= 0, and
    number its keys. True when the fast path must step aside.

    The tables outgrow the caches' share a block gets (the ids' always, the descriptors'
    between two visits): each pass hashes first, then fetches the slots a few lines ahead of
    probing them, so that the misses overlap instead of following one another."""
    cdef Py_ssize_t i, j, count = stop - start
    cdef uint64_t h, slot, held
    cdef int64_t entry
    cdef const Descriptor* guess
    for j in range(count):
        i = start + j
        if capacity[i] < 0 or PyUnicode_GET_LENGTH(id_of_row[i]) == 0:
            return True
        scratch.id_hash[j] = _str_hash(id_of_row[i], 0)
        scratch.key_hash[j] = _key_hash(&keys[j])
    for j in range(count):
        if j + PREFETCH < count:
            __builtin_prefetch(&by_id.slots[scratch.id_hash[j + PREFETCH] & by_id.mask])
        i = start + j
        h = scratch.id_hash[j]
        slot = h & by_id.mask
        while True:
            held = by_id.slots[slot]
            if held == EMPTY:
                by_id.slots[slot] = _tag(by_id, h) | <uint64_t>(i + 1)
                break
            if _tag(by_id, held) == _tag(by_id, h) and _same_str(id_of_row[_held(held)], id_of_row[i]):
                return True  # a duplicate id: the careful reader names both lines
            slot = (slot + 1) & by_id.mask
    # Descriptors: a first guess by the hash's tag (a new key is numbered here, in row order),
    # then each guess checked in full, the entry and its bytes fetched ahead.
    for j in range(count):
        if j + PREFETCH < count:
            __builtin_prefetch(&by_key.slots[scratch.key_hash[j + PREFETCH] & by_key.mask])
        h = scratch.key_hash[j]
        slot = h & by_key.mask
        while True:
            held = by_key.slots[slot]
            if held == EMPTY:
                if n_found[0] == found_room[0]:
                    _grow(found, found_room, by_key)
                    slot = h & by_key.mask
                    continue
                entry = _add(&keys[j], h, start + j, slot, by_key, found[0], n_found)
                break
            if _tag(by_key, held) == _tag(by_key, h):
                entry = _held(held)
                break
            slot = (slot + 1) & by_key.mask
        scratch.candidate[j] = entry
    for j in range(count):
        if j + PREFETCH < count:
            __builtin_prefetch(&found[0][scratch.candidate[j + PREFETCH]])
        if j + PREFETCH // 2 < count:
            __builtin_prefetch(found[0][scratch.candidate[j + PREFETCH // 2]].key.self_.data)
        guess = &found[0][scratch.candidate[j]]
        if guess.hash == scratch.key_hash[j] and _same_key(&guess.key, &keys[j]):
            entry = scratch.candidate[j]
        else:  # two keys share a tag: probe again, comparing in full
            entry = _find_or_add(&keys[j], scratch.key_hash[j], start + j, by_key, found, n_found, found_room)
            if found[0][entry].first_row > start + j:
                # Added by a later line of this block, whose probe met no key sharing its tag:
                # this line is its first (and its bytes, kept with it, the ones to point into).
                found[0][entry].first_row = start + j
                found[0][entry].key = keys[j]
        group[start + j] = entry
    return False


cdef inline int64_t _add(
    const LineKey* key, uint64_t h, Py_ssize_t row, uint64_t slot, Table* by_key, Descriptor* found, Py_ssize_t* n_found
) noexcept nogil:
    """A new entry for ``key``, numbered next, in the empty ``slot`` (the caller made the room)."""
    cdef int64_t entry = n_found[0]
    found[entry].key = key[0]
    found[entry].hash = h
    found[entry].first_row = row
    by_key.slots[slot] = _tag(by_key, h) | <uint64_t>(entry + 1)
    n_found[0] += 1
    return entry


cdef int64_t _find_or_add(
    const LineKey* key, uint64_t h, Py_ssize_t row, Table* by_key, Descriptor** found, Py_ssize_t* n_found, Py_ssize_t* found_room
) except -1 nogil:
    """A key's entry, found by comparing in full, or added (numbered out of row order: see
    ``LineCoder.columns``)."""
    cdef uint64_t slot = h & by_key.mask, held
    cdef int64_t entry
    while True:
        held = by_key.slots[slot]
        if held == EMPTY:
            if n_found[0] == found_room[0]:
                _grow(found, found_room, by_key)
                slot = h & by_key.mask
                continue
            return _add(key, h, row, slot, by_key, found[0], n_found)
        entry = _held(held)
        if _tag(by_key, held) == _tag(by_key, h) and found[0][entry].hash == h and _same_key(&found[0][entry].key, key):
            return entry
        slot = (slot + 1) & by_key.mask


cdef int _grow(Descriptor** found, Py_ssize_t* found_room, Table* by_key) except -1 nogil:
    """Twice the room for descriptors, and the table over them rebuilt at twice the size."""
    cdef Py_ssize_t room = 2 * found_room[0], k
    cdef Descriptor* grown = <Descriptor*>realloc(found[0], room * sizeof(Descriptor))
    if grown == NULL:
        with gil:
            raise MemoryError()
    found[0] = grown
    found_room[0] = room
    _table_rebuilt(by_key, room)
    for k in range(room // 2):
        _place(by_key, grown[k].hash, k)
    return 0


# -- coding lists of str ------------------------------------------------------------------------
cdef str EMPTY_STR = ""


def code_strings(strings, int tag_bits=32):
    """``(distinct, codes)``: the distinct str of ``strings`` in order of first appearance, the
    empty str first (code 0, whether it appears or not), and each string's code (int64): its
    position in ``distinct``. Hashing and comparing run with the GIL released.

    ``tag_bits`` below 32 make strings share hash tags (0: all of them), so that tests reach
    the paths that tell such strings apart."""
    cdef tuple held = _str_tuple(strings, "strings")  # each str alive while the GIL is released
    cdef Py_ssize_t n = len(held), n_codes = 0, i
    cdef PyObject** items = PySequence_Fast_ITEMS(held)
    codes = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] code = codes
    cdef int64_t* code_of_item = &code[0] if n else NULL
    cdef PyObject** name_of_code = <PyObject**>malloc((n + 1) * sizeof(PyObject*))
    cdef Table table
    table.slots = NULL
    try:
        if name_of_code == NULL:
            raise MemoryError()
        # Sized for few distinct strings (hosts), grown as they come: a small table stays in cache.
        _table_init(&table, min(n + 1, FIRST_CODES), tag_bits)
        with nogil:
            n_codes = _code_strings(items, n, &table, name_of_code, code_of_item, <PyObject*>EMPTY_STR)
        distinct = PyList_New(n_codes)
        for i in range(n_codes):
            Py_INCREF(<object>name_of_code[i])
            PyList_SET_ITEM(distinct, i, <object>name_of_code[i])
    finally:
        free(name_of_code)
        free(table.slots)
    return distinct, codes


def positions_in(strings, among, int tag_bits=32):
    """int64: for each str of ``strings``, the position in ``among`` of the str equal to it
    (the last one, if it repeats there), or -1. Hashing and comparing run with the GIL
    released. ``tag_bits``: as for :func:`code_strings`."""
    cdef tuple held = _str_tuple(strings, "strings"), held_among = _str_tuple(among, "among")
    cdef Py_ssize_t n = len(held), m = len(held_among)
    cdef PyObject** items = PySequence_Fast_ITEMS(held)
    cdef PyObject** among_items = PySequence_Fast_ITEMS(held_among)
    positions = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] position = positions
    cdef int64_t* position_of_item = &position[0] if n else NULL
    cdef Table table
    table.slots = NULL
    try:
        _table_init(&table, m, tag_bits)
        with nogil:
            _positions_in(items, n, among_items, m, &table, position_of_item)
    finally:
        free(table.slots)
    return positions


cdef tuple _str_tuple(strings, str argument):
    """``strings`` as a tuple (itself if it is one) of str: a TypeError names the first that is not."""
    cdef tuple held = tuple(strings)
    cdef PyObject** items = PySequence_Fast_ITEMS(held)
    cdef Py_ssize_t i
    for i in range(len(held)):
        if not PyUnicode_Check(items[i]):
            raise TypeError(f"{argument}[{i}] is a {type(<object>items[i]).__name__}, not a str")
    return held


cdef enum:
    FIRST_CODES = 1024  # distinct strings a coding table starts with room for


cdef struct StrHashes:  # the hashes of the next PREFETCH strings, each slot fetched as its hash is made
    uint64_t ahead[PREFETCH]


cdef inline void _hash_first(StrHashes* hashes, const Table* table, PyObject** items, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(min(<Py_ssize_t>PREFETCH, n)):
        hashes.ahead[i] = _str_hash(items[i], 0)
        __builtin_prefetch(&table.slots[hashes.ahead[i] & table.mask])


cdef inline uint64_t _hash_next(StrHashes* hashes, const Table* table, PyObject** items, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """The hash of ``items[i]``, and the one ``PREFETCH`` further hashed in its place, its slot
    fetched: the table outgrows the caches at a million strings, and the misses overlap."""
    cdef uint64_t h = hashes.ahead[i % PREFETCH]
    if i + PREFETCH < n:
        hashes.ahead[i % PREFETCH] = _str_hash(items[i + PREFETCH], 0)
        __builtin_prefetch(&table.slots[hashes.ahead[i % PREFETCH] & table.mask])
    return h


cdef inline uint64_t _str_slot(const Table* table, PyObject** str_of_entry, uint64_t h, PyObject* s) noexcept nogil:
    """The slot of the entry whose str equals ``s`` (its hash ``h``), or the empty slot where it would go."""
    cdef uint64_t slot = h & table.mask, held
    while True:
        held = table.slots[slot]
        if held == EMPTY or (_tag(table, held) == _tag(table, h) and _same_str(str_of_entry[_held(held)], s)):
            return slot
        slot = (slot + 1) & table.mask


cdef Py_ssize_t _code_strings(
    PyObject** items, Py_ssize_t n, Table* table, PyObject** name_of_code, int64_t* code, PyObject* empty
) except -1 nogil:
    """Code ``items`` (``empty`` is code 0); the number of codes."""
    cdef Py_ssize_t i, n_codes = 1
    cdef uint64_t h = _str_hash(empty, 0), slot
    cdef StrHashes hashes
    name_of_code[0] = empty
    table.slots[h & table.mask] = _tag(table, h) | 1
    _hash_first(&hashes, table, items, n)
    for i in range(n):
        h = _hash_next(&hashes, table, items, n, i)
        slot = _str_slot(table, name_of_code, h, items[i])
        if table.slots[slot] == EMPTY:
            if <uint64_t>(2 * (n_codes + 1)) > table.mask + 1:  # at most half full
                _double_str_table(table, name_of_code, n_codes)
                slot = _str_slot(table, name_of_code, h, items[i])
            table.slots[slot] = _tag(table, h) | <uint64_t>(n_codes + 1)
            name_of_code[n_codes] = items[i]
            n_codes += 1
        code[i] = _held(table.slots[slot])
    return n_codes


cdef int _double_str_table(Table* table, PyObject** str_of_entry, Py_ssize_t entries) except -1 nogil:
    """The table at twice its size, its ``entries`` str hashed again into it (tags kept)."""
    cdef Py_ssize_t k
    _table_rebuilt(table, table.mask + 1)  # room for as many entries as it had slots
    for k in range(entries):
        _place(table, _str_hash(str_of_entry[k], 0), k)
    return 0


cdef void _positions_in(PyObject** items, Py_ssize_t n, PyObject** among, Py_ssize_t m, Table* table, int64_t* position) noexcept nogil:
    """Each item's position in ``among`` (the last equal str), or -1."""
    cdef Py_ssize_t i
    cdef uint64_t h, slot
    cdef StrHashes hashes
    _hash_first(&hashes, table, among, m)
    for i in range(m):
        h = _hash_next(&hashes, table, among, m, i)
        slot = _str_slot(table, among, h, among[i])
        table.slots[slot] = _tag(table, h) | <uint64_t>(i + 1)  # a repeat takes its earlier one's place
    _hash_first(&hashes, table, items, n)
    for i in range(n):
        h = _hash_next(&hashes, table, items, n, i)
        position[i] = _held(table.slots[_str_slot(table, among, h, items[i])])  # an empty slot: -1


# -- grouping rows of codes ---------------------------------------------------------------------
cdef struct CodeColumn:  # one of these is set: a column of int32 codes (Arrow's indices) or of int64
    const int32_t* narrow
    const int64_t* wide


def group_rows(codes, Py_ssize_t n, int tag_bits=32):
    """``(group, first)``: each row's group among the distinct rows of ``codes`` (code columns
    of ``n`` rows: int32 columns, as Arrow's dictionary indices are, are read as they are, any
    other as int64), numbered in order of their first row, and each group's first row (both
    int64). The rows are hashed into a C table that starts small and doubles (a fleet's rows
    fall in a few thousand groups: the table stays in cache); GIL released.

    ``tag_bits`` below 32 make rows share hash tags (0: all of them), so that tests reach the
    paths that tell such rows apart."""
    columns = [column if _is_int32(column) else np.ascontiguousarray(column, dtype=np.int64) for column in codes]
    for column in columns:
        if column.ndim != 1 or column.shape[0] != n:
            raise ValueError(f"a code column has shape {column.shape}, not ({n},)")
    cdef Py_ssize_t k = len(columns), c, n_groups = 0
    cdef int64_t[::1] wide
    cdef int32_t[::1] narrow
    groups = np.empty(n, dtype=np.int64)
    firsts = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] group = groups
    cdef int64_t[::1] first = firsts
    cdef CodeColumn* column_of = <CodeColumn*>malloc(max(k, 1) * sizeof(CodeColumn))
    cdef uint64_t* hash_of_group = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
    cdef Table table
    table.slots = NULL
    try:
        if column_of == NULL or hash_of_group == NULL:
            raise MemoryError()
        for c in range(k):
            column_of[c].wide = NULL
            column_of[c].narrow = NULL
            if columns[c].dtype == np.int32:
                narrow = columns[c]
                column_of[c].narrow = &narrow[0] if n else NULL
            else:
                wide = columns[c]
                column_of[c].wide = &wide[0] if n else NULL
        _table_init(&table, min(n + 1, FIRST_CODES), tag_bits)
        if n:
            with nogil:
                n_groups = _group_rows(column_of, k, n, &table, hash_of_group, &group[0], &first[0])
    finally:
        free(column_of)
        free(hash_of_group)
        free(table.slots)
    return groups, firsts[:n_groups].copy()


cdef bint _is_int32(object column):
    return isinstance(column, np.ndarray) and column.dtype == np.int32 and column.flags.c_contiguous


cdef inline int64_t _code(const CodeColumn* column, Py_ssize_t row) noexcept nogil:
    return column.narrow[row] if column.narrow != NULL else column.wide[row]


cdef inline uint64_t _row_hash(const CodeColumn* column_of, Py_ssize_t k, Py_ssize_t row) noexcept nogil:
    cdef uint64_t h = 0x9e3779b97f4a7c15ULL
    cdef Py_ssize_t c
    for c in range(k):
        h = (h ^ <uint64_t>_code(&column_of[c], row)) * 0xff51afd7ed558ccdULL
        h ^= h >> 29
    return fm_mix(h)


cdef inline bint _same_codes(const CodeColumn* column_of, Py_ssize_t k, Py_ssize_t row, const int64_t* codes) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(k):
        if _code(&column_of[c], row) != codes[c]:
            return False
    return True


cdef Py_ssize_t _group_rows(
    const CodeColumn* column_of, Py_ssize_t k, Py_ssize_t n, Table* table, uint64_t* hash_of_group, int64_t* group, int64_t* first
) except -1 nogil:
    """Number the rows' groups (see ``group_rows``); the number of groups. A row is compared
    with a copy of its group's codes, side by side (a cache line or two), not with the group's
    first row in each of the k columns (a cache miss a column: 1,000,000 rows of 7 columns took
    0.06 s in 2,000 groups)."""
    cdef Py_ssize_t i, n_groups = 0, g, c, room = 0
    cdef uint64_t h, slot, held
    cdef int64_t* codes = NULL  # the groups' codes, k a group
    cdef int64_t* grown
    try:
        for i in range(n):
            h = _row_hash(column_of, k, i)
            slot = h & table.mask
            while True:
                held = table.slots[slot]
                if held == EMPTY:
                    if <uint64_t>(2 * (n_groups + 1)) > table.mask + 1:  # at most half full
                        _double_row_table(table, hash_of_group, n_groups)
                        slot = h & table.mask
                        continue
                    if n_groups == room:
                        room = max(2 * room, 1024)
                        grown = <int64_t*>realloc(codes, room * max(k, 1) * sizeof(int64_t))
                        if grown == NULL:
                            with gil:
                                raise MemoryError()
                        codes = grown
                    for c in range(k):
                        codes[n_groups * k + c] = _code(&column_of[c], i)
                    table.slots[slot] = _tag(table, h) | <uint64_t>(n_groups + 1)
                    hash_of_group[n_groups] = h
                    first[n_groups] = i
                    group[i] = n_groups
                    n_groups += 1
                    break
                g = _held(held)
                if _tag(table, held) == _tag(table, h) and hash_of_group[g] == h and _same_codes(column_of, k, i, &codes[g * k]):
                    group[i] = g
                    break
                slot = (slot + 1) & table.mask
    finally:
        free(codes)
    return n_groups


cdef int _double_row_table(Table* table, const uint64_t* hash_of_group, Py_ssize_t groups) except -1 nogil:
    """The table at twice its size, its groups placed again by their hashes (tags kept)."""
    cdef Py_ssize_t g
    _table_rebuilt(table, table.mask + 1)  # room for as many entries as it had slots
    for g in range(groups):
        _place(table, hash_of_group[g], g)
    return 0


cdef const char* NO_BYTES = ""  # where an all-empty column's (absent) data starts


# -- the strings of an Arrow column --------------------------------------------------------------
def arrow_strings(const int64_t[::1] offsets, const uint8_t[::1] data, bint unique):
    """A str for each string of an Arrow string column (its ``offsets``, one more than strings,
    and ``data``: UTF-8, checked here; an error raises UnicodeDecodeError); a string equal to
    the one before it is that str again (hosts and vms come in runs). With ``unique``, ``None``
    when a string is empty or repeats, found (GIL released) before any str is made."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef const char* base = NO_BYTES
    if data.shape[0]:
        base = <const char*>&data[0]
    cdef bint refused = False
    if unique:
        with nogil:
            refused = _empty_or_repeated(offsets, base)
        if refused:
            return None
    strings = PyList_New(n)
    cdef Span before = Span(NULL, -1), this
    text = None
    for i in range(n):
        this = Span(base + offsets[i], offsets[i + 1] - offsets[i])
        if not _same_span(this, before):
            text = PyUnicode_DecodeUTF8(this.data, this.size, NULL)
            before = this
        Py_INCREF(text)
        PyList_SET_ITEM(strings, i, text)
    return strings


def check_texts(const int64_t[::1] offsets, const uint8_t[::1] data, bint unique):
    """For texts kept packed (``fastmatch.packed.Texts``), the checks :func:`arrow_strings`
    makes, without a str: the bytes of an Arrow string column (as that takes it) must be UTF-8
    (an error raises UnicodeDecodeError; all ASCII is seen at once, else each string is
    decoded); returns False, with ``unique``, when a string is empty or repeats."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef const char* base = NO_BYTES
    if data.shape[0]:
        base = <const char*>&data[0]
    cdef bint refused = False, ascii = True
    with nogil:
        if n > 0:
            ascii = _ascii(base + offsets[0], offsets[n] - offsets[0])
        if unique:
            refused = _empty_or_repeated(offsets, base)
    if not ascii:
        for i in range(n):
            PyUnicode_DecodeUTF8(base + offsets[i], offsets[i + 1] - offsets[i], NULL)
    return not refused


def code_texts(const int64_t[::1] offsets, const uint8_t[::1] data):
    """:func:`code_strings` of packed texts (Arrow's ``offsets`` from 0, and ``data``, as
    ``fastmatch.packed.Texts`` holds them): a str is made for each distinct text only. GIL
    released while hashing."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, n_codes = 1, i, first
    cdef const char* base = NO_BYTES
    if data.shape[0]:
        base = <const char*>&data[0]
    codes = np.empty(max(n, 0), dtype=np.int64)
    firsts = np.empty(max(n, 0) + 1, dtype=np.int64)  # each code's first text (code 0, the empty one: none)
    hashes = np.empty(max(n, 0) + 1, dtype=np.uint64)
    cdef int64_t[::1] code = codes
    cdef int64_t[::1] first_of = firsts
    cdef uint64_t[::1] hash_of = hashes
    cdef Table table
    table.slots = NULL
    try:
        _table_init(&table, min(n + 1, FIRST_CODES), 32)
        with nogil:
            n_codes = _code_texts(offsets, base, &table, &code[0] if n > 0 else NULL, &first_of[0], &hash_of[0])
    finally:
        free(table.slots)
    distinct = PyList_New(n_codes)
    Py_INCREF(EMPTY_STR)
    PyList_SET_ITEM(distinct, 0, EMPTY_STR)
    for i in range(1, n_codes):
        first = first_of[i]
        text = PyUnicode_DecodeUTF8(base + offsets[first], offsets[first + 1] - offsets[first], NULL)
        Py_INCREF(text)
        PyList_SET_ITEM(distinct, i, text)
    return distinct, codes


cdef Py_ssize_t _code_texts(
    const int64_t[::1] offsets, const char* base, Table* table, int64_t* code, int64_t* first_of, uint64_t* hash_of
) except -1 nogil:
    """Code the texts (the empty one is code 0, held by no slot); the number of codes."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i, n_codes = 1, k, size
    cdef uint64_t h, slot, held
    cdef int64_t j
    cdef const char* text
    for i in range(n):
        size = offsets[i + 1] - offsets[i]
        if size == 0:
            code[i] = 0
            continue
        text = base + offsets[i]
        h = fm_hash(text, size, 0)
        slot = h & table.mask
        while True:
            held = table.slots[slot]
            if held == EMPTY:
                break
            j = first_of[_held(held)]
            if _tag(table, held) == _tag(table, h) and offsets[j + 1] - offsets[j] == size and memcmp(base + offsets[j], text, size) == 0:
                break
            slot = (slot + 1) & table.mask
        if held == EMPTY:
            if <uint64_t>(2 * (n_codes + 1)) > table.mask + 1:  # at most half full
                _table_rebuilt(table, table.mask + 1)
                for k in range(1, n_codes):
                    _place(table, hash_of[k], k)
                slot = h & table.mask
                while table.slots[slot] != EMPTY:
                    slot = (slot + 1) & table.mask
            table.slots[slot] = _tag(table, h) | <uint64_t>(n_codes + 1)
            first_of[n_codes] = i
            hash_of[n_codes] = h
            code[i] = n_codes
            n_codes += 1
        else:
            code[i] = _held(held)
    return n_codes


cdef bint _ascii(const char* at, Py_ssize_t size) noexcept nogil:
    cdef uint64_t word, high = 0
    cdef Py_ssize_t i = 0
    while i + 8 <= size:
        memcpy(&word, at + i, 8)
        high |= word
        i += 8
    while i < size:
        high |= <uint8_t>at[i]
        i += 1
    return (high & 0x8080808080808080ULL) == 0


def positions_in_texts(const int64_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] among_offsets, const uint8_t[::1] among_data):
    """:func:`positions_in` for packed texts (Arrow's ``offsets`` and ``data``, on both sides):
    for each text, the position of the equal text among the others (the last one, if it
    repeats there), or -1. GIL released."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, m = among_offsets.shape[0] - 1
    cdef const char* base = NO_BYTES
    cdef const char* among_base = NO_BYTES
    if data.shape[0]:
        base = <const char*>&data[0]
    if among_data.shape[0]:
        among_base = <const char*>&among_data[0]
    positions = np.empty(max(n, 0), dtype=np.int64)
    cdef int64_t[::1] position = positions
    cdef Table table
    table.slots = NULL
    try:
        _table_init(&table, max(m, 0), 32)
        with nogil:
            _text_positions(offsets, base, among_offsets, among_base, &table, &position[0] if n > 0 else NULL)
    finally:
        free(table.slots)
    return positions


cdef inline uint64_t _text_hash(const int64_t[::1] offsets, const char* base, Py_ssize_t i) noexcept nogil:
    return fm_hash(base + offsets[i], offsets[i + 1] - offsets[i], 0)


cdef inline uint64_t _text_slot(
    const Table* table, const int64_t[::1] among_offsets, const char* among_base, uint64_t h, const char* text, Py_ssize_t size
) noexcept nogil:
    """The slot of the entry whose text equals ``text`` (its hash ``h``), or the empty slot where it would go."""
    cdef uint64_t slot = h & table.mask, held
    cdef int64_t j
    while True:
        held = table.slots[slot]
        if held == EMPTY:
            return slot
        j = _held(held)
        if (_tag(table, held) == _tag(table, h) and among_offsets[j + 1] - among_offsets[j] == size
                and memcmp(among_base + among_offsets[j], text, size) == 0):
            return slot
        slot = (slot + 1) & table.mask


cdef void _text_positions(
    const int64_t[::1] offsets, const char* base, const int64_t[::1] among_offsets, const char* among_base, Table* table,
    int64_t* position,
) noexcept nogil:
    cdef Py_ssize_t n = offsets.shape[0] - 1, m = among_offsets.shape[0] - 1, i
    cdef uint64_t h, slot
    cdef uint64_t ahead[PREFETCH]
    for i in range(min(<Py_ssize_t>PREFETCH, m)):
        ahead[i] = _text_hash(among_offsets, among_base, i)
    for i in range(m):
        h = ahead[i % PREFETCH]
        if i + PREFETCH < m:  # its slot fetched well before it is probed (the table outgrows the caches)
            ahead[i % PREFETCH] = _text_hash(among_offsets, among_base, i + PREFETCH)
            __builtin_prefetch(&table.slots[ahead[i % PREFETCH] & table.mask])
        slot = _text_slot(table, among_offsets, among_base, h, among_base + among_offsets[i], among_offsets[i + 1] - among_offsets[i])
        table.slots[slot] = _tag(table, h) | <uint64_t>(i + 1)  # a repeat takes its earlier one's place
    for i in range(min(<Py_ssize_t>PREFETCH, n)):
        ahead[i] = _text_hash(offsets, base, i)
    for i in range(n):
        h = ahead[i % PREFETCH]
        if i + PREFETCH < n:
            ahead[i % PREFETCH] = _text_hash(offsets, base, i + PREFETCH)
            __builtin_prefetch(&table.slots[ahead[i % PREFETCH] & table.mask])
        slot = _text_slot(table, among_offsets, among_base, h, base + offsets[i], offsets[i + 1] - offsets[i])
        position[i] = _held(table.slots[slot])  # an empty slot: -1


cdef bint _empty_or_repeated(const int64_t[::1] offsets, const char* base) except -1 nogil:
    cdef Py_ssize_t n = offsets.shape[0] - 1, i, j, start, size
    cdef Table seen
    cdef uint64_t h, slot, held
    cdef uint64_t hashes[PREFETCH]
    _table_init(&seen, n, 32)
    try:
        for i in range(min(PREFETCH, n)):
            hashes[i] = fm_hash(base + offsets[i], offsets[i + 1] - offsets[i], 0)
        for i in range(n):
            h = hashes[i % PREFETCH]
            if i + PREFETCH < n:  # its slot fetched well before it is probed (the table outgrows the caches)
                hashes[i % PREFETCH] = fm_hash(base + offsets[i + PREFETCH], offsets[i + PREFETCH + 1] - offsets[i + PREFETCH], 0)
                __builtin_prefetch(&seen.slots[hashes[i % PREFETCH] & seen.mask])
            start = offsets[i]
            size = offsets[i + 1] - start
            if size == 0:
                return True
            slot = h & seen.mask
            while True:
                held = seen.slots[slot]
                if held == EMPTY:
                    seen.slots[slot] = _tag(&seen, h) | <uint64_t>(i + 1)
                    break
                j = _held(held)
                if _tag(&seen, held) == _tag(&seen, h) and offsets[j + 1] - offsets[j] == size and memcmp(base + offsets[j], base + start, size) == 0:
                    return True
                slot = (slot + 1) & seen.mask
        return False
    finally:
        free(seen.slots)
