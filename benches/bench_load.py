"""Generating, loading and interning a fleet (at most 2,000 distinct descriptors per side).

The fleet has ``FASTMATCH_BENCH_FLEET`` devices per side (100,000 quick,
1,000,000 full). ``extra_info`` holds ``devices`` and ``devices_per_second``.
"""

from __future__ import annotations

import pytest

import fastmatch
import fastmatch.generate as generate
import support

N = support.sizes().fleet
K = support.FLEET_DISTINCT


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
