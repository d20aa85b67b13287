"""TargetIndex answers exactly what match().top_k answers, for sources whose values
the prepared targets have never seen as well as for known ones."""

import random
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastmatch
import fastmatch.devices
import fastmatch.index

TYPES = ["i915-GVTg_V5_1", "i915-GVTg_V5_2", "i915-GVTg_V5_4", "nvidia-63", "nvidia-64"]
VERSIONS = ["1.0", "1.1.3", "1.2", "2.0.1", "2.1", "550.127.08", "1.1.0-rc1", ""]
MODES = ["none", "none+ppgtt", "none+ppgtt+context", "ppgtt", ""]


def _device(rng: random.Random, name: str, *, unseen: bool) -> dict:
    versions = VERSIONS + (["1.1.9", "0.9", "3.0", "1.15"] if unseen else [])
    modes = MODES + (["none+turbo", "exotic"] if unseen else [])
    record = {
        "id": name,
        "host": rng.choice(["", "h1", "h2", "h3"] + (["h9"] if unseen else [])),
        "self": {
            "mdev_type": rng.choice(TYPES + (["unknown-type"] if unseen else [])),
            "software_version": rng.choice(versions),
            "pv_mode": rng.choice(modes),
            "aggregator": rng.choice([1, 2, 4, None, 3] if unseen else [1, 2, 4, None]),
        },
        "capacity": rng.choice([0, 1, 2]),
    }
    if unseen and rng.random() < 0.1:
        record["self"]["vendor_extra"] = "x"
    if rng.random() < 0.15:
        record["migration_version"] = rng.choice(["m1", "m2"] + (["m3"] if unseen else []))
    if rng.random() < 0.05:
        record["migratable"] = False
    return record


def _target(rng: random.Random, name: str) -> dict:
    record = _device(rng, name, unseen=False)
    if rng.random() < 0.4:
        record["compatible"] = [
            {
                "mdev_type": "i915-GVTg_V5_{v:int:1,2,4,8}",
                "aggregator": "{v}/2",
                "software_version": ["1.1.9", "1.1.3", "0.9"],  # literals no target has
            },
            {"mdev_type": ["unknown-type", "nvidia-63"], "pv_mode": "none+turbo"},
        ]
    return record


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "options",
    [{}, {"prefer": "newest"}, {"records": "and"}, {"opaque": "required"}, {"exclude_same_host": False},
     {"direction": "both"}, {"unknown": "ignore"}, {"attributes": {"aggregator": {"type": "int", "rule": "ge"}}}],
)
def test_index_top_k_equals_match_top_k(seed, options):
    rng = random.Random(seed)
    targets = [_target(rng, f"t{k}") for k in range(80)]
    sources = [_device(rng, f"t{k}" if k < 4 else f"s{k}", unseen=True) for k in range(40)]
    policy = fastmatch.Policy.from_dict(options)
    index = fastmatch.TargetIndex(targets, policy)
    for k in (1, 4):
        expected = fastmatch.match(sources, targets, policy).top_k(k)
        got = index.top_k(sources, k)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    one = index.top_k(sources[5], 3)
    assert np.array_equal(one[0], fastmatch.match([sources[5]], targets, policy).top_k(3)[0])


def test_index_of_an_empty_fleet():
    index = fastmatch.TargetIndex([])
    indices, scores = index.top_k({"self": {"mdev_type": "a"}}, 2)
    assert indices.tolist() == [[-1, -1]] and scores.tolist() == [[-1, -1]]


def test_unseen_values_that_share_a_code_stay_apart():
    """1.0.4 and 1.2 both sort after the targets' 1.0.3: they share a version code, but
    not the minor that the version rule reads (1.0.4 -> 1.0.3 passes, 1.2 -> 1.0.3 does not)."""
    targets = [{"id": "t", "self": {"software_version": "1.0.3"}}]
    sources = [
        {"id": "a", "self": {"software_version": "1.0.4"}},
        {"id": "b", "self": {"software_version": "1.2"}},
    ]
    index = fastmatch.TargetIndex(targets)
    for order in (sources, sources[::-1]):
        expected = fastmatch.match(order, targets).top_k(1)
        got = index.top_k(order, 1)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        assert sorted(got[0][:, 0].tolist()) == [-1, 0]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize(
    "options",
    [{}, {"prefer": "newest"}, {"records": "and"}, {"opaque": "required"}, {"exclude_same_host": False},
     {"direction": "both"}, {"direction": "source-offers"}, {"unknown": "ignore"}, {"score_version": ""}],
)
def test_one_descriptor_requests_equal_match(seed, options):
    """A request of one descriptor (a scheduler's: one record, or devices that are alike)
    takes the index's one-class path; each answers what match() does, values the targets
    lack included."""
    rng = random.Random(100 + seed)
    targets = [_target(rng, f"t{k}") for k in range(60)]
    sources = [_device(rng, f"t{k}" if k < 4 else f"s{k}", unseen=True) for k in range(20)]
    for source in sources[::5]:  # records that count only where the policy reads the sources'
        source["compatible"] = [{"mdev_type": ["nvidia-63", "i915-GVTg_V5_4"]}]
    policy = fastmatch.Policy.from_dict(options)
    index = fastmatch.TargetIndex(targets, policy)
    for source in sources:
        alike = [source, {**source, "id": source["id"] + "-twin", "host": "h1"}]  # two devices, one descriptor
        for request in ([source], alike):
            expected = fastmatch.match(request, targets, policy).top_k(4)
            got = index.top_k(request, 4)
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), (source, options)
        record = {key: value for key, value in source.items() if key != "id"}
        got = index.top_k(record, 2)
        expected = fastmatch.match([{"id": "request", **record}], targets, policy).top_k(2)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), (source, options)


def test_one_descriptor_side_is_what_the_general_side_makes():
    """The one-class source side holds the same arrays as the general interning of that descriptor."""
    rng = random.Random(7)
    targets = [_target(rng, f"t{k}") for k in range(60)]
    for options in ({}, {"direction": "both"}, {"prefer": "newest"}):
        index = fastmatch.TargetIndex(targets, fastmatch.Policy.from_dict(options))
        prepared = index._prepared
        for k in range(30):
            record = _device(rng, f"s{k}", unseen=True)
            if k % 3 == 0 and options.get("direction") != "both":  # records the policy does not read
                record["compatible"] = [{"mdev_type": "nvidia-63"}]
            devices = fastmatch.DeviceSet.from_records([record], index.policy)
            fast = prepared._one_class_side(devices)
            general = prepared.context.side(devices, "source", frozen=True)
            for field in fast.__dataclass_fields__:
                if field != "records":
                    a, b = getattr(fast, field), getattr(general, field)
                    assert a.dtype == b.dtype and np.array_equal(a, b), (field, options)


# -- one-record requests through the problems the index keeps per descriptor -------------------
def _requests_of(descriptors: list[dict], targets: list[dict], rng: random.Random, n: int) -> list[dict]:
    """``n`` records, each one of ``descriptors`` as written, with ids and hosts of their own (some
    a target's id or host, so that the same-device and same-host exclusions apply)."""
    requests = []
    for k in range(n):
        record = dict(rng.choice(descriptors))
        record.pop("id", None)
        if rng.random() < 0.8:
            record["id"] = rng.choice([f"r{k}", rng.choice(targets)["id"]])
        record["host"] = rng.choice(["", "h1", "h2", "h3", "h9", None])
        record["capacity"] = rng.choice([0, 1, 2])
        requests.append(record)
    return requests


def _answer(policy: fastmatch.Policy, record: dict, targets: list[dict], k: int) -> tuple[np.ndarray, np.ndarray]:
    return fastmatch.match([{"id": "request", **record}], targets, policy).top_k(k)


@pytest.mark.parametrize(
    "options",
    [{}, {"prefer": "newest"}, {"records": "and"}, {"opaque": "required"}, {"exclude_same_host": False},
     {"direction": "both"}, {"direction": "source-offers"}, {"unknown": "ignore"}],
)
def test_requests_of_kept_descriptors_equal_match(options):
    """Requests that repeat a few descriptors, each with its own id and host, answer what match()
    does, though the index prepares each descriptor once; values no target has included."""
    rng = random.Random(11)
    targets = [_target(rng, f"t{k}") for k in range(60)]
    descriptors = [_device(rng, f"d{k}", unseen=True) for k in range(8)]
    policy = fastmatch.Policy.from_dict(options)
    index = fastmatch.TargetIndex(targets, policy)
    for record in _requests_of(descriptors, targets, rng, 60):
        for k in (1, 3):
            got, expected = index.top_k(record, k), _answer(policy, record, targets, k)
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), (record, options)
    assert 0 < len(index._plain) <= len(descriptors)


def test_prepared_descriptors_are_bounded():
    """The index keeps at most ``prepared_descriptors`` problems, the oldest going first, and
    answers alike whatever it keeps."""
    rng = random.Random(12)
    targets = [_target(rng, f"t{k}") for k in range(40)]
    descriptors = [_device(rng, f"d{k}", unseen=False) for k in range(10)]
    indexes = [fastmatch.TargetIndex(targets, prepared_descriptors=kept) for kept in (0, 3, 4096)]
    for record in _requests_of(descriptors, targets, rng, 50):
        answers = [index.top_k(record, 4) for index in indexes]
        for got in answers[1:]:
            assert np.array_equal(got[0], answers[0][0]) and np.array_equal(got[1], answers[0][1])
        assert [len(index._plain) for index in indexes[:2]] == [0, min(3, len(indexes[2]._plain))]
    with pytest.raises(ValueError, match="prepared_descriptors"):
        fastmatch.TargetIndex(targets, prepared_descriptors=-1)


def test_requests_of_a_few_records_equal_match():
    """A list of a few records is answered record by record where their descriptors are kept (or
    one is new): as match() answers the list; lists of many new descriptors, of more records than
    FEW_RECORDS, or with a bad record take the general path, which names the record."""
    rng = random.Random(14)
    targets = [_target(rng, f"t{k}") for k in range(50)]
    descriptors = [_device(rng, f"d{k}", unseen=True) for k in range(6)]
    policy = fastmatch.Policy.default()
    index = fastmatch.TargetIndex(targets, policy)
    records = _requests_of(descriptors, targets, rng, 200)
    for n in (2, 3, 5, 2, 8, fastmatch.index.FEW_RECORDS + 3):
        request = [{**record, "id": f"q{k}"} for k, record in enumerate(rng.sample(records, n))]
        expected = fastmatch.match(request, targets, policy).top_k(3)
        got = index.top_k(request, 3)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert 0 < len(index._plain) <= len(descriptors)
    for bad in ([{**records[0], "id": "q"}, {**records[1], "id": "q"}], [{**records[0], "id": "q"}, BAD_RECORDS[-1]]):
        with pytest.raises(fastmatch.FastmatchError) as expected_error:
            fastmatch.DeviceSet.from_records(bad)
        with pytest.raises(fastmatch.FastmatchError) as got_error:
            index.top_k(bad, 2)
        assert str(got_error.value) == str(expected_error.value)


BAD_RECORDS = [
    {"id": "a", "self": {"mdev_type": "nvidia-63"}, "colour": "red"},
    {"id": "", "self": {"mdev_type": "nvidia-63"}},
    {"id": 7, "self": {"mdev_type": "nvidia-63"}},
    {"id": "a", "host": 5, "self": {"mdev_type": "nvidia-63"}},
    {"id": "a", "vm": ["v"], "self": {"mdev_type": "nvidia-63"}},
    {"id": "a", "capacity": -1, "self": {"mdev_type": "nvidia-63"}},
    {"id": "a", "capacity": True, "self": {"mdev_type": "nvidia-63"}},
    {"id": "a", "capacity": "1", "self": {"mdev_type": "nvidia-63"}},
    {"id": "a", "self": {"mdev_type": "nvidia-{v:int:1}"}},
    {"id": "a", "self": "mdev_type=nvidia-63"},
    {"id": "a"},
    {"id": "a", "self": {"mdev_type": "nvidia-63"}, "compatible": {"mdev_type": "x"}},
    {"id": "a", "self": {"mdev_type": "nvidia-63"}, "migratable": 1},
    {"id": "a", "self": {"mdev_type": "nvidia-63"}, "migratable": "yes"},
    {"id": "a", "self": {"mdev_type": "nvidia-63"}, "migration_version": 3},
    {"id": "a", "self": {"mdev_type": "nvidia-63", "aggregator": True}},
    {"id": "a", "self": {"mdev_type": "nvidia-63", "aggregator": "0x"}},
    {"id": "a", "self": {"mdev_type": "nvidia-63", "software_version": "v2+"}},
]


@pytest.mark.parametrize("record", BAD_RECORDS)
def test_a_bad_record_is_reported_as_before(record):
    """A bad single record raises what validating it raises, also after a good record of a
    descriptor that looks the same (``1`` and ``True``, ``"1"`` and ``1``) was kept."""
    index = fastmatch.TargetIndex([{"id": "t", "host": "h1", "self": {"mdev_type": "nvidia-63", "aggregator": 1}}])
    with pytest.raises(fastmatch.FastmatchError) as expected:
        fastmatch.DeviceSet.from_records([record])
    for good in ({"id": "g", "self": {"mdev_type": "nvidia-63"}}, {"id": "g", "self": {"mdev_type": "nvidia-63", "aggregator": 1}},
                 {"id": "g", "self": {"mdev_type": "nvidia-63"}, "migratable": True}):
        index.top_k(good, 1)
    with pytest.raises(fastmatch.FastmatchError) as got:
        index.top_k(record, 1)
    assert str(got.value) == str(expected.value)


def test_threads_sharing_an_index_answer_what_match_does():
    """Two threads asking one index at once (their rankings run side by side, without the GIL)."""
    rng = random.Random(13)
    targets = [_target(rng, f"t{k}") for k in range(50)]
    descriptors = [_device(rng, f"d{k}", unseen=True) for k in range(12)]
    requests = _requests_of(descriptors, targets, rng, 200)
    policy = fastmatch.Policy.default()
    expected = [_answer(policy, record, targets, 3) for record in requests]
    _two_threads_answer(fastmatch.TargetIndex(targets), requests, 3, expected)


def _two_threads_answer(index: fastmatch.TargetIndex, requests: list, k: int, expected: list) -> None:
    """Two threads share ``index``, each asking every other request's top_k(k): every answer is ``expected``'s."""
    answers: dict[int, list] = {}

    def serve(share: int) -> None:
        answers[share] = [index.top_k(record, k) for record in requests[share::2]]

    workers = [threading.Thread(target=serve, args=(share,)) for share in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    for share in range(2):
        assert len(answers[share]) == len(requests[share::2])
        for got, wanted in zip(answers[share], expected[share::2]):
            assert np.array_equal(got[0], wanted[0]) and np.array_equal(got[1], wanted[1])


def test_a_pickled_index_keeps_its_bound():
    import pickle

    index = fastmatch.TargetIndex([{"id": "t", "self": {"mdev_type": "a"}}], prepared_descriptors=5)
    assert pickle.loads(pickle.dumps(index)).prepared_descriptors == 5


_ABSENT = object()
# Each field: values validation accepts as they are, then values it refuses or reads otherwise.
_FIELDS = {
    "id": (["a", "t0", _ABSENT], ["", 1]),
    "host": (["", "h1", None, _ABSENT], [1]),
    "vm": (["v", None, _ABSENT], [["v"]]),
    "capacity": ([0, 1, _ABSENT], [-1, 2**63, True, 1.0, "1"]),
    "compatible": ([None, [], _ABSENT], [[{}], {}, "", [{"mdev_type": "a"}]]),
    "migration_version": (["m", "", None, _ABSENT], [1]),
    "migratable": ([True, False, _ABSENT], [1, 0, "true", None]),
}
_SELF_VALUES = (["nvidia-63", "1", "", "1.0", 1, 2], [True, None, 1.0, ["none"], "{v}", "v2+"])
_NAMES = ["mdev_type", "aggregator", "pv_mode", "software_version", "x"]


@st.composite
def _records(draw: st.DrawFn) -> dict:
    """Records alike but for a field or two, some of which validation refuses or reads otherwise."""
    odd = draw(st.sets(st.sampled_from([*_FIELDS, "self", "colour"]), max_size=2))
    record = {}
    for name, (plain, other) in _FIELDS.items():
        value = draw(st.sampled_from(other if name in odd else plain))
        if value is not _ABSENT:
            record[name] = value
    names = draw(st.lists(st.sampled_from(_NAMES), max_size=2, unique=True))
    values = _SELF_VALUES[1] + _SELF_VALUES[0] if "self" in odd else _SELF_VALUES[0]
    record["self"] = {name: draw(st.sampled_from(values)) for name in names}
    if "colour" in odd:
        record["colour"] = "red"
    return record


def _descriptor_or_error(record: dict) -> object:
    try:
        return fastmatch.devices.DeviceSetBuilder(fastmatch.Policy.default())._parse_descriptor(record)
    except fastmatch.FastmatchError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(_records(), min_size=2, max_size=8))
def test_plain_requests_key_only_what_validation_tells_apart(records):
    """The records that ``PlainRequests`` reads itself are ones validation accepts as devices, and
    those it gives one key (or ``descriptor_key`` does, for the others) have one descriptor (or
    fail alike): so a kept problem serves only records that validation would have given it."""
    from fastmatch._request import PlainRequests, Unseen

    plain = PlainRequests(0, {}, {}, None, 10)  # no problem kept: every plain record is Unseen
    by_key: dict = {}
    for record in records:
        outcome = _descriptor_or_error(record)
        by_key.setdefault(fastmatch.devices.descriptor_key(record), []).append(outcome)  # the key of the others
        found = plain.top_k(record, 1)
        if found is None:
            continue
        assert isinstance(found, Unseen)
        fastmatch.devices.device_fields({"id": "request", **record}, {})  # raises if a field is bad
        by_key.setdefault(found.key, []).append(outcome)
    by_key.pop(None, None)  # records descriptor_key does not key
    for outcomes in by_key.values():
        assert all(outcome == outcomes[0] for outcome in outcomes), outcomes
