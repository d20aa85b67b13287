"""The vectorised interning gives exactly the arrays of the per-descriptor one.

The oracle is ``tests/intern_oracle.py``: fastmatch/intern.py as it was before
interning was vectorised (a loop per descriptor and attribute, tuple keys). Every
array the kernel, the scores and the outputs read is compared, values, shapes and
dtypes: both sides' classes, codes, masks, record tables and score inputs, and the
ops. Cases: hypothesis fleets and policies (tests/strategies.py: values spelled
several ways, templates, unknown attributes, filler attributes past bit 58, big
sets), ``fastmatch generate`` fleets, the demo fleet; ``intern`` and the prepared
targets of a TargetIndex with requests coded against them (values they lack).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmatch
import fastmatch.generate as generate
import intern_oracle as oracle
from fastmatch import DeviceSet, Policy
from fastmatch.intern import Interned, PreparedTargets, intern
from strategies import CONFIRMERS, Scenario, scenarios, validate

# Examples: a few dozen with the suite; HYPOTHESIS_PROFILE=long (as for test_equivalence) many more.
EXAMPLES = 600 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 40
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
NOT_COMPARED = {"policy", "kernel_cache"}  # the same object / a cache the kernel fills


def differences(got, want, where: str) -> list[str]:
    """Where two interned structures differ: arrays by dtype, shape and value; dataclasses field by field."""
    if isinstance(want, np.ndarray):
        if not isinstance(got, np.ndarray):
            return [f"{where}: {type(got).__name__}, expected an array"]
        if got.dtype != want.dtype or got.shape != want.shape:
            return [f"{where}: {got.dtype}{got.shape} != {want.dtype}{want.shape}"]
        if not np.array_equal(got, want):
            at = np.argwhere(got != want)[:3].tolist()
            return [f"{where}: differs at {at}: {got[tuple(np.array(at).T)]} != {want[tuple(np.array(at).T)]}"]
        return []
    if dataclasses.is_dataclass(want):
        out = []
        for f in dataclasses.fields(want):
            if f.name not in NOT_COMPARED:
                out += differences(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
        return out
    if type(got) is not type(want) or got != want:
        return [f"{where}: {got!r} != {want!r}"]
    return []


def assert_same(got, want, what: str) -> None:
    assert isinstance(got, Interned)
    problems = differences(got, want, "interned")
    assert not problems, f"{what}:\n  " + "\n  ".join(problems[:12])


def check_intern(sources: DeviceSet, targets: DeviceSet, policy: Policy, confirm=None) -> None:
    assert_same(intern(sources, targets, policy, confirm), oracle.intern(sources, targets, policy, confirm), "intern")


def check_prepared(targets: DeviceSet, requests: list[DeviceSet], policy: Policy) -> None:
    want = oracle.PreparedTargets(targets, policy)
    got = PreparedTargets(targets, policy)
    assert differences(got.targets, want.targets, "targets") == []
    for k, sources in enumerate(requests):
        assert got.supports(sources) == want.supports(sources)
        if not want.supports(sources):
            continue
        assert np.array_equal(got.hopeless(sources), want.hopeless(sources))
        # Twice: a request must leave the prepared targets as it found them.
        for attempt in range(2):
            assert_same(got.with_sources(sources), want.with_sources(sources), f"request {k}, attempt {attempt}")


@SETTINGS
@given(scenarios(max_sources=12, max_targets=12, max_descriptors=8))
def test_intern_equals_the_per_descriptor_oracle(scenario: Scenario) -> None:
    sources, targets = validate(scenario)
    check_intern(sources, targets, scenario.policy, scenario.confirm)


@SETTINGS
@given(scenarios(confirm=False, unseen_sources=True, min_sources=1, max_sources=12, max_descriptors=8))
def test_prepared_targets_equal_the_oracle(scenario: Scenario) -> None:
    """Requests with values the targets lack (they share codes) and the targets themselves as a request."""
    sources, targets = validate(scenario)
    policy = scenario.policy
    requests = [sources, targets, DeviceSet.from_records(scenario.sources[:1], policy)]
    requests.append(DeviceSet.from_records(scenario.sources[::-1], policy))
    check_prepared(targets, requests, policy)


@given(st.data())
@settings(max_examples=max(10, EXAMPLES // 4), deadline=None)
def test_confirmers_equal_the_oracle(data) -> None:
    scenario = data.draw(scenarios(max_sources=6, max_targets=6))
    sources, targets = validate(scenario)
    check_intern(sources, targets, scenario.policy, CONFIRMERS[data.draw(st.sampled_from(sorted(CONFIRMERS)))])


@pytest.mark.parametrize(
    "n_sources, n_targets, distinct, record_fraction",
    [(400, 400, 400, 1 / 3), (3000, 2000, 150, 1 / 3), (500, 700, 500, 1.0), (300, 300, 300, 0.0)],
)
def test_generated_fleets_equal_the_oracle(tmp_path: Path, n_sources, n_targets, distinct, record_fraction) -> None:
    s, t = generate.write_fleet(
        tmp_path, n_sources, n_targets, distinct, seed=7, record_fraction=record_fraction, source_record_fraction=0.2
    )
    sources, targets = fastmatch.load(s), fastmatch.load(t)
    for policy in (
        Policy.default(),
        Policy.from_dict({"direction": "both", "prefer": "newest", "opaque": "required"}),
        Policy.from_dict({"direction": "source-offers", "records": "and", "unknown": "ignore"}),
    ):
        check_intern(sources, targets, policy)
        check_intern(targets, sources, policy)
    check_prepared(targets, [sources, DeviceSet.from_records(sources.to_records()[:5], Policy.default())], Policy.default())


def test_demo_fleet_equals_the_oracle() -> None:
    data = Path(fastmatch.__file__).parent / "data"
    sources, targets = fastmatch.load(data / "demo_sources.jsonl"), fastmatch.load(data / "demo_targets.jsonl")
    check_intern(sources, targets, Policy.default())
    check_prepared(targets, [sources], Policy.default())


def test_empty_sides_equal_the_oracle() -> None:
    empty = DeviceSet.from_records([])
    one = DeviceSet.from_records([{"id": "a", "self": {"mdev_type": "x", "software_version": "1.2"}}])
    for sources, targets in ((empty, empty), (empty, one), (one, empty)):
        check_intern(sources, targets, Policy.default())
    check_prepared(one, [empty, one], Policy.default())
    check_prepared(empty, [one], Policy.default())


class _Spelled(str):
    """A str subclass: valid in a record, but not something the JSON encoder takes."""


def test_records_the_json_encoder_refuses_equal_the_oracle() -> None:
    """Records are recognised by their JSON text; a record the encoder refuses (a str subclass
    from the API) is told apart by its grounded records instead, beside ones it encodes."""
    records = [
        {"id": f"t{k}", "self": {"mdev_type": "x"}, "compatible": [{"mdev_type": mdev_type}]}
        for k, mdev_type in enumerate(["x", _Spelled("x"), "y", _Spelled("y"), _Spelled("x"), "x"])
    ]
    targets = DeviceSet.from_records(records)
    sources = DeviceSet.from_records([{"id": "s0", "self": {"mdev_type": "x"}}, {"id": "s1", "self": {"mdev_type": "y"}}])
    check_intern(sources, targets, Policy.default())
    assert intern(sources, targets, Policy.default()).targets.n_classes == 2
