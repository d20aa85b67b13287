"""What a match finds in a device set on its own (its values, their numbering, its classes:
``fastmatch.intern.side_values``) is kept on the set and serves every later match. It must
answer as a set matched for the first time would, be reused only under a policy it fits
(the same attribute types, the same say of the side's records), and the set must not change
under it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import fastmatch
from fastmatch import DeviceSet, Policy
from fastmatch.engine import match_reference
from fastmatch.intern import JOINED, intern, side_values
from strategies import Scenario, scenarios

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def answers(result) -> dict[str, object]:
    """Every output that a kept preparation feeds: each source's whole ranking, the pair
    arrays, the counts."""
    m = result.shape[1]
    indices, scores = result.top_k(max(m, 1))
    return {
        "top_k": indices.tolist(),
        "top_k_scores": scores.tolist(),
        "reasons": np.asarray(result.reasons).tolist(),
        "scores": np.asarray(result.scores).tolist(),
        "counts": result.counts().tolist(),
    }


def fresh(devices: DeviceSet) -> DeviceSet:
    """The same devices in a set that no match has seen."""
    return DeviceSet.from_records(devices.to_records(), devices.policy)


@SETTINGS
@given(scenario=scenarios())
def test_a_set_matched_again_answers_as_a_fresh_one(scenario: Scenario) -> None:
    policy = scenario.policy
    sources = DeviceSet.from_records(scenario.sources, policy)
    targets = DeviceSet.from_records(scenario.targets, policy)
    for s, t in ((sources, targets), (targets, sources), (sources, sources)):  # each set in both roles
        want = answers(match_reference(fresh(s), fresh(t), policy, scenario.confirm))
        for _ in range(2):  # the first match prepares the sets, the second reuses them
            assert answers(fastmatch.match(s, t, policy, confirm=scenario.confirm)) == want
    assert sources.interning and targets.interning


def _fleet(policy: Policy) -> tuple[DeviceSet, DeviceSet]:
    """Both sides with COMPATIBLE records, so that ``direction`` decides whose count."""
    sources = [
        {"id": "s1", "host": "a", "self": {"mdev_type": "m1", "software_version": "1.2.0", "aggregator": "2"},
         "compatible": [{"mdev_type": "m1", "aggregator": ["2", "0x4"]}]},
        {"id": "s2", "host": "b", "self": {"mdev_type": "m1", "software_version": "1.2"},
         "compatible": [{"mdev_type": "m2"}]},
        {"id": "s3", "host": "c", "self": {"mdev_type": "m2", "software_version": "2.0", "pv_mode": "x+y"}},
        {"id": "s4", "host": "c", "self": {"mdev_type": "m2", "software_version": "2.0", "pv_mode": "x+y"},
         "compatible": [{"mdev_type": "m1"}]},  # s3 but for its records
    ]
    targets = [
        {"id": "t1", "host": "b", "self": {"mdev_type": "m1", "software_version": "1.3", "aggregator": "2"}},
        {"id": "t2", "host": "a", "self": {"mdev_type": "m2", "software_version": "2.1", "pv_mode": "x,y,z"},
         "compatible": [{"mdev_type": ["m1", "m2"], "software_version": "*"}]},
        {"id": "t3", "host": "d", "self": {"mdev_type": "m1", "software_version": "1.2.0", "aggregator": "4"},
         "compatible": [{"aggregator": "{n:int:2,4}", "mdev_type": "m1"}]},
    ]
    return DeviceSet.from_records(sources, policy), DeviceSet.from_records(targets, policy)


@pytest.mark.parametrize("direction", ["target-accepts", "source-offers", "both"])
def test_a_preparation_serves_only_the_directions_it_fits(direction: str) -> None:
    """Whether a side's records count is part of its preparation: the same sets matched
    under each direction in turn answer as the reference does under that direction."""
    default = Policy.default()
    sources, targets = _fleet(default)
    fastmatch.match(sources, targets, default)  # prepared for target-accepts
    policy = Policy.from_dict({"direction": direction})
    assert answers(fastmatch.match(sources, targets, policy)) == answers(match_reference(sources, targets, policy))
    records_count = direction != "target-accepts"
    assert (side_values(sources, policy, "source") is side_values(sources, default, "source")) is not records_count


def test_a_preparation_is_shared_by_policies_that_differ_only_where_it_does_not_look() -> None:
    """Ranking, host and opaque options do not change what a side holds: one preparation
    serves them all, and each answers as the reference does."""
    default = Policy.default()
    sources, targets = _fleet(default)
    prepared = side_values(targets, default, "target")
    for options in ({"prefer": "newest"}, {"exclude_same_host": False}, {"opaque": "ignore"}, {"score_type": ""}):
        policy = Policy.from_dict(options)
        assert side_values(targets, policy, "target") is prepared
        assert answers(fastmatch.match(sources, targets, policy)) == answers(match_reference(sources, targets, policy))


def test_attribute_types_key_the_preparation() -> None:
    """A policy that types an attribute otherwise gets a preparation of its own, and a match
    under it reads the devices under it (fastmatch.match re-reads a set read under another
    policy)."""
    default = Policy.default()
    as_text = Policy.from_dict({"attributes": {"aggregator": {"type": "string", "rule": "exact"}}})
    sources, targets = _fleet(default)
    assert side_values(sources, as_text, "source") is not side_values(sources, default, "source")
    fastmatch.match(sources, targets, default)
    got = answers(fastmatch.match(sources, targets, as_text))
    assert got == answers(match_reference(sources.with_policy(as_text), targets.with_policy(as_text), as_text))


def test_what_a_preparation_depends_on_cannot_change() -> None:
    sources, _ = _fleet(Policy.default())
    fastmatch.match(sources, sources)
    with pytest.raises(ValueError, match="read-only"):
        sources.descriptor_of[0] = 1
    with pytest.raises(AttributeError):
        sources.descriptors.append(sources.descriptors[0])  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        sources.descriptors[0] = sources.descriptors[1]  # type: ignore[index]


def test_a_pickled_set_leaves_what_matches_kept_behind() -> None:
    import pickle

    sources, targets = _fleet(Policy.default())
    want = answers(fastmatch.match(sources, targets))
    copy = pickle.loads(pickle.dumps(sources))
    assert sources.interning and not copy.interning
    assert answers(fastmatch.match(copy, targets)) == want
    with pytest.raises(ValueError, match="read-only"):
        copy.descriptor_of[0] = 1


@SETTINGS
@given(scenario=scenarios())
def test_a_set_matched_with_partners_in_turn_answers_as_a_fresh_one(scenario: Scenario) -> None:
    """What the sources' set keeps of its last partner (the two sets coded together, the
    devices' twins and hosts) serves only that partner: partners and policies in turn, each
    match answers as fresh sets do."""
    policy = scenario.policy
    sources = DeviceSet.from_records(scenario.sources, policy)
    targets = DeviceSet.from_records(scenario.targets, policy)
    others = DeviceSet.from_records(scenario.sources, policy)  # the sources' devices, as targets
    flipped = Policy.from_dict({**scenario.policy_dict, "exclude_same_host": not policy.exclude_same_host})
    for partner, under in ((targets, policy), (others, policy), (targets, policy), (targets, flipped), (targets, policy)):
        want = answers(match_reference(fresh(sources), fresh(partner), under, scenario.confirm))
        assert answers(fastmatch.match(sources, partner, under, confirm=scenario.confirm)) == want


def test_the_join_is_kept_for_the_last_partner_and_policy_only() -> None:
    import gc

    default = Policy.default()
    sources, targets = _fleet(default)
    others = fresh(targets)
    joined = intern(sources, targets, default)
    assert intern(sources, targets, default) is joined
    assert intern(sources, others, default) is not joined  # another partner: joined anew, and kept instead
    assert intern(sources, targets, default) is not joined
    again = intern(sources, targets, default)
    assert intern(sources, targets, Policy.from_dict({"prefer": "newest"})) is not again
    assert intern(sources, targets, default, confirm=lambda s, t: s == t) is not again  # a confirmer is asked afresh
    del targets, again, joined
    gc.collect()
    assert all(kept[0]() is None for key, kept in sources.interning.items() if key[0] == JOINED)  # held weakly


@SETTINGS
@given(scenario=scenarios())
def test_two_sets_matched_again_answer_as_fresh_ones_in_every_blocking_mode(scenario: Scenario) -> None:
    """What the kernel keeps of two sets' targets (their blocking keys, their blocked order, the
    kernel's template of them) serves the blocked and the dense pass alike, and capacities,
    which a match reads afresh, may change between matches."""
    policy = scenario.policy
    sources = DeviceSet.from_records(scenario.sources, policy)
    targets = DeviceSet.from_records(scenario.targets, policy)
    for mode in ("always", "never", "always", "auto"):
        want = answers(match_reference(fresh(sources), fresh(targets), policy, scenario.confirm))  # capacities as they are
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FASTMATCH_BLOCKING", mode)
            assert answers(fastmatch.match(sources, targets, policy, confirm=scenario.confirm)) == want
        if len(targets):  # a scheduler takes up a target, and frees another
            targets.capacities[0] = 0
            targets.capacities[-1] += 1


def _generated(n: int) -> tuple[DeviceSet, DeviceSet]:
    from fastmatch.generate import generate_records

    policy = Policy.default()
    return tuple(  # type: ignore[return-value]
        DeviceSet.from_records(generate_records(side, n, n // 2, seed=7, record_fraction=0.0), policy)
        for side in ("sources", "targets")
    )


@pytest.mark.parametrize("mode", ["always", "never"])
def test_what_a_kept_match_keeps_of_the_devices_follows_their_capacities(mode: str, monkeypatch) -> None:
    """Two sets matched again reuse the device rules kept with their interning (the targets'
    availability per class and per host, the sources' view of them) only while the targets'
    capacities are those they were made from: changed in place, or replaced, the next match
    answers as fresh sets do."""
    monkeypatch.setenv("FASTMATCH_BLOCKING", mode)
    sources, targets = _generated(300)
    first = fastmatch.match(sources, targets)
    assert fastmatch.match(sources, targets).rules is first.rules  # kept: nothing changed
    taken = np.flatnonzero(first.top_k(1)[0][:, 0] >= 0)[:40]
    changes = [
        lambda: targets.capacities.__setitem__(first.top_k(1)[0][taken, 0], 0),  # in place: the best candidates taken up
        lambda: setattr(targets, "capacities", np.where(targets.capacities == 0, 3, targets.capacities)),  # replaced
    ]
    for change in changes:
        before = fastmatch.match(sources, targets)
        change()
        after = fastmatch.match(sources, targets)
        want = answers(match_reference(fresh(sources), fresh(targets), Policy.default()))
        assert answers(after) == want
        assert after.rules is not before.rules
        assert answers(fastmatch.match(sources, targets)) == want  # and kept again, as changed
    assert answers(first) != answers(fastmatch.match(sources, targets))  # the changes changed the answer


def test_what_a_kept_match_keeps_does_not_keep_the_partner_alive() -> None:
    """The kernel's and the device rules' kept facts hold the targets' set weakly, as the join does."""
    import gc
    import weakref

    sources, targets = _generated(300)
    for mode in ("always", "never"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FASTMATCH_BLOCKING", mode)
            fastmatch.match(sources, targets).top_k(5)
    partner = weakref.ref(targets)
    del targets
    gc.collect()
    assert partner() is None
