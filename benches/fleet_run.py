"""The fleet end to end, as one process: JSON Lines on disk -> top-k per source written out.

    python benches/fleet_run.py SOURCES TARGETS OUT [--top 5] [--workers -1]

Prints one JSON object: seconds per phase (load, match, top_k, write), the
total, and the process's peak resident memory. ``bench_fleet.py`` runs it in a
subprocess so that the peak memory is this run's alone.

It uses ``fastmatch.load`` and ``fastmatch.match(...).top_k(k)`` for now; when
the streaming path lands, this is the file to switch.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from the source tree
    import importlib.util

    if importlib.util.find_spec("fastmatch") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np

import fastmatch


def write_top_k(path: Path, sources, targets, indices, scores) -> None:
    """One line per source: ``SOURCE<TAB>TARGET:SCORE<TAB>...`` (best first; nothing after a source with none).

    Sources of one descriptor class mostly share their candidates, so each
    distinct row of (indices, scores) is formatted once and lines are the
    source's id plus that text.
    """
    tails, row_of = _distinct_tails(targets.ids, indices, scores)
    source_ids = sources.ids
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        step = 1 << 14
        for start in range(0, len(source_ids), step):
            rows = row_of[start : start + step].tolist()
            out.write("".join([s + tails[r] for s, r in zip(source_ids[start : start + step], rows)]))


def _distinct_tails(target_ids, indices, scores) -> tuple[list[str], np.ndarray]:
    """The text after the source id of each distinct row, and each source's row among them."""
    n, k = indices.shape
    if n == 0:
        return [], np.zeros(0, dtype=np.int64)
    # A 64-bit hash of every row, sorted once; the rows behind equal hashes are then compared.
    weights = np.random.default_rng(0).integers(1, 1 << 62, size=2 * k, dtype=np.int64) | 1
    with np.errstate(over="ignore"):
        key = (indices.astype(np.uint64) * weights[:k].astype(np.uint64)).sum(axis=1, dtype=np.uint64)
        key += (scores.astype(np.uint64) * weights[k:].astype(np.uint64)).sum(axis=1, dtype=np.uint64)
    _, first, row_of = np.unique(key, return_index=True, return_inverse=True)
    if not ((indices == indices[first][row_of]).all() and (scores == scores[first][row_of]).all()):
        first, row_of = np.arange(n), np.arange(n)  # a hash collision: format every row
    tails = []
    for row_indices, row_scores in zip(indices[first].tolist(), scores[first].tolist()):
        cells = [f"{target_ids[j]}:{score}" for j, score in zip(row_indices, row_scores) if j >= 0]
        tails.append(("\t" + "\t".join(cells) if cells else "") + "\n")
    return tails, row_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources")
    parser.add_argument("targets")
    parser.add_argument("out")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--workers", type=int, default=-1)
    args = parser.parse_args(argv)

    times = {}
    start = last = time.perf_counter()

    def phase(name):
        nonlocal last
        now = time.perf_counter()
        times[name] = now - last
        last = now

    sources = fastmatch.load(args.sources)
    targets = fastmatch.load(args.targets)
    phase("load")
    result = fastmatch.match(sources, targets, workers=args.workers)
    phase("match")
    indices, scores = result.top_k(args.top)
    phase("top_k")
    write_top_k(Path(args.out), sources, targets, indices, scores)
    phase("write")
    times["total"] = time.perf_counter() - start
    times["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times["sources"], times["targets"] = len(sources), len(targets)
    times["class_shape"] = list(result.class_shape) if hasattr(result, "class_shape") else None
    times["stranded"] = int(len(result.stranded())) if hasattr(result, "stranded") else None
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
