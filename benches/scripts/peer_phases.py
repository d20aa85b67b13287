"""Where a kept ``match(workers=2)`` + ``top_k(5)`` of the pandas peer's fleet spends its time:
each stage of ``fastmatch.native.run_native`` and of ``NativeOutputs.top_k`` timed on its own,
``REPS`` rounds of two sets matched together before (as the bench's ``fastmatch`` row), medians.

    PYTHONPATH=src python benches/scripts/peer_phases.py .benchmarks/fleets/10000x10000-k10000-r0-s0-...-selective32 300
"""

import sys
import time

import numpy as np

import fastmatch
from fastmatch import dispatch, native

WORKERS, K = 2, 5


def main(directory: str, reps: int) -> None:
    sources = fastmatch.load(f"{directory}/sources.jsonl")
    targets = fastmatch.load(f"{directory}/targets.jsonl")
    fastmatch.match(sources, targets, workers=WORKERS).top_k(K)  # the sets matched together before
    policy = sources.policy
    seconds: dict[str, list[float]] = {}

    def tick(name: str, start: float) -> float:
        now = time.perf_counter()
        seconds.setdefault(name, []).append(now - start)
        return now

    for _ in range(reps):
        t = time.perf_counter()
        plan = dispatch.plan(sources, targets, policy)
        t = tick("dispatch.plan (join kept)", t)
        interned, blocks, rules = native.blocked(plan.interned, sources, targets, policy)
        t = tick("native.blocked()", t)
        problem = native.prepared_problem(interned, WORKERS, plan.vector, keep_sources=True)
        t = tick("native.prepared_problem", t)
        problem.block(blocks.start, blocks.ranges, blocks.settled)
        t = tick("problem.block", t)
        outputs = native.NativeOutputs(
            problem, rules, interned.sources.class_of, WORKERS, visited_per_row=blocks.pairs / problem.shape[0]
        )
        depth = rules.top_k_depth(K, outputs.source_class, outputs.shape[0])
        t = tick("rules.top_k_depth", t)
        view = outputs.view
        t = tick("NativeOutputs.view", t)
        indices = np.empty((len(sources), K), np.int64)
        scores = np.empty((len(sources), K), np.int64)
        for i0, i1 in outputs._calls():
            problem.top_k(i0, i1, view, K, depth, indices, scores, WORKERS)
        tick("native top_k", t)
    for name, times in seconds.items():
        print(f"{name:28} {np.median(times) * 1e3:.3f} ms")
    print(f"{'total':28} {sum(np.median(times) for times in seconds.values()) * 1e3:.3f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
