"""The native kernel behind MatchResult: every output reduced inside the kernel, row by row."""

from __future__ import annotations

import os
from dataclasses import replace
from functools import cached_property
from typing import Any, Callable, Iterator

import numpy as np
import numpy.typing as npt

# Each block is one short OpenMP parallel region, a fraction of a millisecond apart.
# OpenMP's default makes idle threads spin for a long while: with another process on
# one of this machine's 2 cores, every region's barrier waited for a descheduled
# spinner, and 2 workers ran 6 times slower than 1. Sleeping at once (passive) costs a
# wake-up per region: 1.1 G pairs/s instead of 1.5 on a quiet machine. A short spin
# (a few microseconds) keeps both. A caller's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "2000")

from . import _kernel as _kernel  # noqa: E402  (after the setting above, which OpenMP reads when it loads)
from .blocks import Blocks, TargetKeys, in_order
from .devices import DeviceSet
from .dispatch import Plan, vector_path
from .intern import Interned
from .policy import Policy
from .result import Bools, DenseOutput, DeviceRules, Int64s, MatchResult, TargetDevices

# A tqdm-like factory: progress(total=..., desc=..., unit=..., unit_scale=...) gives a bar.
Progress = Callable[..., Any]

# About 260,000 class pairs per block of the dense class-pair path: the block buffer (2 MiB)
# stays in cache while it is copied out.
PAIRS_PER_BLOCK = 1 << 18
# The fused reductions keep only a row per thread: a call covers about 4M class pairs visited
# (a few milliseconds), so the Python between calls costs nothing and Ctrl-C is honoured at once.
PAIRS_PER_CALL = 1 << 22
# Sources a call of top_k_runs answers (but one class's, however many): 64K of them fill 5 MiB
# of indices and scores at k = 5, reused from run to run, where a million sources' whole answer
# was 80 MB of memory first touched (BENCHMARKS.md, session 9).
SOURCES_PER_RUN = 1 << 16


def prepared_problem(
    interned: Interned, workers: int, vector: str | None = None, keep_sources: bool = False
) -> "_kernel.Problem":
    """The kernel's view of interned arrays, its records already matched; ``vector`` as
    ``fastmatch.dispatch.vector_path`` decides unless given. ``keep_sources``: the interned
    sources serve later matches too, and so does the kernel's side of them (``_kernel.Problem``)."""
    problem = _kernel.Problem(interned, vector or vector_path(interned), keep_sources)
    problem.prepare(workers)
    return problem


def request_targets(targets: TargetDevices, exclude_same_host: bool) -> "_kernel.RequestTargets":
    """What a TargetIndex's one-class requests read of its targets (``_kernel.RequestTargets``)."""
    return _kernel.RequestTargets(targets.view(exclude_same_host), targets.available_per_host, targets.available)


class NativeOutputs:
    """Every output of a result from the kernel, reduced row by row inside it (reductions.pxi).

    Nothing is kept between outputs: each one runs the kernel again, over source classes in
    calls of ``rows`` classes (``block``), with a progress bar over device pairs.
    """

    def __init__(
        self,
        problem: "_kernel.Problem",
        rules: DeviceRules,
        source_class: Int64s,
        workers: int,
        block: int | None = None,
        progress: Progress | None = None,
        asked: Bools | None = None,
        visited_per_row: float | None = None,
    ) -> None:
        self.problem = problem
        self.shape = problem.shape
        self.rules = rules
        self.source_class = source_class
        self.asked = asked
        self.workers = workers
        self.block = block
        self.progress = progress
        # Class pairs a row costs: every target class, or, blocked, the ones its ranges hold.
        self.visited_per_row = visited_per_row or problem.shape[1]

    @cached_property
    def view(self) -> _kernel.DeviceView:
        return self.rules.view(self.source_class, self.shape[0], self.asked)

    def _calls(self, blocked: bool = True, device_start: Int64s | None = None) -> Iterator[tuple[int, int]]:
        """Runs of source classes, ``(i0, i1)``: ``block`` classes, or about PAIRS_PER_CALL
        class pairs; with ``device_start`` (where each class's devices start, in source order),
        no more than SOURCES_PER_RUN devices, unless one class has more."""
        n, m = self.shape
        row_pairs = self.visited_per_row if blocked else m
        rows = self.block or max(1, int(PAIRS_PER_CALL // max(1, row_pairs)))
        bar = None
        if self.progress is not None:
            devices = np.bincount(self.source_class, minlength=n) * len(self.rules.targets.host)
            done = np.concatenate([[0], np.cumsum(devices)])
            bar = self.progress(total=int(done[-1]), desc="matching", unit="pair", unit_scale=True)
        try:
            i0 = 0
            while i0 < n:
                i1 = min(n, i0 + rows)
                if device_start is not None:
                    fits = int(np.searchsorted(device_start, device_start[i0] + SOURCES_PER_RUN, side="right")) - 1
                    i1 = min(i1, max(i0 + 1, fits))
                yield i0, i1
                if bar is not None:
                    bar.update(int(done[i1] - done[i0]))
                i0 = i1
        finally:
            if bar is not None:
                bar.close()

    def top_k(self, k: int, indices: Int64s, scores: Int64s) -> None:
        depth = self.rules.top_k_depth(k, self.source_class, self.shape[0], self.asked)
        for i0, i1 in self._calls():
            self.problem.top_k(i0, i1, self.view, k, depth, indices, scores, self.workers)

    def top_k_runs(self, k: int) -> Iterator[tuple[Int64s, Int64s, Int64s]] | None:
        if self.asked is not None:
            return None  # (some sources only: their rows among all of them)
        return self._top_k_runs(k)

    def _top_k_runs(self, k: int) -> Iterator[tuple[Int64s, Int64s, Int64s]]:
        n = self.shape[0]
        depth = self.rules.top_k_depth(k, self.source_class, n)
        order, start = self.rules.source_groups(self.source_class, n)
        rows = int(min(start[-1], max(SOURCES_PER_RUN, np.diff(start).max(initial=0))))  # a run's most
        indices, scores = np.empty((rows, k), dtype=np.int64), np.empty((rows, k), dtype=np.int64)
        for i0, i1 in self._calls(device_start=start):
            run = slice(int(start[i0]), int(start[i1]))
            size = run.stop - run.start
            self.problem.top_k(i0, i1, self.view, k, depth, indices, scores, self.workers, in_runs=True)
            yield order[run], indices[:size], scores[:size]

    def counts(self, counted: Bools, out: Int64s) -> None:
        per_class = self.rules.targets.counted_per_class(counted)
        flags = counted.view(np.uint8)
        for i0, i1 in self._calls():
            self.problem.counts(i0, i1, self.view, flags, per_class, out, self.workers)

    def sparse_rows(self, indptr: Int64s, columns: Int64s, data: Int64s) -> None:
        for i0, i1 in self._calls():
            self.problem.sparse(i0, i1, self.view, indptr, columns, data, self.workers)

    def dense(self, what: DenseOutput, out: npt.NDArray[Any]) -> None:
        for i0, i1 in self._calls(blocked=what != "reasons"):
            self.problem.dense(i0, i1, self.view, what, out, self.workers)

    def blocks(self) -> Iterator[tuple[int, int, Int64s]]:
        """``(i0, i1, outcomes)`` for source classes i0..i1; the array is reused afterwards."""
        n, m = self.shape
        rows = self.block or max(1, PAIRS_PER_BLOCK // max(1, m))
        rows = min(rows, max(n, 1))
        outcomes = _kernel.aligned_empty((rows, m), np.int64)
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            self.problem.evaluate(i0, i1, outcomes[: i1 - i0], self.workers)
            yield i0, i1, outcomes[: i1 - i0]

    def class_outcomes(self) -> Int64s:
        out = np.empty(self.shape, dtype=np.int64)
        for i0, i1, block in self.blocks():
            out[i0:i1] = block
        return out

    def row(self, c: int) -> Int64s:
        outcomes: Int64s = _kernel.aligned_empty((1, self.shape[1]), np.int64)
        self.problem.evaluate(c, c + 1, outcomes, 1)
        row: Int64s = outcomes[0]
        return row


def blocked(
    interned: Interned, sources: DeviceSet, targets: DeviceSet, policy: Policy
) -> tuple[Interned, Blocks | None, DeviceRules]:
    """What every runner of the kernel starts from: ``(interned, blocks, rules)``, the targets
    in blocked order where blocking pays (``blocks`` is then not None) and the device rules
    over that order. What depends only on the targets' classes (their keys, their blocked
    order, and in the problem the kernel's template of them) is kept in ``kernel_cache`` when
    the interned targets outlive this match (two sets coded together, ``fastmatch.intern``);
    each target side keeps its own."""
    kept = interned.kernel_cache
    keys = kept.get("target keys") if kept is not None else None
    if keys is None:
        keys = TargetKeys(policy, interned.op_kind, interned.op_row, interned.op_word, interned.op_bit, interned.targets)
        if kept is not None:
            kept["target keys"] = keys
    blocks = keys.blocks(interned.sources)
    if blocks is not None:
        in_blocks = kept.get("blocked targets") if kept is not None else None
        if in_blocks is None:
            in_blocks = (in_order(interned.targets, keys.order), None if kept is None else {})
            if kept is not None:
                kept["blocked targets"] = in_blocks
        sources_side = interned.sources
        if blocks.reorder_pays:
            visit = blocks.source_order()
            sources_side, blocks = in_order(sources_side, visit), blocks.in_source_order(visit)
        interned = replace(interned, sources=sources_side, targets=in_blocks[0], kernel_cache=in_blocks[1])
    return interned, blocks, device_rules(interned, sources, targets, policy)


def device_rules(interned: Interned, sources: DeviceSet, targets: DeviceSet, policy: Policy) -> DeviceRules:
    """The device rules of a match over ``interned``'s target classes, kept in its
    ``kernel_cache`` (when it has one) while the targets' capacities stay as they were: a
    set's capacities may change between two matches (``targets.capacities[j] = 0``), and
    which targets are available, per class and per host, follows them."""
    kept = interned.kernel_cache
    found = kept.get("device rules") if kept is not None else None
    if found is not None and np.array_equal(found[0], targets.capacities):
        rules: DeviceRules = found[1]
        return rules
    side = interned.targets
    rules = DeviceRules(sources, TargetDevices(targets, side.class_of, side.n_classes), policy.exclude_same_host)
    if kept is not None:
        kept["device rules"] = (np.array(targets.capacities, dtype=np.int64), rules)
    return rules


def run_native(
    plan: Plan,
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    workers: int,
    block: int | None,
    memory_limit: int | None = None,
    progress: Progress | None = None,
) -> MatchResult:
    """A match through the kernel, as ``plan`` (fastmatch.dispatch) says, targets blocked where it pays."""
    interned = plan.interned
    assert interned is not None, "a plan that runs the kernel holds its interned arrays"
    interned, blocks, rules = blocked(interned, sources, targets, policy)
    problem = prepared_problem(interned, workers, plan.vector, keep_sources=interned.kernel_cache is not None)
    if blocks is not None:
        problem.block(blocks.start, blocks.ranges, blocks.settled)
    visited = blocks.pairs / max(1, problem.shape[0]) if blocks is not None else None
    outputs = NativeOutputs(problem, rules, interned.sources.class_of, workers, block, progress, visited_per_row=visited)
    return MatchResult(
        sources,
        targets,
        policy,
        interned.attributes,
        outputs,
        interned.sources.class_of,
        interned.targets.class_of,
        rules,
        memory_limit,
    )
