# cython: language_level=3
"""Native help for interning: what a side's descriptors hold, read and numbered in order of
first appearance.

Interning numbers each attribute's values over every descriptor of a side (100,000
descriptors hold 700,000 values, of which a few thousand are distinct). Python's own loop
spent about 0.3 us a value on the interpreter; here each value costs its two dict lookups
(the value in its row, then in the column's index), done through the C API, and the
descriptors and their dicts, scattered over the heap, are prefetched a few rows ahead.

- :func:`number_columns`: each attribute's values over the rows (mappings, or a mapping
  attribute of each item), numbered;
- :func:`number_values`: the items of one sequence numbered;
- :func:`attributes_of`: some attributes of every item, read in one pass;
- :func:`keys_in_order`: the keys of a mapping attribute of every item, in order of first
  appearance, with where each first appears.

Values are keyed by Python equality and hash, exactly as a ``dict`` keys them: what is
equal shares a number. The GIL stays held (the dicts and the values are Python objects).
"""

from cpython.dict cimport PyDict_CheckExact, PyDict_Next, PyDict_SetItem
from cpython.list cimport PyList_Append, PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.long cimport PyLong_AsSsize_t, PyLong_FromSsize_t
from cpython.object cimport PyObject, PyObject_GetAttr, PyTypeObject
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_SIZE, PySequence_Fast_ITEMS
from libc.stdint cimport int64_t

import types

import numpy as np

cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object mapping, object key) except? NULL
    PyTypeObject* Py_TYPE(PyObject*)
    PyTypeObject PyDict_Type
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    enum:
        T_OBJECT_EX  # the kind of member a class's __slots__ make
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    ctypedef struct PyDictObject:
        void* ma_keys

cdef extern from *:
    void __builtin_prefetch(const void*) nogil

# Rows ahead of the one numbered where each of its three dependent loads is asked for (the
# item, then its mapping, then the mapping's table): items and their dicts lie scattered
# over a fleet's heap, and each row would otherwise wait for memory three times in turn.
# (Prefetching the values as well, a fourth stage, gained nothing measurable.)
cdef enum:
    AHEAD = 8


cdef struct Slot:  # where the items' mapping attribute sits: offset -1 when not in a slot
    PyTypeObject* type
    Py_ssize_t offset


cdef Slot _slot(PyObject** items, Py_ssize_t n, attribute) except *:
    """Where ``attribute`` sits in the items of the first item's type (a dataclass with
    slots): read ahead there, to prefetch the rows; the rows used are read through getattr,
    for any item."""
    cdef Slot slot
    slot.type, slot.offset = NULL, -1
    if attribute is not None and n:
        slot.type = Py_TYPE(items[0])
        member = getattr(<object>slot.type, "__dict__", {}).get(attribute)
        if isinstance(member, types.MemberDescriptorType) and (<PyMemberDescrObject*>member).d_member.type == T_OBJECT_EX:
            slot.offset = (<PyMemberDescrObject*>member).d_member.offset
    return slot


cdef inline PyObject* _slot_of(PyObject* item, Slot slot) noexcept:
    """The slot of an item of the slot's type; NULL for any other item."""
    if slot.offset < 0 or Py_TYPE(item) != slot.type:
        return NULL
    return (<PyObject**>(<char*>item + slot.offset))[0]


cdef inline void _ask_for_table(PyObject* row) noexcept:
    """Prefetch a dict's table (its first three lines: a descriptor's few entries)."""
    cdef const char* table
    if row != NULL and Py_TYPE(row) == &PyDict_Type:
        table = <const char*>(<PyDictObject*>row).ma_keys
        __builtin_prefetch(table)
        __builtin_prefetch(table + 64)
        __builtin_prefetch(table + 128)


cdef inline void _ask_ahead(PyObject** items, Py_ssize_t i, Py_ssize_t n, Slot slot) noexcept:
    """Prefetch, from row ``i``, the item three strides ahead, the mapping of the one two
    ahead and the table of the one a stride ahead."""
    cdef PyObject* row
    if slot.offset < 0:
        return
    if i + 3 * AHEAD < n:
        __builtin_prefetch(items[i + 3 * AHEAD])
    if i + 2 * AHEAD < n:
        row = _slot_of(items[i + 2 * AHEAD], slot)
        if row != NULL:
            __builtin_prefetch(row)
    if i + AHEAD < n:
        _ask_for_table(_slot_of(items[i + AHEAD], slot))


cdef inline Py_ssize_t _number(dict index, list distinct, list first, object value, Py_ssize_t at) except -1:
    """The number of ``value`` in ``index``; a new value is numbered next, kept in
    ``distinct``, and ``at`` (where it was met) in ``first``."""
    cdef PyObject* found = PyDict_GetItemWithError(index, value)
    cdef Py_ssize_t number
    if found != NULL:
        return PyLong_AsSsize_t(<object>found)
    number = len(distinct)
    PyDict_SetItem(index, value, PyLong_FromSsize_t(number))
    PyList_Append(distinct, value)
    PyList_Append(first, at)
    return number


def number_columns(rows, names, attribute=None):
    """For each of ``names``, the values ``rows[i].get(name)`` (``None`` where a row lacks
    it) numbered in order of first appearance; with ``attribute``, the rows are that
    attribute of each item of ``rows`` (read as it is used: each item is fetched once).

    The rows are mappings (dicts are read through the C API, other mappings through
    ``.get``). Returns ``(distinct, first, numbers)``: per name the list of its distinct
    values and the list of the row where each first appears, and int64
    ``[len(names), len(rows)]``, each row's value's position in its name's ``distinct``.
    """
    cdef object held_rows = PySequence_Fast(rows, "rows must be a sequence")
    cdef object held_names = PySequence_Fast(names, "names must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(held_rows), k = PySequence_Fast_GET_SIZE(held_names)
    cdef PyObject** row_items = PySequence_Fast_ITEMS(held_rows)
    cdef PyObject** name_items = PySequence_Fast_ITEMS(held_names)
    cdef list indexes = [{} for _ in range(k)]
    cdef list distinct = [[] for _ in range(k)]
    cdef list first = [[] for _ in range(k)]
    numbers = np.empty((k, n), dtype=np.int64)
    cdef int64_t[:, ::1] number = numbers
    cdef Py_ssize_t i, j
    cdef PyObject* found
    cdef Slot slot = _slot(row_items, n, attribute)
    cdef object row, name, value
    for i in range(n):
        _ask_ahead(row_items, i, n, slot)
        row = <object>row_items[i] if attribute is None else PyObject_GetAttr(<object>row_items[i], attribute)
        for j in range(k):
            name = <object>name_items[j]
            if PyDict_CheckExact(row):
                found = PyDict_GetItemWithError(row, name)
                value = <object>found if found != NULL else None
            else:
                value = row.get(name)
            number[j, i] = _number(<dict>indexes[j], <list>distinct[j], <list>first[j], value, i)
    return distinct, first, numbers


def number_values(values):
    """The items of the sequence ``values`` numbered in order of first appearance:
    ``(distinct, first, numbers)``, the distinct items, the position where each first
    appears, and each item's position in ``distinct`` (int64)."""
    cdef object held = PySequence_Fast(values, "values must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(held), i
    cdef PyObject** items = PySequence_Fast_ITEMS(held)
    cdef dict index = {}
    cdef list distinct = [], first = []
    numbers = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] number = numbers
    for i in range(n):
        number[i] = _number(index, distinct, first, <object>items[i], i)
    return distinct, first, numbers


def attributes_of(objects, names):
    """The attributes ``names`` of every object of the sequence ``objects``, one list per
    name, read in one pass (each object is fetched from memory once, not once per name)."""
    cdef object held = PySequence_Fast(objects, "objects must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(held), i, j
    cdef PyObject** items = PySequence_Fast_ITEMS(held)
    cdef tuple held_names = tuple(names)
    cdef Py_ssize_t k = len(held_names)
    cdef list out = [PyList_New(n) for _ in range(k)]
    cdef object value
    for i in range(n):
        if i + AHEAD < n:
            __builtin_prefetch(items[i + AHEAD])
        for j in range(k):
            value = PyObject_GetAttr(<object>items[i], held_names[j])
            Py_INCREF(value)  # PyList_SET_ITEM steals the reference
            PyList_SET_ITEM(<list>out[j], i, value)
    return out


def keys_in_order(objects, attribute):
    """The keys of the mappings ``getattr(item, attribute)`` of the sequence ``objects``, in
    order of first appearance: ``(keys, rows, places)``, each key, the item where it first
    appears and its place among that mapping's keys."""
    cdef object held = PySequence_Fast(objects, "objects must be a sequence")
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(held), i, pos, place
    cdef PyObject** items = PySequence_Fast_ITEMS(held)
    cdef list keys = [], rows = [], places = []
    cdef dict seen = {}
    cdef PyObject* key
    cdef PyObject* value
    cdef object mapping
    cdef Slot slot = _slot(items, n, attribute)
    for i in range(n):
        _ask_ahead(items, i, n, slot)
        mapping = PyObject_GetAttr(<object>items[i], attribute)
        if not PyDict_CheckExact(mapping):
            mapping = dict(mapping)
        pos, place = 0, 0
        while PyDict_Next(mapping, &pos, &key, &value):
            if PyDict_GetItemWithError(seen, <object>key) == NULL:
                PyDict_SetItem(seen, <object>key, None)
                keys.append(<object>key)
                rows.append(i)
                places.append(place)
            place += 1
    return keys, rows, places
