"""A fleet directory's ``sources.jsonl`` and ``targets.jsonl`` loaded once, then ``REPS`` times
``match(workers=2)`` followed by each output (``top_k`` = ``top_k(5)``, ``counts``,
``sparse``), with wall and CPU times, the class pairs visited per row and the peak memory.
The first round is cold (nothing interned yet); later rounds match the same sets again.

    PYTHONPATH=src python benches/scripts/match_top_k.py .benchmarks/fleets/300000x300000-... 2 top_k
"""

import resource
import sys
import time

import fastmatch

OUTPUTS = {"top_k": lambda r: r.top_k(5), "counts": lambda r: r.counts(), "sparse": lambda r: r.to_sparse()}


def main(directory: str, reps: int, outputs: list[str]) -> None:
    start = time.perf_counter()
    sources = fastmatch.load(f"{directory}/sources.jsonl")
    targets = fastmatch.load(f"{directory}/targets.jsonl")
    print(f"load {time.perf_counter() - start:.1f} s", flush=True)
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fastmatch.match(sources, targets, workers=2)
        line = f"match {time.perf_counter() - wall:.2f} s (cpu {time.process_time() - cpu:.2f})"
        for output in outputs:
            wall, cpu = time.perf_counter(), time.process_time()
            OUTPUTS[output](result)
            line += f"  {output} {time.perf_counter() - wall:.2f} s (cpu {time.process_time() - cpu:.2f})"
        visited = getattr(result._outputs, "visited_per_row", None)
        print(f"{line}  class pairs visited a row {visited}  classes {result.class_shape}", flush=True)
    print("peak memory MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2, sys.argv[3].split(",") if len(sys.argv) > 3 else ["top_k"])
