"""Two threads against one on a shared ``TargetIndex``, warm requests (as
``benches/bench_index.py``'s ``test_requests_per_second``, measured more finely for a noisy VM):
the first 1,000 sources of the bench fleet as requests, served for a window of ``WINDOW_MS`` by
one thread, then for as long by two; ``PAIRS`` such pairs, each pair's ratio, and the medians.

Each thread serves its own share of the requests round and round until the window ends (a
server's workers each taking the next request), so neither waits at the end for the other to
finish a fixed share: with fixed shares, the first thread was done at 92-99% of the run and the
other served the rest alone. Short windows, one and two threads in turn, keep each pair's two
runs in the same few hundred milliseconds of a VM whose speed moves from second to second.

    PYTHONPATH=src python benches/scripts/two_threads.py 200 40 [processes]

With ``processes``, each pair also has a window served by two processes, forked from this one
(the index shared), each one thread: what the machine gives two request loops that share no
GIL, the ceiling against which the threads' ratio is read.
"""

import itertools
import json
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benches/: support

import support  # noqa: E402

import fastmatch  # noqa: E402

CHECK_EVERY = 32  # requests between two looks at the clock


def main(window_ms: float, pairs: int, with_processes: bool) -> None:
    sources, targets = support.fleet_files(support.sizes().fleet, support.sizes().fleet, support.FLEET_DISTINCT)
    with open(sources, encoding="utf-8") as lines:
        requests = [json.loads(line) for line in itertools.islice(lines, 1000)]
    index = fastmatch.TargetIndex(fastmatch.load(targets))
    for record in requests:  # every descriptor kept
        index.top_k(record, 5)

    window = window_ms / 1000

    def served_in_window(share: list[dict], begin: threading.Barrier | None = None) -> int:
        """Requests of ``share``, round and round, until the window ends."""
        rounds = itertools.cycle([share[i : i + CHECK_EVERY] for i in range(0, len(share), CHECK_EVERY)])
        if begin is not None:
            begin.wait()
        end = time.perf_counter() + window
        count = 0
        for chunk in rounds:
            for record in chunk:
                index.top_k(record, 5)
            count += len(chunk)
            if time.perf_counter() >= end:
                break
        return count

    def rate(threads: int) -> float:
        served = [0] * threads
        start = threading.Barrier(threads + 1)

        def serve(k: int) -> None:
            served[k] = served_in_window(requests[k::threads], start)

        workers = [threading.Thread(target=serve, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        return sum(served) / (time.perf_counter() - began)

    # Two forked processes, one request loop each, held at a barrier between windows (forked
    # once the index is built and warm: the children share its memory, copy-on-write).
    fork = multiprocessing.get_context("fork")
    begin, end = fork.Barrier(3), fork.Barrier(3)
    counts = [fork.Value("q", 0) for _ in range(2)]

    def loop(k: int) -> None:
        while True:
            counts[k].value = served_in_window(requests[k::2], begin)
            end.wait()

    children = [fork.Process(target=loop, args=(k,), daemon=True) for k in range(2)] if with_processes else []
    for child in children:
        child.start()

    def processes_rate() -> float:
        begin.wait()
        began = time.perf_counter()
        end.wait()
        return (counts[0].value + counts[1].value) / (time.perf_counter() - began)

    ones, twos, forked = [], [], []
    for _ in range(pairs):
        ones.append(rate(1))
        twos.append(rate(2))
        if children:
            forked.append(processes_rate())
    for label, runs in (("2 threads", twos), ("2 processes", forked)):
        if not runs:
            continue
        ratios = [run / one for one, run in zip(ones, runs)]
        quartiles = statistics.quantiles(ratios, n=4)
        print(f"{label}, pairs:", " ".join(f"{r:.2f}" for r in ratios))
        print(
            f"{label}: median {statistics.median(ratios):.2f}x (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}) over {pairs} "
            f"pairs of {window_ms:g} ms windows; 1 thread {statistics.median(ones):.0f}/s, {label} {statistics.median(runs):.0f}/s"
        )
    for child in children:
        child.kill()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 40, sys.argv[3:] == ["processes"])
