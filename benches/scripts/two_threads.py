"""Two threads against one on a shared ``TargetIndex``, warm requests (as
``benches/bench_index.py``'s ``test_requests_per_second``, measured more finely for a noisy VM):
the first 1,000 sources of the bench fleet as requests, served for a window of ``WINDOW_MS`` by
one thread, then for as long by two; ``PAIRS`` such pairs, each pair's ratio, and the medians.

Each thread serves its own share of the requests round and round until the window ends (a
server's workers each taking the next request), so neither waits at the end for the other to
finish a fixed share: with fixed shares, the first thread was done at 92-99% of the run and the
other served the rest alone. Short windows, one and two threads in turn, keep each pair's two
runs in the same few hundred milliseconds of a VM whose speed moves from second to second.

    PYTHONPATH=src python benches/scripts/two_threads.py 200 40
"""

import itertools
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benches/: support

import support  # noqa: E402

import fastmatch  # noqa: E402

CHECK_EVERY = 32  # requests between two looks at the clock


def main(window_ms: float, pairs: int) -> None:
    sources, targets = support.fleet_files(support.sizes().fleet, support.sizes().fleet, support.FLEET_DISTINCT)
    with open(sources, encoding="utf-8") as lines:
        requests = [json.loads(line) for line in itertools.islice(lines, 1000)]
    index = fastmatch.TargetIndex(fastmatch.load(targets))
    for record in requests:  # every descriptor kept
        index.top_k(record, 5)

    def rate(threads: int) -> float:
        served = [0] * threads
        start = threading.Barrier(threads + 1)
        window = window_ms / 1000

        def serve(k: int) -> None:
            share = requests[k::threads]
            rounds = itertools.cycle([share[i : i + CHECK_EVERY] for i in range(0, len(share), CHECK_EVERY)])
            start.wait()
            end = time.perf_counter() + window
            count = 0
            for chunk in rounds:
                for record in chunk:
                    index.top_k(record, 5)
                count += len(chunk)
                if time.perf_counter() >= end:
                    break
            served[k] = count

        workers = [threading.Thread(target=serve, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        return sum(served) / (time.perf_counter() - began)

    ones, twos = [], []
    for _ in range(pairs):
        ones.append(rate(1))
        twos.append(rate(2))
    ratios = [two / one for one, two in zip(ones, twos)]
    print("pairs:", " ".join(f"{r:.2f}" for r in ratios))
    quartiles = statistics.quantiles(ratios, n=4)
    print(
        f"median {statistics.median(ratios):.2f}x (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}) over {pairs} pairs of "
        f"{window_ms:g} ms windows; 1 thread {statistics.median(ones):.0f}/s, 2 threads {statistics.median(twos):.0f}/s"
    )


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 40)
