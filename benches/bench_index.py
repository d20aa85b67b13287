"""The scheduler's per-request path: one source against a prepared fleet of N targets.

``TargetIndex(targets)`` is built once (timed in its own benchmark); each request
is one source record, ``index.top_k(record, 5)``. N is ``FASTMATCH_BENCH_FLEET``
(the issue asks for at most 5 ms per request at 1,000,000 targets).
"""

from __future__ import annotations

import itertools
import json

import fastmatch
import support

N = support.sizes().fleet
K = support.FLEET_DISTINCT


def _fleet():
    sources, targets = support.fleet_files(N, N, K)
    with open(sources, encoding="utf-8") as lines:
        requests = [json.loads(line) for line in itertools.islice(lines, 1000)]
    return requests, fastmatch.load(targets)


def test_prepare_index(benchmark):
    _, targets = _fleet()
    benchmark.group = f"index of {N:,} targets"
    benchmark.extra_info.update({"implementation": "TargetIndex(targets)", "size": str(N)})
    benchmark.pedantic(fastmatch.TargetIndex, args=(targets,), rounds=3, iterations=1)


def test_one_request(benchmark):
    requests, targets = _fleet()
    index = fastmatch.TargetIndex(targets)
    cycle = itertools.cycle(requests)
    benchmark.group = f"index of {N:,} targets"
    benchmark.extra_info.update({"implementation": "index.top_k(one source, 5)", "size": str(N)})
    indices, _ = benchmark(lambda: index.top_k(next(cycle), 5))
    assert indices.shape == (1, 5)
