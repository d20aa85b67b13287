"""The phases of ``fastmatch match S T --top 5 --format F -o OUT`` in one process, as the
command runs them, each with its wall and CPU time.

    PYTHONPATH=src python benches/scripts/phases.py S T json|csv|parquet OUT
"""

import argparse
import resource
import sys
import time

from fastmatch.__main__ import numpy_settings
from fastmatch.allocator import keep_freed_memory, touch_ahead, touch_budget

# As the command does, before NumPy is imported (fastmatch.__main__.entry).
numpy_settings()
if keep_freed_memory():
    touch_ahead(touch_budget(sys.argv[1:3]))

from fastmatch import Policy, cli, match  # noqa: E402


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def resident_mb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() >> 20


def timed(label, work):
    cpu, wall, faulted = time.process_time(), time.perf_counter(), faults()
    value = work()
    print(
        f"{label:<34} {time.perf_counter() - wall:6.2f} s wall {time.process_time() - cpu:6.2f} s cpu {faults() - faulted:8d} faults {resident_mb():6d} MB resident",
        flush=True,
    )
    return value


def main(sources_path: str, targets_path: str, output_format: str, out: str) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    inputs = argparse.Namespace(sources=sources_path, targets=targets_path, input_format=None)
    sources, targets = timed("load both, side by side", lambda: cli._read_fleets(inputs, Policy.default()))
    result = timed("match", lambda: match(sources, targets))
    ranking = timed("Ranking.of (top_k, shared, parts)", lambda: cli.Ranking.of(result, 5))
    if output_format == "parquet":
        data = timed("parquet table + bytes", lambda: cli._parquet_candidates(ranking))
        timed("write + fsync", lambda: cli._write_parquet(out, data, None))
    else:
        lines = cli._FORMATTERS[output_format](ranking)
        timed(f"format + write {output_format} + fsync", lambda: cli._write_results(out, lines, None, binary=True))
    print(f"{'total':<34} {time.perf_counter() - wall:6.2f} s wall {time.process_time() - cpu:6.2f} s cpu")


if __name__ == "__main__":
    main(*sys.argv[1:5])
