"""Two threads against one on a shared ``TargetIndex``, warm requests (as
``benches/bench_index.py``'s ``test_requests_per_second``, in longer trials): the first 1,000
sources of the bench fleet as requests, each trial ``REQUESTS`` of them on one thread, then on
two threads sharing them; the ratio of each pair, and the medians of ``TRIALS`` pairs. The
bench's rounds (4,000 requests, 30 ms) are too short for a noisy VM.

    PYTHONPATH=src python benches/scripts/two_threads.py 100000 8
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


def main(requests_per_trial: int, trials: int) -> None:
    sources, targets = support.fleet_files(support.sizes().fleet, support.sizes().fleet, support.FLEET_DISTINCT)
    with open(sources, encoding="utf-8") as lines:
        requests = [json.loads(line) for line in itertools.islice(lines, 1000)]
    index = fastmatch.TargetIndex(fastmatch.load(targets))
    for record in requests:  # every descriptor kept
        index.top_k(record, 5)
    batch = list(itertools.islice(itertools.cycle(requests), requests_per_trial))

    def rate(threads: int) -> float:
        def serve(share: list) -> None:
            for record in share:
                index.top_k(record, 5)

        workers = [threading.Thread(target=serve, args=(batch[k::threads],)) for k in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return requests_per_trial / (time.perf_counter() - start)

    ones, twos = [], []
    for _ in range(trials):
        ones.append(rate(1))
        twos.append(rate(2))
        print(f"1 thread {ones[-1]:9.0f}/s  2 threads {twos[-1]:9.0f}/s  {twos[-1] / ones[-1]:.2f}x", flush=True)
    ratios = [two / one for one, two in zip(ones, twos)]
    print(f"median {statistics.median(ratios):.2f}x; 1 thread {statistics.median(ones):.0f}/s, 2 threads {statistics.median(twos):.0f}/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, int(sys.argv[2]) if len(sys.argv) > 2 else 8)
