"""The table of kept descriptors behind ``TargetIndex.top_k`` of one record (``native/_request.pyx``):
descriptors whose hashes collide never share an answer, values that differ only in type stay
apart, the oldest go first, and threads that evict while others read answer what match() does."""

import random
import threading

import numpy as np
import pytest

import fastmatch
from fastmatch._request import PlainRequests, Unseen

from test_index import _device, _requests_of, _target, _two_threads_answer

COLLIDING = 0  # hash_bits: every descriptor hashes alike, so the table compares every key


def _plain(capacity: int, hash_bits: int = 64) -> PlainRequests:
    """A table of an empty fleet's: it keeps problems of None (no target can take the descriptor)."""
    return PlainRequests(capacity, {}, {}, fastmatch.TargetIndex([])._requests, 10, hash_bits)


def _kept(plain: PlainRequests, record: dict) -> bool:
    """Whether ``plain`` finds the kept problem of ``record``'s descriptor (and keeps it if not)."""
    found = plain.top_k(record, 2)
    if isinstance(found, Unseen):
        plain.keep(found, None)
        return False
    assert [row.tolist() for row in found] == [[[-1, -1]], [[-1, -1]]]
    return True


def _anew(value: object) -> object:
    return "".join(list(value)) if isinstance(value, str) else value


def _record(own: dict, **fields) -> dict:
    return {"id": "a", "host": "h1", "self": own, **fields}


ALIKE_BUT_FOR_A_TYPE_OR_A_PART = [
    {"aggregator": 2},
    {"aggregator": "2"},
    {"aggregator": 2, "mdev_type": "x"},
    {"mdev_type": "x", "aggregator": 2},  # the same parts in another order: a key of its own
    {"aggregator": 1},
    {"aggregator": "1"},
    {"aggregator": 2**63 - 1},
    {"aggregator": -(2**63)},
    {"mdev_type": "é"},  # one byte a character
    {"mdev_type": "e"},
    {"mdev_type": "€"},  # two bytes a character
    {"mdev_type": "😀"},  # four
    {"mdev_type": "x" * 3000},  # a key longer than the one written on the stack
    {"mdev_type": "x" * 2999 + "y"},
    {},
    {"": ""},
    {"a": "bc"},
    {"ab": "c"},
]


@pytest.mark.parametrize("hash_bits", [64, COLLIDING])
def test_descriptors_that_differ_in_a_type_or_a_part_are_kept_apart(hash_bits):
    plain = _plain(100, hash_bits)
    for own in ALIKE_BUT_FOR_A_TYPE_OR_A_PART:
        assert not _kept(plain, _record(own)), own
    assert len(plain) == len(ALIKE_BUT_FOR_A_TYPE_OR_A_PART)
    for own in ALIKE_BUT_FOR_A_TYPE_OR_A_PART:  # equal records of str objects made anew: found
        anew = {_anew(name): _anew(value) for name, value in own.items()}
        assert _found(plain, _record(anew, id="b", host="h2")), own
    for fields in ({"migration_version": "m"}, {"migration_version": ""}, {"migratable": False}):
        assert not _kept(plain, _record({"aggregator": 2}, **fields)), fields
        assert _kept(plain, _record({"aggregator": 2}, **fields)), fields
    assert _kept(plain, _record({"aggregator": 2}, migration_version=None, migratable=True, vm="v", capacity=3))


@pytest.mark.parametrize(
    "own", [{"aggregator": True}, {"aggregator": 1.0}, {"aggregator": 2**63}, {"aggregator": None}, {1: "a"}, "x"]
)
def test_a_descriptor_the_table_cannot_key_is_left_to_validation(own):
    """A bool, a float, an int past int64, a name that is no str: the general path reads them."""
    assert _plain(10).top_k(_record(own), 2) is None


def _found(plain: PlainRequests, record: dict) -> bool:
    """Whether ``plain`` finds the kept problem of ``record``'s descriptor (keeping nothing)."""
    return not isinstance(plain.top_k(record, 2), Unseen)


def test_the_oldest_go_first():
    plain = _plain(3, COLLIDING)
    records = [_record({"aggregator": n}) for n in range(7)]
    for record in records:
        _kept(plain, record)
    assert len(plain) == 3
    assert [_found(plain, record) for record in records] == [False] * 4 + [True] * 3


def test_evicting_keeps_the_others_findable():
    """Linear probing's deletion moves slots back: after many evictions in a crowded table every
    descriptor kept is still found, and none that went is."""
    rng = random.Random(3)
    for hash_bits in (2, 3, 64):
        plain = _plain(5, hash_bits)
        kept: list[int] = []
        for _ in range(300):
            n = rng.randrange(12)
            if _kept(plain, _record({"aggregator": n})):
                assert n in kept
            else:
                assert n not in kept
                kept = (kept + [n])[-5:]
            assert len(plain) == len(kept)


def test_colliding_descriptors_answer_what_match_does():
    """Every descriptor's hash alike: each request still gets its own descriptor's answer."""
    rng = random.Random(21)
    targets = [_target(rng, f"t{k}") for k in range(60)]
    descriptors = [_device(rng, f"d{k}", unseen=True) for k in range(10)]
    index = fastmatch.TargetIndex(targets, prepared_descriptors=6)
    index._plain = PlainRequests(6, index._devices.host_code_of, index.targets.id_index, index._requests, index._prepared_k, COLLIDING)
    for record in _requests_of(descriptors, targets, rng, 150):
        got = index.top_k(record, 3)
        expected = fastmatch.match([{"id": "request", **record}], targets).top_k(3)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), record
    assert 0 < len(index._plain) <= 6


def test_threads_that_evict_while_others_read_answer_what_match_does():
    """Two threads, more descriptors than the index keeps: entries go while the other thread
    finds or ranks them (a kept problem is held while it is ranked without the GIL)."""
    rng = random.Random(22)
    targets = [_target(rng, f"t{k}") for k in range(50)]
    descriptors = [_device(rng, f"d{k}", unseen=True) for k in range(9)]
    requests = _requests_of(descriptors, targets, rng, 300)
    expected = [fastmatch.match([{"id": "request", **record}], targets).top_k(3) for record in requests]
    index = fastmatch.TargetIndex(targets, prepared_descriptors=2)
    _two_threads_answer(index, requests, 3, expected)
    assert len(index._plain) <= 2


def test_a_table_refuses_a_bad_size():
    with pytest.raises(ValueError, match="capacity"):
        PlainRequests(-1, {}, {}, None, 10)
    with pytest.raises(ValueError, match="hash_bits"):
        PlainRequests(1, {}, {}, None, 10, 65)


def test_a_request_beside_a_thread_that_keeps_the_gil_still_answers():
    """A warm request waits a bounded time for the GIL to look free, then sleeps for it as any
    thread does: beside a thread that holds the GIL for its whole time slices it still answers."""
    rng = random.Random(23)
    targets = [_target(rng, f"t{k}") for k in range(40)]
    descriptors = [_device(rng, f"d{k}", unseen=True) for k in range(5)]
    requests = _requests_of(descriptors, targets, rng, 100)
    index = fastmatch.TargetIndex(targets)
    for record in requests:  # every descriptor kept: the requests below are warm
        index.top_k(record, 2)
    busy = threading.Event()

    def hold_the_gil() -> None:
        while not busy.is_set():
            sum(range(1000))

    holder = threading.Thread(target=hold_the_gil)
    holder.start()
    try:
        answers = [index.top_k(record, 2) for record in requests]
    finally:
        busy.set()
        holder.join(timeout=10)
    for record, got in zip(requests, answers):
        expected = fastmatch.match([{"id": "request", **record}], targets).top_k(2)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
