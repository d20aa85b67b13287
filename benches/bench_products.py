"""What users read, against the block kernel, and against a pandas peer (issue 8).

Products, at n x n on the dense fleet (``support.dense``: all descriptors distinct,
default policy, a third of the targets with COMPATIBLE records), 2 workers, each
round from the same two prepared ``DeviceSet``s: what interning finds in each set on its
own is kept on it from its first match (``fastmatch.intern.side_values``; ``support.dense``
interns them once), and the two sets' join (vocabularies, class codes, the targets'
blocking; ``fastmatch.intern.kept_for_partner``) from the first round that matches them
together, as for a user's every later match of the same two sets; the pandas peer's
``fastmatch, sets apart`` below measures a round that pays the join:

- ``kernel``: the block kernel alone, blocks of ``PAIRS_PER_BLOCK`` pairs into one
  reused buffer, consumed and discarded (``support.native_kernel_blocks``, as
  ``bench_kernel``'s ``native-2-blocks``): the reference rate;
- ``match``: ``fastmatch.match()`` alone (the blocks of the sources, the kernel's problem;
  no pair is evaluated until an output is read);
- ``match+top_k(5)``, ``match+counts()``, ``match+to_sparse()``, ``match().compatible``.

``extra_info`` holds ``pairs_per_second`` (n*n over the median round: the nominal pairs,
whatever an output skips without evaluating) and
``ratio_to_kernel``: the output's pair rate over the kernel's *in the same run*
(kernel median time over the output's median time). ``.compatible`` is refused under
the default 2 GiB memory limit at 10,000 (it needs 24 bytes of class-pair arrays a
pair): ``extra_info["refused_at_default_limit"]`` says whether it was, and the
round runs with ``memory_limit=8 GiB``. Sizes above 10,000 run only ``kernel`` and
``match+top_k(5)``.

The pandas peer (``pandas_peer.py``), at n x n on fleets whose targets have no
COMPATIBLE records (``fastmatch generate`` with ``record_fraction=0``: the same
devices, without records), in two shapes: ``default`` (the generator's) and
``selective`` (``pandas_peer.selective``: device ids and mdev types split into 32
SKUs by host, so the exact attributes partition the fleet finely). Per shape:

- ``fastmatch``: ``match()`` + ``top_k(5)`` of two prepared ``DeviceSet``s that a match
  has joined before (its warm-up round), as pandas' frames were coded together: what each
  set holds on its own (its values numbered, its classes) and the two sets' joint coding
  (vocabularies shared by both sides, each class's codes) are kept on the sets
  (``DeviceSet.interning``; the joint coding for the sources' last partner); the round
  blocks the targets, builds the kernel's problem, runs the kernel and ``top_k`` and
  expands the classes to devices;
- ``fastmatch, sets apart``: sets each prepared on its own (matched before, but not with
  each other: new ``DeviceSet`` objects holding the prepared sets' own interning, made
  outside the timed region), so the round also joins the two sides' vocabularies and
  codes the classes, which pandas' preparation did outside its timed region;
- ``fastmatch cold``: the same on sets no match has seen (new ``DeviceSet`` objects over
  the same loaded devices, made outside the timed region): a set's first match, which
  also finds what the set holds on its own;
- ``pandas``: the join-filter-sort-head pipeline from prepared DataFrames (codes shared by
  both sides, masks and version parts, made by ``pandas_peer.prepare`` outside the timed
  region).

The pandas round asserts its answer equal to fastmatch's: the same targets in the same
order for every source, and the same number of compatible available targets per source
(``counts()``). ``extra_info["fastmatch_speedup"]`` is pandas' median time over that
side's (above 1: fastmatch is faster).

Sizes: ``FASTMATCH_BENCH_PRODUCTS`` (a list like ``10000,30000``) for the products,
``FASTMATCH_BENCH_PEER`` (a list) for the peer; by default 10,000 for both, and with
``FASTMATCH_BENCH_SIZES=full`` also 30,000 for the products. A summary table is
printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas_peer
import pytest
import support

import fastmatch
from fastmatch.errors import ResultTooLargeError
from fastmatch.intern import JOINED

WORKERS = 2
K = 5
FULL_ONLY = 30_000  # added to the products' sizes by FASTMATCH_BENCH_SIZES=full
ALL_OUTPUTS_UP_TO = 10_000  # above this, only the kernel and match+top_k(5)
BIG_MEMORY_LIMIT = 8 << 30


def _size_list(variable: str, default: tuple[int, ...]) -> tuple[int, ...]:
    chosen = os.environ.get(variable, "").strip()
    if not chosen:
        return default
    try:
        return tuple(int(s) for s in chosen.split(",") if s.strip())
    except ValueError:
        raise SystemExit(f"{variable}={chosen!r}: expected a list of sizes like 10000,30000") from None


_FULL = os.environ.get("FASTMATCH_BENCH_SIZES", "").strip() == "full"
PRODUCT_SIZES = _size_list("FASTMATCH_BENCH_PRODUCTS", (10_000, FULL_ONLY) if _FULL else (10_000,))
PEER_SIZES = _size_list("FASTMATCH_BENCH_PEER", (10_000,))
OUTPUTS = ("kernel", "match", "top_k", "counts", "to_sparse", "compatible")
LABELS = {
    "kernel": "block kernel (reference)",
    "match": "match() alone",
    "top_k": f"match() + top_k({K})",
    "counts": "match() + counts()",
    "to_sparse": "match() + to_sparse()",
    "compatible": "match().compatible",
}
SHAPES = ("default", "selective")

# Median seconds per (n, output) and per (shape, n, side), for the ratios and the summary; and the best.
PRODUCT_TIMES: dict[tuple[int, str], float] = {}
PRODUCT_BEST: dict[tuple[int, str], float] = {}
PEER_TIMES: dict[tuple[str, int, str], float] = {}
PEER_BEST: dict[tuple[str, int, str], float] = {}
PEER_FACTS: dict[tuple[str, int], dict] = {}


# -- the products ------------------------------------------------------------------------------------
def _run_output(problem, output: str):
    """One round of ``output`` from the prepared device sets."""
    if output == "kernel":
        return support.native_kernel_blocks(problem.interned, WORKERS)
    memory_limit = BIG_MEMORY_LIMIT if output == "compatible" else None
    result = fastmatch.match(problem.sources, problem.targets, workers=WORKERS, memory_limit=memory_limit)
    if output == "match":
        return result
    if output == "top_k":
        return result.top_k(K)
    if output == "counts":
        return result.counts()
    if output == "to_sparse":
        return result.to_sparse()
    return result.compatible


def _rounds(n: int, output: str) -> tuple[int, int]:
    """(rounds, warm-up rounds): the kernel many (tens of milliseconds a round at 10,000); outputs
    that take seconds a few; above 10,000 (a second or more a kernel round, ten or more an
    output round) the kernel five, outputs two without warm-up."""
    if output == "kernel":
        return (15, 1) if n <= ALL_OUTPUTS_UP_TO else (5, 1)
    if n > ALL_OUTPUTS_UP_TO:
        return 2, 0
    if output == "compatible":  # gigabytes of fresh memory a round
        return 3, 0
    return 3, 1


@cache
def _kernel_time(n: int) -> float:
    """The block kernel's median time when its benchmark did not run in this session (-k)."""
    problem = support.dense(n)
    times = []
    for _ in range(8):
        start = time.perf_counter()
        support.native_kernel_blocks(problem.interned, WORKERS)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _products_params():
    for n in PRODUCT_SIZES:
        for output in OUTPUTS:
            if n <= ALL_OUTPUTS_UP_TO or output in ("kernel", "top_k"):
                yield pytest.param(n, output, id=f"{n}-{output}")


@pytest.mark.parametrize("n, output", list(_products_params()))
def test_products(benchmark, n, output):
    problem = support.dense(n)
    benchmark.group = f"products {n}x{n}, {WORKERS} workers"
    support.record(benchmark, LABELS[output], str(n), problem.pairs, n_sources=n, n_targets=n, workers=WORKERS)
    if output == "compatible":
        try:
            _ = fastmatch.match(problem.sources, problem.targets, workers=WORKERS).compatible
        except ResultTooLargeError:
            benchmark.extra_info["refused_at_default_limit"] = True
        else:
            benchmark.extra_info["refused_at_default_limit"] = False
    rounds, warmup = _rounds(n, output)
    answer = benchmark.pedantic(_run_output, args=(problem, output), rounds=rounds, iterations=1, warmup_rounds=warmup)
    _check_product(problem, output, answer)
    if benchmark.stats is None:  # --benchmark-disable: the run and its checks only
        return
    support.rate(benchmark)
    median, best = benchmark.stats.stats.median, benchmark.stats.stats.min
    PRODUCT_TIMES[(n, output)], PRODUCT_BEST[(n, output)] = median, best
    kernel = PRODUCT_TIMES.get((n, "kernel")) or _kernel_time(n)
    benchmark.extra_info["ratio_to_kernel"] = kernel / median
    if (n, "kernel") in PRODUCT_BEST:  # on a noisy machine: best round against best round
        benchmark.extra_info["ratio_to_kernel_best"] = PRODUCT_BEST[(n, "kernel")] / best


_ANSWERS: dict[tuple[int, str], np.ndarray] = {}  # top_k's indices and counts, to hold them to each other


def _check_product(problem, output: str, answer) -> None:
    """Each answer's shape, and top_k and counts against each other once both have run:
    a source has min(count, k) candidates."""
    n = problem.n
    if output == "top_k":
        indices, scores = answer
        assert indices.shape == (n, K) and ((indices >= 0) == (scores >= 0)).all()
        _ANSWERS[(n, "top_k")] = (indices >= 0).sum(axis=1)
    elif output == "counts":
        assert answer.shape == (n,) and (answer >= 0).all()
        _ANSWERS[(n, "counts")] = np.minimum(answer, K)
    elif output == "to_sparse":
        assert answer.shape == (n, n) and answer.nnz > 0
    elif output == "compatible":
        assert answer.shape == (n, n) and answer.dtype == bool and answer.any()
    if (n, "top_k") in _ANSWERS and (n, "counts") in _ANSWERS:
        np.testing.assert_array_equal(_ANSWERS[(n, "top_k")], _ANSWERS[(n, "counts")])


# -- the pandas peer -----------------------------------------------------------------------------------
def peer_files(n: int, shape: str) -> tuple[Path, Path]:
    """The peer's fleet: ``fastmatch generate`` with targets without records, or its selective form."""
    sources, targets = support.fleet_files(n, n, n, record_fraction=0.0)
    if shape == "default":
        return sources, targets
    directory = sources.parent.with_name(sources.parent.name + f"-selective{pandas_peer.SELECTIVE_GROUPS}")
    done = directory / "complete"
    if not done.exists():
        directory.mkdir(parents=True, exist_ok=True)
        for path in (sources, targets):
            with open(path, encoding="utf-8") as lines:
                pandas_peer.write_lines(directory / path.name, (pandas_peer.selective(json.loads(x)) for x in lines))
        done.write_text("")
    return directory / sources.name, directory / targets.name


class Peer:
    """Both sides' prepared inputs for one fleet."""

    def __init__(self, n: int, shape: str) -> None:
        source_path, target_path = peer_files(n, shape)
        self.sources = fastmatch.load(source_path)
        self.targets = fastmatch.load(target_path)
        self.frames = pandas_peer.prepare(pandas_peer.read_records(source_path), pandas_peer.read_records(target_path))
        self.n = n
        self.join_rows = pandas_peer.join_size(self.frames)

    def fastmatch_top_k(self, sources=None, targets=None):
        sources = self.sources if sources is None else sources
        targets = self.targets if targets is None else targets
        return fastmatch.match(sources, targets, workers=WORKERS).top_k(K)

    def unseen_sets(self):
        """pedantic's setup for a cold round: both sides as sets no match has seen."""
        return tuple(_unseen(d) for d in (self.sources, self.targets)), {}

    def sets_apart(self):
        """pedantic's setup: both sides as sets each prepared on its own, never matched together."""
        if not (self.sources.interning and self.targets.interning):
            fastmatch.match(self.sources, self.targets, workers=WORKERS)
        return tuple(_prepared_apart(d) for d in (self.sources, self.targets)), {}

    def pandas_top_k(self):
        return pandas_peer.top_k(self.frames, K)


def _unseen(devices: fastmatch.DeviceSet) -> fastmatch.DeviceSet:
    """The same devices (the same loaded descriptors) in a set that no match has seen."""
    d = devices
    return fastmatch.DeviceSet(d.policy, d.ids, d.hosts, d.vms, d.capacities, d.descriptor_of, d.descriptors)


def _prepared_apart(devices: fastmatch.DeviceSet) -> fastmatch.DeviceSet:
    """The same devices in a set holding what ``devices`` found on its own, but no join with a partner."""
    apart = _unseen(devices)
    apart.interning.update((key, kept) for key, kept in devices.interning.items() if key[0] != JOINED)
    return apart


@lru_cache(maxsize=1)
def _peer(n: int, shape: str) -> Peer:
    return Peer(n, shape)


PEER_SIDES = ("fastmatch", "fastmatch, sets apart", "fastmatch cold", "pandas")


@pytest.mark.parametrize("side", PEER_SIDES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", PEER_SIZES)
def test_pandas_peer(benchmark, n, shape, side):
    peer = _peer(n, shape)
    benchmark.group = f"pandas peer {n}x{n}, {shape} fleet: match + top_k({K})"
    pairs = len(peer.sources) * len(peer.targets)
    support.record(benchmark, side, str(n), pairs, shape=shape, join_rows=peer.join_rows, workers=WORKERS)
    if side == "fastmatch":
        benchmark.pedantic(peer.fastmatch_top_k, rounds=5, iterations=1, warmup_rounds=1)
    elif side == "fastmatch, sets apart":
        benchmark.pedantic(peer.fastmatch_top_k, setup=peer.sets_apart, rounds=5, iterations=1)
    elif side == "fastmatch cold":
        benchmark.pedantic(peer.fastmatch_top_k, setup=peer.unseen_sets, rounds=5, iterations=1)
    else:
        top = benchmark.pedantic(peer.pandas_top_k, rounds=5, iterations=1, warmup_rounds=1)
        benchmark.extra_info["compatible_available_pairs"] = _assert_peer_equal(peer, top)
    if benchmark.stats is None:  # --benchmark-disable
        return
    support.rate(benchmark)
    PEER_TIMES[(shape, n, side)] = benchmark.stats.stats.median
    PEER_BEST[(shape, n, side)] = benchmark.stats.stats.min
    PEER_FACTS[(shape, n)] = {"join_rows": peer.join_rows, "targets": len(peer.targets)}
    pandas_key, own_key = (shape, n, "pandas"), (shape, n, side)
    if pandas_key in PEER_TIMES and own_key in PEER_TIMES and side != "pandas":
        benchmark.extra_info["fastmatch_speedup"] = PEER_TIMES[pandas_key] / PEER_TIMES[own_key]
        benchmark.extra_info["fastmatch_speedup_best"] = PEER_BEST[pandas_key] / PEER_BEST[own_key]


def _assert_peer_equal(peer: Peer, top) -> int:
    """The pandas answer is fastmatch's: rankings (targets, in order, per source) and compatibility
    (compatible available targets per source). Scores are not compared: their representation is
    fastmatch's own. Returns the number of compatible pairs with an available target."""
    result = fastmatch.match(peer.sources, peer.targets, workers=WORKERS)
    indices, _ = result.top_k(K)
    got = pandas_peer.as_array(top, len(peer.sources), K)
    differ = np.flatnonzero((got != indices).any(axis=1))
    assert len(differ) == 0, (
        f"pandas and fastmatch rank differently for {len(differ)} sources, e.g. source {differ[0]}: "
        f"pandas {got[differ[0]].tolist()}, fastmatch {indices[differ[0]].tolist()}"
    )
    compatible = pandas_peer.compatible_pairs(peer.frames, capacity=True)
    per_source = np.bincount(compatible["s_row"].to_numpy(), minlength=len(peer.sources))
    counts = result.counts()
    differ = np.flatnonzero(per_source != counts)
    assert len(differ) == 0, (
        f"pandas and fastmatch count differently for {len(differ)} sources, e.g. source {differ[0]}: "
        f"pandas {per_source[differ[0]]}, fastmatch {counts[differ[0]]}"
    )
    return int(per_source.sum())


# -- the summary --------------------------------------------------------------------------------------
def _summary():
    lines = []
    for n in sorted({n for n, _ in PRODUCT_TIMES}):
        kernel, kernel_best = PRODUCT_TIMES.get((n, "kernel")), PRODUCT_BEST.get((n, "kernel"))
        lines.append(
            f"{n:,} x {n:,} all distinct, {WORKERS} workers   median s   M pairs/s   share of kernel rate (best rounds)"
        )
        for output in OUTPUTS:
            seconds = PRODUCT_TIMES.get((n, output))
            if seconds is None:
                continue
            best = PRODUCT_BEST[(n, output)]
            share = f"{kernel / seconds:6.3f} ({kernel_best / best:5.3f})" if kernel else "     -"
            lines.append(f"  {LABELS[output]:<32} {seconds:8.3f} {n * n / seconds / 1e6:11.0f}   {share}")
    for n in sorted({n for _, n, _ in PEER_TIMES}):
        lines.append(f"pandas peer {n:,} x {n:,}, targets without records, top_k({K})   median s   "
                     "speed / pandas' (best rounds)")
        for shape in SHAPES:
            if (shape, n) not in PEER_FACTS:
                continue
            lines.append(f"  {shape} fleet (join rows {PEER_FACTS[(shape, n)]['join_rows']:,})")
            pandas = PEER_TIMES.get((shape, n, "pandas"))
            for side in PEER_SIDES:
                seconds = PEER_TIMES.get((shape, n, side))
                if seconds is None:
                    continue
                speed = ""
                if pandas and side != "pandas":
                    best = PEER_BEST[(shape, n, "pandas")] / PEER_BEST[(shape, n, side)]
                    speed = f"{pandas / seconds:7.3f} ({best:.3f})"
                lines.append(f"    {side:<24} {seconds:8.4f}   {speed}")
    return "fastmatch products (bench_products)", lines


support.add_summary(_summary)
