"""The native kernel behind MatchResult: class pairs computed block by block."""

from __future__ import annotations

import os
import warnings
from typing import Callable, Iterator

import numpy as np

# Each block is one short OpenMP parallel region, a fraction of a millisecond apart.
# OpenMP's default makes idle threads spin for a long while: with another process on
# one of this machine's 2 cores, every region's barrier waited for a descheduled
# spinner, and 2 workers ran 6 times slower than 1. Sleeping at once (passive) costs a
# wake-up per region: 1.1 G pairs/s instead of 1.5 on a quiet machine. A short spin
# (a few microseconds) keeps both. A caller's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "2000")

from . import _kernel  # noqa: E402  (after the setting above, which OpenMP reads when it loads)
from .devices import DeviceSet
from .intern import NativeUnsupported, intern
from .policy import Policy
from .result import MatchResult

# About 260,000 pairs per block: the block buffer (2 MiB) stays in cache while the
# consumer reads them, and Ctrl-C is honoured between blocks, a millisecond apart.
PAIRS_PER_BLOCK = 1 << 18


def prepared_problem(interned, workers: int) -> "_kernel.Problem":
    """The kernel's view of interned arrays, its records already matched."""
    problem = _kernel.Problem(interned)
    problem.prepare(workers)
    return problem


class NativeClassPairs:
    """Class pairs from the kernel, computed again for every pass over them."""

    def __init__(self, problem: "_kernel.Problem", workers: int, block: int | None, progress=None) -> None:
        self.problem = problem
        self.shape = problem.shape
        self.workers = workers
        self.block_rows = block or max(1, PAIRS_PER_BLOCK // max(1, self.shape[1]))
        self.progress = progress

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        n, m = self.shape
        rows = min(self.block_rows, max(n, 1))
        outcomes = _kernel.aligned_empty((rows, m), np.int64)
        bar = self.progress(total=n * m, desc="matching", unit="pair", unit_scale=True) if self.progress else None
        try:
            for i0 in range(0, n, rows):
                i1 = min(n, i0 + rows)
                self.problem.evaluate(i0, i1, outcomes[: i1 - i0], self.workers)
                if bar is not None:
                    bar.update((i1 - i0) * m)
                yield i0, i1, outcomes[: i1 - i0]
        finally:
            if bar is not None:
                bar.close()

    def row(self, c: int) -> np.ndarray:
        outcomes = _kernel.aligned_empty((1, self.shape[1]), np.int64)
        self.problem.evaluate(c, c + 1, outcomes, 1)
        return outcomes[0]


def run_native(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    workers: int,
    block: int | None,
    confirm: Callable[[str, str], bool] | None,
    memory_limit: int | None = None,
    progress=None,
) -> MatchResult:
    try:
        interned = intern(sources, targets, policy, confirm)
    except NativeUnsupported as exc:
        from .engine import match_reference

        warnings.warn(f"fastmatch: {exc.message}; using the reference implementation", RuntimeWarning, stacklevel=3)
        return match_reference(sources, targets, policy, confirm, memory_limit)
    pairs = NativeClassPairs(prepared_problem(interned, workers), workers, block, progress)
    return MatchResult(
        sources,
        targets,
        policy,
        interned.attributes,
        pairs,
        interned.sources.class_of,
        interned.targets.class_of,
        memory_limit,
    )
