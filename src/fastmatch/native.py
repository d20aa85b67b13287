"""Runs the native kernel block by block and wraps its class-level output."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from . import _kernel
from .devices import DeviceSet
from .intern import NativeUnsupported, intern
from .policy import Policy
from .result import MatchResult

# About 4 million pairs per block: a block takes well under a second, so
# Ctrl-C is honoured between blocks, and the per-thread scratch stays in cache.
PAIRS_PER_BLOCK = 1 << 22


def default_block(n_target_classes: int) -> int:
    return max(1, PAIRS_PER_BLOCK // max(1, n_target_classes))


def run_native(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    workers: int,
    block: int | None,
    confirm: Callable[[str, str], bool] | None,
) -> MatchResult:
    try:
        interned = intern(sources, targets, policy, confirm)
    except NativeUnsupported as exc:
        from .engine import match_reference

        warnings.warn(f"fastmatch: {exc.message}; using the reference implementation", RuntimeWarning, stacklevel=3)
        return match_reference(sources, targets, policy, confirm)

    src, tgt = interned.sources, interned.targets
    problem = _kernel.Problem(interned)
    problem.prepare(workers)
    n_s, n_t = src.n_classes, tgt.n_classes
    scores = np.empty((n_s, n_t), dtype=np.int64)
    reasons = np.empty((n_s, n_t), dtype=np.uint64)
    step = block or default_block(n_t)
    for i0 in range(0, n_s, step):
        i1 = min(n_s, i0 + step)
        problem.evaluate(i0, i1, scores[i0:i1], reasons[i0:i1], workers)
    return MatchResult(
        sources, targets, policy, interned.attributes, scores, reasons, src.class_of, tgt.class_of
    )
