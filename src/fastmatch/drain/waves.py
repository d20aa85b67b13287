"""Moves ordered into waves: at most ``max_parallel`` VM migrations at a time across the
cluster, and at most ``max_per_host`` out of and into each host at a time.

A VM's devices migrate together, so a VM is one migration, counted once on the host it leaves
and once on the host it goes to. Waves are filled first-fit in plan order: each VM goes to the
earliest wave with room on the cluster, its source host and its target host.

No move waits for another to free capacity: moves go only to hosts that are not drained, and
only drained hosts are left, so a move never frees what another move needs; capacity is the
capacity before the drain. Were moves ever to land on hosts being emptied (a rebalance), a
move would have to follow the one that empties its target: not a case this plan makes.
"""

from __future__ import annotations

import numpy as np

from ..result import Int64s


def schedule(from_host: Int64s, to_host: Int64s, max_parallel: int | None, max_per_host: int | None) -> Int64s:
    """int64 per migration (in plan order): its wave, from 1."""
    n = len(from_host)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if max_parallel is None and max_per_host is None:
        return np.ones(n, dtype=np.int64)
    per_wave: list[int] = []
    outbound: dict[int, list[int]] = {}
    inbound: dict[int, list[int]] = {}
    earliest_open = 0  # waves before this one are full cluster-wide
    # Per host, the earliest wave that may still have room for it (waves before are full for it).
    out_open: dict[int, int] = {}
    in_open: dict[int, int] = {}
    waves = np.empty(n, dtype=np.int64)
    for m, (a, b) in enumerate(zip(from_host.tolist(), to_host.tolist())):
        w = max(earliest_open, out_open.get(a, 0), in_open.get(b, 0))
        out_a = outbound.setdefault(a, [])
        in_b = inbound.setdefault(b, [])
        while True:
            while len(per_wave) <= w:
                per_wave.append(0)
            for counts in (out_a, in_b):
                while len(counts) <= w:
                    counts.append(0)
            if (max_parallel is None or per_wave[w] < max_parallel) and (
                max_per_host is None or (out_a[w] < max_per_host and in_b[w] < max_per_host)
            ):
                break
            w += 1
        per_wave[w] += 1
        out_a[w] += 1
        in_b[w] += 1
        waves[m] = w + 1
        while max_parallel is not None and earliest_open < len(per_wave) and per_wave[earliest_open] >= max_parallel:
            earliest_open += 1
        if max_per_host is not None:
            for counts, opened, host in ((out_a, out_open, a), (in_b, in_open, b)):
                start = opened.get(host, 0)
                while start < len(counts) and counts[start] >= max_per_host:
                    start += 1
                opened[host] = start
    return waves


def fewest_waves(from_host: Int64s, to_host: Int64s, max_parallel: int | None, max_per_host: int | None) -> int:
    """A lower bound on the waves any schedule needs (to show beside the waves found)."""
    n = len(from_host)
    if n == 0:
        return 0
    bound = 1
    if max_parallel is not None:
        bound = max(bound, -(-n // max_parallel))
    if max_per_host is not None:
        busiest = max(np.unique(from_host, return_counts=True)[1].max(), np.unique(to_host, return_counts=True)[1].max())
        bound = max(bound, -(-int(busiest) // max_per_host))
    return bound
