"""``ROUNDS`` rounds of ``match(workers=2)`` + ``top_k(5)`` of a fleet directory's two sets, matched
together before (the pandas peer's ``fastmatch`` row): the median wall and CPU time a round
(CPU of both kernel threads, OpenMP's short spin included). ``ROUNDS`` 0 times the loading alone.

    PYTHONPATH=src /usr/bin/time -f "%e s wall %U s user %M KB" python benches/scripts/peer_rounds.py FLEET 1000
"""

import sys
import time

import numpy as np

import fastmatch


def main(directory: str, rounds: int) -> None:
    sources = fastmatch.load(f"{directory}/sources.jsonl")
    targets = fastmatch.load(f"{directory}/targets.jsonl")
    fastmatch.match(sources, targets, workers=2).top_k(5)
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fastmatch.match(sources, targets, workers=2).top_k(5)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    if rounds:
        print(
            f"median wall {np.median(walls) * 1e3:.2f} ms (best {min(walls) * 1e3:.2f}), "
            f"median CPU {np.median(cpus) * 1e3:.2f} ms a round, {rounds} rounds"
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
