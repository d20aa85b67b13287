# cython: language_level=3
"""Writing answers: which sources share a ranking, and their lines joined in one buffer.

At a million sources the writing, not the matching, is what a ``match`` waits for. The ids
are touched once as Python objects (``ascii_texts`` packs them into one buffer, holding the
GIL); every other loop runs over integer arrays and byte buffers with the GIL released,
and no Python object is made per source or per candidate.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

import numpy as np

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(PyObject* o)
    bint PyUnicode_IS_COMPACT_ASCII(PyObject* o)
    void* PyUnicode_DATA(PyObject* o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject* o)


def ascii_texts(list texts, bytes forbidden):
    """``texts`` (a list of ``str``) packed as ``(data, ends)``: text ``i`` is
    ``data[ends[i - 1]:ends[i]]`` (from 0 for the first), ``ends`` int64; or ``None`` when a
    text is not plain ASCII or holds one of the ``forbidden`` bytes (the caller then encodes
    each text its own way). One pass over the texts (each is far from the last in memory),
    copying their characters as they are.
    """
    cdef Py_ssize_t n = PyList_GET_SIZE(texts), i, j, length, written = 0, capacity = 32 * n + 64
    cdef PyObject* text
    cdef const uint8_t* characters
    cdef bint refused[256]
    for j in range(256):
        refused[j] = False
    for j in range(len(forbidden)):
        refused[<uint8_t>forbidden[j]] = True
    ends_array = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] ends = ends_array
    cdef uint8_t* buffer = <uint8_t*>malloc(capacity)
    cdef uint8_t* grown
    if buffer == NULL:
        raise MemoryError()
    try:
        for i in range(n):  # the list holds its texts: nothing here can free one
            text = PyList_GET_ITEM(texts, i)
            if not PyUnicode_CheckExact(text) or not PyUnicode_IS_COMPACT_ASCII(text):
                return None
            length = PyUnicode_GET_LENGTH(text)
            characters = <const uint8_t*>PyUnicode_DATA(text)
            for j in range(length):
                if refused[characters[j]]:
                    return None
            if written + length > capacity:
                capacity = 2 * (written + length)
                grown = <uint8_t*>realloc(buffer, capacity)
                if grown == NULL:
                    raise MemoryError()
                buffer = grown
            memcpy(buffer + written, characters, length)
            written += length
            ends[i] = written
        return PyBytes_FromStringAndSize(<char*>buffer, written), ends_array
    finally:
        free(buffer)


cdef inline uint64_t _mixed(uint64_t h, uint64_t value) noexcept nogil:
    """One more value into a row's hash: a multiply and a rotation a value (the table's slot
    comes from ``fm_mix``), short enough that 11 values a row cost little."""
    h = (h ^ value) * <uint64_t>0x9E3779B97F4A7C15
    return (h << 31) | (h >> 33)


cdef extern from "hashing.h" nogil:
    uint64_t fm_mix(uint64_t h)  # finishes a row's hash: every bit moves the low bits the table uses


cdef inline uint64_t _row_hash(const int64_t* a, const int64_t* b, int64_t c, Py_ssize_t k) noexcept nogil:
    cdef uint64_t h = _mixed(0, <uint64_t>c)
    cdef Py_ssize_t col
    for col in range(k):
        h = _mixed(_mixed(h, <uint64_t>a[col]), <uint64_t>b[col])
    return fm_mix(h)


cdef inline bint _same_row(const int64_t* a, const int64_t* b, int64_t c, const int64_t* kept, Py_ssize_t k) noexcept nogil:
    """Whether the row ``(a, b, c)`` is the kept row ``kept`` (its a, then its b, then its c)."""
    cdef Py_ssize_t col
    if kept[2 * k] != c:
        return False
    for col in range(k):
        if kept[col] != a[col] or kept[k + col] != b[col]:
            return False
    return True


cdef class DistinctRows:
    """The distinct rows of a table (n, 2k + 1) ``[a, b, c]`` given a run of rows at a time
    (:meth:`add`): a whole fleet's top-k rankings found without an (n, k) array, the caller
    reusing its run's buffers. Each distinct row is kept (copied), and the rows are found with
    a hash table whose entries are compared whole, so no two rows are taken for one on a hash
    collision. The table grows with the distinct rows found (kept at most half full), not with
    n: a million sources share a few thousand rankings, whose table stays in cache."""

    cdef Py_ssize_t k, width, found, capacity, size
    cdef int64_t* kept  # ``capacity`` rows of ``width`` (a, b, c), the first ``found`` in use
    cdef int64_t* holders  # each kept row's holder, as :meth:`add` was told
    cdef int64_t* slots  # ``size`` (a power of two) entries: a kept row's number, or -1

    def __cinit__(self, Py_ssize_t k):
        if k < 0:
            raise ValueError(f"DistinctRows: k must be >= 0, got {k}")
        self.k, self.width = k, 2 * k + 1
        self.capacity, self.size = 1024, 2048
        self.kept = <int64_t*>malloc(self.capacity * self.width * sizeof(int64_t))
        self.holders = <int64_t*>malloc(self.capacity * sizeof(int64_t))
        self.slots = <int64_t*>malloc(self.size * sizeof(int64_t))
        if self.kept == NULL or self.holders == NULL or self.slots == NULL:
            raise MemoryError()
        cdef Py_ssize_t slot
        for slot in range(self.size):
            self.slots[slot] = -1

    def __dealloc__(self):
        free(self.kept)
        free(self.holders)
        free(self.slots)

    def __len__(self):
        return self.found

    def add(self, const int64_t[:, ::1] a, const int64_t[:, ::1] b, const int64_t[::1] c, const int64_t[::1] holders, int64_t[::1] which):
        """Numbers the run's rows: ``which[holders[i]]`` is row i's number among the distinct
        rows, in the order they were first given; a row not seen before is kept, with
        ``holders[i]`` as its holder."""
        cdef Py_ssize_t n = a.shape[0], k = self.k, i, slot
        if a.shape[1] != k or b.shape[0] != n or b.shape[1] != k or c.shape[0] != n or holders.shape[0] != n:
            raise ValueError(
                f"DistinctRows.add: shapes {(a.shape[0], a.shape[1])}, {(b.shape[0], b.shape[1])}, {c.shape[0]} and "
                f"{holders.shape[0]} for rows of k = {k}"
            )
        for i in range(n):
            if not 0 <= holders[i] < which.shape[0]:
                raise ValueError(f"DistinctRows.add: holder {holders[i]} outside the {which.shape[0]} places of which")
        cdef uint64_t h
        cdef bint grown = True
        cdef const int64_t* a_row
        cdef const int64_t* b_row
        with nogil:
            for i in range(n):
                a_row = &a[i, 0] if k else NULL
                b_row = &b[i, 0] if k else NULL
                h = _row_hash(a_row, b_row, c[i], k)
                slot = <Py_ssize_t>(h & <uint64_t>(self.size - 1))
                while self.slots[slot] >= 0 and not _same_row(a_row, b_row, c[i], self.kept + self.slots[slot] * self.width, k):
                    slot = (slot + 1) & (self.size - 1)
                if self.slots[slot] < 0:
                    if not self._room():
                        grown = False
                        break
                    slot = <Py_ssize_t>(h & <uint64_t>(self.size - 1))
                    while self.slots[slot] >= 0:  # (a new row: any empty slot on its run)
                        slot = (slot + 1) & (self.size - 1)
                    if k:
                        memcpy(self.kept + self.found * self.width, a_row, k * sizeof(int64_t))
                        memcpy(self.kept + self.found * self.width + k, b_row, k * sizeof(int64_t))
                    self.kept[self.found * self.width + 2 * k] = c[i]
                    self.holders[self.found] = holders[i]
                    self.slots[slot] = self.found
                    self.found += 1
                which[holders[i]] = self.slots[slot]
        if not grown:
            raise MemoryError()

    cdef bint _room(self) noexcept nogil:
        """Room for one more kept row, the table at most half full; False without the memory."""
        cdef int64_t* grown
        cdef Py_ssize_t slot, d, mask
        if self.found == self.capacity:
            grown = <int64_t*>realloc(self.kept, 2 * self.capacity * self.width * sizeof(int64_t))
            if grown == NULL:
                return False
            self.kept = grown
            grown = <int64_t*>realloc(self.holders, 2 * self.capacity * sizeof(int64_t))
            if grown == NULL:
                return False
            self.holders = grown
            self.capacity *= 2
        if 2 * (self.found + 1) <= self.size:
            return True
        grown = <int64_t*>malloc(2 * self.size * sizeof(int64_t))
        if grown == NULL:
            return False
        free(self.slots)
        self.slots, self.size = grown, 2 * self.size
        mask = self.size - 1
        for slot in range(self.size):
            self.slots[slot] = -1
        for d in range(self.found):
            slot = <Py_ssize_t>(_row_hash(self.kept + d * self.width, self.kept + d * self.width + self.k, self.kept[d * self.width + 2 * self.k], self.k) & <uint64_t>mask)
            while self.slots[slot] >= 0:
                slot = (slot + 1) & mask
            self.slots[slot] = d
        return True

    def rows(self):
        """``(holders, a, b, c)`` of the distinct rows, in the order they were first given:
        int64 (rows,), (rows, k), (rows, k) and (rows,), copies."""
        table = np.empty((self.found, self.width), dtype=np.int64)
        holders = np.empty(self.found, dtype=np.int64)
        cdef int64_t[:, ::1] out = table
        cdef int64_t[::1] out_holders = holders
        if self.found:
            memcpy(&out[0, 0], self.kept, self.found * self.width * sizeof(int64_t))
            memcpy(&out_holders[0], self.holders, self.found * sizeof(int64_t))
        k = self.k
        return holders, table[:, :k].copy(), table[:, k : 2 * k].copy(), table[:, 2 * k].copy()


def joined_lines(
    bytes prefix,
    const unsigned char[::1] ids,
    const int64_t[::1] id_ends,
    const int64_t[::1] which,
    const unsigned char[::1] pieces,
    const int64_t[::1] piece_ends,
    const int64_t[::1] ranking_pieces,
    Py_ssize_t start,
    Py_ssize_t budget,
):
    """The lines of the sources from ``start`` on, as many as fit in ``budget`` bytes (one at
    least), as ``(lines, stop)``: ``lines`` a ``bytes`` holding sources ``start`` to ``stop``.

    A source's lines are, for each piece of its ranking, ``prefix``, its id, then the piece.
    Source ``i``'s id is ``ids[id_ends[i - 1]:id_ends[i]]`` (from 0 for the first); ranking
    ``r``'s pieces are numbers ``ranking_pieces[r]`` to ``ranking_pieces[r + 1]``, and piece
    ``p`` is ``pieces[piece_ends[p - 1]:piece_ends[p]]``, each already encoded. Every offset
    is checked before anything is copied.
    """
    cdef Py_ssize_t n = which.shape[0], n_rankings = ranking_pieces.shape[0] - 1
    cdef Py_ssize_t n_pieces = piece_ends.shape[0], prefix_size = len(prefix)
    if id_ends.shape[0] != n or not 0 <= start <= n or n_rankings < 0:
        raise ValueError(f"joined_lines: {id_ends.shape[0]} ids for {n} sources, from {start}")
    cdef Py_ssize_t i, p, r, stop, size = 0, line_size, id_start, id_size, piece_start
    for p in range(n_pieces):
        if not (piece_ends[p - 1] if p else 0) <= piece_ends[p] <= pieces.shape[0]:
            raise ValueError(f"joined_lines: piece {p} ends at {piece_ends[p]}, outside {pieces.shape[0]} bytes")
    for r in range(n_rankings):
        if not 0 <= ranking_pieces[r] <= ranking_pieces[r + 1] <= n_pieces:
            raise ValueError(f"joined_lines: ranking {r}'s pieces {ranking_pieces[r]} to {ranking_pieces[r + 1]} of {n_pieces}")
    with nogil:
        for stop in range(start, n):
            r = which[stop]
            id_start = id_ends[stop - 1] if stop else 0
            if r < 0 or r >= n_rankings or not 0 <= id_start <= id_ends[stop] <= ids.shape[0]:
                with gil:
                    raise ValueError(f"joined_lines: source {stop}: ranking {r} of {n_rankings}, id ending at {id_ends[stop]}")
            line_size = (ranking_pieces[r + 1] - ranking_pieces[r]) * (prefix_size + id_ends[stop] - id_start)
            if ranking_pieces[r + 1] > ranking_pieces[r]:
                line_size += piece_ends[ranking_pieces[r + 1] - 1] - (piece_ends[ranking_pieces[r] - 1] if ranking_pieces[r] else 0)
            if size + line_size > budget and stop > start:
                break
            size += line_size
        else:
            stop = n
    out = PyBytes_FromStringAndSize(NULL, size)
    cdef char* at = PyBytes_AS_STRING(out)
    cdef const char* prefix_bytes = prefix
    cdef const unsigned char* id_bytes = &ids[0] if ids.shape[0] else NULL
    cdef const unsigned char* piece_bytes = &pieces[0] if pieces.shape[0] else NULL
    with nogil:
        for i in range(start, stop):
            r = which[i]
            id_start = id_ends[i - 1] if i else 0
            id_size = id_ends[i] - id_start
            for p in range(ranking_pieces[r], ranking_pieces[r + 1]):
                memcpy(at, prefix_bytes, prefix_size)
                at += prefix_size
                memcpy(at, id_bytes + id_start, id_size)
                at += id_size
                piece_start = piece_ends[p - 1] if p else 0
                memcpy(at, piece_bytes + piece_start, piece_ends[p] - piece_start)
                at += piece_ends[p] - piece_start
    return out, stop


def gathered_texts(const unsigned char[::1] data, const int64_t[::1] ends, const int64_t[::1] picks):
    """Texts ``picks`` of the packed ``(data, ends)`` (as ``ascii_texts`` gives), packed anew
    as ``(data, offsets)`` with ``offsets[0] = 0``, Arrow's layout of a string column: int32
    offsets while the texts take less than 2 GiB (``string``), else int64 (``large_string``)."""
    cdef Py_ssize_t n = picks.shape[0], n_texts = ends.shape[0], i, pick
    cdef int64_t size = 0
    with nogil:
        for i in range(n):
            pick = picks[i]
            if pick < 0 or pick >= n_texts or not 0 <= (ends[pick - 1] if pick else 0) <= ends[pick] <= data.shape[0]:
                with gil:
                    raise ValueError(f"gathered_texts: pick {i} is text {pick} of {n_texts}")
            size += ends[pick] - (ends[pick - 1] if pick else 0)
    return _texts_at(data, ends, picks, None, 0, size)


def repeated_texts(const unsigned char[::1] data, const int64_t[::1] ends, const int64_t[::1] repeats, Py_ssize_t first=0):
    """Texts ``first`` on of the packed ``(data, ends)``, text ``first + i`` ``repeats[i]``
    times over, in order, packed as :func:`gathered_texts` packs them (a column naming each
    source once per candidate)."""
    cdef Py_ssize_t n = repeats.shape[0], i, text
    cdef int64_t size = 0
    if first < 0 or first + n > ends.shape[0]:
        raise ValueError(f"repeated_texts: texts {first} to {first + n} of {ends.shape[0]}")
    with nogil:
        for i in range(n):
            text = first + i
            if repeats[i] < 0 or not 0 <= (ends[text - 1] if text else 0) <= ends[text] <= data.shape[0]:
                with gil:
                    raise ValueError(f"repeated_texts: text {text} ends at {ends[text]}, repeated {repeats[i]} times")
            size += repeats[i] * (ends[text] - (ends[text - 1] if text else 0))
    return _texts_at(data, ends, None, repeats, first, size)


cdef object _texts_at(const unsigned char[::1] data, const int64_t[::1] ends, const int64_t[::1] picks,
                      const int64_t[::1] repeats, Py_ssize_t first, int64_t size):
    """Texts ``picks`` (or text ``first + i`` ``repeats[i]`` times) of ``(data, ends)``,
    checked before, taking ``size`` bytes, as Arrow packs a string column."""
    cdef Py_ssize_t n = picks.shape[0] if picks is not None else 0, i, r, row = 0, rows = 0
    if repeats is not None:
        for i in range(repeats.shape[0]):
            rows += repeats[i]
    else:
        rows = n
    cdef bint wide = size >= (<int64_t>1 << 31), by_picks = repeats is None
    offsets_array = np.empty(rows + 1, dtype=np.int64 if wide else np.int32)
    cdef int64_t[::1] wide_offsets
    cdef int32_t[::1] narrow_offsets
    if wide:
        wide_offsets = offsets_array
    else:
        narrow_offsets = offsets_array
    out = PyBytes_FromStringAndSize(NULL, size)
    cdef char* at = PyBytes_AS_STRING(out)
    cdef const unsigned char* text_bytes = &data[0] if data.shape[0] else NULL
    cdef int64_t start, length, written = 0
    cdef Py_ssize_t text, times
    with nogil:
        for i in range(rows if by_picks else repeats.shape[0]):
            text = picks[i] if by_picks else first + i
            times = 1 if by_picks else repeats[i]
            start = ends[text - 1] if text else 0
            length = ends[text] - start
            for r in range(times):
                if wide:
                    wide_offsets[row] = written
                else:
                    narrow_offsets[row] = <int32_t>written
                memcpy(at + written, text_bytes + start, length)
                written += length
                row += 1
        if wide:
            wide_offsets[row] = written
        else:
            narrow_offsets[row] = <int32_t>written
    return out, offsets_array


ctypedef fused cell_t:
    uint8_t
    int32_t
    int64_t
    uint64_t


def spread_rankings(const cell_t[:, ::1] table, const int64_t[::1] which, const int64_t[::1] counts):
    """Each source's ranking's first ``counts`` cells of ``table`` (rankings, k), in source
    order: the column of a per-candidate value that depends only on the ranking (its rank,
    target, score parts), one row per candidate. ``which[i]`` is source ``i``'s ranking."""
    cdef Py_ssize_t n = which.shape[0], n_rankings = table.shape[0], k = table.shape[1], i, j, r, rows = 0, row = 0
    if counts.shape[0] != n_rankings:
        raise ValueError(f"spread_rankings: {counts.shape[0]} counts for {n_rankings} rankings")
    for r in range(n_rankings):
        if not 0 <= counts[r] <= k:
            raise ValueError(f"spread_rankings: ranking {r} has {counts[r]} of {k} cells")
    with nogil:
        for i in range(n):
            r = which[i]
            if r < 0 or r >= n_rankings:
                with gil:
                    raise ValueError(f"spread_rankings: source {i}: ranking {r} of {n_rankings}")
            rows += counts[r]
    out_array = np.empty(rows, dtype=np.asarray(table).dtype)
    cdef cell_t[::1] out = out_array
    with nogil:
        for i in range(n):
            r = which[i]
            for j in range(counts[r]):
                out[row] = table[r, j]
                row += 1
    return out_array


def copy_into(unsigned char[::1] target, Py_ssize_t at, const unsigned char[::1] data):
    """``data`` copied into ``target`` from byte ``at`` on, with the GIL released (a file's
    writing thread then takes the GIL back as soon as its write returns, not after the copy)."""
    cdef Py_ssize_t size = data.shape[0]
    if at < 0 or at + size > target.shape[0]:
        raise ValueError(f"copy_into: {size} bytes at {at} of {target.shape[0]}")
    if size:
        with nogil:
            memcpy(&target[at], &data[0], size)
