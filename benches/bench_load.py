"""Generating, loading and interning a fleet (at most 2,000 distinct descriptors per side);
interning all-distinct fleets; a prepared index interning a request's sources.

The fleet has ``FASTMATCH_BENCH_FLEET`` devices per side (100,000 quick,
1,000,000 full). ``extra_info`` holds ``devices`` and ``devices_per_second``;
the distinct interning holds ``descriptors`` (both sides) and ``descriptors_per_second``
(issue 8: at least 200,000), the requests ``sources``.
"""

from __future__ import annotations

import pytest

import fastmatch
import fastmatch.generate as generate
import support

N = support.sizes().fleet
K = support.FLEET_DISTINCT
DISTINCT = (10_000, 30_000)  # descriptors per side, all distinct
REQUEST_SOURCES = (1, 10, 100)


def _rate(benchmark, devices):
    benchmark.extra_info["devices"] = devices
    if benchmark.stats:
        benchmark.extra_info["devices_per_second"] = devices / benchmark.stats.stats.median


def _rounds():
    return 3 if N <= 200_000 else 1


def test_generate(benchmark, tmp_path):
    """``fastmatch generate --sources N --targets N --distinct 2000``: both files written."""
    benchmark.group = f"fleet {N:,} x {N:,}: generate, load, intern"
    benchmark.extra_info.update({"implementation": "generate", "size": str(N)})
    benchmark.pedantic(generate.write_fleet, args=(tmp_path, N, N, K, support.SEED), rounds=_rounds(), iterations=1)
    _rate(benchmark, 2 * N)


@pytest.mark.parametrize("side", ["sources", "targets"])
def test_load(benchmark, side):
    """``fastmatch.load`` of one side's JSON Lines."""
    paths = dict(zip(("sources", "targets"), support.fleet_files(N, N, K)))
    benchmark.group = f"fleet {N:,} x {N:,}: generate, load, intern"
    benchmark.extra_info.update({"implementation": f"load {side}", "size": str(N), "bytes": paths[side].stat().st_size})
    devices = benchmark.pedantic(fastmatch.load, args=(paths[side],), rounds=_rounds(), iterations=1)
    assert len(devices) == N
    _rate(benchmark, N)


def test_intern(benchmark):
    """Vocabularies, classes and the kernel's arrays, from two loaded device sets."""
    from fastmatch.intern import intern

    s, t = support.fleet_files(N, N, K)
    sources, targets = fastmatch.load(s), fastmatch.load(t)
    benchmark.group = f"fleet {N:,} x {N:,}: generate, load, intern"
    benchmark.extra_info.update({"implementation": "intern", "size": str(N)})
    policy = fastmatch.Policy.default()
    interned = benchmark.pedantic(intern, args=(sources, targets, policy), rounds=_rounds(), iterations=1)
    benchmark.extra_info["classes"] = [interned.sources.n_classes, interned.targets.n_classes]
    assert interned.sources.n_classes <= K and interned.targets.n_classes <= K
    _rate(benchmark, 2 * N)


@pytest.mark.parametrize("n", DISTINCT)
def test_intern_distinct(benchmark, n):
    """``intern`` of two all-distinct fleets (``fastmatch generate --sources n --targets n
    --distinct n``), end to end from two loaded device sets: every descriptor its own class."""
    from fastmatch.intern import intern

    s, t = support.fleet_files(n, n, n)
    sources, targets = fastmatch.load(s), fastmatch.load(t)
    benchmark.group = "intern all-distinct fleets"
    benchmark.extra_info.update({"implementation": "intern distinct", "size": str(n), "descriptors": 2 * n})
    policy = fastmatch.Policy.default()
    interned = benchmark.pedantic(intern, args=(sources, targets, policy), rounds=5, iterations=1)
    assert interned.sources.n_classes == n and interned.targets.n_classes == n
    if benchmark.stats:
        stats = benchmark.stats.stats
        benchmark.extra_info["descriptors_per_second"] = 2 * n / stats.median
        benchmark.extra_info["descriptors_per_second_best"] = 2 * n / stats.min


@pytest.mark.parametrize("k", REQUEST_SOURCES)
def test_intern_request(benchmark, k):
    """``PreparedTargets.with_sources``, a TargetIndex's per-request interning: the first k
    sources of the fleet against its prepared targets (N devices, 2,000 distinct)."""
    from fastmatch.intern import PreparedTargets

    s, t = support.fleet_files(N, N, K)
    policy = fastmatch.Policy.default()
    prepared = PreparedTargets(fastmatch.load(t), policy)
    sources = fastmatch.DeviceSet.from_records(fastmatch.load(s).to_records()[:k], policy)
    benchmark.group = f"intern a request against {N:,} prepared targets"
    benchmark.extra_info.update({"implementation": "with_sources", "size": str(k), "sources": k})
    interned = benchmark(prepared.with_sources, sources)
    assert interned.sources.class_of.shape == (k,)
