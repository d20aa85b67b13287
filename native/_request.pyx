# cython: language_level=3
"""A scheduler's one-record requests read at C speed (``fastmatch.index``).

:class:`PlainRequests` takes a record whose every field is of the plain type that validation
accepts as it is, finds the kernel's problem of its descriptor among those a TargetIndex keeps,
and has it ranked (``_kernel.RequestTargets``). Any other record (a str subclass, a float, an
unknown key, a bad id, COMPATIBLE records) is left to ``fastmatch.devices``, which reads it in
full and reports what is wrong with it. Whether a descriptor is valid is not decided here: the
index keeps only the descriptors that validation accepted.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM

from fastmatch.devices import RECORD_KEYS
from fastmatch.values import INT64_MAX

cdef frozenset KEYS = frozenset(RECORD_KEYS)


cdef class Unseen:
    """A plain record whose descriptor the index does not keep (yet): its key."""

    cdef readonly tuple key

    def __cinit__(self, tuple key):
        self.key = key


cdef inline bint is_str(object value):
    return type(value) is str


cdef class PlainRequests:
    """A TargetIndex's one-record requests: ``problems`` maps descriptor keys to the kernel's
    problems (None: no target can take it), ``host_codes`` and ``target_ids`` are the targets'
    hosts and ids (``TargetDevices.host_code_of``, ``DeviceSet.id_index``), ``targets`` ranks
    (``_kernel.RequestTargets``), for any k up to ``largest_k``."""

    cdef dict problems, host_codes, target_ids
    cdef object targets
    cdef Py_ssize_t largest_k

    def __init__(self, dict problems, dict host_codes, dict target_ids, targets, Py_ssize_t largest_k):
        self.problems = problems
        self.host_codes = host_codes
        self.target_ids = target_ids
        self.targets = targets
        self.largest_k = largest_k

    def top_k(self, record, k):
        """``targets.top_k`` of a plain record whose descriptor is kept; :class:`Unseen` for a
        plain record whose descriptor is not (with its key); None for any other request.

        The key is ``(SELF's (name, value) pairs, migration_version, migratable)``, a 3-tuple,
        for a record whose ``self`` is a dict of str to str or int and that has no COMPATIBLE
        record; equal keys mean equal descriptors, value for value and type for type."""
        if type(record) is not dict or type(k) is not int or not 0 < k <= self.largest_k:
            return None
        key = plain_key(<dict>record)
        if key is None:
            return None
        found = PyDict_GetItem(self.problems, key)
        if found == NULL:
            return Unseen(key)
        host = (<dict>record).get("host")
        code = PyDict_GetItem(self.host_codes, host if host is not None else "")
        twin = PyDict_GetItem(self.target_ids, (<dict>record).get("id", "request"))
        # A host no target is on is -1 (none is 0); a device that is no target has no twin.
        return self.targets.top_k(<object>found, <object>code if code != NULL else -1, <object>twin if twin != NULL else -1, k)


cdef object plain_key(dict record):
    """The key of a plain record's descriptor (``PlainRequests.top_k``), or None when a field is
    not of the plain type that validation accepts as it is (``fastmatch.devices.device_fields``)."""
    cdef Py_ssize_t at = 0, n = 0
    cdef PyObject* name
    cdef PyObject* item
    for field in record:
        if not is_str(field) or field not in KEYS:
            return None
    device_id = record.get("id", "request")
    if not is_str(device_id) or not device_id:
        return None
    for field in ("host", "vm", "migration_version"):
        value = record.get(field)
        if value is not None and not is_str(value):
            return None
    capacity = record.get("capacity", 1)
    if type(capacity) is not int or not 0 <= capacity <= INT64_MAX:
        return None
    compatible = record.get("compatible")
    if compatible is not None and not (type(compatible) is list and not compatible):
        return None
    migratable = record.get("migratable", True)
    own = record.get("self")
    if type(migratable) is not bool or type(own) is not dict:
        return None
    pairs = PyTuple_New(len(<dict>own))
    while PyDict_Next(own, &at, &name, &item):
        # str and int (never bool or float) values: ``2`` and ``"2"`` never compare equal
        if not is_str(<object>name) or not (is_str(<object>item) or type(<object>item) is int):
            return None
        pair = (<object>name, <object>item)
        Py_INCREF(pair)
        PyTuple_SET_ITEM(pairs, n, pair)
        n += 1
    return (pairs, record.get("migration_version"), migratable)
