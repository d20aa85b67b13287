"""The native engine gives exactly the reference's results.

Random fleets and policies come from ``tests/strategies.py``. The reference is
``FASTMATCH_IMPLEMENTATION=python``; the candidate is ``native`` (set
``FASTMATCH_EQUIVALENCE_CANDIDATE=python`` to check the strategies alone).
Compared: dense scores, reasons and compatible; top_k, counts, stranded and
to_sparse (read before the dense arrays, through the engine's block path);
reason_names and explain of sampled pairs; for workers 1 and 2 and several
block sizes. Also TargetIndex.top_k (targets interned once) and fleets loaded
from JSON Lines files (the loader's fast path).

Example counts: ``HYPOTHESIS_PROFILE=ci`` (the default) keeps the file well
under a minute; ``HYPOTHESIS_PROFILE=long`` runs many more examples (and the
65536-value test)::

    HYPOTHESIS_PROFILE=long PYTHONPATH=src python -m pytest tests/test_equivalence.py

A failure prints the scenario (policy dict and records, as JSON) and what
differs at which pairs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import fastmatch
from fastmatch import DeviceSet, MatchResult, Policy
from fastmatch.reasons import reason_names
from strategies import MANY_ATTRIBUTE_TOTALS, Scenario, scenarios, validate

# -- settings ------------------------------------------------------------------------------
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("ci", max_examples=60, **_COMMON)
settings.register_profile("long", max_examples=4000, **_COMMON)
PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "ci")
PROFILE = settings.get_profile(PROFILE_NAME)


def budget(fraction: float) -> settings:
    """Settings for one test: ``fraction`` of the profile's example count."""
    return settings(PROFILE, max_examples=max(5, int(PROFILE.max_examples * fraction)))


# -- implementations -----------------------------------------------------------------------
IMPLEMENTATION_VARIABLE = "FASTMATCH_IMPLEMENTATION"
REFERENCE = "python"
CANDIDATE = os.environ.get("FASTMATCH_EQUIVALENCE_CANDIDATE", "native")
NATIVE_BUILT = importlib.util.find_spec("fastmatch._kernel") is not None

requires_candidate = pytest.mark.skipif(
    CANDIDATE == "native" and not NATIVE_BUILT,
    reason="native kernel not built (python setup.py build_ext --inplace)",
)

WORKERS = (1, 2)
BLOCKS = (1, 2, 3, 7, None)


@contextlib.contextmanager
def implementation(name: str):
    """Set FASTMATCH_IMPLEMENTATION for the body (hypothesis and function fixtures do not mix)."""
    with environment(IMPLEMENTATION_VARIABLE, name):
        yield


@contextlib.contextmanager
def environment(variable: str, value: str | None):
    """``variable`` set to ``value`` (or unset, for None) for the body."""
    saved = os.environ.get(variable)
    if value is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved


def _avx512_available() -> bool:
    if importlib.util.find_spec("fastmatch._kernel") is None:
        return False
    from fastmatch import _kernel

    return _kernel.avx512_available()


# The kernel's two vector paths: AVX-512 (where the CPU has it) and the portable loops.
VECTOR_PATHS = [
    pytest.param("avx512", marks=pytest.mark.skipif(not _avx512_available(), reason="this CPU has no AVX-512BW")),
    "portable",
]


def vector_path(name: str):
    return environment("FASTMATCH_NO_AVX512", "1" if name == "portable" else None)


# Blocking (fastmatch/blocks.py) only changes which class pairs the kernel visits: every mode
# must give the reference's answers.
BLOCKING = ["always", "never"]


def blocking(mode: str):
    return environment("FASTMATCH_BLOCKING", mode)


@dataclass
class Snapshot:
    """Everything a result shows, materialised."""

    result: MatchResult
    scores: np.ndarray
    reasons: np.ndarray
    compatible: np.ndarray
    top: dict[int, tuple[np.ndarray, np.ndarray]]
    top_runs: dict[int, tuple[np.ndarray, np.ndarray]]  # top_k_runs(), its runs put together
    attributes: list[str]
    counts: np.ndarray
    stranded: np.ndarray
    sparse: tuple[np.ndarray, np.ndarray, np.ndarray]  # to_sparse(): indptr, indices, data
    pairs: dict[tuple[int, int], tuple[list[str], str]]  # sampled pairs: reason_names(), explain()


# Sources a run of MatchResult.top_k_runs answers, in these tests: a fleet of a few dozen
# sources is then many runs, some of several classes, some of one class larger than a run.
SOURCES_PER_RUN = 3


def top_k_from_runs(result: MatchResult, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_k_runs(k)``'s runs put in their sources' rows (each source once, checked)."""
    n = len(result.sources)
    indices, scores = np.full((n, k), -9, dtype=np.int64), np.full((n, k), -9, dtype=np.int64)
    seen = np.zeros(n, dtype=np.int64)
    with pytest.MonkeyPatch.context() as patch:
        if NATIVE_BUILT:  # (the reference answers in one run)
            patch.setattr("fastmatch.native.SOURCES_PER_RUN", SOURCES_PER_RUN)
        for sources, run_indices, run_scores in result.top_k_runs(k):
            indices[sources], scores[sources] = run_indices, run_scores
            np.add.at(seen, sources, 1)
    assert (seen == 1).all(), f"top_k_runs({k}) gave sources {np.flatnonzero(seen != 1).tolist()} {seen[seen != 1].tolist()} times"
    return indices, scores


def top_ks(n_targets: int) -> tuple[int, ...]:
    return tuple(sorted({0, 1, 2, 5, n_targets, n_targets + 1}))


def sample_pairs(n: int, m: int, limit: int = 6) -> list[tuple[int, int]]:
    """A few pairs, the corners included, for the one-pair outputs."""
    if n == 0 or m == 0:
        return []
    picked = {(0, 0), (n - 1, m - 1), (n - 1, 0), (0, m - 1)}
    picked |= {((7 * k) % n, (5 * k + 3) % m) for k in range(limit)}
    return sorted(picked)[: limit + 4]


def run(
    scenario: Scenario,
    name: str,
    *,
    workers: int = 1,
    block: int | None = None,
    sources=None,
    targets=None,
) -> Snapshot:
    """``fastmatch.match`` under one implementation, every output read.

    The bounded outputs (top_k, counts, stranded, to_sparse) and the one-pair ones
    (reason_names, explain) are read first: they go through the engine's block and
    row paths, while the dense arrays, once built, would serve them instead.

    Under ``native`` the kernel answers whatever the inputs (any number of attributes,
    values or migration_version strings): the result must be the kernel's own.
    """
    sources = scenario.sources if sources is None else sources
    targets = scenario.targets if targets is None else targets
    with implementation(name):
        result = fastmatch.match(sources, targets, scenario.policy, workers, block=block, confirm=scenario.confirm)
        if name == "native":
            from fastmatch.native import NativeOutputs

            assert isinstance(result._outputs, NativeOutputs), "the native implementation handed the match to the reference"
        n, m = result.shape
        top = {k: result.top_k(k) for k in top_ks(m)}
        top_runs = {k: top_k_from_runs(result, k) for k in top_ks(m)}
        counts, stranded = result.counts(), result.stranded()
        sparse = result.to_sparse()
        pairs = {(i, j): (result.reason_names(i, j), result.explain(i, j)) for i, j in sample_pairs(n, m)}
        snapshot = Snapshot(
            result,
            result.scores,
            result.reasons,
            result.compatible,
            top,
            top_runs,
            list(result.attributes),
            counts,
            stranded,
            (sparse.indptr, sparse.indices, sparse.data),
            pairs,
        )
    return snapshot


def _pairs(mask: np.ndarray, limit: int = 6) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in p) for p in np.argwhere(mask)[:limit]]


def differences(ref: Snapshot, got: Snapshot) -> list[str]:
    """What differs between two snapshots, in words (empty when equal)."""
    out: list[str] = []
    if ref.scores.shape != got.scores.shape:
        return [f"shape {got.scores.shape} != reference {ref.scores.shape}"]
    for name in ("scores", "reasons", "compatible"):
        a, b = getattr(ref, name), getattr(got, name)
        if a.dtype != b.dtype:
            out.append(f"{name}: dtype {b.dtype} != reference {a.dtype}")
        if not np.array_equal(a, b):
            shown = []
            for i, j in _pairs(a != b):
                extra = ""
                if name == "reasons":
                    extra = f" {reason_names(int(b[i, j]), got.attributes)} vs {reason_names(int(a[i, j]), ref.attributes)}"
                shown.append(f"({i},{j}): {b[i, j]!r} != reference {a[i, j]!r}{extra}")
            out.append(f"{name} differ at {int((a != b).sum())} pairs: " + "; ".join(shown))
    if got.attributes != ref.attributes:
        out.append(f"attributes {got.attributes} != reference {ref.attributes}")
    for name in ("counts", "stranded"):
        a, b = getattr(ref, name), getattr(got, name)
        if not np.array_equal(a, b):
            out.append(f"{name}() {b.tolist()} != reference {a.tolist()}")
    for pair, (names, text) in ref.pairs.items():
        got_names, got_text = got.pairs[pair]
        if got_names != names:
            out.append(f"reason_names{pair} {got_names} != reference {names}")
        if got_text != text:
            out.append(f"explain{pair} differs:\n{got_text}\n--- reference:\n{text}")
    for part, a, b in zip(("indptr", "indices", "data"), ref.sparse, got.sparse):
        if not np.array_equal(a, b):
            out.append(f"to_sparse().{part} {b.tolist()[:20]} != reference {a.tolist()[:20]}")
    for name, got_top in (("top_k", got.top), ("top_k_runs", got.top_runs)):
        for k, (ref_idx, ref_sc) in ref.top.items():
            idx, sc = got_top[k]
            if not (np.array_equal(ref_idx, idx) and np.array_equal(ref_sc, sc)):
                rows = [int(i) for i in np.flatnonzero((ref_idx != idx).any(axis=1) | (ref_sc != sc).any(axis=1))[:3]]
                shown = "; ".join(f"row {i}: {idx[i].tolist()}/{sc[i].tolist()} != reference {ref_idx[i].tolist()}/{ref_sc[i].tolist()}" for i in rows)
                out.append(f"{name}({k}) differs: {shown}")
    return out


def assert_same(ref: Snapshot, got: Snapshot, label: str) -> None:
    problems = differences(ref, got)
    assert not problems, f"{label}:\n  " + "\n  ".join(problems)


def describe(scenario: Scenario) -> None:
    note(f"scenario JSON: {scenario.to_json()}")


# -- the strategies themselves --------------------------------------------------------------
@budget(0.5)
@given(scenarios())
def test_strategies_generate_valid_fleets(scenario: Scenario) -> None:
    """Every generated record loads (the point of the other tests is comparing evaluations, not errors)."""
    sources, targets = validate(scenario)
    assert len(sources) == len(scenario.sources) and len(targets) == len(scenario.targets)
    assert len(set(sources.ids)) == len(sources.ids) and len(set(targets.ids)) == len(targets.ids)


# -- native == reference ---------------------------------------------------------------------
@requires_candidate
@pytest.mark.parametrize("mode", BLOCKING)
@pytest.mark.parametrize("vector", VECTOR_PATHS)
@pytest.mark.parametrize("workers", WORKERS)
@budget(1.0)
@given(scenario=scenarios())
def test_native_equals_reference(scenario: Scenario, workers: int, vector: str, mode: str) -> None:
    describe(scenario)
    ref = run(scenario, REFERENCE)
    with vector_path(vector), blocking(mode):
        for block in BLOCKS:
            got = run(scenario, CANDIDATE, workers=workers, block=block)
            assert_same(ref, got, f"{CANDIDATE} (workers={workers}, block={block}, {vector}, blocking {mode}) vs reference")


@requires_candidate
@pytest.mark.parametrize("vector", VECTOR_PATHS)
def test_the_vector_path_is_the_one_asked_for(vector: str) -> None:
    from fastmatch.intern import intern
    from fastmatch.native import prepared_problem

    sources = DeviceSet.from_records([{"id": "s", "self": {"mdev_type": "a", "aggregator": 2}}])
    targets = DeviceSet.from_records([{"id": "t", "self": {"mdev_type": "a", "aggregator": 4}}])
    with vector_path(vector):
        problem = prepared_problem(intern(sources, targets, Policy.default()), 1)
    assert problem.tile512 == (vector == "avx512")


@requires_candidate
@pytest.mark.parametrize("empty", ["sources", "targets", "both"])
@budget(0.1)
@given(data=st.data())
def test_empty_sides(empty: str, data) -> None:
    limits = {
        "sources": dict(max_sources=0, min_targets=1),
        "targets": dict(min_sources=1, max_targets=0),
        "both": dict(max_sources=0, max_targets=0),
    }[empty]
    scenario = data.draw(scenarios(**limits), label="scenario")
    n, m = len(scenario.sources), len(scenario.targets)
    ref = run(scenario, REFERENCE)
    for workers in WORKERS:
        for block in BLOCKS:
            got = run(scenario, CANDIDATE, workers=workers, block=block)
            assert got.scores.shape == got.reasons.shape == got.compatible.shape == (n, m)
            assert got.scores.dtype == np.int64 and got.reasons.dtype == np.uint64 and got.compatible.dtype == bool
            for k, (idx, sc) in got.top.items():
                assert idx.shape == sc.shape == (n, k) and (idx == -1).all() and (sc == -1).all()
            assert_same(ref, got, f"{CANDIDATE} (workers={workers}, block={block}) vs reference")


def _max_set_items(sources: DeviceSet, targets: DeviceSet) -> int:
    """The largest number of distinct items one set attribute has across the fleet."""
    items: dict[str, set] = {}
    for side in (sources, targets):
        for d in side.descriptors:
            for name, value in d.values.items():
                if isinstance(value, frozenset):
                    items.setdefault(name, set()).update(value)
    return max((len(v) for v in items.values()), default=0)


@requires_candidate
@budget(0.3)
@given(scenarios(big_sets=True, min_sources=1, min_targets=1))
def test_sets_beyond_64_items(scenario: Scenario) -> None:
    """Set attributes with more than 64 items (bitmasks of several words)."""
    describe(scenario)
    sources, targets = validate(scenario)
    assume(_max_set_items(sources, targets) > 64)  # almost always: the strategy draws 68+ items
    ref = run(scenario, REFERENCE)
    for workers, block in ((1, None), (2, 1), (2, 3)):
        assert_same(ref, run(scenario, CANDIDATE, workers=workers, block=block), f"workers={workers}, block={block}")


@requires_candidate
def test_sets_beyond_64_items_fixed() -> None:
    """A hand-made case: items 0..99, differences only in the second and third words."""
    items = [f"m{i}" for i in range(100)]
    sources = [
        {"id": "s-all", "self": {"pv_mode": items}},
        {"id": "s-low", "self": {"pv_mode": "+".join(items[:60])}},
        {"id": "s-high", "self": {"pv_mode": ", ".join(items[70:])}},
        {"id": "s-99", "self": {"pv_mode": "m99"}},
        {"id": "s-none", "self": {}},
    ]
    targets = [
        {"id": "t-all", "self": {"pv_mode": list(reversed(items))}},
        {"id": "t-no-99", "self": {"pv_mode": items[:99]}},
        {"id": "t-no-64", "self": {"pv_mode": items[:64] + items[65:]}},
        {"id": "t-rec", "self": {"pv_mode": items[:10]}, "compatible": [{"pv_mode": "+".join(items[65:])}]},
        {"id": "t-empty", "self": {"pv_mode": []}},
    ]
    for policy in (Policy.default(), Policy.from_dict({"attributes": {"pv_mode": {"rule": "exact"}}})):
        scenario = Scenario(policy.to_dict(), sources, targets)
        ref = run(scenario, REFERENCE)
        assert ref.compatible.any() and not ref.compatible.all()
        for workers, block in ((1, None), (2, 1), (2, 2)):
            assert_same(ref, run(scenario, CANDIDATE, workers=workers, block=block), f"workers={workers}, block={block}")


@requires_candidate
@budget(0.3)
@given(scenarios(min_sources=4, max_sources=12, min_targets=4, max_targets=12, max_descriptors=3, unseen_sources=False))
def test_identical_devices_collapse_into_classes(scenario: Scenario) -> None:
    """Devices with one descriptor share a class, and the classes change nothing."""
    describe(scenario)
    ref = run(scenario, REFERENCE)
    got = run(scenario, CANDIDATE, workers=2, block=1)
    assert_same(ref, got, "classes")
    if CANDIDATE == REFERENCE:
        return
    result = got.result
    sources, targets = result.sources, result.targets
    for side, n_classes, classes in (
        (sources, result.class_scores.shape[0], result.source_class),
        (targets, result.class_scores.shape[1], result.target_class),
    ):
        assert n_classes <= len(side.descriptors) < len(side)  # at most 3 descriptors, at least 4 devices
        assert len(classes) == len(side)
        for d in range(len(side.descriptors)):
            members = np.flatnonzero(side.descriptor_of == d)
            assert len(set(classes[members].tolist())) == 1, "devices with one descriptor are in different classes"


@requires_candidate
def test_identical_devices_collapse_fixed() -> None:
    """Ten copies of one device and five of another: two classes, same answers."""
    a = {"self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "1.2", "pv_mode": "none+ppgtt"}}
    b = {"self": {"mdev_type": "i915-GVTg_V5_4", "software_version": "1.3.1", "pv_mode": ["ppgtt", "none", "context"]}}
    sources = [{"id": f"a{i}", "host": f"h{i % 3}", **a} for i in range(10)] + [{"id": f"b{i}", **b} for i in range(5)]
    targets = [{"id": f"b{i}", "host": "h1", "capacity": i % 2, **b} for i in range(5)] + [{"id": "a0", **a}]
    scenario = Scenario(Policy.default().to_dict(), sources, targets)
    ref = run(scenario, REFERENCE)
    got = run(scenario, CANDIDATE, workers=2, block=1)
    assert_same(ref, got, "classes")
    assert ref.compatible.any() and not ref.compatible.all()
    if CANDIDATE != REFERENCE:
        assert got.result.class_scores.shape == (2, 2)


@requires_candidate
@budget(0.15)
@given(scenarios(min_sources=10, max_sources=40, min_targets=10, max_targets=40, max_descriptors=8, confirm=False))
def test_results_do_not_depend_on_block_or_workers(scenario: Scenario) -> None:
    """Blocks and threads change how the work is cut, never the answer; device sets can be reused."""
    describe(scenario)
    policy = scenario.policy
    sources = DeviceSet.from_records(scenario.sources, policy)
    targets = DeviceSet.from_records(scenario.targets, policy)
    first = run(scenario, CANDIDATE, workers=1, block=None, sources=sources, targets=targets)
    for workers in (1, 2, -1):
        for block in (1, 2, 3, 7, 64, 10_000, None):
            again = run(scenario, CANDIDATE, workers=workers, block=block, sources=sources, targets=targets)
            assert_same(first, again, f"workers={workers}, block={block} vs workers=1, block=None")
    assert_same(run(scenario, REFERENCE), first, f"{CANDIDATE} vs reference")


# -- TargetIndex: targets interned once, requests coded against them ---------------------------
def _top_k_differences(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], what: str) -> list[str]:
    (ref_idx, ref_sc), (idx, sc) = ref, got
    if ref_idx.shape != idx.shape:
        return [f"{what}: shape {idx.shape} != reference {ref_idx.shape}"]
    rows = np.flatnonzero((ref_idx != idx).any(axis=1) | (ref_sc != sc).any(axis=1))[:3]
    return [f"{what} row {i}: {idx[i].tolist()}/{sc[i].tolist()} != reference {ref_idx[i].tolist()}/{ref_sc[i].tolist()}" for i in rows]


@requires_candidate
@budget(1.0)
@given(
    scenarios(confirm=False, unseen_sources=True, min_sources=2, max_sources=12),
    st.sampled_from((1, 2)),
    st.sampled_from(BLOCKING),
)
def test_target_index_equals_reference(scenario: Scenario, workers: int, mode: str) -> None:
    """TargetIndex.top_k answers what the reference's match().top_k does, for request after
    request against one index; request values the targets lack are the interesting part."""
    describe(scenario)
    policy = scenario.policy
    with implementation(CANDIDATE):
        index = fastmatch.TargetIndex(scenario.targets, policy, workers=workers)
    requests = [
        ("sources", scenario.sources),
        ("targets as sources", scenario.targets),  # only values the index has seen
        ("first source", scenario.sources[:1]),
        ("sources reversed", scenario.sources[::-1]),
    ]
    problems: list[str] = []
    for what, sources in requests:
        ref = run(Scenario(scenario.policy_dict, sources, scenario.targets), REFERENCE)
        for k in top_ks(len(scenario.targets)):
            with implementation(CANDIDATE), blocking(mode):
                got = index.top_k(sources, k)
            problems += _top_k_differences(ref.top[k], got, f"{what}: top_k({k})")
    if scenario.sources:  # a single record (no id needed) is a one-row request
        record = {key: value for key, value in scenario.sources[0].items() if key != "id"}
        ref = run(Scenario(scenario.policy_dict, [{"id": "request", **record}], scenario.targets), REFERENCE)
        with implementation(CANDIDATE):
            got = index.top_k(record, 3)
        problems += _top_k_differences(ref.result.top_k(3), got, "single record: top_k(3)")
    assert not problems, "TargetIndex vs reference:\n  " + "\n  ".join(problems)


UNSEEN_CASES = {
    # Request values the targets lack, that share a code (between the same known neighbours)
    # but differ in what the rules or the score read: they must not share a class.
    "version minor vs patch": ({}, ["1.1", "1.0.9"], ["1.0.8"]),
    "unseen majors, closest score": ({"software_version": {"rule": "ge"}}, ["3.0", "5.0"], ["1.0", "6.0"]),
    "unseen minors, closest score": ({"software_version": {"rule": "ge"}}, ["1.3", "1.5"], ["1.0", "1.9"]),
    "unseen majors, score only": ({"software_version": {"rule": "ignore"}}, ["2.0", "4.0"], ["1.0", "6.0"]),
}


@requires_candidate
@pytest.mark.parametrize("case", sorted(UNSEEN_CASES))
def test_target_index_unseen_values_fixed(case: str) -> None:
    rules, request_versions, target_versions = UNSEEN_CASES[case]
    policy = {"attributes": rules} if rules else {}
    sources = [{"id": f"s{k}", "self": {"software_version": v}} for k, v in enumerate(request_versions)]
    targets = [{"id": f"t{k}", "self": {"software_version": v}} for k, v in enumerate(target_versions)]
    sets = (["a+c", "a"], ["a+b", "c"])  # unseen combinations of known set items
    sources += [{"id": f"p{k}", "self": {"pv_mode": v}} for k, v in enumerate(sets[0])]
    targets += [{"id": f"q{k}", "self": {"pv_mode": v}} for k, v in enumerate(sets[1])]
    scenario = Scenario(policy, sources, targets)
    ref = run(scenario, REFERENCE)
    with implementation(CANDIDATE):
        index = fastmatch.TargetIndex(targets, scenario.policy)
        got = {k: index.top_k(sources, k) for k in top_ks(len(targets))}
    problems = [p for k in got for p in _top_k_differences(ref.top[k], got[k], f"top_k({k})")]
    assert not problems, f"TargetIndex vs reference ({case}):\n  " + "\n  ".join(problems)


# -- loading: fleet JSON Lines files (a fast path of their own) give what the records give -----
@requires_candidate
@budget(0.3)
@given(scenarios(min_sources=2, min_targets=2), st.booleans())
def test_loaded_fleet_lines_equal_records(scenario: Scenario, ascii_only: bool) -> None:
    """``fastmatch.load`` of the fleet written as JSON Lines (the loader's fast path) gives the
    devices and, under both implementations, the results that the records give."""
    describe(scenario)
    policy = scenario.policy
    with tempfile.TemporaryDirectory() as tmp:
        loaded = []
        for side, records in (("sources", scenario.sources), ("targets", scenario.targets)):
            path = Path(tmp) / f"{side}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records), encoding="utf-8")
            loaded.append(fastmatch.load(path, policy))
    sources, targets = loaded
    expected_sources, expected_targets = validate(scenario)
    for got_side, want in ((sources, expected_sources), (targets, expected_targets)):
        assert got_side.ids == want.ids
        assert got_side.hosts == want.hosts
        assert got_side.capacities.tolist() == want.capacities.tolist()
        assert [got_side.descriptor(i).values for i in range(len(got_side))] == [want.descriptor(i).values for i in range(len(want))]
    ref = run(scenario, REFERENCE)
    assert_same(ref, run(scenario, REFERENCE, sources=sources, targets=targets), "reference on the loaded fleet")
    assert_same(ref, run(scenario, CANDIDATE, workers=2, sources=sources, targets=targets), f"{CANDIDATE} on the loaded fleet")


# -- hand-made cases that the random ones might reach only rarely ------------------------------
@requires_candidate
@pytest.mark.parametrize("prefer", ["newest", "closest"])
def test_semver_ordering_fixed(prefer: str) -> None:
    """SemVer precedence: 1.0.0-alpha < -alpha.1 < -alpha.beta < -beta < -beta.2 < -beta.11 < -rc.1 < 1.0.0."""
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "v1.0.0-alpha.beta", "1.0-beta", "1.0.0-beta.2+b5", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.3.4.5"]
    sources = [{"id": "s", "self": {"software_version": "0.1"}}, {"id": "s2", "self": {"software_version": "1"}}]
    targets = [{"id": f"t{i}", "self": {"software_version": v}} for i, v in reversed(list(enumerate(ordered)))]
    policy = Policy.from_dict({"prefer": prefer, "attributes": {"software_version": {"rule": "ge"}}})
    scenario = Scenario(policy.to_dict(), sources, targets)
    ref = run(scenario, REFERENCE)
    if prefer == "newest":  # the reference itself ranks as SemVer says
        idx, _ = ref.top[len(targets)]
        assert [targets[j]["id"] for j in idx[0]] == [f"t{i}" for i in reversed(range(len(ordered)))]
    for workers, block in ((1, None), (2, 1)):
        assert_same(ref, run(scenario, CANDIDATE, workers=workers, block=block), f"workers={workers}, block={block}")


@requires_candidate
@pytest.mark.parametrize("opaque", ["if-present", "required", "ignore"])
@pytest.mark.parametrize("confirm_name", [None, "source-not-newer", "same-first-char"])
def test_opaque_confirmer_fixed(opaque: str, confirm_name: str | None) -> None:
    """The confirmer is asked confirm(source's, target's): an asymmetric one shows a swap."""
    versions = ["mv1", "mv2", "nv1", None, ""]
    sources = [{"id": f"s{k}", "self": {}, "migration_version": v} for k, v in enumerate(versions)]
    targets = [{"id": f"t{k}", "self": {}, "migration_version": v} for k, v in enumerate(versions)]
    scenario = Scenario({"opaque": opaque}, sources, targets, confirm_name)
    ref = run(scenario, REFERENCE)
    for workers, block in ((1, None), (2, 1)):
        got = run(scenario, CANDIDATE, workers=workers, block=block)
        assert_same(ref, got, f"workers={workers}, block={block}")


@requires_candidate
def test_confirmer_over_many_strings_stays_native() -> None:
    """9,000 distinct migration_version strings among the sources and two among the targets: a
    confirmer is asked once per pair of a source's and a target's string (the reference asks it
    once per pair of descriptors), and the kernel answers; a table over every pair of strings
    (81 million) once sent such a match to the reference."""
    sources = [{"id": f"s{k}", "self": {}, "migration_version": f"mv{k}"} for k in range(9000)]
    targets = [{"id": "t0", "self": {}, "migration_version": "mv0"}, {"id": "t1", "self": {}, "migration_version": "mv7"},
               {"id": "t-none", "self": {}}]
    asked = []

    def confirm(source: str, target: str) -> bool:
        asked.append((source, target))
        return source[-1] == target[-1]

    with implementation(CANDIDATE):
        got = fastmatch.match(sources, targets, workers=2, confirm=confirm)
        compatible = got.compatible
    if CANDIDATE == "native":
        from fastmatch.native import NativeOutputs

        assert isinstance(got._outputs, NativeOutputs)
        assert sorted(asked) == sorted((f"mv{k}", t) for k in range(9000) for t in ("mv0", "mv7"))
    with implementation(REFERENCE):
        expected = fastmatch.match(sources, targets, confirm=confirm)
    assert np.array_equal(compatible, expected.compatible) and np.array_equal(got.reasons, expected.reasons)
    assert compatible[:, 0].sum() == 900 and not compatible[:, 2].any()


@requires_candidate
def test_attribute_bits_past_58_fixed() -> None:
    """60 declared attributes: the later ones and every unknown one share bit 58."""
    attributes = {f"f{i:02d}": {"type": "string", "rule": "exact"} for i in range(53)}  # f51 is attribute 58
    policy = Policy.from_dict({"attributes": attributes})
    sources = [{"id": "s", "self": {"f48": "a", "f52": "a", "zz": "a", "yy": "b"}}]
    targets = [
        {"id": "t-52", "self": {"f48": "a", "f52": "b", "zz": "a", "yy": "b"}},
        {"id": "t-zz", "self": {"f48": "a", "f52": "a", "zz": "b", "yy": "b"}},
        {"id": "t-48", "self": {"f48": "b", "f52": "a", "zz": "a", "yy": "b"}},
        {"id": "t-ok", "self": {"f48": "a", "f52": "a", "zz": "a", "yy": "b"}},
        {"id": "t-rec", "self": {"f52": "b"}, "compatible": [{"f52": "*", "zz": ["a", "c"]}]},
        {"id": "t-rec2", "self": {"f48": "a", "f52": "b"}, "compatible": [{"f48": "a"}, {"zz": "a"}]},
    ]
    scenario = Scenario(policy.to_dict(), sources, targets)
    ref = run(scenario, REFERENCE)
    assert int(ref.reasons[0, 0]) == 1 << 58 and int(ref.reasons[0, 1]) == 1 << 58
    assert int(ref.reasons[0, 2]) == 1 << 55 and ref.compatible[0, 3]
    for workers, block in ((1, None), (2, 1)):
        got = run(scenario, CANDIDATE, workers=workers, block=block)
        assert_same(ref, got, f"workers={workers}, block={block}")


@requires_candidate
@pytest.mark.parametrize("mode", BLOCKING)
@pytest.mark.parametrize("workers", WORKERS)
@budget(0.25)
@given(scenario=scenarios(fillers=True, filler_totals=MANY_ATTRIBUTE_TOTALS))
def test_many_attributes(scenario: Scenario, workers: int, mode: str) -> None:
    """60 to 130 attributes: more rules than one lane has failure bits, so a pair's failure mask
    takes several words; the native kernel answers (never the reference), and as it does."""
    describe(scenario)
    ref = run(scenario, REFERENCE)
    with blocking(mode):
        for block in BLOCKS:
            got = run(scenario, CANDIDATE, workers=workers, block=block)
            assert_same(ref, got, f"{CANDIDATE} (workers={workers}, block={block}, blocking {mode}) vs reference")


@requires_candidate
@budget(0.2)
@given(scenarios(fillers=True, filler_totals=MANY_ATTRIBUTE_TOTALS, confirm=False, unseen_sources=True, min_sources=1))
def test_target_index_many_attributes(scenario: Scenario) -> None:
    """A TargetIndex over targets with 60 to 130 attributes prepares them natively, and answers
    what the reference does."""
    describe(scenario)
    with implementation(CANDIDATE):
        index = fastmatch.TargetIndex(scenario.targets, scenario.policy, workers=2)
        got = {k: index.top_k(scenario.sources, k) for k in top_ks(len(scenario.targets))}
    ref = run(scenario, REFERENCE)
    problems = [p for k in got for p in _top_k_differences(ref.top[k], got[k], f"top_k({k})")]
    assert not problems, "TargetIndex vs reference:\n  " + "\n  ".join(problems)


@requires_candidate
def test_many_attributes_fixed() -> None:
    """137 attributes (the default 7, then 130 more) in 16-bit failure words: a record that
    constrains attributes in different words (18 and 100), a failure past bit 58 reported on
    the shared bit (and named as the attributes from 58 on), attribute 57 on its own bit."""
    policy = Policy.from_dict({"attributes": {f"a{i:03d}": {"type": "string", "rule": "exact"} for i in range(130)}})
    names = [a.name for a in policy.attributes]
    a18, a57, a100, last = names[18], names[57], names[100], names[-1]
    base = {a18: "x", a57: "x", a100: "x", last: "x"}
    sources = [{"id": "s", "self": base}]
    targets = [
        {"id": "t-same", "self": base},
        {"id": "t-last", "self": {**base, last: "y"}},
        {"id": "t-57", "self": {**base, a57: "y"}},
        {"id": "t-rec", "self": {**base, a18: "y", a100: "y"}, "compatible": [{a18: "*", a100: "x"}]},
        {"id": "t-rec-no", "self": {**base, a18: "y", last: "y"}, "compatible": [{a18: "*", a100: "y"}]},
        {"id": "t-rec-part", "self": {**base, a18: "y", last: "y"}, "compatible": [{a18: "*"}]},
    ]
    scenario = Scenario(policy.to_dict(), sources, targets)
    ref = run(scenario, REFERENCE)
    assert ref.attributes == names
    assert ref.compatible[0].tolist() == [True, False, False, True, False, False]
    assert ref.pairs[(0, 1)][0] == [f"attributes 58+ ({', '.join(names[58:])})"]
    assert int(ref.reasons[0, 2]) == 1 << 57
    # The last attribute fails outside the records (bit 58), and no record accepts (NO_RECORD, 59):
    # one does not match, the other leaves that failure to its rule.
    assert int(ref.reasons[0, 4]) == int(ref.reasons[0, 5]) == 1 << 58 | 1 << 59
    for workers, block in ((1, None), (2, 1), (2, 2)):
        got = run(scenario, CANDIDATE, workers=workers, block=block)
        assert_same(ref, got, f"workers={workers}, block={block}")
    from fastmatch.intern import intern

    interned = intern(DeviceSet.from_records(sources, policy), DeviceSet.from_records(targets, policy), policy)
    assert interned.failure_words > 1 and not interned.identity_bits


# -- sizes at the native kernel's internal edges ----------------------------------------------
TILE = 2048  # targets per tile in native/_kernel.pyx


def _with_serials(scenario: Scenario, n_targets: int, start: int = 0) -> Scenario:
    """The scenario with its targets repeated up to ``n_targets``, each made distinct by a
    ``serial`` attribute that the policy ignores, so every target is a class of its own."""
    policy = dict(scenario.policy_dict)
    policy["attributes"] = {**policy.get("attributes", {}), "serial": {"type": "string", "rule": "ignore"}}
    targets = []
    for k in range(n_targets):
        record = dict(scenario.targets[k % len(scenario.targets)])
        if k >= len(scenario.targets):
            record["id"] = f"x{k}"
        record["self"] = {**record["self"], "serial": f"s{start + k}"}
        targets.append(record)
    return Scenario(policy, scenario.sources, targets, scenario.confirm_name)


@requires_candidate
@budget(0.05)
@given(
    scenarios(min_sources=1, max_sources=3, min_targets=1, max_targets=6),
    st.integers(TILE - 2, TILE + 300),
)
def test_target_classes_across_tiles(base: Scenario, n_targets: int) -> None:
    """More target classes than one tile of the kernel holds (records, scores, top-k across tiles)."""
    scenario = _with_serials(base, n_targets)
    describe(base)
    note(f"targets repeated to {n_targets}, each with its own serial")
    ref = run(scenario, REFERENCE)
    got = run(scenario, CANDIDATE, workers=2, block=1)
    assert got.result.class_scores.shape[1] == n_targets or CANDIDATE == REFERENCE
    assert_same(ref, got, f"{n_targets} target classes")


@requires_candidate
@pytest.mark.skipif(PROFILE_NAME != "long", reason="about 10 s; runs with HYPOTHESIS_PROFILE=long")
@settings(PROFILE, max_examples=3)
@given(scenarios(min_sources=1, max_sources=2, min_targets=1, max_targets=4, confirm=False))
def test_codes_wider_than_16_bits(base: Scenario) -> None:
    """A vocabulary of more than 65535 values: codes no longer fit 16-bit lanes."""
    describe(base)
    scenario = _with_serials(base, 1 << 16)
    ref = run(scenario, REFERENCE)
    assert_same(ref, run(scenario, CANDIDATE, workers=2), "65536 serials")
