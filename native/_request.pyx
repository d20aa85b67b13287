# cython: language_level=3
"""A scheduler's one-record requests read at C speed (``fastmatch.index``).

:class:`PlainRequests` takes a record whose every field is of the plain type that validation
accepts as it is, finds the kernel's problem of its descriptor among those a TargetIndex keeps,
and has it ranked (``_kernel.RequestTargets``) in the same call. Any other record (a str
subclass, a float, an unknown key, a bad id, COMPATIBLE records) is left to
``fastmatch.devices``, which reads it in full and reports what is wrong with it. Whether a
descriptor is valid is not decided here: the index keeps only the descriptors that validation
accepted.

A plain record's descriptor is read once into its key, a byte string that spells every part
with its type (``2`` and ``"2"``, ``True`` and ``1`` differ), and a 64-bit hash mixed from the
hashes its str objects cache. The kept problems are found by that hash in an open-addressing
table whose slots hold the kept keys' bytes: a slot whose hash is equal is then compared byte
for byte, so two descriptors whose hashes collide never share an answer, and a lookup reads a
slot and one key, not the Python objects of a kept descriptor (scattered in memory: a cache miss
each).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport Py_EQ, PyObject, PyObject_Hash, PyObject_RichCompareBool
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy

from fastmatch._kernel cimport Ranking, answer_of, prepare_ranking, rank


cdef extern from "hashing.h":
    uint64_t fm_mix(uint64_t h) noexcept nogil

cdef extern from *:
    # Type tests and reads of borrowed objects: a request reads its record through these, and
    # never takes a reference to an object that other threads' requests share (None, True, a
    # field's name): a reference count written from two cores moves its cache line between them.
    """
    static inline int fm_is_str(PyObject* o) { return PyUnicode_CheckExact(o); }
    static inline int fm_is_int(PyObject* o) { return PyLong_CheckExact(o); }
    static inline int fm_is_dict(PyObject* o) { return PyDict_CheckExact(o); }
    static inline int fm_is_empty_list(PyObject* o) { return PyList_CheckExact(o) && PyList_GET_SIZE(o) == 0; }
    static inline int fm_is_bool(PyObject* o) { return o == Py_True || o == Py_False; }
    static inline int fm_is_true(PyObject* o) { return o == Py_True; }
    static inline int fm_is_none(PyObject* o) { return o == Py_None; }
    """
    bint fm_is_str(PyObject* o) noexcept
    bint fm_is_int(PyObject* o) noexcept
    bint fm_is_dict(PyObject* o) noexcept
    bint fm_is_empty_list(PyObject* o) noexcept
    bint fm_is_bool(PyObject* o) noexcept
    bint fm_is_true(PyObject* o) noexcept
    bint fm_is_none(PyObject* o) noexcept

cdef extern from "Python.h":
    int fm_dict_next "PyDict_Next"(PyObject* mapping, Py_ssize_t* at, PyObject** name, PyObject** item) noexcept
    Py_hash_t fm_hash "PyObject_Hash"(PyObject* value) except? -1
    long long fm_as_int64 "PyLong_AsLongLongAndOverflow"(PyObject* value, int* overflow) except? -1
    Py_ssize_t fm_dict_size "PyDict_GET_SIZE"(PyObject* mapping) noexcept
    # of a str: plain reads of an object that does not change, so also without the GIL
    int PyUnicode_KIND(PyObject* text) nogil
    void* PyUnicode_DATA(PyObject* text) nogil
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject* text) nogil

# A thread that ends its work without the GIL and finds the GIL taken sleeps on a condition
# variable until the holder lets it go; waking it costs 17-29 us on these VMs, several warm
# requests, so two threads that meet now and then serve no more than one (BENCHMARKS.md, "Kept
# descriptors"). A warm request's thread therefore waits for the GIL to look free, up to about
# a wake-up's cost, before it takes it. Whether the GIL is taken is CPython 3.11's own state,
# read as ceval.c reads it; on other versions the thread takes the GIL at once, as CPython does.
cdef extern from *:
    """
    #include <time.h>
    #if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    #define Py_BUILD_CORE 1
    #undef _PyGC_FINALIZED  /* the public headers define it too, as the internal ones do */
    #include "internal/pycore_runtime.h"
    #undef Py_BUILD_CORE
    static inline int fm_gil_taken(void) { return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked) > 0; }
    #else
    static inline int fm_gil_taken(void) { return 0; }
    #endif
    #if defined(__x86_64__) || defined(__i386__)
    static inline void fm_cpu_relax(void) { __builtin_ia32_pause(); }
    #elif defined(__aarch64__)
    static inline void fm_cpu_relax(void) { __asm__ __volatile__("yield"); }
    #else
    static inline void fm_cpu_relax(void) {}
    #endif
    static inline int64_t fm_now_ns(void) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    }
    """
    bint fm_gil_taken() noexcept nogil
    void fm_cpu_relax() noexcept nogil
    int64_t fm_now_ns() noexcept nogil

cdef enum:
    GIL_WAIT_NS = 20000  # a wake-up's cost, measured


cdef inline void wait_for_the_gil() noexcept nogil:
    """Returns once the GIL looks free, or after GIL_WAIT_NS (then the caller sleeps for it)."""
    if not fm_gil_taken():
        return
    cdef int64_t give_up = fm_now_ns() + GIL_WAIT_NS
    while fm_gil_taken() and fm_now_ns() < give_up:
        fm_cpu_relax()


# A record's fields, told apart by their str hashes first (a str caches its hash).
cdef enum Field:
    ID, HOST, VM, SELF, COMPATIBLE, CAPACITY, MIGRATION_VERSION, MIGRATABLE, UNKNOWN

cdef str DEFAULT_ID = "request"  # a record's id when it has none
cdef str NO_HOST = ""  # a record's host when it has none (or None)
cdef tuple FIELD_NAMES = ("id", "host", "vm", "self", "compatible", "capacity", "migration_version", "migratable")
cdef Py_hash_t FIELD_HASHES[8]
for _at, _name in enumerate(FIELD_NAMES):
    FIELD_HASHES[_at] = hash(_name)

# The key's tags: each part of a descriptor, and each value's type. Mixed into the hash as well,
# so that 2 and "2" (whose int and str hashes may be equal) hash apart.
cdef enum:
    PAIR = 0x50  # then the name as a STR, then the value
    STR = 0x53  # then the str's kind (bytes a character), length (8 bytes) and characters
    INT = 0x49  # then 8 bytes
    VERSION = 0x56  # migration_version: then a STR, or NONE
    NONE = 0x4E
    MIGRATABLE_TRUE = 0x54
    MIGRATABLE_FALSE = 0x46
    KEY_ON_STACK = 512  # bytes: longer keys are written to the heap


cdef struct Key:  # a key being written: ``size`` bytes at ``data`` (``room`` there), on the heap if ``heap``
    char* data
    Py_ssize_t size
    Py_ssize_t room
    bint heap


cdef inline int put(Key* key, const void* part, Py_ssize_t size) except -1:
    if key.size + size > key.room:
        grow(key, size)
    memcpy(key.data + key.size, part, size)
    key.size += size
    return 0


cdef int grow(Key* key, Py_ssize_t size) except -1:
    """Room for ``size`` more bytes."""
    cdef char* grown = <char*>malloc(2 * key.room + size)
    if grown == NULL:
        raise MemoryError()
    memcpy(grown, key.data, key.size)
    if key.heap:
        free(key.data)
    key.data, key.room, key.heap = grown, 2 * key.room + size, True
    return 0


cdef inline int put_tag(Key* key, uint8_t tag) except -1:
    return put(key, &tag, 1)


cdef inline int put_str(Key* key, PyObject* text) except -1:
    """``text``, a str: PEP 393 keeps every str in its narrowest kind, so equal strings have equal
    kinds, lengths and characters."""
    cdef uint8_t kind = <uint8_t>PyUnicode_KIND(text)
    cdef int64_t length = PyUnicode_GET_LENGTH(text)
    put_tag(key, STR)
    put(key, &kind, 1)
    put(key, &length, 8)
    return put(key, PyUnicode_DATA(text), length * kind)


cdef class Unseen:
    """A plain record whose descriptor the index does not keep (yet): its key (bytes: equal keys
    mean equal descriptors) and the hash it is kept under."""

    cdef readonly bytes key
    cdef readonly uint64_t hash

    def __cinit__(self, bytes key, uint64_t hash):
        self.key = key
        self.hash = hash


cdef class Kept:
    """A kept descriptor's problem, under ``Unseen.key`` (``plain``) or ``descriptor_key``'s, and
    what its devices' rankings read of it."""

    cdef uint64_t hash
    cdef bint plain
    cdef object key
    cdef object problem
    cdef Ranking ranking


cdef struct Slot:  # one slot of the table: what a lookup reads of a kept descriptor
    uint64_t hash
    Py_ssize_t place  # in ``PlainRequests.kept``; -1: empty
    const char* key  # the Kept's key bytes (NULL: a descriptor_key's, compared as a Python object)
    Py_ssize_t key_size
    PyObject* problem  # the Kept's
    Ranking ranking  # the Kept's: a lookup reads no more than the slot and the key


cdef inline bint same_text(PyObject* one, PyObject* other) noexcept nogil:
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(one)
    cdef int kind = PyUnicode_KIND(one)
    return (
        one == other
        or length == PyUnicode_GET_LENGTH(other) and kind == PyUnicode_KIND(other)
        and memcmp(PyUnicode_DATA(one), PyUnicode_DATA(other), length * kind) == 0
    )


cdef inline Field field_of(PyObject* name) except? UNKNOWN:
    """Which record field ``name`` (a str) is."""
    cdef Py_hash_t h = fm_hash(name)
    cdef int at
    for at in range(8):
        if FIELD_HASHES[at] == h and same_text(name, PyTuple_GET_ITEM(FIELD_NAMES, at)):
            return <Field>at
    return UNKNOWN


cdef struct Name:  # one slot of a Names table
    uint64_t hash  # the str's own
    PyObject* text  # NULL: an empty slot
    int64_t value


cdef struct Names:
    # A dict of str to int (the targets' hosts or ids) that is read without the GIL: a big one
    # misses the cache on each lookup, which would otherwise hold the GIL meanwhile. Its strs are
    # the dict's, held by the owner of the table.
    Name* slots
    Py_ssize_t mask


cdef int fill_names(Names* table, dict names) except -1:
    cdef Py_ssize_t count = 16, at
    while count < 2 * len(names):
        count *= 2
    table.slots = <Name*>calloc(count, sizeof(Name))
    if table.slots == NULL:
        raise MemoryError()
    table.mask = count - 1
    for text, value in names.items():
        if type(text) is not str:
            raise TypeError(f"names are str, got {text!r}")
        at = PyObject_Hash(text) & table.mask
        while table.slots[at].text != NULL:
            at = (at + 1) & table.mask
        table.slots[at].hash = <uint64_t>PyObject_Hash(text)
        table.slots[at].text = <PyObject*>text
        table.slots[at].value = value
    return 0


cdef int64_t find_name(const Names* table, uint64_t hash, PyObject* text, int64_t missing) noexcept nogil:
    """The value of the str ``text`` (whose hash is ``hash``; the caller holds it), else ``missing``."""
    cdef Py_ssize_t at = hash & table.mask
    while table.slots[at].text != NULL:
        if table.slots[at].hash == hash and same_text(table.slots[at].text, text):
            return table.slots[at].value
        at = (at + 1) & table.mask
    return missing


cdef class PlainRequests:
    """A TargetIndex's one-record requests: up to ``capacity`` kept problems of descriptors
    (None: no target can take it), the oldest going first; ``host_codes`` and ``target_ids`` are
    the targets' hosts and ids (``TargetDevices.host_code_of``, ``DeviceSet.id_index``),
    ``targets`` ranks (``_kernel.RequestTargets``), for any k up to ``largest_k``.
    ``hash_bits``: how many bits of a descriptor's hash the table tells apart (fewer only to test
    descriptors whose hashes collide).

    Every method runs holding the GIL and calls no Python code while it reads or changes the
    table, so a reader on another thread sees it before or after a change, never half way."""

    cdef dict host_names, target_names  # what the tables' strs are held by
    cdef Names host_codes, target_ids
    cdef object targets
    cdef Py_ssize_t largest_k, capacity
    cdef uint64_t hash_mask
    cdef list kept  # the Kept, oldest first from ``oldest`` on, round the list once it is full
    cdef Py_ssize_t oldest
    cdef Slot* slots  # a power-of-two number of them, at most half of them used
    cdef Py_ssize_t slot_mask

    def __init__(
        self, Py_ssize_t capacity, dict host_codes, dict target_ids, targets, Py_ssize_t largest_k, int hash_bits=64
    ):
        if capacity < 0 or not 0 <= hash_bits <= 64:
            raise ValueError(f"capacity >= 0 and 0 <= hash_bits <= 64, got {capacity} and {hash_bits}")
        self.capacity = capacity
        self.host_names, self.target_names = host_codes, target_ids
        fill_names(&self.host_codes, host_codes)
        fill_names(&self.target_ids, target_ids)
        self.targets = targets
        self.largest_k = largest_k
        self.hash_mask = ~<uint64_t>0 if hash_bits == 64 else (<uint64_t>1 << hash_bits) - 1
        self.kept = []
        self._resize(16)

    def __dealloc__(self):
        free(self.slots)
        free(self.host_codes.slots)
        free(self.target_ids.slots)

    def __len__(self):
        return len(self.kept)

    def top_k(self, record, k):
        """``targets.top_k`` of a plain record whose descriptor is kept; :class:`Unseen` for a
        plain record whose descriptor is not; None for any other request (or k out of range).

        A record is plain when its ``self`` is a dict of str to str or int (int64) and it has
        no COMPATIBLE record."""
        return self.answer(record, k)

    cdef object answer(self, record, k):
        """:meth:`top_k`, called from C (``IndexRequests.top_k``)."""
        cdef int overflow = 0
        cdef long long wanted
        if type(record) is not dict or type(k) is not int:
            return None
        wanted = PyLong_AsLongLongAndOverflow(k, &overflow)
        if overflow or not 0 < wanted <= self.largest_k:
            return None
        # The record's fields, borrowed from it (no Python code runs while they are read).
        cdef PyObject* device_id = <PyObject*>DEFAULT_ID
        cdef PyObject* host = <PyObject*>NO_HOST
        cdef PyObject* own = NULL
        cdef PyObject* migration_version = NULL
        cdef bint migratable = True
        cdef PyObject* name
        cdef PyObject* item
        cdef Py_ssize_t at = 0
        cdef Field field
        while fm_dict_next(<PyObject*>record, &at, &name, &item):
            if not fm_is_str(name):
                return None
            field = field_of(name)
            if field == SELF:
                own = item
            elif field == ID:
                if not fm_is_str(item) or PyUnicode_GET_LENGTH(item) == 0:
                    return None
                device_id = item
            elif field == HOST:
                if fm_is_str(item):
                    host = item
                elif not fm_is_none(item):
                    return None
            elif field == VM:
                if not fm_is_none(item) and not fm_is_str(item):
                    return None
            elif field == MIGRATION_VERSION:
                if fm_is_str(item):
                    migration_version = item
                elif not fm_is_none(item):
                    return None
            elif field == MIGRATABLE:
                if not fm_is_bool(item):
                    return None
                migratable = fm_is_true(item)
            elif field == CAPACITY:
                if not fm_is_int(item) or fm_as_int64(item, &overflow) < 0 or overflow:
                    return None
            elif field == COMPATIBLE:
                if not fm_is_none(item) and not fm_is_empty_list(item):
                    return None
            else:
                return None
        if own == NULL or not fm_is_dict(own):
            return None
        cdef char on_stack[KEY_ON_STACK]
        cdef Key key
        key.data, key.size, key.room, key.heap = on_stack, 0, KEY_ON_STACK, False
        cdef uint64_t h
        cdef Slot* slot = NULL
        cdef PyObject* problem
        cdef Ranking ranking
        try:
            if not descriptor_of(own, migration_version, migratable, &key, &h):
                return None
            h &= self.hash_mask
            slot = self._plain(h, &key)
            if slot == NULL:
                return Unseen(PyBytes_FromStringAndSize(key.data, key.size), h)
            problem = slot.problem
            ranking = slot.ranking
        finally:
            if key.heap:
                free(key.data)
        # Held while the ranking runs without the GIL, by this call (``Py_INCREF``, before any
        # Python code runs and may change the table or the record): the problem, which a thread
        # may drop from the table meanwhile, and the device's id and host, which the record holds.
        cdef uint64_t host_hash = <uint64_t>fm_hash(host)
        cdef uint64_t id_hash = <uint64_t>fm_hash(device_id)
        Py_INCREF(<object>problem)
        Py_INCREF(<object>host)
        Py_INCREF(<object>device_id)
        cdef int ranked = 0
        try:
            answer = answer_of(&ranking, wanted)
            if ranking.kernel != NULL:
                with nogil:
                    # A host no target is on is -1 (none is 0); a device that is no target has no twin.
                    ranking.host = find_name(&self.host_codes, host_hash, host, -1)
                    ranking.twin = find_name(&self.target_ids, id_hash, device_id, -1)
                    ranked = rank(&ranking)
                    wait_for_the_gil()
        finally:
            Py_DECREF(<object>problem)
            Py_DECREF(<object>host)
            Py_DECREF(<object>device_id)
        if ranked != 0:
            raise MemoryError()
        return answer

    def problem_of(self, key, default):
        """The problem kept under ``descriptor_key``'s ``key``, else ``default``."""
        cdef Kept found = self._general(self._hash_of(key), key)
        return found.problem if found is not None else default

    def keep(self, key, problem):
        """Keeps ``problem`` under ``key``: an :class:`Unseen`, or ``descriptor_key``'s key (the
        oldest kept goes first when there are ``capacity``)."""
        cdef Kept entry = Kept()
        cdef Key bytes_key
        if self.capacity == 0:
            return
        if type(key) is Unseen:
            entry.hash, entry.plain, entry.key = (<Unseen>key).hash, True, (<Unseen>key).key
            bytes_key.data, bytes_key.size = PyBytes_AS_STRING(entry.key), PyBytes_GET_SIZE(entry.key)
            if self._plain(entry.hash, &bytes_key) != NULL:
                return  # another thread kept it first
        else:
            entry.hash, entry.plain, entry.key = self._hash_of(key), False, key
            if self._general(entry.hash, key) is not None:
                return
        entry.problem = problem
        prepare_ranking(self.targets, problem, &entry.ranking)
        cdef Py_ssize_t count = len(self.kept), place
        cdef object evicted = None
        if count < self.capacity:
            if 2 * (count + 1) > self.slot_mask + 1:
                self._resize(2 * (self.slot_mask + 1))
            self.kept.append(entry)
            place = count
        else:
            place = self.oldest
            evicted = self.kept[place]
            self._unslot(place, (<Kept>evicted).hash)
            self.kept[place] = entry  # ``evicted`` still holds the old one: nothing is freed here
            self.oldest = (place + 1) % self.capacity
        self._slot(place, entry)

    cdef uint64_t _hash_of(self, key) except? 0:
        return fm_mix(<uint64_t>PyObject_Hash(key)) & self.hash_mask

    cdef Slot* _plain(self, uint64_t h, const Key* key) noexcept:
        """The slot of the problem kept under a plain key, or NULL."""
        cdef Py_ssize_t at = h & self.slot_mask
        cdef Slot* slot = &self.slots[at]
        while slot.place >= 0:
            if slot.hash == h and slot.key_size == key.size and slot.key != NULL and memcmp(slot.key, key.data, key.size) == 0:
                return slot
            at = (at + 1) & self.slot_mask
            slot = &self.slots[at]
        return NULL

    cdef Kept _general(self, uint64_t h, object key):
        cdef Py_ssize_t at = h & self.slot_mask
        cdef Kept entry
        while self.slots[at].place >= 0:
            if self.slots[at].hash == h and self.slots[at].key == NULL:
                entry = <Kept>PyList_GET_ITEM(self.kept, self.slots[at].place)
                if PyObject_RichCompareBool(entry.key, key, Py_EQ):  # of str, int, bool, None, types
                    return entry
            at = (at + 1) & self.slot_mask
        return None

    cdef void _slot(self, Py_ssize_t place, Kept entry) noexcept:
        cdef Py_ssize_t at = entry.hash & self.slot_mask
        while self.slots[at].place >= 0:
            at = (at + 1) & self.slot_mask
        cdef Slot* slot = &self.slots[at]
        slot.hash = entry.hash
        slot.key = PyBytes_AS_STRING(entry.key) if entry.plain else NULL
        slot.key_size = PyBytes_GET_SIZE(entry.key) if entry.plain else 0
        slot.problem = <PyObject*>entry.problem
        slot.ranking = entry.ranking
        slot.place = place

    cdef void _unslot(self, Py_ssize_t place, uint64_t h) noexcept:
        """Empties the slot of ``place``, moving back the slots after it that would otherwise no
        longer be found from their own (linear probing's deletion)."""
        cdef Py_ssize_t mask = self.slot_mask
        cdef Py_ssize_t hole = h & mask, at, home
        while self.slots[hole].place != place:
            hole = (hole + 1) & mask
        at = hole
        while True:
            at = (at + 1) & mask
            if self.slots[at].place < 0:
                break
            home = self.slots[at].hash & mask
            # it stays unless the hole lies cyclically between its home slot and where it is
            if (at - home) & mask >= (at - hole) & mask:
                self.slots[hole] = self.slots[at]
                hole = at
        self.slots[hole].place = -1

    cdef int _resize(self, Py_ssize_t count) except -1:
        """A table of ``count`` slots (a power of two) holding the kept entries."""
        cdef Slot* slots = <Slot*>malloc(count * sizeof(Slot))
        if slots == NULL:
            raise MemoryError()
        cdef Py_ssize_t at, place
        for at in range(count):
            slots[at].place = -1
        free(self.slots)
        self.slots, self.slot_mask = slots, count - 1
        for place in range(len(self.kept)):
            self._slot(place, <Kept>self.kept[place])
        return 0


cdef bint descriptor_of(PyObject* own, PyObject* migration_version, bint migratable, Key* key, uint64_t* h) except -1:
    """Writes a plain record's key (the module's docstring) and its hash; False when ``self``
    holds anything but str names and str or int64 values. ``migration_version``: NULL if None."""
    cdef PyObject* name
    cdef PyObject* item
    cdef Py_ssize_t at = 0
    cdef int overflow = 0
    cdef int64_t number
    cdef uint64_t mixed = fm_mix(<uint64_t>fm_dict_size(own))
    while fm_dict_next(own, &at, &name, &item):
        # str and int (never bool or float) values
        if not fm_is_str(name):
            return False
        put_tag(key, PAIR)
        put_str(key, name)
        mixed = fm_mix(mixed ^ <uint64_t>fm_hash(name))
        if fm_is_str(item):
            put_str(key, item)
            mixed = fm_mix(mixed ^ <uint64_t>fm_hash(item) ^ STR)
        elif fm_is_int(item):
            number = fm_as_int64(item, &overflow)
            if overflow:
                return False
            put_tag(key, INT)
            put(key, &number, 8)
            mixed = fm_mix(mixed ^ <uint64_t>number ^ INT)
        else:
            return False
    put_tag(key, VERSION)
    if migration_version == NULL:
        put_tag(key, NONE)
        mixed = fm_mix(mixed ^ NONE)
    else:
        put_str(key, migration_version)
        mixed = fm_mix(mixed ^ <uint64_t>fm_hash(migration_version) ^ STR)
    put_tag(key, MIGRATABLE_TRUE if migratable else MIGRATABLE_FALSE)
    h[0] = fm_mix(mixed ^ (MIGRATABLE_TRUE if migratable else MIGRATABLE_FALSE))
    return True


cdef class IndexRequests:
    """The base of ``fastmatch.TargetIndex``: its ``top_k``, a C method, so that a request whose
    record is plain and whose descriptor is kept (``_plain``, a :class:`PlainRequests`) is
    answered with no Python frame on the way. Every other request goes to the subclass's
    ``_top_k(sources, k, plain)``, with what ``_plain`` said of it.

    No Python frame also means no reference taken to the objects every thread's requests share
    (the index's table, ``isinstance``, ``tuple``): two threads that each write such a
    reference count move its cache line from core to core on every request (two threads on
    one index served 1.53 times one thread's requests through a Python ``top_k``, 1.68 times
    without; BENCHMARKS.md, session 8)."""

    cdef public PlainRequests _plain

    def top_k(self, sources, k):
        """``(indices, scores)``, int64 (n, k): the k best available targets per source, as
        :meth:`fastmatch.MatchResult.top_k` gives them (a single record is one row)."""
        plain = self._plain.answer(sources, k) if self._plain is not None else None
        if type(plain) is tuple:
            return plain
        return self._top_k(sources, k, plain)
