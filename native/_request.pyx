# cython: language_level=3
"""A scheduler's one-record requests read at C speed (``fastmatch.index``).

:class:`PlainRequests` takes a record whose every field is of the plain type that validation
accepts as it is, finds the kernel's problem of its descriptor among those a TargetIndex keeps,
and has it ranked (``_kernel.RequestTargets``) in the same call. Any other record (a str
subclass, a float, an unknown key, a bad id, COMPATIBLE records) is left to
``fastmatch.devices``, which reads it in full and reports what is wrong with it. Whether a
descriptor is valid is not decided here: the index keeps only the descriptors that validation
accepted.

The kept problems are found by a 64-bit hash of the descriptor, mixed from the hashes its str
objects cache and its values' types, in an open-addressing table; a slot whose hash is equal is
then compared field by field with the record (names, values, types), so that two descriptors
whose hashes collide never share an answer.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLongLong, PyLong_AsLongLongAndOverflow
from cpython.object cimport Py_EQ, PyObject, PyObject_Hash, PyObject_RichCompareBool
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

from fastmatch._kernel cimport request_top_k

from fastmatch.values import INT64_MAX

cdef extern from "hashing.h":
    uint64_t fm_mix(uint64_t h) noexcept nogil

# A record's fields, told apart by their str hashes first (a str caches its hash).
cdef enum Field:
    ID, HOST, VM, SELF, COMPATIBLE, CAPACITY, MIGRATION_VERSION, MIGRATABLE, UNKNOWN

cdef tuple FIELD_NAMES = ("id", "host", "vm", "self", "compatible", "capacity", "migration_version", "migratable")
cdef Py_hash_t FIELD_HASHES[8]
for _at, _name in enumerate(FIELD_NAMES):
    FIELD_HASHES[_at] = hash(_name)

# Mixed into a descriptor's hash for each kind of value, so that 2 and "2" (whose str and int
# hashes may be equal) hash apart as well as compare apart.
cdef enum:
    STR_VALUE = 0x5354
    INT_VALUE = 0x494E
    NO_VALUE = 0x4E4F


cdef class Unseen:
    """A plain record whose descriptor the index does not keep (yet): its key, ``(SELF's (name,
    value) pairs, migration_version, migratable)``, and the hash it is kept under."""

    cdef readonly tuple key
    cdef readonly uint64_t hash

    def __cinit__(self, tuple key, uint64_t hash):
        self.key = key
        self.hash = hash


cdef class Kept:
    """A kept descriptor's problem: under ``Unseen.key`` (``plain``) or ``descriptor_key``'s key."""

    cdef uint64_t hash
    cdef bint plain
    cdef object key
    cdef object problem


cdef inline bint is_str(object value):
    return type(value) is str


cdef inline Field field_of(object name):
    """Which record field ``name`` (a str) is."""
    cdef Py_hash_t h = PyObject_Hash(name)
    cdef int at
    for at in range(8):
        if FIELD_HASHES[at] == h and <str>name == <str>FIELD_NAMES[at]:
            return <Field>at
    return UNKNOWN


cdef class PlainRequests:
    """A TargetIndex's one-record requests: up to ``capacity`` kept problems of descriptors
    (None: no target can take it), the oldest going first; ``host_codes`` and ``target_ids`` are
    the targets' hosts and ids (``TargetDevices.host_code_of``, ``DeviceSet.id_index``),
    ``targets`` ranks (``_kernel.RequestTargets``), for any k up to ``largest_k``.
    ``hash_bits``: how many bits of a descriptor's hash the table tells apart (fewer only to test
    descriptors whose hashes collide).

    Every method runs holding the GIL and calls no Python code while it changes the table, so a
    reader on another thread sees it before or after a change, never half way."""

    cdef dict host_codes, target_ids
    cdef object targets
    cdef Py_ssize_t largest_k, capacity
    cdef uint64_t hash_mask
    cdef list kept  # the Kept, oldest first from ``oldest`` on, round the list once it is full
    cdef Py_ssize_t oldest
    # the table: a power-of-two number of slots, each a place in ``kept`` (-1: empty) and its hash
    cdef Py_ssize_t* slot_place
    cdef uint64_t* slot_hash
    cdef Py_ssize_t slot_mask

    def __init__(
        self, Py_ssize_t capacity, dict host_codes, dict target_ids, targets, Py_ssize_t largest_k, int hash_bits=64
    ):
        if capacity < 0 or not 0 <= hash_bits <= 64:
            raise ValueError(f"capacity >= 0 and 0 <= hash_bits <= 64, got {capacity} and {hash_bits}")
        self.capacity = capacity
        self.host_codes = host_codes
        self.target_ids = target_ids
        self.targets = targets
        self.largest_k = largest_k
        self.hash_mask = ~<uint64_t>0 if hash_bits == 64 else (<uint64_t>1 << hash_bits) - 1
        self.kept = []
        self._resize(16)

    def __dealloc__(self):
        free(self.slot_place)
        free(self.slot_hash)

    def __len__(self):
        return len(self.kept)

    def top_k(self, record, k):
        """``targets.top_k`` of a plain record whose descriptor is kept; :class:`Unseen` for a
        plain record whose descriptor is not; None for any other request (or k out of range).

        A record is plain when its ``self`` is a dict of str to str or int and it has no
        COMPATIBLE record; equal keys mean equal descriptors, value for value and type for type."""
        cdef int overflow = 0
        cdef long long wanted
        if type(record) is not dict or type(k) is not int:
            return None
        wanted = PyLong_AsLongLongAndOverflow(k, &overflow)
        if overflow or not 0 < wanted <= self.largest_k:
            return None
        cdef PyObject* name
        cdef PyObject* item
        cdef Py_ssize_t at = 0
        cdef object device_id = "request", host = None, own = None, migration_version = None, migratable = True
        cdef Field field
        while PyDict_Next(<dict>record, &at, &name, &item):
            if not is_str(<object>name):
                return None
            field = field_of(<object>name)
            if field == SELF:
                own = <object>item
            elif field == ID:
                device_id = <object>item
                if not is_str(device_id) or not device_id:
                    return None
            elif field == HOST:
                host = <object>item
                if host is not None and not is_str(host):
                    return None
            elif field == VM:
                if <object>item is not None and not is_str(<object>item):
                    return None
            elif field == MIGRATION_VERSION:
                migration_version = <object>item
                if migration_version is not None and not is_str(migration_version):
                    return None
            elif field == MIGRATABLE:
                migratable = <object>item
                if type(migratable) is not bool:
                    return None
            elif field == CAPACITY:
                if type(<object>item) is not int or not 0 <= <object>item <= INT64_MAX:
                    return None
            elif field == COMPATIBLE:
                if <object>item is not None and not (type(<object>item) is list and not <list>item):
                    return None
            else:
                return None
        if type(own) is not dict:
            return None
        cdef uint64_t h = fm_mix(<uint64_t>len(<dict>own))
        at = 0
        while PyDict_Next(<dict>own, &at, &name, &item):
            # str and int (never bool or float) values: ``2`` and ``"2"`` never compare equal
            if not is_str(<object>name):
                return None
            h = fm_mix(h ^ <uint64_t>PyObject_Hash(<object>name))
            if is_str(<object>item):
                h = fm_mix(h ^ <uint64_t>PyObject_Hash(<object>item) ^ STR_VALUE)
            elif type(<object>item) is int:
                h = fm_mix(h ^ <uint64_t>PyObject_Hash(<object>item) ^ INT_VALUE)
            else:
                return None
        h = fm_mix(h ^ (<uint64_t>PyObject_Hash(migration_version) ^ STR_VALUE if migration_version is not None else NO_VALUE))
        h = fm_mix(h ^ (migratable is True)) & self.hash_mask
        cdef Kept found = self._plain(h, <dict>own, migration_version, migratable)
        if found is None:
            return Unseen(plain_key(<dict>own, migration_version, migratable), h)
        code = PyDict_GetItem(self.host_codes, host if host is not None else "")
        twin = PyDict_GetItem(self.target_ids, device_id)
        # A host no target is on is -1 (none is 0); a device that is no target has no twin.
        return request_top_k(
            self.targets,
            found.problem,
            PyLong_AsLongLong(<object>code) if code != NULL else -1,
            PyLong_AsLongLong(<object>twin) if twin != NULL else -1,
            wanted,
        )

    def problem_of(self, key, default):
        """The problem kept under ``descriptor_key``'s ``key``, else ``default``."""
        cdef Kept found = self._general(self._hash_of(key), key)
        return found.problem if found is not None else default

    def keep(self, key, problem):
        """Keeps ``problem`` under ``key``: an :class:`Unseen`, or ``descriptor_key``'s key (the
        oldest kept goes first when there are ``capacity``)."""
        cdef Kept entry = Kept()
        cdef Py_ssize_t place
        if self.capacity == 0:
            return
        if type(key) is Unseen:
            entry.hash, entry.plain, entry.key = (<Unseen>key).hash, True, (<Unseen>key).key
            if self._plain_key(entry.hash, entry.key) is not None:
                return  # another thread kept it first
        else:
            entry.hash, entry.plain, entry.key = self._hash_of(key), False, key
            if self._general(entry.hash, key) is not None:
                return
        entry.problem = problem
        cdef Py_ssize_t count = len(self.kept)
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
        self._slot(place, entry.hash)

    cdef uint64_t _hash_of(self, key) except? 0:
        return fm_mix(<uint64_t>PyObject_Hash(key)) & self.hash_mask

    cdef Kept _plain(self, uint64_t h, dict own, object migration_version, object migratable):
        """The plain entry whose descriptor the record's is, or None."""
        cdef Py_ssize_t slot = h & self.slot_mask
        cdef Kept entry
        while self.slot_place[slot] >= 0:
            if self.slot_hash[slot] == h:
                entry = <Kept>PyList_GET_ITEM(self.kept, self.slot_place[slot])
                if entry.plain and same_descriptor(entry.key, own, migration_version, migratable):
                    return entry
            slot = (slot + 1) & self.slot_mask
        return None

    cdef Kept _plain_key(self, uint64_t h, tuple key):
        """The plain entry kept under ``key`` (``Unseen.key``: of str, int, bool and None, which
        tuples compare value for value and type for type), or None."""
        cdef Py_ssize_t slot = h & self.slot_mask
        cdef Kept entry
        while self.slot_place[slot] >= 0:
            if self.slot_hash[slot] == h:
                entry = <Kept>PyList_GET_ITEM(self.kept, self.slot_place[slot])
                if entry.plain and entry.key == key:
                    return entry
            slot = (slot + 1) & self.slot_mask
        return None

    cdef Kept _general(self, uint64_t h, object key):
        cdef Py_ssize_t slot = h & self.slot_mask
        cdef Kept entry
        while self.slot_place[slot] >= 0:
            if self.slot_hash[slot] == h:
                entry = <Kept>PyList_GET_ITEM(self.kept, self.slot_place[slot])
                if not entry.plain and PyObject_RichCompareBool(entry.key, key, Py_EQ):
                    return entry
            slot = (slot + 1) & self.slot_mask
        return None

    cdef void _slot(self, Py_ssize_t place, uint64_t h) noexcept:
        cdef Py_ssize_t slot = h & self.slot_mask
        while self.slot_place[slot] >= 0:
            slot = (slot + 1) & self.slot_mask
        self.slot_hash[slot] = h
        self.slot_place[slot] = place

    cdef void _unslot(self, Py_ssize_t place, uint64_t h) noexcept:
        """Empties the slot of ``place``, moving back the entries after it that would otherwise
        no longer be found from their own slot (linear probing's deletion)."""
        cdef Py_ssize_t mask = self.slot_mask
        cdef Py_ssize_t hole = h & mask, slot, home
        while self.slot_place[hole] != place:
            hole = (hole + 1) & mask
        slot = hole
        while True:
            slot = (slot + 1) & mask
            if self.slot_place[slot] < 0:
                break
            home = self.slot_hash[slot] & mask
            # it stays unless the hole lies cyclically between its home slot and where it is
            if (slot - home) & mask >= (slot - hole) & mask:
                self.slot_place[hole] = self.slot_place[slot]
                self.slot_hash[hole] = self.slot_hash[slot]
                hole = slot
        self.slot_place[hole] = -1

    cdef int _resize(self, Py_ssize_t slots) except -1:
        """A table of ``slots`` slots (a power of two) holding the kept entries."""
        cdef Py_ssize_t* places = <Py_ssize_t*>malloc(slots * sizeof(Py_ssize_t))
        cdef uint64_t* hashes = <uint64_t*>malloc(slots * sizeof(uint64_t))
        if places == NULL or hashes == NULL:
            free(places)
            free(hashes)
            raise MemoryError()
        cdef Py_ssize_t slot, place
        for slot in range(slots):
            places[slot] = -1
        free(self.slot_place)
        free(self.slot_hash)
        self.slot_place, self.slot_hash, self.slot_mask = places, hashes, slots - 1
        for place in range(len(self.kept)):
            self._slot(place, (<Kept>self.kept[place]).hash)
        return 0


cdef bint same_descriptor(tuple key, dict own, object migration_version, object migratable) except -1:
    """Whether a plain record's parts are those of ``key`` (``Unseen.key``): the same names in
    the same order, each value of the same type and equal."""
    if PyTuple_GET_ITEM(key, 2) != <PyObject*>migratable:
        return False
    kept_version = <object>PyTuple_GET_ITEM(key, 1)
    if kept_version is not migration_version:
        if kept_version is None or migration_version is None or <str>kept_version != <str>migration_version:
            return False
    pairs = <tuple>PyTuple_GET_ITEM(key, 0)
    if PyTuple_GET_SIZE(pairs) != len(own):
        return False
    cdef Py_ssize_t at = 0, n = 0
    cdef PyObject* name
    cdef PyObject* item
    while PyDict_Next(own, &at, &name, &item):
        pair = <tuple>PyTuple_GET_ITEM(pairs, n)
        kept_name = <object>PyTuple_GET_ITEM(pair, 0)
        kept_item = <object>PyTuple_GET_ITEM(pair, 1)
        n += 1
        if kept_name is not <object>name and <str>kept_name != <str><object>name:
            return False
        if kept_item is <object>item:
            continue
        if type(kept_item) is not type(<object>item):
            return False
        if is_str(kept_item):
            if <str>kept_item != <str><object>item:
                return False
        elif not PyObject_RichCompareBool(kept_item, <object>item, Py_EQ):  # ints: no Python code runs
            return False
    return True


cdef tuple plain_key(dict own, object migration_version, object migratable):
    """``Unseen.key`` of a plain record's parts."""
    cdef Py_ssize_t at = 0, n = 0
    cdef PyObject* name
    cdef PyObject* item
    pairs = PyTuple_New(len(own))
    while PyDict_Next(own, &at, &name, &item):
        pair = (<object>name, <object>item)
        Py_INCREF(pair)
        PyTuple_SET_ITEM(pairs, n, pair)
        n += 1
    return (pairs, migration_version, migratable)
